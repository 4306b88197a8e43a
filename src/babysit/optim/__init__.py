"""Parameter updates and schedules, as the notes write them.

- :func:`make_optimizer` (:mod:`.rules`): a ``torch.optim.Optimizer`` by name, one of
  :data:`OPTIMIZERS` — sgd, momentum, nesterov (:mod:`.momentum`), adagrad, rmsprop, adam,
  lbfgs (:mod:`.lbfgs`), newton (:mod:`.newton`).
- :mod:`.schedules`: learning-rate annealing and the momentum ramp, one of :data:`SCHEDULES`
  (the formulas; :mod:`babysit.train.schedules` applies them during training).
- :mod:`.paths`: the rules' paths on 2-D test surfaces, for ``babysit optimizers``.
"""

from __future__ import annotations

import torch

from .lbfgs import LBFGS
from .momentum import Momentum, Nesterov
from .newton import Newton
from .rules import FIRST_ORDER, HYPERPARAMETERS, OPTIMIZERS, make_optimizer
from .schedules import SCHEDULES, check_schedule_config, learning_rate, momentum_ramp


def from_config(optim_config: dict, params) -> torch.optim.Optimizer:
    """The optimizer an ``[optim]`` config section describes; schedule keys are not its business."""
    name = optim_config["name"]
    rule_keys = HYPERPARAMETERS.get(name, {})
    return make_optimizer(name, params, **{k: v for k, v in optim_config.items() if k in rule_keys})


__all__ = ["make_optimizer", "from_config", "OPTIMIZERS", "FIRST_ORDER", "HYPERPARAMETERS",
           "SCHEDULES", "Momentum", "Nesterov", "LBFGS", "Newton", "learning_rate",
           "momentum_ramp", "check_schedule_config"]
