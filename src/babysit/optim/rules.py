"""Update rules by name: ``make_optimizer(name, params, **hyperparameters)``.

Each rule takes the hyperparameters below, with the notes' defaults. Where torch already does
exactly what the notes write, its optimizer is used:

- ``sgd``: ``x += -lr*dx`` is ``torch.optim.SGD`` without momentum.
- ``adagrad``: ``cache += dx**2;  x += -lr*dx/(sqrt(cache) + eps)`` is ``torch.optim.Adagrad``
  with ``initial_accumulator_value=0`` and ``lr_decay=0`` (its defaults) and the notes'
  eps 1e-8 (torch's default is 1e-10).
- ``rmsprop``: ``cache = decay*cache + (1-decay)*dx**2;  x += -lr*dx/(sqrt(cache) + eps)`` is
  ``torch.optim.RMSprop(alpha=decay, eps=eps)`` (eps added outside the square root, as in the
  notes; not centered, no momentum).
- ``adam``: ``m = b1*m + (1-b1)*dx;  v = b2*v + (1-b2)*dx**2``, bias-corrected
  ``m/(1-b1**t)`` and ``v/(1-b2**t)``, ``x += -lr*m_hat/(sqrt(v_hat) + eps)`` is
  ``torch.optim.Adam``.
- ``momentum`` and ``nesterov`` are our own (:mod:`.momentum`): torch keeps lr outside the
  velocity. ``lbfgs`` (:mod:`.lbfgs`) and ``newton`` (:mod:`.newton`) are full-batch methods.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable

import torch

from ..config import check_value
from ..errors import UserError
from .lbfgs import LBFGS
from .momentum import Momentum, Nesterov
from .newton import DEFAULT_MAX_PARAMS, Newton

# rule -> {hyperparameter: the notes' default}
HYPERPARAMETERS: dict[str, dict[str, Any]] = {
    "sgd": {"lr": 0.01},
    "momentum": {"lr": 0.01, "mu": 0.9},
    "nesterov": {"lr": 0.01, "mu": 0.9, "nesterov_form": "rewritten"},
    "adagrad": {"lr": 0.01, "eps": 1e-8},
    "rmsprop": {"lr": 0.01, "decay": 0.99, "eps": 1e-8},
    "adam": {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
    "lbfgs": {"lr": 1.0, "max_iter": 20, "history_size": 10, "force_minibatch": False},
    "newton": {"lr": 1.0, "damping": 0.0, "newton_max_params": DEFAULT_MAX_PARAMS},
}
OPTIMIZERS = tuple(HYPERPARAMETERS)
FIRST_ORDER = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
ALL_KEYS = sorted({key for hp in HYPERPARAMETERS.values() for key in hp})

_BUILDERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": lambda p, hp: torch.optim.SGD(p, lr=hp["lr"], foreach=True),
    "momentum": lambda p, hp: Momentum(p, lr=hp["lr"], mu=hp["mu"]),
    "nesterov": lambda p, hp: Nesterov(p, lr=hp["lr"], mu=hp["mu"], form=hp["nesterov_form"]),
    "adagrad": lambda p, hp: torch.optim.Adagrad(p, lr=hp["lr"], eps=hp["eps"],
                                                 initial_accumulator_value=0.0, lr_decay=0.0),
    "rmsprop": lambda p, hp: torch.optim.RMSprop(p, lr=hp["lr"], alpha=hp["decay"], eps=hp["eps"]),
    "adam": lambda p, hp: torch.optim.Adam(p, lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]),
                                           eps=hp["eps"]),
    "lbfgs": lambda p, hp: LBFGS(p, lr=hp["lr"], max_iter=hp["max_iter"],
                                 history_size=hp["history_size"],
                                 force_minibatch=hp["force_minibatch"]),
    "newton": lambda p, hp: Newton(p, lr=hp["lr"], damping=hp["damping"],
                                   max_params=hp["newton_max_params"]),
}


def make_optimizer(name: str, params, **hyperparameters) -> torch.optim.Optimizer:
    """A ``torch.optim.Optimizer`` for update rule `name` (one of :data:`OPTIMIZERS`).

    Hyperparameters not given take the notes' defaults (:data:`HYPERPARAMETERS`); those that
    belong to another rule (``mu`` for ``adam``) are ignored, so one config section can
    serve every rule; names no rule knows are an error.
    """
    if name not in HYPERPARAMETERS:
        close = difflib.get_close_matches(str(name), OPTIMIZERS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UserError(f"unknown update rule {name!r}{hint}: set optim.name to one of "
                        f"{', '.join(OPTIMIZERS)}")
    unknown = sorted(set(hyperparameters) - set(ALL_KEYS))
    if unknown:
        raise UserError(f"unknown update-rule hyperparameter {unknown[0]!r}: the rules take "
                        f"{', '.join(ALL_KEYS)}")
    hp = {key: hyperparameters.get(key, default) for key, default in HYPERPARAMETERS[name].items()}
    check(name, hp)
    params = list(params)
    if name == "lbfgs" and sum(isinstance(p, dict) for p in params) > 1:
        raise UserError("lbfgs takes a single parameter group (torch's L-BFGS has no per-group "
                        "options): pass model.parameters() instead of several groups")
    if not params:
        raise UserError("make_optimizer got no parameters: pass model.parameters()")
    return _BUILDERS[name](params, hp)


def check(name: str, hp: dict) -> None:
    """Validate one rule's hyperparameters against the config's rules: one UserError line each."""
    for key, value in hp.items():
        check_value(f"optim.{key}", value)
