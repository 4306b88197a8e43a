"""Kinks resolved: a coordinate whose centered difference crossed a kink, checked again.

Across a kink the centered difference mixes two slopes and says nothing about the gradient.
But a crossing at step h only means the switch lies within h of the check point, so the
coordinate is checked again where nothing is crossed, the notes' winners deciding (every
max/relu/clamp/pooling op must take the same winners as at x itself):

* **a smaller step** — the centered difference at s = h/10, h/100, ...: once s is below the
  distance to the switch, f(x+s) and f(x-s) sit on the same linear piece as x;
* **a one-sided difference on the side that crosses nothing** — when x is within s of the
  switch on one side only, the other side is smooth. The second-order form

      df/dx ~= (-3 f(x) + 4 f(x + s) - f(x + 2s)) / 2s          (error O(s^2), like centered)

  (mirrored for the left side) keeps the accuracy of the centered difference.

Steps go down only as far as round-off allows: the floor ~ eps |f| / s of
:func:`babysit.check.report.roundoff_floor` must stay below the 1e-4 band of the analytic
value, else the comparison could no longer tell a wrong gradient from noise. For each step,
from the largest down, the centered difference is used when both sides are clean, else the
one-sided one on a clean side. A coordinate nothing resolves (x exactly on a tie, or a switch
closer than round-off allows) is *inconclusive*, with the reason; it is never a failure.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .kinks import KinkRecorder
from .numeric import Coordinate, Objective
from .report import OK, ROUNDOFF_FACTOR, GradRow, relative_error, roundoff_floor, verdict

MAX_DECADES = 6  # smallest step tried: h * 1e-6


@dataclass
class Resolution:
    """How a crossed coordinate was checked again: its numeric value, or why there is none."""

    numeric: float | None
    floor: float = 0.0
    method: str = ""  # "centered h=1e-08", "one-sided right h=1e-05"
    reason: str = ""  # why nothing resolved it


def step_floor(h: float, analytic: float, f_x: float, eps: float) -> float:
    """The smallest step whose round-off floor (one-sided: 4x the centered one) stays below
    half the 1e-4 band of |analytic|; h * 1e-6 at the least."""
    lowest = h * 10.0 ** -MAX_DECADES
    if analytic == 0.0:
        return lowest
    return max(lowest, 4 * ROUNDOFF_FACTOR * eps * max(abs(f_x), 1e-300) / (0.5 * OK * abs(analytic)))


def resolve(objective: Objective, coord: Coordinate, h: float, analytic: float, at_x: KinkRecorder,
            f_x: float, eps: float) -> Resolution:
    """Check a crossed coordinate again with a smaller step or a one-sided difference."""
    leaf = objective.wrt[coord.name]
    lowest = step_floor(h, analytic, f_x, eps)
    crossed_ops: set[str] = set()
    with torch.no_grad():
        original = leaf[coord.index].clone()

        def at(offset: float) -> tuple[float, bool]:
            """f(x + offset e_i), and whether any winner differs from those at x."""
            leaf[coord.index] = original + offset
            with KinkRecorder(reference=at_x) as recorder:
                value = float(objective())
            crossed_ops.update(recorder.crossed_ops)
            return value, recorder.crossed

        try:
            step = h
            while step >= lowest:
                found = _at_step(at, step, f_x, eps)
                if found is not None:
                    return found
                step /= 10.0
        finally:
            leaf[coord.index] = original
    ops = ", ".join(sorted(crossed_ops)) or "a kink op"
    return Resolution(None, reason=f"{ops} switches within {lowest:.0e} of x on both sides (x sits on "
                                   f"the kink or a tie): no step round-off allows crosses nothing")


def _at_step(at, step: float, f_x: float, eps: float) -> Resolution | None:
    f_plus, plus_crossed = at(step)
    f_minus, minus_crossed = at(-step)
    if not plus_crossed and not minus_crossed:
        return Resolution((f_plus - f_minus) / (2 * step), roundoff_floor(f_plus, f_minus, step, eps),
                          f"centered h={step:.0e}")
    for side, f_near, crossed in ((1.0, f_plus, plus_crossed), (-1.0, f_minus, minus_crossed)):
        if crossed:
            continue
        f_far, far_crossed = at(2 * side * step)
        if far_crossed:
            continue
        numeric = side * (-3 * f_x + 4 * f_near - f_far) / (2 * step)
        floor = 4 * ROUNDOFF_FACTOR * eps * max(abs(f_x), abs(f_near), abs(f_far)) / step
        return Resolution(numeric, floor, f"one-sided {'right' if side > 0 else 'left'} h={step:.0e}")
    return None


def resolve_rows(objective: Objective, coords: list[Coordinate], rows: list[GradRow], h: float,
                 at_x: KinkRecorder, f_x: float, eps: dict[str, float]) -> None:
    """Replace each crossed row by its resolution (or mark it inconclusive), in place."""
    for i in [i for i, row in enumerate(rows) if row.kink]:
        coord, row = coords[i], rows[i]
        rows[i] = apply(row, resolve(objective, coord, h, row.analytic, at_x, f_x, eps[coord.name]))


def apply(row: GradRow, found: Resolution) -> GradRow:
    """The row judged on the resolved numeric value; unresolved: the reason, values kept."""
    if found.numeric is None:
        return row._replace(resolved="", note=found.reason, crossed_numeric=row.numeric)
    rel = relative_error(row.analytic, found.numeric)
    return row._replace(numeric=found.numeric, rel_error=rel, verdict=verdict(rel),
                        abs_error=abs(row.analytic - found.numeric), floor=found.floor,
                        resolved=found.method, crossed_numeric=row.numeric)
