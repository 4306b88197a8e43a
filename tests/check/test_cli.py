"""``babysit gradcheck``: the table, the run-directory files, exit codes, bad input."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import babysit as package
from babysit.cli import main
from tests.digits import digits_args

# The subprocess imports this same babysit, whichever checkout the tests run from.
SRC = str(Path(package.__file__).resolve().parents[1])


def test_default_experiment_passes_and_writes_the_report(tmp_path, capsys):
    code = main(["gradcheck", *digits_args(), "--quiet", "--run-dir", str(tmp_path), "--set", "model.width=16"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "gradient check PASSED" in out and "reg:1.weight" in out and "kink ops in the objective: relu" in out
    report = json.loads((tmp_path / "gradcheck" / "report.json").read_text())
    assert report["passed"] is True and report["sweep"] is None
    names = {r["name"] for r in report["rows"]}
    assert names == {"1.weight", "1.bias", "3.weight", "3.bias", "5.weight", "5.bias",
                     "reg:1.weight", "reg:1.bias", "reg:3.weight", "reg:3.bias", "reg:5.weight", "reg:5.bias"}
    assert (tmp_path / "gradcheck" / "report.txt").read_text().strip().endswith(report["summary"])


BUGGY_LOSS = textwrap.dedent('''
    import torch
    import torch.nn.functional as F

    class HalfBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, scores):
            return scores

        @staticmethod
        def backward(ctx, grad):
            return 0.5 * grad  # planted bug: the identity's gradient is 1

    def loss(scores, targets):
        return F.cross_entropy(HalfBackward.apply(scores), targets)
''')


def test_wrong_gradient_exits_1_and_the_sweep_is_reported(tmp_path, monkeypatch, capsys):
    (tmp_path / "buggy_loss.py").write_text(BUGGY_LOSS)
    monkeypatch.syspath_prepend(str(tmp_path))
    code = main(["gradcheck", *digits_args(), "-q", "--sweep", "--set", "loss.name=buggy_loss:loss",
                 "--set", "model.width=8", "--set", "gradcheck.coords_per_tensor=3"])
    out = capsys.readouterr().out
    assert code == 1
    assert "gradient check FAILED" in out and "h sweep" in out and "<-- fails" in out


def test_with_a_burn_in_the_check_runs_at_initialization_and_after_it(tmp_path, monkeypatch, capsys):
    """The notes' "characteristic mode" (the default burn-in) and initialization: both shown,
    in the table, report.txt and report.json; the outcome is the worse of the two."""
    code = main(["gradcheck", *digits_args(), "-q", "--run-dir", str(tmp_path / "ok"), "--set", "model.width=16",
                 "--set", "gradcheck.burn_in=5", "--set", "gradcheck.coords_per_tensor=3"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "== after 5 burn-in steps" in out and "== at initialization ==" in out and "both: PASSED" in out
    report = json.loads((tmp_path / "ok" / "gradcheck" / "report.json").read_text())
    assert report["burn_in"] == 5 and report["outcome"] == "passed"
    assert report["at_init"]["outcome"] == report["after_burn_in"]["outcome"] == "passed"
    assert report["rows"] and report["at_init"]["rows"]  # the two points were checked apart
    after = {(r["name"], tuple(r["index"])): r["analytic"] for r in report["rows"]}
    before = {(r["name"], tuple(r["index"])): r["analytic"] for r in report["at_init"]["rows"]}
    assert any(after[k] != before[k] for k in after.keys() & before.keys())  # training moved the point
    assert "after 5 burn-in steps" in report["summary"] and "at initialization" in report["summary"]
    text = (tmp_path / "ok" / "gradcheck" / "report.txt").read_text()
    assert "== after 5 burn-in steps" in text and "== at initialization ==" in text

    (tmp_path / "buggy_loss.py").write_text(BUGGY_LOSS)
    monkeypatch.syspath_prepend(str(tmp_path))
    code = main(["gradcheck", *digits_args(), "-q", "--set", "loss.name=buggy_loss:loss", "--set", "model.width=8",
                 "--set", "gradcheck.burn_in=5", "--set", "gradcheck.coords_per_tensor=3"])
    assert code == 1 and "both: FAILED" in capsys.readouterr().out


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    def babysit(*args):
        return subprocess.run([sys.executable, "-m", "babysit.cli", "gradcheck", *args],
                              capture_output=True, text=True, cwd=tmp_path, timeout=300,
                              env={**os.environ, "PYTHONPATH": SRC})

    missing = babysit("nope.toml")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr
    for setting, word in (("gradcheck.h=-1", "positive"), ("gradcheck.dtype=float16", "float64"),
                          ("gradcheck.num_points=0", "num_points")):
        code = main(["gradcheck", *digits_args(), "-q", "--set", setting])
        assert code == 2, setting
    assert main(["gradcheck", *digits_args(), "-q", "--set", "gradcheck.hh=1"]) == 2
    assert "did you mean 'gradcheck.h'" in capsys.readouterr().err


ON_THE_KINK_LOSS = textwrap.dedent('''
    import torch
    import torch.nn.functional as F

    AT_FIRST_CALL = []

    def loss(scores, targets):
        # |s - s0| with s0 the value at the check's first call (float64; babysit's own probe of
        # the loss at build time is float32): the check sits exactly on the kink, which no step
        # and no side can get away from.
        total = scores.sum()
        if not AT_FIRST_CALL and total.dtype == torch.float64:
            AT_FIRST_CALL.append(total.detach().clone())
        if not AT_FIRST_CALL:
            return F.cross_entropy(scores, targets)
        return F.cross_entropy(scores, targets) + (total - AT_FIRST_CALL[0]).abs()
''')


def test_a_kink_nothing_resolves_exits_3_with_the_reason(tmp_path, monkeypatch, capsys):
    (tmp_path / "kink_loss.py").write_text(ON_THE_KINK_LOSS)
    monkeypatch.syspath_prepend(str(tmp_path))
    code = main(["gradcheck", *digits_args(), "-q", "--set", "loss.name=kink_loss:loss", "--set", "model.width=8",
                 "--set", "gradcheck.coords_per_tensor=3", "--run-dir", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert code == 3, out
    assert "gradient check INCONCLUSIVE" in out and "abs switches" in out and "<-- fails" not in out
    report = json.loads((tmp_path / "run" / "gradcheck" / "report.json").read_text())
    assert report["outcome"] == "inconclusive" and report["passed"] is False and report["inconclusive"] > 0


def test_the_sweep_is_drawn_into_the_run_directory(tmp_path, capsys):
    code = main(["gradcheck", *digits_args(), "-q", "--sweep", "--run-dir", str(tmp_path), "--set", "model.width=8",
                 "--set", "gradcheck.coords_per_tensor=3"])
    assert code == 0, capsys.readouterr().out
    png = tmp_path / "gradcheck" / "plots" / "h_sweep.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((tmp_path / "gradcheck" / "report.json").read_text())
    assert all(set(e["per_tensor"]) for e in report["sweep"])  # what the picture draws, per tensor
    assert report["depth"] == 3 and report["layers"]["1.weight"] == 1 and report["layers"]["5.bias"] == 3


def test_an_inconclusive_check_does_not_fail_the_preflight(tmp_path, monkeypatch, capsys):
    """Inconclusive is no verdict on the user's gradient: the preflight's gradcheck check
    passes, saying it was inconclusive and why, and the preflight exits 0."""
    (tmp_path / "preflight_kink_loss.py").write_text(ON_THE_KINK_LOSS)  # its own first call
    monkeypatch.syspath_prepend(str(tmp_path))
    skip = ["--skip", "initial_loss", "--skip", "reg_increases_loss", "--skip", "overfit_tiny",
            "--skip", "input_dependence", "--skip", "deterministic"]  # their float64 calls come first
    code = main(["preflight", *digits_args(), "-q", "--set", "loss.name=preflight_kink_loss:loss",
                 "--set", "model.width=8",
                 *skip, "--run-dir", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert code == 0, out
    check = json.loads((tmp_path / "run" / "preflight" / "report.json").read_text())["checks"]["gradcheck"]
    assert check["passed"] and "inconclusive" in check["summary"] and check["inconclusive_entries"] > 0
    assert "not a failure of your gradient" in check["message"]
