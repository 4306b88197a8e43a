"""Update:weight ratios, ``||w_after - w_before|| / ||w_after||`` per parameter tensor.

The notes: track the ratio of the update's magnitude to the weights' magnitude for every set
of parameters; a rough heuristic is about 1e-3 — much lower and the learning rate is likely
too low, much higher and it is too high. The update is the change the optimizer step actually
made (not the raw gradient), so this works the same for SGD, momentum, Adam or anything else.

Cost, which every step pays: on a CPU the weights are read through NumPy views of their
storage (no copy), and one call of a small compiled kernel (:mod:`._kernels`) does the
rest in one pass: per tensor ``||before - after||^2`` and ``||after||^2``, while it copies the
weights over the snapshot, which so becomes the "before" of the next step — no hook before
the step. One call matters more than the arithmetic: right after a training step (whose
forward and backward have evicted the caches) every call from Python costs 10-30 us however
little it computes. Where the kernel could not be compiled, NumPy does the same in four calls
(``concatenate``, ``subtract``, ``multiply``, ``add.reduceat``), re-measuring ``||w||`` every
`norm_every` steps. The chained snapshot is the weights as the previous step left them: if
something other than the optimizer edits them between steps (a max-norm constraint, say),
that edit counts as part of the next update — it is part of how far the weights moved. The
norms are host numbers at once (there is no device to wait for).

On an accelerator (or for dtypes NumPy lacks) the same is done with PyTorch ops that stay on
the device: a flat ``cat`` snapshot, ``_foreach_sub_`` and ``_foreach_norm``, read back by
the monitor in batches — no host-device synchronization per step.
"""

from __future__ import annotations

import numpy as np
import torch

try:
    from ._kernels import planned_step_norms
except ImportError:  # not compiled on this machine: NumPy computes the same, in four calls
    planned_step_norms = None

HOST_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}
_data_ptr = torch.Tensor.data_ptr


