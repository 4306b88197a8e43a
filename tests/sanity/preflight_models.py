"""Healthy and deliberately broken models and pipelines for the preflight tests.

Each broken one carries one bug of the kind the preflight exists to catch.
"""

from __future__ import annotations

import torch
from torch import nn

from babysit import build_model

DIGITS_SHAPE, DIGITS_CLASSES = (1, 8, 8), 10


def healthy(dropout: float = 0.0) -> nn.Module:
    """A 2-layer ReLU MLP with torch's default initialization."""
    return build_model("mlp", DIGITS_SHAPE, DIGITS_CLASSES, depth=2, width=64, dropout=dropout)


def weights_too_large() -> nn.Module:
    """The healthy MLP with every weight matrix multiplied by 8 at initialization."""
    return build_model("mlp", DIGITS_SHAPE, DIGITS_CLASSES, depth=2, width=64, init_scale=8.0)


class Bottleneck(nn.Module):
    """Too little capacity: all 64 pixels squeezed through two linear units before the scores."""

    def __init__(self, units: int = 2):
        super().__init__()
        self.squeeze = nn.Linear(64, units)
        self.scores = nn.Linear(units, DIGITS_CLASSES)

    def forward(self, x):
        return self.scores(self.squeeze(x.flatten(1)))


class SquashedScores(nn.Module):
    """Scores squashed into [-1, 1] by a tanh: no confident prediction, so no near-zero loss."""

    def __init__(self):
        super().__init__()
        self.net = healthy()

    def forward(self, x):
        return torch.tanh(self.net(x))


class IgnoresInput(nn.Module):
    """The input is replaced inside the model: a typo feeds zeros to the first layer."""

    def __init__(self):
        super().__init__()
        self.net = healthy()

    def forward(self, x):
        return self.net(torch.zeros_like(x))


class _StraightThroughReLU(torch.autograd.Function):
    """A backward bug: ReLU whose backward forgets the mask and passes every gradient through."""

    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        return grad


class BadBackward(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(64, 64)
        self.scores = nn.Linear(64, DIGITS_CLASSES)

    def forward(self, x):
        return self.scores(_StraightThroughReLU.apply(self.hidden(x.flatten(1))))


class PrivateDropout(nn.Module):
    """Nondeterminism: dropout drawn from a private generator seeded from the OS, which no
    global seed controls."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = p
        self.generator = torch.Generator()
        self.generator.seed()

    def forward(self, x):
        if not self.training:
            return x
        keep = torch.rand(x.shape, generator=self.generator) >= self.p
        return x * keep / (1 - self.p)


def unseeded_dropout() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), PrivateDropout(0.2),
                         nn.Linear(64, DIGITS_CLASSES))
