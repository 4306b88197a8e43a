"""A small 1-D convnet for vector inputs (N, D), such as MNIST-1D's 40-sample signals.

Each vector is read as a one-channel signal (N, 1, D). MNIST-1D's digits are templates shifted,
scaled and sheared along the signal, so a detector that slides along it (a convolution) and a
pooling that forgets where it fired fit the data where an MLP must learn every position apart:
the paper's table gives 68% to the MLP and 94% to a small CNN.
"""

from __future__ import annotations

import math

from torch import nn

from ..errors import UserError
from .layers import activation, check_activation, classifier

KERNEL = 5  # taps per filter: a template is ~12 samples wide, so two stacked 5-tap layers span it


class Signal(nn.Module):
    """(N, D) -> (N, 1, D): a vector read as a one-channel signal (shapes (N, C, D) pass)."""

    def forward(self, x):
        return x.unsqueeze(1) if x.dim() == 2 else x


def convnet1d(input_shape: tuple[int, ...], num_classes: int, *, depth: int = 3, width: int = 32,
              activation_name: str = "relu", dropout: float = 0.0) -> nn.Sequential:
    """[Conv1d(5 taps, same length) -> BatchNorm -> activation -> MaxPool2] x depth, then the
    mean over the remaining positions (a global average pool) and a linear classifier.

    Every block has `width` channels. Pooling halves the length while it is 2 or more, so a
    signal of length 40 is read at 40, 20, 10, 5 positions. Batch norm keeps each block's
    inputs standardized whatever the learning rate the search tries; the global pool makes
    the class scores the same wherever along the signal the digit lies.
    """
    if len(input_shape) not in (1, 2):
        raise UserError(f"the 1-D convnet needs vector inputs (D,) or signals (C, D), but the data "
                        f"has shape {input_shape}: use model.name = 'convnet' for images")
    check_activation(activation_name)
    if depth < 1 or width < 1:
        raise UserError(f"convnet needs depth >= 1 and width >= 1, got depth={depth}, width={width}")
    channels, length = (1, input_shape[0]) if len(input_shape) == 1 else input_shape
    conv_act = "relu" if activation_name == "maxout" else activation_name
    layers: list[nn.Module] = [Signal()]
    for _ in range(depth):
        layers += [nn.Conv1d(channels, width, KERNEL, padding=KERNEL // 2, bias=False),
                   nn.BatchNorm1d(width), activation(conv_act)]
        if length >= 2:
            layers.append(nn.MaxPool1d(2))
            length = math.floor(length / 2)
        channels = width
    layers += [nn.AdaptiveAvgPool1d(1), nn.Flatten()]
    layers += classifier(width, num_classes, dropout=dropout, activation_name=activation_name)
    return nn.Sequential(*layers)
