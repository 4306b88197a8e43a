"""``babysit run``: the whole workflow end to end, its record in run.json, its stops and its numbers."""

from __future__ import annotations

import json


from babysit.cli import main
from babysit.config import load_config
from babysit.rundir import RunDir, read_jsonl
from babysit.workflow import STAGES, quick_config, run_workflow
from tests.digits import DIGITS, digits_args

ALLOWED = {"passed", "failed", "done", "unavailable", "skipped"}


def test_quick_run_walks_every_stage_and_records_it(quick_run, capsys):
    code, path = quick_run
    assert code == 0
    info = json.loads((path / "run.json").read_text())
    assert info["status"] == "finished" and info["quick"] is True
    assert [s["name"] for s in info["stages"]] == list(STAGES)
    for stage in info["stages"]:
        assert stage["status"] in ALLOWED, stage
        assert isinstance(stage["seconds"], float) and stage["verdict"]
    by_name = {s["name"]: s for s in info["stages"]}
    assert by_name["train"]["status"] == "done" and "best val acc" in by_name["train"]["verdict"]
    assert by_name["gradcheck"]["status"] == by_name["preflight"]["status"] == "passed"
    assert by_name["search"]["status"] == by_name["ensemble"]["status"] == "done"
    # Everything reproducing the run needs.
    assert set(info["versions"]) >= {"python", "torch", "numpy", "optuna", "babysit"}
    assert info["device"]["name"] == "cpu" and info["device"]["torch_threads"] >= 1
    assert info["seed"] == 0 and info["command"][:2] == ["babysit", "run"]
    assert info["input_config"]["train"]["epochs"] == 4  # --quick shrank the training
    assert (path / "report.html").is_file() and (path / "config.toml").is_file()
    assert len(read_jsonl(path / "metrics.jsonl")) == 4


def test_same_config_and_seed_give_the_same_numbers(quick_run, tmp_path):
    """Retraining the run's config.toml (the reproduction the report offers) repeats every number."""
    _, path = quick_run
    assert main(["train", str(path / "config.toml"), "--run-dir", str(tmp_path / "again"), "--quiet"]) == 0
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(read_jsonl(tmp_path / "again" / "metrics.jsonl")) == strip(read_jsonl(path / "metrics.jsonl"))


def test_quick_config_shrinks_the_budget_not_the_question():
    config = load_config()
    config.setdefault("search", {"stages": [{"trials": 24, "epochs": 1}, {"trials": 10, "epochs": 5}],
                                 "top_k": 5, "space": {"optim.lr": {"low": 1e-6, "high": 1.0, "log": True}}})
    quick = quick_config(config)
    assert quick["train"]["epochs"] <= 4
    assert sum(s["trials"] for s in quick["search"]["stages"]) <= 8
    assert quick["search"]["space"] == config["search"]["space"]
    assert config["train"]["epochs"] == 10  # the input is left alone


def test_run_dir_must_be_new_or_empty(tmp_path, capsys):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "metrics.jsonl").write_text("")
    assert main(["run", "--quick", "--run-dir", str(tmp_path / "old")]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert main(["run", "--workers", "0"]) == 2
    assert "--workers takes a number >= 1" in capsys.readouterr().err


def test_diverging_final_training_stops_with_the_reason_and_still_reports(tmp_path):
    """An exploding learning rate: the run ends with exit code 1, run.json and the report say why."""
    from html import escape

    config = load_config(overrides=[*DIGITS, "optim.lr=1e4", "optim.name=sgd", "train.epochs=2", "model.width=16",
                                    "train.max_loss=1e3"])
    lines = []
    code, rd = run_workflow(config, tmp_path / "bad", quick=True, quiet=True, echo=lines.append,
                            skip=("gradcheck", "preflight", "search"))
    assert code == 1
    info = RunDir(rd.path).read_json("run.json")
    assert info["status"] == "failed" and "final training stopped" in info["reason"]
    stages = {s["name"]: s["status"] for s in info["stages"]}
    assert stages == {"gradcheck": "skipped", "preflight": "skipped", "search": "skipped", "train": "failed",
                      "report": "done"}  # no ensemble of a diverged model
    assert any(line.startswith("stopped: ") for line in lines)
    assert escape(info["reason"]) in (rd.path / "report.html").read_text()


def test_unknown_stage_to_skip(capsys):
    assert main(["run", "--skip", "search,nap"]) == 2
    assert "cannot skip nap" in capsys.readouterr().err


def test_failed_preflight_stops_the_run_unless_forced(tmp_path):
    """Weights initialized far too large: the initial loss is far above chance, preflight fails."""
    only_initial_loss = "preflight.skip=['reg_increases_loss', 'overfit_tiny', 'input_dependence', " \
                        "'deterministic', 'gradcheck']"
    # (weights 100x too large start at a loss ~1e5: a max_loss above it lets --force go on to train)
    config = load_config(overrides=[*DIGITS, "model.init_scale=100", "train.epochs=1", "model.width=16",
                                    "train.max_loss=1e9", only_initial_loss])
    lines = []
    code, rd = run_workflow(config, tmp_path / "stop", quiet=True, echo=lines.append, skip=("gradcheck",))
    info = RunDir(rd.path).read_json("run.json")
    stages = {s["name"]: s["status"] for s in info["stages"]}
    assert code == 1 and info["status"] == "failed" and stages["preflight"] == "failed"
    assert "search" not in stages and "preflight failed" in info["reason"]
    assert "initial_loss" in (rd.path / "report.html").read_text()
    code, rd = run_workflow(config, tmp_path / "forced", force=True, quiet=True, echo=lines.append,
                            skip=("gradcheck", "search", "ensemble"))
    stages = {s["name"]: s["status"] for s in RunDir(rd.path).read_json("run.json")["stages"]}
    assert stages["preflight"] == "failed" and stages["train"] == "done"


def test_a_killed_run_is_reported_as_interrupted(tmp_path):
    """kill -9 during the final training: run.json still says running, the report says interrupted."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import babysit
    from babysit.report import build_report

    path = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(Path(babysit.__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "babysit.cli", "run", "--quiet", "--run-dir", str(path),
                             "--skip", "gradcheck,preflight,search", *digits_args(), "--set", "train.epochs=200",
                             "--set", "model.width=16"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(read_jsonl(path / "metrics.jsonl")) < 1:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(read_jsonl(path / "metrics.jsonl")) >= 1, "training never finished an epoch"
    assert RunDir(path).read_json("run.json")["status"] == "running"
    page = build_report(path)
    assert "the run was interrupted" in page and "of 200 planned" in page
    assert "The run was interrupted before this stage" in page  # the ensembles never started


def test_failed_gradient_check_stops_the_run(tmp_path):
    """A loss whose backward is off by a factor 2: the run stops at the gradient check, exit 1."""
    config = load_config(overrides=[*DIGITS, "loss.name=report_bad_loss:half_gradient_softmax", "model.width=16"])
    lines = []
    code, rd = run_workflow(config, tmp_path / "bad-grad", quick=True, quiet=True, echo=lines.append)
    info = RunDir(rd.path).read_json("run.json")
    assert code == 1 and [s["name"] for s in info["stages"]] == ["gradcheck", "report"]
    assert info["stages"][0]["status"] == "failed" and "gradient check failed" in info["reason"]
    assert "--force" in info["reason"] and any(line.startswith("stopped: gradient check failed") for line in lines)
    page = (rd.path / "report.html").read_text()
    assert 'id="gradcheck" data-status="fail"' in page
