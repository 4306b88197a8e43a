"""Callbacks that write a run into its run directory: per-epoch metrics and checkpoints."""

from __future__ import annotations


import torch
from pathlib import Path

from ..rundir import RunDir, append_jsonl, checkpoint_name, list_checkpoints, load_checkpoint, save_checkpoint
from .callbacks import Callback, TrainState


class MetricsLogger(Callback):
    """Appends each epoch's logs to ``metrics.jsonl`` (readable while the run goes on)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_epoch_end(self, state: TrainState) -> None:
        append_jsonl(self.path, state.logs)


class Checkpointer(Callback):
    """Writes ``epoch_007_val_0.9312.pt`` into `folder` after every epoch, atomically.

    A checkpoint holds the model and optimizer state, the epoch's logs, the resolved config
    (enough to rebuild the model), the shuffling RNG state (enough to resume exactly) and
    whatever callbacks put in ``state.checkpoint_extra`` (the parameter average).
    Everything in it loads with ``torch.load(..., weights_only=True)``.
    """

    def __init__(self, folder: str | Path, extra: dict | None = None):
        self.folder = Path(folder)
        self.extra = extra or {}
        self.last: Path | None = None

    def on_epoch_end(self, state: TrainState) -> None:
        val = state.logs.get("val_acc", float("nan"))
        payload = {
            "model": state.model.state_dict(),
            "optimizer": state.optimizer.state_dict(),
            "epoch": state.epoch,
            "metrics": {k: v for k, v in state.logs.items() if isinstance(v, (int, float, str))},
            "config": state.config,
            "generator": state.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            **state.checkpoint_extra,
            **self.extra,
        }
        self.last = save_checkpoint(self.folder / checkpoint_name(state.epoch, val), payload)


def latest_checkpoint(folder: str | Path) -> Path | None:
    found = list_checkpoints(folder)
    return found[-1] if found else None


def best_checkpoint(folder: str | Path) -> Path | None:
    """The checkpoint with the highest validation score in its name (latest on ties)."""
    def score(p: Path) -> float:
        try:
            return float(p.stem.rsplit("_val_", 1)[1])
        except ValueError:
            return float("-inf")
    found = list_checkpoints(folder)
    return max(reversed(found), key=score) if found else None


__all__ = ["MetricsLogger", "Checkpointer", "latest_checkpoint", "best_checkpoint", "load_checkpoint", "RunDir"]
