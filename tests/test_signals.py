"""A SIGTERM to a training verb unwinds like Ctrl-C (issue 22, item 5): exit 130, every record
written so far on disk and whole, and `--resume` completes the run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.digits import DIGITS, digits_args

ROOT = Path(__file__).resolve().parents[1]
OVERRIDES = [*DIGITS, "data.limit=300", "model.width=16", "epochs=6", "train.checkpoints=true",
             "model.name=tests.watch.slow_model:build"]


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.slow
def test_sigterm_to_babysit_train_is_an_interrupt_and_resume_completes(tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "babysit.cli", "train", "--quiet", "--run-dir", str(run_dir),
               *sum((["--set", o] for o in OVERRIDES), [])]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if len(lines(run_dir / "watch" / "epochs.jsonl")) >= 2:
            break
        time.sleep(0.02)
    time.sleep(0.05)
    process.terminate()  # SIGTERM
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err  # killed outright it would be -15
    assert err.strip().splitlines()[-1] == "babysit: interrupted"
    steps = [r["step"] for r in lines(run_dir / "watch" / "steps.jsonl")]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 8
    assert not list((run_dir / "watch").glob(".*.tmp"))
    resumed = subprocess.run([sys.executable, "-m", "babysit.cli", "train", "--quiet", "--resume", str(run_dir),
                              "--trust-run-dir"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert [r["epoch"] for r in lines(run_dir / "watch" / "epochs.jsonl")] == [1, 2, 3, 4, 5, 6]
    assert [r["epoch"] for r in lines(run_dir / "metrics.jsonl")] == [1, 2, 3, 4, 5, 6]


def test_the_handler_is_restored_after_the_verb(tmp_path):
    from babysit.cli import main

    before = signal.getsignal(signal.SIGTERM)
    assert main(["config", "--set", "seed=1"]) == 0
    assert main(["gradcheck", "-q", *digits_args(), "--set", "model.width=8"]) in (0, 3)
    assert signal.getsignal(signal.SIGTERM) is before
