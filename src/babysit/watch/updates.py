"""Update:weight ratios, ``||w_after - w_before|| / ||w_after||`` per parameter tensor.

The notes: track the ratio of the update's magnitude to the weights' magnitude for every set
of parameters; a rough heuristic is about 1e-3 — much lower and the learning rate is likely
too low, much higher and it is too high. The update is the change the optimizer step actually
made (not the raw gradient), so this works the same for SGD, momentum, Adam or anything else.

Cost: ahead of the step one ``cat`` copies the weights into a flat snapshot (a
``_foreach_copy_`` loops over the tensors on a CPU); after it ``snapshot -= weights`` and
``_foreach_norm`` over views of the snapshot: three ops a step, and one copy of the weights in
memory. Parameters that cannot share one flat buffer (several devices or dtypes,
non-contiguous) get a snapshot per tensor. The norms stay on the device until the monitor
reads them in batches.
"""

from __future__ import annotations

import torch


class UpdateRatios:
    """Per step: ``||w_before - w_after||`` per tensor; every `norm_every` steps also ``||w||``.

    The weight norm moves by at most the update itself — about 1e-3 of it per step where the
    ratio is healthy — so re-measuring it every 10 steps keeps the ratio within ~1% there while
    saving the most expensive of the per-step ops (on a CPU, ``_foreach_norm`` loops over the
    tensors). Where the ratio is far too high the error grows, but it stays far too high.
    """

    def __init__(self, params: list[torch.Tensor], norm_every: int = 10):
        self.params, self.norm_every = params, norm_every
        self.pending: list = []  # (step, n 0-d update norms, n 0-d weight norms or None)
        self._steps = 0
        self._bind()

    def _bind(self) -> None:
        """Views and buffers for the parameters' current storage (redone if it moves)."""
        params = self.params
        self._storage = [p.data_ptr() for p in params]
        first = params[0]
        self.flat = all(p.device == first.device and p.dtype == first.dtype and p.is_contiguous()
                        for p in params)
        if self.flat:
            # detached views share the storage the optimizer updates in place
            self._views = [p.detach().view(-1) for p in params]
            sizes = [v.numel() for v in self._views]
            self._before = torch.empty(sum(sizes), device=first.device, dtype=first.dtype)
            self.snapshot = list(self._before.split(sizes))
        else:
            self.snapshot = [torch.empty_like(p, memory_format=torch.preserve_format) for p in params]

    def before_step(self) -> None:
        if [p.data_ptr() for p in self.params] != self._storage:  # p.data replaced, model moved
            self._bind()
        if self.flat:
            torch.cat(self._views, out=self._before)
        else:
            with torch.no_grad():
                torch._foreach_copy_(self.snapshot, self.params)

    def after_step(self, step: int) -> None:
        weights_due = self._steps % self.norm_every == 0
        weights = self._views if self.flat else self.params
        with torch.no_grad():
            torch._foreach_sub_(self.snapshot, weights)  # w_before - w_after = -update
            norms = torch._foreach_norm(weights) if weights_due else None
            updates = torch._foreach_norm(self.snapshot)
        # stacking into rows waits for the batch read: one op per batch, not per step
        self.pending.append((step, updates, norms))
        self._steps += 1

    def drain(self) -> list[tuple[int, list, list | None]]:
        taken, self.pending = self.pending, []
        return taken


def ratios(update_norms: list[float], weight_norms: list[float]) -> list[float]:
    """Per-tensor ``update / weight``.

    A zero weight norm (a tensor initialized to zero, like a bias) gives ``inf`` when it
    moved and 0 when it did not.
    """
    return [du / w if w > 0 else (float("inf") if du > 0 else 0.0)
            for du, w in zip(update_norms, weight_norms)]
