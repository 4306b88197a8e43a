"""The monitor's records survive an interrupted training and its resumption (issue 22, item 5).

A run interrupted in the middle of an epoch and resumed from its last checkpoint must end
with the records of an uninterrupted run: every step and every epoch exactly once, and the
same numbers (resumed training is bit-exact).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from babysit import Callback, experiment
from babysit.config import load_config
from tests.digits import DIGITS

OVERRIDES = [*DIGITS, "data.limit=300", "model.width=16", "epochs=8", "train.checkpoints=true"]
STEPS_PER_EPOCH = 4  # 240 training examples in batches of 64


def records(run_dir: Path, stream: str) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "watch" / f"{stream}.jsonl").read_text().splitlines()]


def assert_complete(run_dir: Path) -> None:
    """Every step and every epoch of 8 once, in order, and no temp file left behind."""
    assert [r["step"] for r in records(run_dir, "steps")] == list(range(1, 8 * STEPS_PER_EPOCH + 1))
    assert [r["epoch"] for r in records(run_dir, "epochs")] == list(range(1, 9))
    assert not list((run_dir / "watch").glob(".*.tmp"))


class InterruptAt(Callback):
    """Ctrl-C in the middle of training: a KeyboardInterrupt after optimizer step `step`."""

    def __init__(self, step: int):
        self.step = step

    def on_batch_end(self, state) -> None:
        if state.step == self.step:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    experiment.train(load_config(overrides=OVERRIDES), run_dir, quiet=True)
    assert_complete(run_dir)
    return run_dir


def test_interrupted_in_epoch_5_and_resumed_gives_the_records_of_an_uninterrupted_run(uninterrupted, tmp_path):
    interrupted_at = 4 * STEPS_PER_EPOCH + 2  # two steps into epoch 5: its checkpoint is epoch 4's
    with pytest.raises(KeyboardInterrupt):
        experiment.train(load_config(overrides=OVERRIDES), tmp_path, quiet=True,
                         callbacks=[InterruptAt(interrupted_at)])
    # the records reached the disk on the interrupt, up to the very step
    assert [r["step"] for r in records(tmp_path, "steps")] == list(range(1, interrupted_at + 1))
    assert [r["epoch"] for r in records(tmp_path, "epochs")] == [1, 2, 3, 4]
    assert not list((tmp_path / "watch").glob(".*.tmp"))
    experiment.train(load_config(overrides=OVERRIDES), tmp_path, quiet=True, resume=True)
    assert_complete(tmp_path)
    for stream in ("steps", "epochs", "ratios", "grad_norms", "activations"):
        resumed, whole = records(tmp_path, stream), records(uninterrupted, stream)
        assert len(resumed) == len(whole), stream
        # the same numbers; epoch records carry their own timing ("seconds"), which differs
        keys = ("step", "epoch", "loss", "ratios", "rms", "counts", "train_acc", "val_acc")
        assert [{k: r.get(k) for k in keys} for r in resumed] == [{k: r.get(k) for k in keys} for r in whole], stream


@pytest.mark.slow
def test_sigint_to_babysit_train_then_resume_keeps_every_record(tmp_path):
    """A real Ctrl-C (SIGINT) to `babysit train` in the middle of its run, then `--resume`."""
    run_dir = tmp_path / "run"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    # The slow model goes last: DIGITS (in OVERRIDES) names the MLP, and the last --set wins.
    command = [sys.executable, "-m", "babysit.cli", "train", "--quiet", "--run-dir", str(run_dir),
               *sum((["--set", o] for o in OVERRIDES), []), "--set", "model.name=tests.watch.slow_model:build"]
    process = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    epochs_file = run_dir / "watch" / "epochs.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if epochs_file.exists() and len(epochs_file.read_text().splitlines()) >= 3:
            break
        time.sleep(0.02)
    time.sleep(0.05)  # into the next epoch
    # Still training: a signal after the last epoch would test nothing (or only the exit).
    assert process.poll() is None and len(epochs_file.read_text().splitlines()) < 8
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    steps = [r["step"] for r in records(run_dir, "steps")]
    assert steps == list(range(1, len(steps) + 1)) and 3 * STEPS_PER_EPOCH <= len(steps) < 8 * STEPS_PER_EPOCH
    assert not list((run_dir / "watch").glob(".*.tmp"))
    resumed = subprocess.run([sys.executable, "-m", "babysit.cli", "train", "--quiet", "--resume", str(run_dir),
                              "--trust-run-dir"],
                             cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert_complete(run_dir)
