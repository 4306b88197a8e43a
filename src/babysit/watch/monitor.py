"""`Monitor`: babysitting the learning process, in any PyTorch training loop, with two lines.

    mon = babysit.Monitor(model, optimizer, run_dir="runs/x")
    ...  optimizer.step(); mon.step(loss)          # every step
    mon.epoch(train_acc=..., val_acc=..., val_loss=...)   # every epoch
    for d in mon.diagnoses(): print(d.code, d.severity, d.message)
    mon.close()

A plain step costs the monitor one record of its loss. Every `ratio_every` steps it hooks
into the optimizer's step (update:weight ratios), every `hist_every` steps into the model's
activation modules and the autograd graph (histograms, gradient norms), through the public
APIs and for that one step only. What it measures stays on the device until a batch read
(one transfer, appended to ``run_dir/watch/``, see :mod:`babysit.watch.records`), so it adds
no host-device synchronization per step.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

from ..config import DEFAULTS, check_value
from ..errors import UserError
from ..rundir import RunDir
from . import first_layer as first_layer_weights
from .activations import ActivationProbe
from .diagnoses import Diagnosis, Thresholds, diagnose
from .gradients import GradientProbe
from .records import History, Recorder, read_back
from .tensorboard import export, tensorboard_writer
from .updates import UpdateRatios

WATCH = DEFAULTS["watch"]  # the defaults of every option below, in the one table
MAX_BATCHES = 20  # flush_every steps at most this many times over before a batch read is forced


class Monitor:
    """Watches one model and its optimizer while they train.

    Options (defaults and rules in ``babysit.config``'s ``[watch]``): `ratio_every` and
    `hist_every` (sample ratios / histograms every N steps; 0: off), `bins`, `flush_every`
    and `flush_seconds` (batch reads: see :meth:`_flush_due`),
    `first_layer` (save its weights at :meth:`close`), `plots` (draw PNGs at close),
    `tensorboard`, `thresholds` (a :class:`Thresholds` or a dict of its fields),
    `steps_per_epoch`, `start_step`/`start_epoch` (a resumed run keeps the records up to
    there; a fresh monitor clears an earlier run's), and `accuracy_n` (how many examples the
    accuracies given to :meth:`epoch` are scored on, by name: the diagnoses quote them with
    their 95% intervals).
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                 run_dir: str | Path | RunDir | None = "runs/x", *, ratio_every: int = WATCH["ratio_every"],
                 hist_every: int = WATCH["hist_every"], bins: int = WATCH["bins"],
                 flush_every: int = WATCH["flush_every"], flush_seconds: float = WATCH["flush_seconds"],
                 first_layer: bool = WATCH["first_layer"], plots: bool = WATCH["plots"],
                 tensorboard: bool = WATCH["tensorboard"], thresholds: Thresholds | dict | None = None,
                 steps_per_epoch: int | None = None, start_step: int = 0, start_epoch: int = 0,
                 accuracy_n: dict[str, int] | None = None):
        for key, value in dict(ratio_every=ratio_every, hist_every=hist_every, bins=bins,
                               flush_every=flush_every, flush_seconds=flush_seconds).items():
            check_value(f"watch.{key}", value)  # the config's rule and message for the same key
        self.model, self.optimizer = model, optimizer
        self.ratio_every, self.hist_every, self.flush_every = ratio_every, hist_every, flush_every
        self.flush_seconds = float(flush_seconds)
        self.plots, self.first_layer = plots, first_layer
        self.thresholds = thresholds if isinstance(thresholds, Thresholds) else make_thresholds(thresholds or {})
        names, self.params = watched_parameters(model, optimizer)
        self._first_weight = first_layer_weights.first_weight(model) if first_layer else None  # (name, tensor)
        self.history = History(meta={
            "params": [{"name": n, "shape": list(p.shape)} for n, p in zip(names, self.params)],
            "layers": [], "bins": bins, "first_layer": (self._first_weight or (None,))[0],
            "steps_per_epoch": steps_per_epoch, "target_ratio": self.thresholds.target_ratio,
            # the examples each accuracy of epoch() is scored on, for the 95% intervals the
            # diagnoses quote: {"train_acc": n, "val_acc": n} (empty: not known)
            "accuracy_n": dict(accuracy_n or {})})
        self.recorder = Recorder(run_dir, self.history)
        self.recorder.start(start_step, start_epoch)
        self.run_dir = self.recorder.run_dir
        self._pending: list = []  # (stream, device tensors, fill) of every probe: see records.pack
        self.updates = UpdateRatios(self.params, self._pending) if ratio_every else None
        self.gradients = GradientProbe(self.params, bins, self._pending)
        self.activations = (ActivationProbe(model, bins, self._pending, on_output=self.gradients.watch_output)
                            if hist_every else None)
        if self.activations is not None:
            self.history.meta["layers"] = [{"name": n, "kind": k} for n, _, k in self.activations.layers]
        self.tensorboard = tensorboard_writer(self.run_dir) if tensorboard else None
        self.steps_taken, self.epochs_done = start_step, start_epoch
        self._losses: list = []  # the losses (floats or 0-d device tensors) of the latest steps, not yet written
        self._epoch_ends: list[int] = []  # how many of them there were at each epoch end since
        self._handles: list = []  # the optimizer hooks of the sampled step in progress
        self._closed = False
        self._flushed = time.perf_counter()
        self.recorder.write_meta()
        self._hook(start_step + 1)

    # -- the sampled steps ---------------------------------------------------------------------

    def _hook(self, coming: int) -> None:
        """Hook into step `coming` if it is sampled (steps 1, 1 + N, 1 + 2N, ...: even a short
        run gets one, and the first shows where training started): for histograms its forward
        pass and the gradients before the optimizer's step, for ratios the weights around it."""
        if self.activations is not None and (coming - 1) % self.hist_every == 0:
            self.activations.arm(coming)
            self._handles.append(self.optimizer.register_step_pre_hook(
                lambda *_: self.gradients.record_norms(coming)))
        if self.updates is not None and (coming - 1) % self.ratio_every == 0:
            self._handles += [self.optimizer.register_step_pre_hook(lambda *_: self.updates.before_step()),
                              self.optimizer.register_step_post_hook(lambda *_: self.updates.after_step(coming))]

    def _unhook(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if self.activations is not None:
            self.activations.disarm()

    # -- the contract --------------------------------------------------------------------------

    def step(self, loss: torch.Tensor | float) -> None:
        """Record this step's loss (a tensor stays on the device until the next batch read)."""
        if type(loss) is not float:
            loss = loss.detach() if isinstance(loss, torch.Tensor) else float(loss)
        self._losses.append(loss)
        self.steps_taken += 1
        if self._handles:  # a sampled step ended
            self._unhook()
        self._hook(self.steps_taken + 1)
        if len(self._losses) % self.flush_every == 0 and self._flush_due():
            self.flush()

    def _flush_due(self) -> bool:
        """Every `flush_every` steps: a batch read, unless one was made less than
        `flush_seconds` ago and fewer than MAX_BATCHES batches wait (a batch costs a device
        read and a write per file, so a fast loop batches more; readers lag a second at most)."""
        return (len(self._losses) >= MAX_BATCHES * self.flush_every
                or time.perf_counter() - self._flushed >= self.flush_seconds)

    def epoch(self, train_acc: float | None = None, val_acc: float | None = None,
              val_loss: float | None = None, **metrics) -> None:
        """Close one epoch: record its metrics and the window's unit statistics. When a batch
        read is due (:meth:`_flush_due`) the records reach the disk and diagnoses.json is
        rewritten: diagnosing every epoch would cost several percent of a tiny model's epoch,
        once a second (`flush_seconds`) a tenth of a percent. Call :meth:`flush` before saving
        a checkpoint to resume from, as :func:`babysit.fit` does."""
        record = {"epoch": self.epochs_done + 1, "step": self.steps_taken}
        for key, value in {"train_acc": train_acc, "val_acc": val_acc, "val_loss": val_loss, **metrics}.items():
            if value is not None:
                record[key] = float(value.item() if isinstance(value, torch.Tensor) else value)
        window = self.activations.end_window(record) if self.activations is not None else (None, None)
        self._pending.append(("epochs", *window) if window[0] is not None else ("epochs", None, record))
        self._epoch_ends.append(len(self._losses))
        self.epochs_done += 1
        if self._flush_due():
            self.flush()
            self.recorder.write_diagnoses(diagnose(self.history, self.thresholds))

    def diagnoses(self) -> list[Diagnosis]:
        """What looks wrong so far, most severe first (see :mod:`babysit.watch.diagnoses`)."""
        self.flush()
        return diagnose(self.history, self.thresholds)

    def close(self) -> list[Diagnosis]:
        """Read everything back, write the final diagnoses (and plots), unhook. Idempotent."""
        if self._closed:
            return diagnose(self.history, self.thresholds)
        self._closed = True
        self._unhook()
        found = self.diagnoses()
        self.recorder.write_diagnoses(found)
        if self.run_dir is not None and self.first_layer:
            self._save_first_layer()
        self.recorder.close()  # close the JSON-lines files before the plots read them back
        if self.run_dir is not None and self.plots:
            from .plots import draw_all
            draw_all(self.run_dir, self.history)
        if self.tensorboard is not None:
            self.tensorboard.close()
        return found

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading back in batches ---------------------------------------------------------------

    def flush(self) -> None:
        """Read the pending device numbers back in one transfer and append them to the records."""
        pending = self._pending[:]  # an epoch with no device numbers: ("epochs", None, its record)
        losses, first = self._losses, self.steps_taken - len(self._losses) + 1
        epoch, ends = self.epochs_done + 1 - len(self._epoch_ends), self._epoch_ends + [len(losses)]
        if not pending and not losses:
            return
        self._flushed = time.perf_counter()
        self._losses, self._epoch_ends = [], []
        self._pending.clear()  # the probes hold this list
        on_device = [i for i, loss in enumerate(losses) if type(loss) is not float]
        groups = [tensors for _, tensors, _ in pending if tensors is not None]
        if on_device:
            groups.append([losses[i] for i in on_device])
        values = iter(read_back(groups))
        streams: dict[str, list] = {}
        for stream, tensors, fill in pending:
            streams.setdefault(stream, []).append(fill if tensors is None else fill(next(values)))
        for i, value in zip(on_device, next(values, ())):
            losses[i] = value
        steps, start = [], 0
        for end in ends:  # each pending step in its own epoch
            steps += [{"step": first + i, "epoch": epoch, "loss": losses[i]} for i in range(start, end)]
            start, epoch = end, epoch + 1
        self.recorder.append("steps", steps)
        for stream, records in streams.items():
            self.recorder.append(stream, records)
        if self.tensorboard is not None:
            export(self.tensorboard, self.history, {"steps": len(losses),
                                                    **{stream: len(records) for stream, records in streams.items()}})

    def _save_first_layer(self) -> None:
        """The first layer's weights for their picture (see :func:`first_layer_weights.snapshot`)."""
        input_shape = self.activations.input_shape if self.activations is not None else None
        found = first_layer_weights.snapshot(self.model, input_shape, self._first_weight)
        if found is not None:
            self.recorder.write_bytes("watch/first_layer.npy", found[1])


def make_thresholds(values: dict) -> Thresholds:
    known = set(Thresholds.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"unknown Monitor threshold(s) {', '.join(unknown)}: use any of {', '.join(sorted(known))}")
    return Thresholds(**values)


def watched_parameters(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[list[str], list]:
    """The optimizer's trainable parameters, named as in the model (in the model's order)."""
    in_optimizer = {id(p): p for group in optimizer.param_groups for p in group["params"] if p.requires_grad}
    found = {id(p): (name, p) for name, p in model.named_parameters() if id(p) in in_optimizer}
    for key, p in in_optimizer.items():  # parameters the optimizer has but the model does not name
        found.setdefault(key, (f"param{len(found)}", p))
    if not found:
        raise UserError("the optimizer has no trainable parameters to watch: build it from model.parameters()")
    return [name for name, _ in found.values()], [p for _, p in found.values()]
