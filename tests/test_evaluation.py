"""The test split: held out, never read by anything that chooses, evaluated once, at the end.

A :class:`DataSplit`'s test tensors raise until the final evaluation opens them, so a stage
that chose with them (a search trial, the epoch, an ensemble's members, the student, the
preflight) would crash these runs. The tests record who opens the test split and when.
"""

from __future__ import annotations

import json
import sys

import pytest

from babysit import experiment
from babysit.cli import main
from babysit.config import load_config
from babysit.data import DataSplit, TestSplitLocked
from babysit.rundir import read_jsonl
from babysit.stats import Accuracy
from babysit.train import Callback
from babysit.workflow import run_workflow

SMALL = ["data.dataset=digits", "model.name=mlp", "data.limit=400", "model.width=32",
         "train.batch_size=64"]


@pytest.fixture
def openings(monkeypatch):
    """Every opening of a test split: (the module that opened it, the workflow stage running)."""
    found: list[dict] = []
    original = DataSplit.unlocked_test

    def recording(self):
        found.append({"by": sys._getframe(1).f_globals.get("__name__"), "stage": _running_stage(),
                      "n": self.n_test})
        return original(self)

    monkeypatch.setattr(DataSplit, "unlocked_test", recording)
    _running_stage.run_dir = None
    return found


def _running_stage() -> str | None:
    run_dir = getattr(_running_stage, "run_dir", None)
    if run_dir is None or not (run_dir / "run.json").is_file():
        return None
    running = [s["name"] for s in json.loads((run_dir / "run.json").read_text())["stages"]
               if s["status"] == "running"]
    return running[-1] if running else None


class PeekAtTheTestSplit(Callback):
    """What an early-stopping rule or a checkpoint choice that cheated would do."""

    def on_epoch_end(self, state):
        state.data.x_test


def test_a_choice_that_reads_the_test_split_fails(tmp_path):
    config = load_config(overrides=SMALL + ["train.epochs=1"])
    with pytest.raises(TestSplitLocked, match="validation chooses"):
        experiment.train(config, tmp_path / "run", callbacks=[PeekAtTheTestSplit()], quiet=True)


def test_the_workflow_reads_the_test_split_only_at_the_end(tmp_path, openings):
    """gradcheck, preflight, a search (worker processes: a read there fails the trial), the
    final training and the ensembles run with the test split locked; the final evaluation
    opens it once the training is over, and once the ensembles are built."""
    config = load_config(overrides=SMALL)
    run_dir = tmp_path / "run"
    _running_stage.run_dir = run_dir
    lines: list[str] = []
    code, _ = run_workflow(config, run_dir, quick=True, quiet=True, argv=["babysit", "run"],
                           echo=lines.append)
    assert code == 0, lines
    assert {o["by"] for o in openings} == {"babysit.evaluation"}
    assert [o["stage"] for o in openings] == ["train", "ensemble"]
    board = json.loads((run_dir / "search" / "leaderboard.json").read_text())
    assert board and not [r for r in board if r["state"] == "failed"]  # no trial peeked
    # the training's opening came after its last epoch: its test figure names that checkpoint
    report = json.loads((run_dir / "test.json").read_text())
    epochs = len(read_jsonl(run_dir / "metrics.jsonl"))
    assert report["models"]["final"]["file"].startswith(f"checkpoints/epoch_{epochs:03d}_")
    assert report["n"] == 359 and report["headline"] == "final"
    assert report["source"] == "held out: data.test_fraction=0.2"
    kinds = {r["kind"] for r in json.loads((run_dir / "ensemble" / "table.json").read_text())}
    assert set(report["models"]) == {"final", "average"} | {f"ensemble:{k}" for k in kinds - {"average"}}
    for name, entry in report["models"].items():
        acc = Accuracy.from_rate(entry["acc"], entry["n"])
        assert (entry["low"], entry["high"]) == pytest.approx(acc.interval), name
        if name != "final":
            assert entry["diff"]["verdict"] in ("gain", "loss", "within noise")
            low, high = entry["diff"]["low"], entry["diff"]["high"]
            assert entry["diff"]["verdict"] == ("gain" if low > 0 else "loss" if high < 0 else "within noise")
    # the headline, printed last: the final model's test accuracy with its n and interval
    headline = [line for line in lines if line.startswith("test acc")]
    assert headline[0].startswith(f"test acc final model {report['models']['final']['acc']:.4f} (n=359, 95% CI ")
    assert json.loads((run_dir / "run.json").read_text())["headline"] == headline
    # every other accuracy the stages printed carries its n and interval
    verdicts = {line.split("]")[0].strip("[ "): line for line in lines if line.startswith("[")}
    for stage in ("search", "train", "ensemble"):
        assert "n=" in verdicts[stage] and "95% CI" in verdicts[stage], verdicts[stage]
    assert "over the runner-up" in verdicts["search"] and "unpaired" in verdicts["search"]


def test_train_and_ensemble_end_with_the_test_figures(tmp_path, capsys, openings):
    """``babysit train`` writes the final model and its average; ``babysit ensemble`` adds the
    seed ensemble and the student, each against its best member (picked on validation)."""
    run = str(tmp_path / "run")
    assert main(["train", "--set", "epochs=2", *sum((["--set", s] for s in SMALL), []),
                 "--run-dir", run, "--quiet"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-4].startswith("test split: 359 examples (held out: data.test_fraction=0.2)")
    assert out[-3].startswith("test acc final: ") and "(n=359, 95% CI " in out[-3]
    assert out[-2].startswith("test acc average: ") and "vs final (paired 95% CI" in out[-2]
    assert any(line.startswith("best val acc ") and "(n=80, 95% CI" in line for line in out)
    assert main(["ensemble", run, "--kind", "seeds", "--kind", "distill", "-k", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "test acc ensemble:seeds: " in out and "vs best member (paired 95% CI" in out
    report = json.loads((tmp_path / "run" / "test.json").read_text())
    assert set(report["models"]) == {"final", "average", "ensemble:seeds", "ensemble:distill"}
    seeds = report["models"]["ensemble:seeds"]
    assert seeds["vs"] == "best member"
    # members 1..K on the test split: the last point is the ensemble itself
    assert [p["n"] for p in seeds["curve"]] == [359, 359] and seeds["curve"][-1]["acc"] == seeds["acc"]
    rows = json.loads((tmp_path / "run" / "ensemble" / "table.json").read_text())
    assert {r["kind"]: r["test"]["acc"] for r in rows} == {
        "seeds": report["models"]["ensemble:seeds"]["acc"],
        "distill": report["models"]["ensemble:distill"]["acc"]}
    # opened once by the training's end, once after the ensembles were built
    assert [o["by"] for o in openings] == ["babysit.evaluation"] * 2


def test_without_a_test_split_nothing_is_written_and_the_verb_says_so(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--set", "epochs=1", "--set", "data.test_fraction=0",
                 *sum((["--set", s] for s in SMALL), []), "--run-dir", str(run), "--quiet"]) == 0
    assert "test: no test split evaluated (data.test_fraction = 0)" in capsys.readouterr().out
    assert not (run / "test.json").exists()
