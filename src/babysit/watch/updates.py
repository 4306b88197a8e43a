"""Update:weight ratios, ``||w_after - w_before|| / ||w_after||`` per parameter tensor.

The notes: track the ratio of the update's magnitude to the weights' magnitude for every set
of parameters; a rough heuristic is about 1e-3 — much lower and the learning rate is likely
too low, much higher and it is too high. The update is the change the optimizer step actually
made (not the raw gradient), so this works the same for SGD, momentum, Adam or anything else.

Cost, which every step pays: on a CPU the weights are read through NumPy views of their
storage (no copy). After the step: one ``concatenate`` into a flat buffer, ``before - after``
squared in place, and one ``add.reduceat`` for the sum of squares of every tensor's segment —
a few calls, because right after a training step (whose forward and backward have evicted
the caches) each call costs 10-30 us however little it computes, and a PyTorch op on a CPU
tensor more than a NumPy one. When the ratio is taken every step, the buffer written after
one step is the snapshot "before" the next (the two swap roles): one copy of the weights per
step and no hook before the step. That snapshot is the weights as the previous step left
them: if something other than the optimizer edits them between steps (a max-norm
constraint, say), that edit counts as part of the next update — it is part of how far the
weights moved. The norms are host numbers at once (there is no device to wait for).

On an accelerator (or for dtypes NumPy lacks) the same is done with PyTorch ops that stay on
the device: a flat ``cat`` snapshot, ``_foreach_sub_`` and ``_foreach_norm``, read back by
the monitor in batches — no host-device synchronization per step.
"""

from __future__ import annotations

import numpy as np
import torch

HOST_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}
_data_ptr = torch.Tensor.data_ptr


class UpdateRatios:
    """Per step: ``||w_before - w_after||`` per tensor; every `norm_every` steps also ``||w||``.

    The weight norm moves by at most the update itself — about 1e-3 of it per step where the
    ratio is healthy — so re-measuring it every 10 steps keeps the ratio within ~1% there while
    halving the per-step work. Where the ratio is far too high the error grows, but it stays
    far too high.

    `pending` holds ``(step, update norms, weight norms or None)``: lists of 0-d device
    tensors, or on a CPU (:attr:`on_host`) arrays of host numbers holding the SQUARED norms
    (:func:`host_norms` takes the roots when they are read).
    """

    def __init__(self, params: list[torch.Tensor], norm_every: int = 10, every_step: bool = True):
        self.params, self.norm_every, self.every_step = params, norm_every, every_step
        self.pending: list = []
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
            self._views = [p.detach().numpy().reshape(-1) for p in params]
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
        if self.on_host and self.current and self._moved() and not self._follow_storage():
            return  # nothing from before this step to compare the new storage with
        weights_due = self._steps % self.norm_every == 0
        if self.on_host:
            updates, norms = self._host_norms(weights_due)
        else:
            weights = self._views if self.flat else self.params
            with torch.no_grad():
                torch._foreach_sub_(self.snapshot, weights)  # w_before - w_after = -update
                norms = torch._foreach_norm(weights) if weights_due else None
                updates = torch._foreach_norm(self.snapshot)
            # stacking into rows waits for the batch read: one op per batch, not per step
        self.pending.append((step, updates, norms))
        self._steps += 1

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

    def _host_norms(self, weights_due: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-tensor squared ``||before - after||`` (and ``||after||``) from the flat host
        buffers: the squares summed per tensor segment by one ``add.reduceat`` (few calls: each
        is slow right after a training step, which has evicted the caches); the square roots
        wait for the read."""
        before, after = self._before, self._after
        np.concatenate(self._views, out=after)
        norms = np.add.reduceat(np.square(after), self._offsets) if weights_due else None
        np.subtract(before, after, out=before)
        np.multiply(before, before, out=before)
        updates = np.add.reduceat(before, self._offsets)
        if self.every_step:  # the weights now are the next step's "before"
            self._before, self._after = after, before
            self.current = True
        return updates, norms

    def drain(self) -> list[tuple[int, list, list | None]]:
        taken, self.pending = self.pending, []
        return taken


def host_norms(squared: np.ndarray) -> list[float]:
    return np.sqrt(squared.astype(np.float64)).tolist()


def ratios(update_norms: list[float], weight_norms: list[float]) -> list[float]:
    """Per-tensor ``update / weight``.

    A zero weight norm (a tensor initialized to zero, like a bias) gives ``inf`` when it
    moved and 0 when it did not.
    """
    return [du / w if w > 0 else (float("inf") if du > 0 else 0.0)
            for du, w in zip(update_norms, weight_norms)]
