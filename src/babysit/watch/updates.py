"""Update:weight ratios, ``||w_after - w_before|| / ||w_after||`` per parameter tensor.

The notes: track the ratio of the update's magnitude to the weights' magnitude for every set
of parameters; a rough heuristic is about 1e-3 — much lower and the learning rate is likely
too low, much higher and it is too high. The update is the change the optimizer step actually
made (not the raw gradient), so this works the same for SGD, momentum, Adam or anything else.

Cost: before the step the weights are copied into a snapshot (one ``_foreach_copy_``), after
it ``snapshot -= weights`` and both norms come from one ``_foreach_norm`` over the two lists.
The norms stay on the device, one small row per step, until the monitor reads them in batches.
"""

from __future__ import annotations

import torch


class UpdateRatios:
    def __init__(self, params: list[torch.Tensor]):
        self.params = params
        self.snapshot = [torch.empty_like(p, memory_format=torch.preserve_format) for p in params]
        self.pending: list = []  # (step, device tensor [2 * n]: update norms, then weight norms)

    def before_step(self) -> None:
        with torch.no_grad():
            torch._foreach_copy_(self.snapshot, self.params)

    def after_step(self, step: int) -> None:
        with torch.no_grad():
            torch._foreach_sub_(self.snapshot, self.params)  # w_before - w_after = -update
            self.pending.append((step, torch.stack(torch._foreach_norm(self.snapshot + self.params))))

    def drain(self) -> list[tuple[int, torch.Tensor]]:
        taken, self.pending = self.pending, []
        return taken


def ratios(norms: list[float], n: int) -> list[float]:
    """Per-tensor ``update / weight`` from a row ``[update norms..., weight norms...]``.

    A zero weight norm (a tensor initialized to zero, like a bias) gives ``inf`` when it
    moved and 0 when it did not.
    """
    out = []
    for du, w in zip(norms[:n], norms[n:]):
        out.append(du / w if w > 0 else (float("inf") if du > 0 else 0.0))
    return out
