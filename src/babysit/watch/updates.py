"""Update:weight ratios, ``||w_after - w_before|| / ||w_after||`` per parameter tensor.

The notes: track the ratio of the update's magnitude to the weights' magnitude for every set
of parameters; a rough heuristic is about 1e-3 — much lower and the learning rate is likely
too low, much higher and it is too high. The update is the change the optimizer step actually
made (not the raw gradient), so this works the same for SGD, momentum, Adam or anything else.

The notes ask for the ratio as a trend, not for every step's: it is measured on sampled
steps only (the monitor's `ratio_every`). On such a step a hook before the optimizer's step
copies the weights, one after it takes ``w_before - w_after`` and both norms with
``torch._foreach_*`` ops. They stay on the device until the monitor reads a batch back.
"""

from __future__ import annotations

import math

import torch


class UpdateRatios:
    """The update and weight norms of the sampled steps: :meth:`before_step` and
    :meth:`after_step` around one optimizer step leave in `pending` (the monitor's list of
    ``(stream, device tensors, fill)``, see :func:`~babysit.watch.records.pack`) the update
    norms and then the weight norms (:func:`ratios` makes them the record)."""

    def __init__(self, params: list[torch.Tensor], pending: list):
        self.params, self.pending = params, pending
        self._before: list[torch.Tensor] | None = None

    def before_step(self) -> None:
        # a fresh copy each time: the parameters may have been cast or moved since the last one
        self._before = [p.detach().clone() for p in self.params]

    def after_step(self, step: int) -> None:
        if self._before is None:  # no copy from before this step
            return
        before, self._before = self._before, None
        with torch.no_grad():
            torch._foreach_sub_(before, self.params)  # w_before - w_after = -update
            norms = torch._foreach_norm(before + self.params)  # update norms, then weight norms
            self.pending.append(("ratios", norms, lambda values: {"step": step, "ratios": ratios(values)}))



def ratios(norms: list[float]) -> list[float]:
    """``update / weight`` per tensor, from the update norms followed by the weight norms. A
    zero weight norm (a tensor initialized to zero, like a bias) gives ``inf`` when it moved
    and 0 when it did not; NaN stays NaN. Plain floats: NumPy's set-up costs more here."""
    return [du / w if w != 0 else (math.inf if du > 0 else 0.0 if du == 0 else math.nan)
            for du, w in zip(norms[:len(norms) // 2], norms[len(norms) // 2:])]