class UpdateRatios:
    """Per step: ``||w_before - w_after||`` per tensor, and ``||w||`` — every step on a CPU with
    the compiled kernel, else every `norm_every` steps.

    The weight norm moves by at most the update itself — about 1e-3 of it per step where the
    ratio is healthy — so re-measuring it every 10 steps keeps the ratio within ~1% there while
    halving the per-step work. Where the ratio is far too high the error grows, but it stays
    far too high.

    On a CPU (:attr:`on_host`) every step fills one row of a block of host numbers: the
    SQUARED update norms, then the squared weight norms (:func:`host_ratios` turns a block into
    ratios). On a device every step leaves ``(step, update norms, weight norms or None)``:
    lists of 0-d device tensors. :meth:`drain` hands over both.
    """

    def __init__(self, params: list[torch.Tensor], norm_every: int = 10, every_step: bool = True):
        self.params, self.norm_every, self.every_step = params, norm_every, every_step
        self.kernel = planned_step_norms  # None: the NumPy fallback
        self.pending: list = []  # the device path's entries
        self._rows = np.empty((64, 2 * len(params)))  # the host path's: squared norms, a row a step
        self._row_steps: list[int] = []
        self._weight_squares = None  # the fallback's latest, for the rows between re-measures
        self._steps = 0
        self._bind()

    def _bind(self) -> None:
        """Views and buffers for the parameters' current storage (redone if it moves)."""
        params = self.params
        self._storage = [p.data_ptr() for p in params]
        first = params[0]
        same = all(p.device == first.device and p.dtype == first.dtype and p.is_contiguous()
                   for p in params)
        self.on_host = same and first.device.type == "cpu" and first.dtype in HOST_DTYPES
        self.flat = same
        if self.on_host:
            # NumPy views share the storage the optimizer updates in place
            self._views = [p.detach().numpy().reshape(-1) for p in params]  # a list: the kernel's
            sizes = [v.size for v in self._views]
            self._offsets = np.cumsum([0] + sizes[:-1])
            self._before = np.empty(sum(sizes), dtype=HOST_DTYPES[first.dtype])
            self._after = np.empty_like(self._before)
        elif self.flat:
            # detached views share the storage the optimizer updates in place
            self._views = [p.detach().view(-1) for p in params]
            sizes = [v.numel() for v in self._views]
            self._before = torch.empty(sum(sizes), device=first.device, dtype=first.dtype)
            self.snapshot = list(self._before.split(sizes))
        else:
            self.snapshot = [torch.empty_like(p, memory_format=torch.preserve_format) for p in params]
        # whether the host snapshot holds the weights as they are now (then the coming step
        # needs no before_step: its "before" is the last step's "after")
        self.current = False
        if self.on_host and self.kernel is not None:
            self.after_step = self._kernel_step
            self._plan = self._make_plan()
        else:
            self.__dict__.pop("after_step", None)

    def _make_plan(self) -> bytes:
        """The kernel's description of the buffers: addresses and lengths, made once (acquiring
        them on every call cost ~4 us a step). Valid while the arrays live: `_views`, `_before`
        and `_rows` are only ever replaced together with a new plan."""
        plan = [len(self._views), self._before.itemsize, self._before.ctypes.data, self._rows.ctypes.data,
                len(self._rows)]
        for view in self._views:
            plan += [view.ctypes.data, view.size]
        return np.array(plan, dtype=np.int64).tobytes()

    @property
    def waiting(self) -> bool:
        """Whether norms wait for :meth:`drain`."""
        return bool(self.pending or self._row_steps)

    def _moved(self) -> bool:
        # p.data replaced, model moved (map: no comprehension frame on the hot path)
        return list(map(_data_ptr, self.params)) != self._storage

    def before_step(self) -> None:
        if self._moved():
            self._bind()
        if self.on_host:
            if not self.current:
                np.concatenate(self._views, out=self._before)
        elif self.flat:
            torch.cat(self._views, out=self._before)
        else:
            with torch.no_grad():
                torch._foreach_copy_(self.snapshot, self.params)

    def after_step(self, step: int) -> None:
        """Measure the step that just ended (on a CPU with the kernel, :meth:`_bind` puts
        :meth:`_kernel_step` here directly: one call less on the hot path)."""
        if self.on_host and self.kernel is not None:
            self._kernel_step(step)
            return
        if self.on_host and self.current and self._moved() and not self._follow_storage():
            return  # nothing from before this step to compare the new storage with
        weights_due = self._steps % self.norm_every == 0
        self._steps += 1
        if self.on_host:
            self._numpy_step(step, weights_due)
            return
        weights = self._views if self.flat else self.params
        with torch.no_grad():
            torch._foreach_sub_(self.snapshot, weights)  # w_before - w_after = -update
            norms = torch._foreach_norm(weights) if weights_due else None
            updates = torch._foreach_norm(self.snapshot)
        # stacking into rows waits for the batch read: one op per batch, not per step
        self.pending.append((step, updates, norms))

    def _grow_rows(self) -> None:
        """Twice the rows (the batch read is late); the kernel's plan names the new block."""
        self._rows = np.concatenate([self._rows, np.empty_like(self._rows)])
        if self.on_host and self.kernel is not None:
            self._plan = self._make_plan()

    def _kernel_step(self, step: int) -> None:
        """The host path's hot loop: one kernel call into the next row of `_rows`.

        Whether the parameters got new storage is checked only when a tensor did not change
        at all: a view of replaced storage watches memory nobody updates any more, so its
        tensor reads as unchanged (and a frozen tensor costs one check a step). Comparing
        every tensor's storage every step cost ~5 us — a third of this path."""
        row = len(self._row_steps)
        if row == len(self._rows):
            self._grow_rows()
        if self.kernel(self._plan, row):
            self.recheck(step)
            return
        self._row_steps.append(step)
        self.current = self.every_step

    def recheck(self, step: int) -> None:
        """The end of a kernel step that found a tensor unchanged (its row is the next one):
        frozen, or its storage replaced — then measure against the new storage if the
        snapshot fits it, or skip this step."""
        if self._moved():
            if not self._follow_storage():
                return  # nothing from before this step to compare the new storage with
            self.kernel(self._plan, len(self._row_steps))  # _follow_storage made a plan for the new storage
        self._row_steps.append(step)
        self.current = self.every_step

    def compiled_path(self) -> list | None:
        """``[plan, row steps]`` for :class:`~babysit.watch.clock.StepClock`, which then runs
        the plain steps' kernel calls itself; None off the host path or without the kernel.
        Valid until this object makes a new plan (only ever within a step the clock leaves
        to Python, which asks again afterwards)."""
        return [self._plan, self._row_steps] if self.on_host and self.kernel is not None else None

    def _follow_storage(self) -> bool:
        """The parameters got new storage since the chained snapshot (``p.data = ...``,
        ``model.to(...)``): view the new storage. Returns whether this step's update can still
        be measured: yes when the snapshot's values fit the new buffers; no when the shapes or
        dtype changed (the new weights become the next step's "before") or the parameters left
        the host path (its snapshot is then taken before the next step)."""
        snapshot = self._before
        self._bind()
        if not self.on_host:
            return False
        fits = self._before.shape == snapshot.shape and self._before.dtype == snapshot.dtype
        if fits:
            np.copyto(self._before, snapshot)
        else:
            np.concatenate(self._views, out=self._before)
        self.current = True
        return fits

    def _numpy_step(self, step: int, weights_due: bool) -> None:
        """The kernel's NumPy fallback: per-tensor squared ``||before - after||`` (and
        ``||after||`` when due, else the latest) from the flat host buffers, the squares summed
        per tensor segment by one ``add.reduceat``."""
        before, after = self._before, self._after
        np.concatenate(self._views, out=after)
        if weights_due or self._weight_squares is None:
            self._weight_squares = np.add.reduceat(np.square(after), self._offsets)
        np.subtract(before, after, out=before)
        np.multiply(before, before, out=before)
        row, k = len(self._row_steps), len(self._views)
        if row == len(self._rows):
            self._grow_rows()
        self._rows[row, :k] = np.add.reduceat(before, self._offsets)
        self._rows[row, k:] = self._weight_squares
        self._row_steps.append(step)
        if self.every_step:  # the weights now are the next step's "before"
            self._before, self._after = after, before
            self.current = True

    def drain(self) -> tuple[list[int], np.ndarray, list]:
        """What was measured since the last drain: the host path's steps and their rows of
        squares (a copy), and the device path's entries."""
        steps = self._row_steps.copy()  # the list itself stays: the step clock appends to it
        self._row_steps.clear()
        entries, self.pending = self.pending, []
        return steps, self._rows[:len(steps)].copy(), entries


def host_ratios(rows: np.ndarray) -> np.ndarray:
    """Ratios from rows of squares (update squares, then weight squares), in one go."""
    k = rows.shape[1] // 2
    updates, weights = rows[:, :k], rows[:, k:]
    if weights.all():  # no zero weight norm (the usual case): sqrt(du^2 / w^2), two ops
        return np.sqrt(updates / weights)
    return ratios(np.sqrt(updates), np.sqrt(weights))


def ratios(update_norms: np.ndarray, weight_norms: np.ndarray) -> np.ndarray:
    """Elementwise ``update / weight``.

    A zero weight norm (a tensor initialized to zero, like a bias) gives ``inf`` when it
    moved and 0 when it did not; NaN stays NaN.
    """
    update_norms, weight_norms = np.asarray(update_norms, np.float64), np.asarray(weight_norms, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = update_norms / weight_norms
    return np.where(weight_norms == 0, np.where(update_norms > 0, np.inf, np.where(update_norms == 0, 0.0, out)), out)
