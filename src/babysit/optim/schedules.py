"""Annealing the learning rate, and raising the momentum: the formulas and their settings.

The callbacks that apply them during training are in :mod:`babysit.train.schedules` (the loop
uses these formulas; these formulas know nothing of the loop).

Learning-rate schedules (``t`` counts epochs or iterations, as ``schedule_unit`` says)::

    constant      lr = a0
    step          lr = a0 * factor ** floor(t / step_every)     e.g. x0.5 every 5 epochs
    exponential   lr = a0 * exp(-k * t)
    inverse_time  lr = a0 / (1 + k * t)                          "1/t decay"
    plateau       lr *= factor (0.5: halve) when the validation loss has not improved
                  for `patience` epochs

``a0`` is each parameter group's learning rate when training starts (kept in the group as
``initial_lr``, so a resumed run continues the same curve). The momentum schedule ramps
``mu`` linearly from ``mu_start`` to the rule's ``mu`` over the first ``mu_epochs`` epochs
(the notes: e.g. 0.5 -> 0.99).
"""

from __future__ import annotations

import difflib
import math

from ..config import check_value
from ..errors import UserError

SCHEDULES = ("constant", "step", "exponential", "inverse_time", "plateau")
UNITS = ("epoch", "iteration")


def step_decay(a0: float, t: float, factor: float, step_every: float) -> float:
    return a0 * factor ** math.floor(t / step_every)


def exponential_decay(a0: float, t: float, k: float) -> float:
    return a0 * math.exp(-k * t)


def inverse_time_decay(a0: float, t: float, k: float) -> float:
    return a0 / (1.0 + k * t)


def learning_rate(schedule: str, a0: float, t: float, *, k: float = 0.1, factor: float = 0.5,
                  step_every: float = 5) -> float:
    """The learning rate of a time-based `schedule` at time `t` (plateau depends on history)."""
    if schedule in ("constant", "plateau"):
        return a0
    if schedule == "step":
        return step_decay(a0, t, factor, step_every)
    if schedule == "exponential":
        return exponential_decay(a0, t, k)
    if schedule == "inverse_time":
        return inverse_time_decay(a0, t, k)
    raise UserError(unknown_schedule(schedule))


def momentum_ramp(mu_start: float, mu_end: float, t_epochs: float, ramp_epochs: float) -> float:
    """``mu_start`` rising linearly to ``mu_end`` over ``ramp_epochs``, then ``mu_end``."""
    if ramp_epochs <= 0:
        return mu_end
    return mu_start + (mu_end - mu_start) * min(1.0, t_epochs / ramp_epochs)


def unknown_schedule(schedule: str) -> str:
    close = difflib.get_close_matches(str(schedule), SCHEDULES, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown schedule {schedule!r}{hint}: set optim.schedule to one of {', '.join(SCHEDULES)}"


def check_schedule_config(cfg: dict) -> None:
    """Validate the ``[optim]`` schedule keys against the config's rules: one UserError line."""
    for key in ("schedule", "schedule_unit", "k", "factor", "step_every", "patience", "mu_start", "mu_epochs"):
        if key in cfg:
            check_value(f"optim.{key}", cfg[key])

