"""Update rules by name.

``make_optimizer(name, params, **hyperparameters)`` returns a ``torch.optim.Optimizer``.
"""

from __future__ import annotations

import torch

from ..errors import UserError

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")


def make_optimizer(name: str, params, lr: float = 0.01, mu: float = 0.9, **hyperparameters) -> torch.optim.Optimizer:
    if lr < 0:
        raise UserError(f"optim.lr must be >= 0, not {lr}")
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name in ("momentum", "nesterov"):
        return torch.optim.SGD(params, lr=lr, momentum=mu, nesterov=name == "nesterov")
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, eps=1e-8)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=0.99, eps=1e-8)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-8)
    raise UserError(f"unknown update rule {name!r}: use one of {', '.join(OPTIMIZERS)}")


def from_config(optim_config: dict, params) -> torch.optim.Optimizer:
    return make_optimizer(optim_config["name"], params,
                          **{k: v for k, v in optim_config.items() if k != "name"})


__all__ = ["make_optimizer", "from_config", "OPTIMIZERS"]
