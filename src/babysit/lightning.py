"""babysit where PyTorch Lightning users train: ``Trainer(callbacks=[babysit.lightning.Babysit()])``.

The callback drives the same :class:`babysit.Monitor` a plain loop uses — update:weight
ratios measured on the optimizer Lightning steps, activation and gradient histograms, the loss
of every training step, accuracy and loss per epoch from what the module logs — and writes a
babysit run directory that ``babysit plots`` and ``babysit report`` read. New diagnoses are
printed as they appear (one line each, with the notes' fix) and all of them at the end.

Needs the ``lightning`` extra: ``pip install 'babysit[lightning]'``.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytorch_lightning as pl
import torch

from .rundir import RunDir, append_jsonl
from .watch.monitor import Monitor

# What the module logs (``self.log(name, value)``) that the monitor reads, by default.
METRIC_KEYS = {"train_acc": "train_acc", "val_acc": "val_acc", "val_loss": "val_loss"}


class Babysit(pl.Callback):
    """Watch a LightningModule's training with babysit's monitor.

    `run_dir` defaults to ``runs/<name>`` (``runs/<name>-N`` when taken). `metric_keys` maps
    the monitor's ``train_acc``/``val_acc``/``val_loss`` to the names the module logs them
    under; other numbers the module logs per epoch are recorded as they are. `verbose` prints
    each new diagnosis when it first appears, and all of them when training ends. The
    remaining keyword arguments are :class:`Monitor`'s options (``hist_every``, ...).
    """

    def __init__(self, run_dir: str | Path | None = None, *, name: str = "lightning",
                 metric_keys: dict[str, str] | None = None, verbose: bool = True, **monitor_options):
        self.run_dir = RunDir(run_dir) if run_dir is not None else None
        self.name, self.verbose = name, verbose
        self.metric_keys = {**METRIC_KEYS, **(metric_keys or {})}
        self.monitor_options = monitor_options
        self.monitor: Monitor | None = None
        self._said: set[str] = set()  # diagnosis codes already printed
        self._closed = False

    # -- Lightning's hooks ---------------------------------------------------------------------

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.optimizers:
            raise ValueError("babysit.lightning.Babysit needs the module to configure an optimizer")
        if len(trainer.optimizers) > 1:
            self._say(trainer, "watching the first of the module's "
                               f"{len(trainer.optimizers)} optimizers only")
        if self.run_dir is None:
            self.run_dir = RunDir.create("runs", self.name)
        steps = trainer.num_training_batches  # an int, or inf for an iterable of unknown length
        steps = int(steps) if math.isfinite(steps) else None
        self.monitor = Monitor(pl_module, trainer.optimizers[0], self.run_dir,
                               steps_per_epoch=steps, **self.monitor_options)
        self._say(trainer, f"watching training into {self.run_dir.path}")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if self.monitor is not None and isinstance(loss, (torch.Tensor, float, int)):
            self.monitor.step(loss)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Lightning calls this after the epoch's validation: its metrics are all logged."""
        if self.monitor is None:
            return
        logged = {k: _number(v) for k, v in trainer.callback_metrics.items()}
        logged = {k: v for k, v in logged.items() if v is not None}
        ours = {mine: logged.pop(theirs) for mine, theirs in self.metric_keys.items() if theirs in logged}
        extra = {k.replace("/", "_"): v for k, v in logged.items() if k not in ("epoch", "step")}
        self.monitor.epoch(**ours, **extra)
        record = {"epoch": self.monitor.epochs_done, "step": self.monitor.steps_taken, **ours, **extra}
        append_jsonl(self.run_dir / "metrics.jsonl", record)
        if self.verbose:
            for d in self.monitor.diagnoses():
                if d.code not in self._said:
                    self._said.add(d.code)
                    self._say(trainer, f"epoch {record['epoch']}: {d.severity} {d.code}: {d.message}")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close(trainer)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._close(trainer)  # a Ctrl-C or a crash still leaves every record on disk

    # -- helpers -------------------------------------------------------------------------------

    def diagnoses(self) -> list:
        """What the monitor found (see :mod:`babysit.watch.diagnoses`), most severe first."""
        return self.monitor.diagnoses() if self.monitor is not None else []

    def _close(self, trainer: pl.Trainer) -> None:
        if self.monitor is None or self._closed:
            return
        self._closed = True
        found = self.monitor.close()
        if self.verbose:
            for d in found:
                self._say(trainer, f"{d.severity} {d.code}: {d.message}")
            self._say(trainer, f"{len(found) or 'no'} problem{'s' * (len(found) != 1)} found; "
                               f"report: babysit report {self.run_dir.path}")

    @staticmethod
    def _say(trainer: pl.Trainer, message: str) -> None:
        if trainer.is_global_zero:
            print(f"babysit: {message}", flush=True)


def _number(value) -> float | None:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


__all__ = ["Babysit", "METRIC_KEYS"]
