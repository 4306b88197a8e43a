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

from .numeric import Coordinate
from .report import GradRow


def exercising_coordinates(coords: list[Coordinate], analytic: dict[str, torch.Tensor], per_tensor: int,
                           seed: int = 0) -> list[Coordinate]:
    """For each tensor whose chosen coordinates all have a zero analytic gradient: up to
    `per_tensor` more, drawn among its entries where the gradient is not zero."""
    chosen: dict[str, list[int]] = {}
    for c in coords:
        chosen.setdefault(c.name, []).append(c.flat)
    generator = torch.Generator().manual_seed(seed)
    extra = []
    for name, flats in chosen.items():
        grad = analytic[name].reshape(-1)
        if bool((grad[torch.tensor(flats, device=grad.device)] != 0).any()):
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
    """Note on each exactly-zero row why it is zero; return the tensors not exercised at all
    (row name -> the plain reason)."""
    all_zero: dict[str, bool] = {}
    for row, coord in zip(rows, coords):
        all_zero[row.name] = all_zero.get(row.name, True) and row.zero
        if row.zero:
            row.note = _why_zero(coord, analytic[coord.name], prefix)
    idle = {}
    for name, zero in all_zero.items():
        grad = analytic[name[len(prefix):]]
        if zero and not bool((grad != 0).any()):
            idle[name] = (f"all {grad.numel()} entries have a gradient of exactly 0 here "
                          f"({_why_zero(None, grad, prefix)}): the check says nothing about it"
                          + ("" if prefix else "; check other datapoints (num_points, a burn-in)"))
    return idle


def _why_zero(coord: Coordinate | None, grad: torch.Tensor, prefix: str) -> str:
    if prefix:
        return "not in the regularization (biases are usually left out)"
    if coord is None or not bool((grad != 0).any()):
        return "no gradient reaches the tensor on these datapoints"
    if grad.dim() == 2:
        unit, column = coord.index
        if not bool((grad[unit] != 0).any()):
            return "dead unit (no gradient reaches its output on these datapoints)"
        if not bool((grad[:, column] != 0).any()):
            return "input is 0 on these datapoints"
    if grad.dim() == 1:
        return "dead unit (no gradient reaches its output on these datapoints)"
    return "zero here on these datapoints"


def _unravel(flat: int, shape: tuple[int, ...]) -> list[int]:
    index = []
    for size in reversed(shape):
        index.append(flat % size)
        flat //= size
    return index[::-1]
