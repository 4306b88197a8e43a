"""A fully connected network: ``depth`` hidden layers of ``width`` units, then class scores."""

from __future__ import annotations

import math

from torch import nn

from ..config import check_value
from ..errors import UserError
from .layers import Maxout, activation, check_activation


def mlp(input_shape: tuple[int, ...], num_classes: int, *, depth: int = 2, width: int = 128,
        activation_name: str = "relu", dropout: float = 0.0) -> nn.Sequential:
    """Flatten -> [Linear -> activation -> Dropout] x depth -> Linear (scores).

    With ``maxout`` each hidden layer is a :class:`Maxout` of two pieces instead of
    Linear + activation. ``depth=0`` gives a linear classifier.
    """
    check_activation(activation_name)
    for key, value in (("model.depth", depth), ("model.width", width), ("model.dropout", dropout)):
        check_value(key, value)
    fan_in = math.prod(input_shape)
    check_size(fan_in, width, depth, num_classes)
    layers: list[nn.Module] = [nn.Flatten()]
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


# Two billion float32 weights are 8 GB, before gradients and the optimizer's state: a size
# beyond it is refused before anything is allocated (the OOM killer gives no message).
MAX_PARAMETERS = 2_000_000_000


def check_size(fan_in: int, width: int, depth: int, num_classes: int) -> None:
    hidden = [width] * depth
    sizes = [fan_in, *hidden, num_classes]
    count = sum(a * b + b for a, b in zip(sizes, sizes[1:]))
    if count > MAX_PARAMETERS:
        raise UserError(f"an mlp of depth {depth} and width {width} on {fan_in} inputs has {count:.3g} "
                        f"weights, more than the {MAX_PARAMETERS:.0e} that fit in memory: lower "
                        "model.width or model.depth")
