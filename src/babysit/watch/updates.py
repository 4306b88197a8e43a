"""Update:weight ratios, ``||w_after - w_before|| / ||w_after||`` per parameter tensor.

The notes: track the ratio of the update's magnitude to the weights' magnitude for every set
of parameters; a rough heuristic is about 1e-3 — much lower and the learning rate is likely
too low, much higher and it is too high. The update is the change the optimizer step actually
made (not the raw gradient), so this works the same for SGD, momentum, Adam or anything else.

Cost: the parameters are read through flat views into two flat buffers, so a step costs
``cat(weights) -> before`` ahead of it, then ``cat(weights) -> after``, ``before -= after`` and
one ``_foreach_norm`` over views of ``before``: four ops, however many tensors the model has
(per-tensor ``_foreach_copy_``/``_foreach_sub_`` loop over the tensors on a CPU). Parameters
that cannot share one flat buffer (several devices or dtypes, non-contiguous) use the
per-tensor ops. The norms stay on the device until the monitor reads them in batches.
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
            self._after = torch.empty_like(self._before)
            self._before_parts = list(self._before.split(sizes))
            self._after_parts = list(self._after.split(sizes))
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
        if self.flat:
            torch.cat(self._views, out=self._after)
            self._before.sub_(self._after)  # w_before - w_after = -update
            weights = torch._foreach_norm(self._after_parts) if weights_due else None
            updates = torch._foreach_norm(self._before_parts)
        else:
            with torch.no_grad():
                torch._foreach_sub_(self.snapshot, self.params)
                weights = torch._foreach_norm(self.params) if weights_due else None
                updates = torch._foreach_norm(self.snapshot)
        # stacking into rows waits for the batch read: one op per batch, not per step
        self.pending.append((step, updates, weights))
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
