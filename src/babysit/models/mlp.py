"""A fully connected network: ``depth`` hidden layers of ``width`` units, then class scores."""

from __future__ import annotations

import math

from torch import nn

from ..errors import UserError
from .layers import Maxout, activation, check_activation


def mlp(input_shape: tuple[int, ...], num_classes: int, *, depth: int = 2, width: int = 128,
        activation_name: str = "relu", dropout: float = 0.0) -> nn.Sequential:
    """Flatten -> [Linear -> activation -> Dropout] x depth -> Linear (scores).

    With ``maxout`` each hidden layer is a :class:`Maxout` of two pieces instead of
    Linear + activation. ``depth=0`` gives a linear classifier.
    """
    check_activation(activation_name)
    if depth < 0 or width < 1:
        raise UserError(f"mlp needs depth >= 0 and width >= 1, got depth={depth}, width={width}")
    if not 0.0 <= dropout < 1.0:
        raise UserError(f"model.dropout must be in [0, 1), not {dropout}")
    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = math.prod(input_shape)
    for _ in range(depth):
        if activation_name == "maxout":
            layers.append(Maxout(fan_in, width))
        else:
            layers += [nn.Linear(fan_in, width), activation(activation_name)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        fan_in = width
    layers.append(nn.Linear(fan_in, num_classes))
    return nn.Sequential(*layers)
