"""Annealing the learning rate, and raising the momentum, as :func:`babysit.fit` callbacks.

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
from ..train.callbacks import Callback, TrainState

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
    raise UserError(_unknown(schedule))


def momentum_ramp(mu_start: float, mu_end: float, t_epochs: float, ramp_epochs: float) -> float:
    """``mu_start`` rising linearly to ``mu_end`` over ``ramp_epochs``, then ``mu_end``."""
    if ramp_epochs <= 0:
        return mu_end
    return mu_start + (mu_end - mu_start) * min(1.0, t_epochs / ramp_epochs)


def _unknown(schedule: str) -> str:
    close = difflib.get_close_matches(str(schedule), SCHEDULES, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown schedule {schedule!r}{hint}: set optim.schedule to one of {', '.join(SCHEDULES)}"


class LRSchedule(Callback):
    """Sets every group's ``lr`` from a time-based schedule at the start of each epoch."""

    def __init__(self, schedule: str, *, k: float = 0.1, factor: float = 0.5, step_every: float = 5):
        if schedule not in SCHEDULES:
            raise UserError(_unknown(schedule))
        self.schedule, self.k, self.factor, self.step_every = schedule, k, factor, step_every

    def t(self, state: TrainState) -> float:
        return state.epoch - 1  # epochs completed

    def apply(self, state: TrainState) -> None:
        t = self.t(state)
        for group in state.optimizer.param_groups:
            group["lr"] = learning_rate(self.schedule, group["initial_lr"], t, k=self.k,
                                        factor=self.factor, step_every=self.step_every)

    def on_train_begin(self, state: TrainState) -> None:
        for group in state.optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])

    def on_epoch_begin(self, state: TrainState) -> None:
        self.apply(state)


class IterationLRSchedule(LRSchedule):
    """The same schedules with ``t`` counted in optimizer steps, updated before every step."""

    def t(self, state: TrainState) -> float:
        return state.step

    def on_batch_begin(self, state: TrainState) -> None:
        self.apply(state)


class PlateauSchedule(Callback):
    """Multiply the lr by `factor` when the validation loss has not improved for `patience` epochs.

    Its memory (best loss, epochs without improvement) is kept in the optimizer's first
    parameter group, so it travels with checkpoints. (The checkpoint of an epoch is written
    before this callback judges that epoch, so a resumed run skips one judgment.)
    """

    def __init__(self, factor: float = 0.5, patience: int = 2):
        self.factor, self.patience = factor, patience

    def on_epoch_end(self, state: TrainState) -> None:
        memory = state.optimizer.param_groups[0]
        val = state.logs.get("val_loss", math.nan)
        if val < memory.get("plateau_best", math.inf):
            memory["plateau_best"], memory["plateau_bad_epochs"] = val, 0
            return
        memory["plateau_bad_epochs"] = memory.get("plateau_bad_epochs", 0) + 1
        if memory["plateau_bad_epochs"] >= self.patience:
            for group in state.optimizer.param_groups:
                group["lr"] *= self.factor
            memory["plateau_bad_epochs"] = 0


def momentum_key(optimizer) -> str | None:
    """The param-group key holding the momentum: ``mu`` (ours) or ``momentum`` (torch's SGD)."""
    group = optimizer.param_groups[0]
    return "mu" if "mu" in group else "momentum" if group.get("momentum") else None


class MomentumSchedule(Callback):
    """Ramp momentum from `mu_start` to each group's own mu over the first `mu_epochs` epochs."""

    def __init__(self, mu_start: float = 0.5, mu_epochs: float = 5, per_iteration: bool = False):
        self.mu_start, self.mu_epochs, self.per_iteration = mu_start, mu_epochs, per_iteration
        self.key: str | None = None

    def on_train_begin(self, state: TrainState) -> None:
        self.key = momentum_key(state.optimizer)
        if self.key is None:
            return
        for group in state.optimizer.param_groups:
            group.setdefault("final_mu", group[self.key])

    def on_epoch_begin(self, state: TrainState) -> None:
        if self.key is None:
            return
        t = state.epoch_float if self.per_iteration else state.epoch - 1
        for group in state.optimizer.param_groups:
            group[self.key] = momentum_ramp(self.mu_start, group["final_mu"], t, self.mu_epochs)


class IterationMomentumSchedule(MomentumSchedule):
    def on_batch_begin(self, state: TrainState) -> None:
        self.on_epoch_begin(state)


def check_schedule_config(cfg: dict) -> None:
    """Validate the ``[optim]`` schedule keys against the config's rules: one UserError line."""
    for key in ("schedule", "schedule_unit", "k", "factor", "step_every", "patience", "mu_start", "mu_epochs"):
        if key in cfg:
            check_value(f"optim.{key}", cfg[key])


def schedule_callbacks(cfg: dict) -> list[Callback]:
    """The callbacks an ``[optim]`` config section asks for (none for a constant lr and mu)."""
    check_schedule_config(cfg)
    schedule = cfg.get("schedule", "constant")
    per_iteration = cfg.get("schedule_unit", "epoch") == "iteration"
    callbacks: list[Callback] = []
    if schedule == "plateau":
        callbacks.append(PlateauSchedule(cfg.get("factor", 0.5), cfg.get("patience", 2)))
    elif schedule != "constant":
        cls = IterationLRSchedule if per_iteration else LRSchedule
        callbacks.append(cls(schedule, k=cfg.get("k", 0.1), factor=cfg.get("factor", 0.5),
                             step_every=cfg.get("step_every", 5)))
    if cfg.get("mu_epochs", 0) > 0:
        cls = IterationMomentumSchedule if per_iteration else MomentumSchedule
        callbacks.append(cls(cfg.get("mu_start", 0.5), cfg["mu_epochs"], per_iteration))
    return callbacks
