"""Rows where analytic and numeric are both exactly 0: agreement that proves nothing.

A row 0 = 0 cannot catch a wrong formula, so such rows are counted apart and each says why it
is zero: the regularization does not involve the tensor (biases are usually left out of it),
a unit is dead on the checked datapoints (no gradient reaches its output: a ReLU that never
fires, a max that never wins), or an input is 0 there. Where every checked coordinate of a
tensor is zero, other coordinates are picked among the entries whose analytic gradient is
not zero; where there are none, the tensor is reported as not exercised.
"""

from __future__ import annotations

import torch

from .numeric import Coordinate, flat_index, group_by_tensor
from .report import GradRow


def exercising_coordinates(coords: list[Coordinate], analytic: dict[str, torch.Tensor], per_tensor: int,
                           seed: int = 0) -> list[Coordinate]:
    """For each tensor whose chosen coordinates all have a zero analytic gradient: up to
    `per_tensor` more, drawn among its entries where the gradient is not zero."""
    generator = torch.Generator().manual_seed(seed)
    extra = []
    for name, positions in group_by_tensor(coords).items():
        grad = analytic[name].reshape(-1)
        if bool((grad[flat_index(coords, positions, grad.device)] != 0).any()):
            continue
        nonzero = torch.nonzero(grad != 0).reshape(-1).cpu()
        if len(nonzero) == 0:
            continue
        pick = nonzero[torch.randperm(len(nonzero), generator=generator)[:per_tensor]].sort().values
        shape = tuple(analytic[name].shape)
        extra += [Coordinate(name, int(f), tuple(int(i) for i in _unravel(int(f), shape))) for f in pick]
    return extra


def explain_zero_rows(rows: list[GradRow], coords: list[Coordinate], analytic: dict[str, torch.Tensor],
                      prefix: str) -> dict[str, str]:
    """Note on each exactly-zero row why it is zero (rows replaced in place); return the
    tensors not exercised at all (row name -> the plain reason)."""
    idle = {}
    for name, positions in group_by_tensor(coords).items():
        zero = [i for i in positions if rows[i].analytic == 0.0 and rows[i].numeric == 0.0]
        if not zero:
            continue
        reasons = ZeroReasons(analytic[name], prefix)
        for i in zero:  # note= by slicing: _replace is slow by the thousand (dead units)
            rows[i] = GradRow._make((*rows[i][:_NOTE], reasons.why(coords[i].index), *rows[i][_NOTE + 1:]))
        if len(zero) == len(positions) and not reasons.exercised:
            grad = analytic[name]
            idle[prefix + name] = (f"all {grad.numel()} entries have a gradient of exactly 0 here "
                                   f"({reasons.why(None)}): the check says nothing about it"
                                   + ("" if prefix else "; check other datapoints (num_points, a burn-in)"))
    return idle


_NOTE = GradRow._fields.index("note")


class ZeroReasons:
    """Why an entry of one tensor's gradient is exactly 0, from the whole analytic gradient:
    a unit (row of a weight matrix, entry of a bias) no gradient reaches is dead on these
    datapoints; a column of zeros is an input that is 0 on all of them."""

    DEAD = "dead unit (no gradient reaches its output on these datapoints)"

    def __init__(self, grad: torch.Tensor, prefix: str):
        self.prefix, self.dim = prefix, grad.dim()
        nonzero = grad != 0
        self.exercised = bool(nonzero.any())
        self.dead_units = self.zero_inputs = frozenset()
        if self.dim == 2:
            self.dead_units = frozenset(torch.nonzero(~nonzero.any(1)).reshape(-1).tolist())
            self.zero_inputs = frozenset(torch.nonzero(~nonzero.any(0)).reshape(-1).tolist())

    def why(self, index: tuple[int, ...] | None) -> str:
        if self.prefix:
            return "not in the regularization (biases are usually left out)"
        if index is None or not self.exercised:
            return "no gradient reaches the tensor on these datapoints"
        if self.dim == 2 and index[0] in self.dead_units:
            return self.DEAD
        if self.dim == 2 and index[1] in self.zero_inputs:
            return "input is 0 on these datapoints"
        return self.DEAD if self.dim == 1 else "zero here on these datapoints"


def _unravel(flat: int, shape: tuple[int, ...]) -> list[int]:
    index = []
    for size in reversed(shape):
        index.append(flat % size)
        flat //= size
    return index[::-1]
