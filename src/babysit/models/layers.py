"""Activations by name, and maxout (Goodfellow et al. 2013), which torch lacks."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import UserError

ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu", "maxout")


class Maxout(nn.Module):
    """max over `pieces` linear maps: ``y_j = max_k (W_k x + b_k)_j`` — a kink wherever two pieces tie."""

    def __init__(self, in_features: int, out_features: int, pieces: int = 2):
        super().__init__()
        self.out_features, self.pieces = out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.linear(x).view(*x.shape[:-1], self.out_features, self.pieces)
        return z.amax(dim=-1)


def activation(name: str) -> nn.Module:
    """The module for an elementwise activation name (maxout is a layer; see :class:`Maxout`)."""
    table = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "leaky_relu": nn.LeakyReLU}
    if name not in table:
        raise UserError(f"unknown activation {name!r}: use one of {', '.join(ACTIVATIONS)}")
    return table[name]()


def check_activation(name: str) -> None:
    if name not in ACTIVATIONS:
        raise UserError(f"unknown activation {name!r}: use one of {', '.join(ACTIVATIONS)}")


def classifier(features: int, num_classes: int, *, dropout: float, activation_name: str) -> list[nn.Module]:
    """The convnets' head on `features` pooled values: dropout when asked, then the linear
    classifier; a maxout net gets its maxout hidden layer (64 units) here, since maxout is not
    a convolutional activation in babysit's convnets."""
    head: list[nn.Module] = [nn.Dropout(dropout)] if dropout else []
    if activation_name == "maxout":
        return head + [Maxout(features, 64), nn.Linear(64, num_classes)]
    return head + [nn.Linear(features, num_classes)]
