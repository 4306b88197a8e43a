"""Update:weight ratios, ``||w_after - w_before|| / ||w_after||`` per parameter tensor.

The notes: track the ratio of the update's magnitude to the weights' magnitude for every set
of parameters; a rough heuristic is about 1e-3 — much lower and the learning rate is likely
too low, much higher and it is too high. The update is the change the optimizer step actually
made (not the raw gradient), so this works the same for SGD, momentum, Adam or anything else.

Cost: before the step the weights are copied into a snapshot (one ``_foreach_copy_``), after
it ``snapshot -= weights`` and ``_foreach_norm(snapshot)``: three ops per step. The norms stay
on the device until the monitor reads them in batches.
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
        self.snapshot = [torch.empty_like(p, memory_format=torch.preserve_format) for p in params]
        self.pending: list = []  # (step, n 0-d update norms, n 0-d weight norms or None)
        self._steps = 0

    def before_step(self) -> None:
        with torch.no_grad():
            torch._foreach_copy_(self.snapshot, self.params)

    def after_step(self, step: int) -> None:
        with torch.no_grad():
            torch._foreach_sub_(self.snapshot, self.params)  # w_before - w_after = -update
            weights = torch._foreach_norm(self.params) if self._steps % self.norm_every == 0 else None
            # stacking into rows waits for the batch read: one op per batch, not per step
            self.pending.append((step, torch._foreach_norm(self.snapshot), weights))
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
