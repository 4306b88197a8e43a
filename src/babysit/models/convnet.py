"""A small convnet for image inputs (N, C, H, W)."""

from __future__ import annotations

from torch import nn

from ..errors import UserError
from .layers import activation, check_activation, classifier


def convnet(input_shape: tuple[int, ...], num_classes: int, *, depth: int = 2, width: int = 16,
            activation_name: str = "relu", dropout: float = 0.0) -> nn.Sequential:
    """[Conv3x3 -> activation -> MaxPool2] x depth, channels doubling, then a linear classifier.

    Pooling is skipped once the feature map is smaller than 2x2, so the same net fits 8x8
    digits and 32x32 CIFAR-10. Maxout is not a convolutional activation here; it falls back
    to ReLU in the conv blocks and is used in a hidden layer before the classifier.
    """
    if len(input_shape) != 3:
        raise UserError(f"the 2-D convnet needs image inputs (C, H, W), but the data has shape "
                        f"{input_shape}: model.name = 'convnet' builds the 1-D one for vectors")
    check_activation(activation_name)
    if depth < 1 or width < 1:
        raise UserError(f"convnet needs depth >= 1 and width >= 1, got depth={depth}, width={width}")
    channels, height, width_px = input_shape
    conv_act = "relu" if activation_name == "maxout" else activation_name
    layers: list[nn.Module] = []
    out = width
    for _ in range(depth):
        layers += [nn.Conv2d(channels, out, kernel_size=3, padding=1), activation(conv_act)]
        if min(height, width_px) >= 2:
            layers.append(nn.MaxPool2d(2))
            height, width_px = height // 2, width_px // 2
        channels, out = out, out * 2
    layers.append(nn.Flatten())
    features = channels * height * width_px
    layers += classifier(features, num_classes, dropout=dropout, activation_name=activation_name)
    return nn.Sequential(*layers)
