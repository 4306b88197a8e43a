"""`Monitor`: babysitting the learning process, in any PyTorch training loop, with two lines.

    mon = babysit.Monitor(model, optimizer, run_dir="runs/x")
    ...  optimizer.step(); mon.step(loss)          # every step
    mon.epoch(train_acc=..., val_acc=..., val_loss=...)   # every epoch
    for d in mon.diagnoses(): print(d.code, d.severity, d.message)
    mon.close()

It hooks into the optimizer's step (for the update:weight ratios and the gradient norms) and
into the model's activation modules (for the histograms) by itself. What it measures stays
on the device; it is read back in batches, in one transfer, and appended to the files in
``run_dir/watch/`` (see :mod:`babysit.watch.records`): every `flush_every` steps once
`flush_seconds` have passed since the last batch, so a fast loop batches more steps. A loss
given as a tensor is read back in those batches too, so the monitor adds no host-device
synchronization per step. On a CPU there is no device to keep things on: the compiled
kernels of :mod:`babysit.watch._kernels` (see ``_kernels.c``) take each step's and each
sampled step's numbers as host numbers, in one call each.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import UserError
from ..rundir import RunDir
from . import first_layer as first_layer_weights
from .activations import ActivationProbe
from .clock import NEVER, new_clock
from .diagnoses import Diagnosis, Thresholds, diagnose, note_scanned
from .gradients import GradientProbe
from .readback import read_back
from .records import History, Recorder, ratio_lines
from .switch import SwitchedHook
from .tensorboard import export, tensorboard_writer
from .updates import UpdateRatios, host_ratios, ratios

# Diagnosing and replacing diagnoses.json take about a millisecond (the file replace alone
# ~0.3-1 ms on a busy disk): every epoch, that is several percent of a tiny model's epoch.
DIAGNOSE_SHARE = 0.002  # at epoch ends, diagnose only while that stays under 0.2% of the time
FIRST_DIAGNOSE_COST = 1e-3  # seconds, the guess until the first diagnosis is measured
MAX_BATCHES = 20  # flush_every steps at most this many times over before a batch read is forced


class Monitor:
    """Watches one model and its optimizer while they train.

    Options: `ratio_every` (update:weight ratios every N steps; 0 turns them off),
    `hist_every` (activation and gradient histograms every N steps; 0: off), `bins`,
    `flush_every` and `flush_seconds` (a batch read from the device and write to disk every
    `flush_every` steps once `flush_seconds` have passed since the last one — at most every
    20 * `flush_every` steps; 0 seconds: every `flush_every` steps), `first_layer`
    (save the first layer's weights at :meth:`close`, for their picture), `plots` (draw the
    PNG plots on :meth:`close`), `tensorboard` (also write TensorBoard event files, if the
    ``tensorboard`` package is installed), `thresholds` (a :class:`Thresholds` or a dict of
    its fields), `steps_per_epoch`, `start_step` and `start_epoch` (where a resumed run
    continues: the records up to there are kept, later ones dropped; a fresh monitor clears
    the records an earlier run left in the same ``run_dir/watch``).
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                 run_dir: str | Path | RunDir | None = "runs/x", *, ratio_every: int = 1,
                 hist_every: int = 50, bins: int = 40, flush_every: int = 50, flush_seconds: float = 1.0,
                 first_layer: bool = True, plots: bool = False,
                 tensorboard: bool = False, thresholds: Thresholds | dict | None = None,
                 steps_per_epoch: int | None = None, start_step: int = 0, start_epoch: int = 0):
        check_options(ratio_every=ratio_every, hist_every=hist_every, bins=bins, flush_every=flush_every,
                      flush_seconds=flush_seconds)
        self.model, self.optimizer = model, optimizer
        self.ratio_every, self.hist_every, self.flush_every = ratio_every, hist_every, flush_every
        self.flush_seconds = float(flush_seconds)
        self.plots, self.first_layer = plots, first_layer
        self.thresholds = thresholds if isinstance(thresholds, Thresholds) else make_thresholds(thresholds or {})
        names, self.params = watched_parameters(model, optimizer)
        self._first_weight = first_layer_weights.first_weight(model) if first_layer else None  # (name, tensor)
        self.history = History(meta={
            "params": [{"name": n, "shape": list(p.shape)} for n, p in zip(names, self.params)],
            "layers": [], "bins": bins,
            # named now, so meta.json need not be replaced when the weights are saved at close
            "first_layer": (self._first_weight or (None,))[0],
            "steps_per_epoch": steps_per_epoch, "target_ratio": self.thresholds.target_ratio})
        self.recorder = Recorder(run_dir, self.history)
        self.recorder.start(start_step, start_epoch)
        self.run_dir = self.recorder.run_dir
        self.updates = UpdateRatios(self.params, every_step=ratio_every == 1) if ratio_every else None
        self.gradients = GradientProbe(self.params, bins)
        self.activations = (ActivationProbe(model, bins, on_output=self.gradients.watch_output)
                            if hist_every else None)
        if self.activations is not None:
            self.history.meta["layers"] = [{"name": n, "kind": k} for n, _, k in self.activations.layers]
        self.tensorboard = tensorboard_writer(self.run_dir) if tensorboard else None
        self.epochs_done = start_epoch
        # the step count and the losses not yet read back: (step, epoch, float or 0-d device tensor)
        self._clock = clock = new_clock()
        clock.steps, clock.epoch, clock.flush_every = start_step, start_epoch + 1, flush_every
        clock.on_loss, clock.on_batch, clock.on_step = self._loss_value, self._batch_due, self._step_ended
        self._tensor_losses = False  # whether the clock's losses hold a tensor
        self._epochs: list = []  # (epoch record, {layer: (units ever active: device tensor or int, units)} or None)
        self._weight_squares = None  # the latest ||w||^2 per tensor (an array), read back
        self._closed = False
        self._started = self._flushed = time.perf_counter()
        self._diagnose_seconds = 0.0  # spent diagnosing at epoch ends
        self._diagnose_cost = FIRST_DIAGNOSE_COST  # the latest one's
        self._diagnosed = None  # (the history's size, what diagnose() found then)
        # Loss only: nothing to do inside the optimizer's step, so no hooks (and steps are counted
        # by step() calls instead of optimizer steps).
        self._hooked = self.updates is not None or self.activations is not None
        clock.counts_steps = not self._hooked
        # before the optimizer's step: on only for the steps that need it (see _sync_pre_hook)
        self._pre_hook = SwitchedHook(optimizer.register_step_pre_hook, self._before_step)
        self._handles = [optimizer.register_step_post_hook(clock)] if self._hooked else []
        self.recorder.write_meta()
        if self.history.meta["first_layer"] is not None:
            self.recorder.reserve("watch/first_layer.npy")  # made now: a file create costs ~0.5 ms
        self._arm_if_due()
        self._sync_pre_hook()
        self._sync_clock(start_step)

    @property
    def steps_taken(self) -> int:
        """Optimizer steps so far, over all epochs (without an optimizer hook: step() calls)."""
        return self._clock.steps

    # -- the optimizer's step ------------------------------------------------------------------

    def _ratio_due(self, step: int) -> bool:
        return self.updates is not None and step % self.ratio_every == 0

    def _before_step(self, optimizer, args, kwargs) -> None:
        coming = self.steps_taken + 1
        if self._ratio_due(coming):
            self.updates.before_step()
        if self.activations is not None and self.activations.armed:
            self.gradients.record_norms(coming)

    def _step_ended(self, step: int, unchanged: bool = False) -> None:
        """The end of an optimizer step that the step clock (its post-step hook, which counted
        it) left to Python: `next_special` or later (every step where the update ratios have
        no compiled path), or one where its kernel found a tensor `unchanged` (see
        :mod:`babysit.watch.clock`)."""
        updates = self.updates
        if unchanged:
            updates.recheck(step)
        elif updates is not None and step % self.ratio_every == 0:
            updates.after_step(step)
        if step >= self._next_special or (updates is not None and not updates.current):
            self._after_special_step(step)
        self._sync_clock(step)

    def _after_special_step(self, step: int) -> None:
        """End a sampled step, arm the next one, and put the pre-step hook where it is needed."""
        if self.activations is not None and self.activations.armed:
            self.activations.disarm()
        self._arm_if_due()
        self._sync_pre_hook()

    def _sync_clock(self, step: int) -> None:
        """Tell the step clock the next step whose end needs Python, and the update ratios'
        compiled path for the plain steps before it: without one (every `ratio_every` steps,
        on a device, without the kernels) every step with update ratios needs Python."""
        updates = self.updates
        path = updates.compiled_path() if updates is not None and self.ratio_every == 1 else None
        self._next_special = self._special_after(step)
        self._clock.ratios = path
        self._clock.next_special = step + 1 if updates is not None and path is None else self._next_special

    def _special_after(self, step: int) -> int:
        """The next step whose end needs more than the hot path."""
        if ((self.activations is not None and self.activations.armed)
                or (self.updates is not None and not self.updates.current)):
            return step + 1
        if self.activations is None:
            return NEVER
        return (step // self.hist_every + 1) * self.hist_every  # where the next sample is armed

    def _sync_pre_hook(self) -> None:
        """A hook before the optimizer's step only where the coming step needs one: to snapshot
        the weights (unless the update ratios chain one step's "after" into the next step's
        "before") or to read the gradients on a sampled step. Right after a training step every
        call runs with cold caches, so a hook that does nothing still costs."""
        coming = self.steps_taken + 1
        wanted = ((self._ratio_due(coming) and not self.updates.current)
                  or (self.activations is not None and self.activations.armed))
        if wanted:
            self._pre_hook.on()
        else:
            self._pre_hook.off()

    def _arm_if_due(self) -> None:
        """Sample the coming step's forward and backward passes every `hist_every` steps."""
        if self.activations is not None and self.steps_taken % self.hist_every == 0:
            self.gradients.step = self.steps_taken + 1
            self.activations.arm(self.steps_taken + 1)

    # -- the contract --------------------------------------------------------------------------

    def step(self, loss: torch.Tensor | float) -> None:
        """Record this step's loss (a tensor stays on the device until the next batch read)."""
        self._clock.step(loss)  # with the step and the epoch it is in; _batch_due every flush_every

    def _loss_value(self, loss) -> torch.Tensor | float:
        """What to keep of a loss that is not a float: a tensor, detached, is read back with
        the next batch."""
        if isinstance(loss, torch.Tensor):
            self._tensor_losses = True
            return loss.detach()
        return float(loss)

    def _batch_due(self) -> None:
        if self._flush_due(self._clock.pending):
            self.flush()

    def _flush_due(self, pending: int) -> bool:
        """Every `flush_every` steps: a batch read, unless one was made less than
        `flush_seconds` ago (and fewer than 20 batches wait). Writing costs per batch (a read
        from the device, a write and a flush per file), so a fast loop — 50 steps in 50 ms —
        batches more of them; readers still see records within about a second."""
        return (pending >= MAX_BATCHES * self.flush_every
                or time.perf_counter() - self._flushed >= self.flush_seconds)

    def epoch(self, train_acc: float | None = None, val_acc: float | None = None,
              val_loss: float | None = None, **metrics) -> None:
        """Close one epoch: record its metrics and the window's unit statistics, and diagnose.

        The epoch's record waits, like the steps', for the next batch read (every `flush_every`
        steps, or a diagnosis): its dead-unit fractions are device tensors until then.
        """
        self.epochs_done += 1
        self._clock.epoch = self.epochs_done + 1
        record = {"epoch": self.epochs_done, "step": self.steps_taken}
        for key, value in {"train_acc": train_acc, "val_acc": val_acc, "val_loss": val_loss, **metrics}.items():
            if value is not None:
                record[key] = _number(value)
        dead = self.activations.dead_fractions() if self.activations is not None else None
        self._epochs.append((record, dead))
        if self._diagnosis_due():
            started = time.perf_counter()
            self.flush()
            self.recorder.write_diagnoses(self._diagnose())
            self.recorder.write_meta()  # a no-op unless it changed
            self._diagnose_cost = time.perf_counter() - started
            self._diagnose_seconds += self._diagnose_cost

    def _diagnosis_due(self) -> bool:
        """Rewrite diagnoses.json at this epoch's end unless that would take the time spent
        diagnosing over DIAGNOSE_SHARE of the time since the monitor started. Epochs longer
        than ~0.5 s get it every epoch; shorter ones every few epochs (still within a second
        or two, and the records themselves are on disk every flush). close() always writes it, and
        diagnoses() is always up to date."""
        elapsed = time.perf_counter() - self._started
        return self._diagnose_seconds + self._diagnose_cost <= DIAGNOSE_SHARE * elapsed

    def diagnoses(self) -> list[Diagnosis]:
        """What looks wrong so far, most severe first (see :mod:`babysit.watch.diagnoses`)."""
        self.flush()
        return self._diagnose()

    def _diagnose(self) -> list[Diagnosis]:
        """:func:`diagnose` over the history — reused while no record was added since (the
        records only grow), so close() after a last epoch's diagnosis does not redo it."""
        h = self.history
        state = tuple(map(len, (h.steps, h.ratios, h.grad_norms, h.activations, h.gradients, h.epochs)))
        if self._diagnosed is None or self._diagnosed[0] != state:
            self._diagnosed = (state, diagnose(h, self.thresholds))
        return list(self._diagnosed[1])

    def close(self) -> list[Diagnosis]:
        """Read everything back, write the final diagnoses (and plots), unhook. Idempotent."""
        if self._closed:
            return self._diagnose()
        self._closed = True
        for handle in self._handles:
            handle.remove()
        self._pre_hook.off()
        if self.activations is not None:
            self.activations.disarm()
        found = self.diagnoses()
        self.recorder.write_diagnoses(found)
        if self.run_dir is not None and self.first_layer:
            self._save_first_layer()
        self.recorder.write_meta()  # a no-op unless it changed
        self.recorder.close()  # close the JSON-lines files before the plots read them back
        if self.run_dir is not None:
            if self.plots:
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
        if not self._pending():
            return
        self._flushed = time.perf_counter()
        losses, lines = self._clock.take()  # the steps' records, and their JSON lines if all floats
        epochs, self._epochs = self._epochs, []
        steps, squares, updates = self.updates.drain() if self.updates is not None else ([], None, [])
        layer_grads, norms = self.gradients.drain()
        acts = self.activations.drain() if self.activations is not None else []
        tensor_losses, self._tensor_losses = self._tensor_losses, False
        tensors = [r["loss"] for r in losses if isinstance(r["loss"], torch.Tensor)] if tensor_losses else []
        for _, update_norms, weight_norms in updates:
            tensors += [*update_norms, *(weight_norms or ())]
        tensors += [t for _, row in norms if not isinstance(row, np.ndarray) for t in row]
        for _, _, _, stats in acts:
            tensors += _tensors(stats)
        for _, _, stats in layer_grads:
            tensors += _tensors(stats)
        for _, dead in epochs:
            tensors += [active for active, _ in dead.values() if isinstance(active, torch.Tensor)] if dead else []
        values = iter(read_back(tensors))
        if tensor_losses:  # the read-back values in the tensors' places
            for record in losses:
                if isinstance(record["loss"], torch.Tensor):
                    record["loss"] = next(values)
        self.recorder.append("steps", losses, lines)
        rows, text, first_nan = self._ratio_rows(steps, squares, updates, values)
        self.recorder.append("ratios", rows, text)
        if steps and not updates:  # the host path's rows only: the nonfinite rule need not read them back
            note_scanned(self.history, "weights_step", self.history.ratios, len(rows), first_nan)
        sizes = self.gradients.sizes
        self.recorder.append("grad_norms", [
            {"step": s, "rms": (np.sqrt(row) / sizes).tolist() if isinstance(row, np.ndarray)
             else [next(values) / n for n in sizes]} for s, row in norms])
        self.recorder.append("activations", [
            {"step": s, "layer": name, "kind": kind, **_values(stats, values)}
            for s, name, kind, stats in acts])
        self.recorder.append("gradients", [
            {"step": s, "layer": name, **_values(stats, values)} for s, name, stats in layer_grads])
        self._append_epochs(epochs, values)
        if self.tensorboard is not None:
            export(self.tensorboard, self.history, len(losses), len(steps) + len(updates), len(acts))

    def _ratio_rows(self, steps: list[int], squares: np.ndarray, updates: list,
                    values) -> tuple[list[dict], str | None, int | None]:
        """The ratios records: the host path's rows of squares in one vectorized go (and their
        lines formatted by the kernel), the device path's entries from the values read back
        (in step order, should a cast midway have left both); and the step of the host rows'
        first NaN ratio (None: none)."""
        rows, text, first_nan = [], None, None
        if steps:
            found = host_ratios(squares)
            nan_rows = np.isnan(found).any(axis=1)
            first_nan = steps[int(nan_rows.argmax())] if nan_rows.any() else None
            rows = [{"step": s, "ratios": r} for s, r in zip(steps, found.tolist())]
            text = ratio_lines(steps, found) if ratio_lines is not None and not updates else None
            self._weight_squares = squares[-1, len(self.params):]
        for step, update_norms, weight_norms in updates:
            du = [next(values) for _ in update_norms]
            if weight_norms is not None:
                self._weight_squares = np.square([next(values) for _ in weight_norms])
            rows.append({"step": step, "ratios": ratios(du, np.sqrt(self._weight_squares)).tolist()})
        if steps and updates:
            rows.sort(key=lambda row: row["step"])
        return rows, text, first_nan

    def _pending(self) -> bool:
        return bool(self._clock.pending or self._epochs or (self.updates is not None and self.updates.waiting)
                    or self.gradients.pending_layers or self.gradients.pending_norms
                    or (self.activations is not None and self.activations.pending))

    def _append_epochs(self, epochs: list, values) -> None:
        """The epochs' records, with their windows' unit statistics: the share of ReLU units
        never active (read back now) and the mean saturated share of the sampled steps."""
        since = self.history.epochs[-1]["step"] if self.history.epochs else -1
        rows = []
        for record, dead in epochs:
            if dead is not None:
                record["dead"] = {
                    name: 1.0 - (next(values) if isinstance(active, torch.Tensor) else active) / units
                    for name, (active, units) in dead.items()}
                record["saturated"] = self._saturated(since, record["step"])
            rows.append(record)
            since = record["step"]
        self.recorder.append("epochs", rows)
        if self.tensorboard is not None:
            for record in rows:
                for key, value in record.items():
                    if isinstance(value, (int, float)) and key not in ("epoch", "step"):
                        self.tensorboard.add_scalar(f"epoch/{key}", value, record["epoch"])

    def _saturated(self, since: int, until: int) -> dict[str, float]:
        """Mean saturated share per layer over the sampled steps in ``(since, until]``."""
        records = self.history.activations
        start = len(records)
        while start > 0 and records[start - 1]["step"] > since:  # in step order: the window ends them
            start -= 1
        saturated: dict[str, list[float]] = {}
        for r in records[start:]:
            if r["step"] <= until and "saturated" in r:
                saturated.setdefault(r["layer"], []).append(r["saturated"])
        return {k: sum(v) / len(v) for k, v in saturated.items()}

    def _save_first_layer(self) -> None:
        """The first layer's weights for their picture: shaped like the inputs when a fully
        connected layer looks at images (the input shape the sampled steps saw)."""
        input_shape = self.activations.input_shape if self.activations is not None else None
        found = first_layer_weights.snapshot(self.model, input_shape, self._first_weight)
        if found is not None:
            self.recorder.write_bytes("watch/first_layer.npy", found[1])


def check_options(where: str = "Monitor option ", **options) -> None:
    """Raise a UserError naming the first of the monitor's numeric options out of its range."""
    for key, value in options.items():
        if key == "flush_seconds":
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
                raise UserError(f"{where}{key} must be a number of seconds >= 0, not {value!r}")
            continue
        least = 1 if key in ("bins", "flush_every") else 0
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise UserError(f"{where}{key} must be a whole number >= {least}, not {value!r}")


def make_thresholds(values: dict) -> Thresholds:
    known = set(Thresholds.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"unknown Monitor threshold(s) {', '.join(unknown)}: use any of {', '.join(sorted(known))}")
    return Thresholds(**values)


def watched_parameters(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[list[str], list]:
    """The optimizer's trainable parameters, named as in the model (in the model's order)."""
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"] if p.requires_grad}
    names, params, seen = [], [], set()
    for name, p in model.named_parameters():
        if id(p) in in_optimizer and id(p) not in seen:
            names.append(name)
            params.append(p)
            seen.add(id(p))
    for group in optimizer.param_groups:  # parameters the optimizer has but the model does not name
        for p in group["params"]:
            if p.requires_grad and id(p) not in seen:
                names.append(f"param{len(names)}")
                params.append(p)
                seen.add(id(p))
    if not params:
        raise UserError("the optimizer has no trainable parameters to watch: build it from model.parameters()")
    return names, params


def _tensors(stats: dict) -> list[torch.Tensor]:
    """The device tensors in a probe's stats, in order (a ``(tensor, n)`` pair counts its tensor)."""
    out = []
    for v in stats.values():
        if isinstance(v, tuple):
            v = v[0]
        if isinstance(v, torch.Tensor):
            out.append(v)
    return out


def _values(stats: dict, values) -> dict:
    """`stats` with each tensor replaced by its value read back, ``(tensor, n)`` by value / n,
    an array (host numbers) by its list."""
    out = {}
    for k, v in stats.items():
        if isinstance(v, tuple):
            out[k] = next(values) / v[1] if isinstance(v[0], torch.Tensor) else v[0] / v[1]
        elif isinstance(v, torch.Tensor):
            out[k] = next(values)
        else:
            out[k] = v.tolist() if isinstance(v, np.ndarray) else v
    return out


def _number(value) -> float:
    if isinstance(value, torch.Tensor):
        value = value.item()
    return float(value)
