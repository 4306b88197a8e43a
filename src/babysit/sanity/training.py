"""A few steps of training, as the checks that train need it: data loss only (regularization
off), the pipeline's own update rule, and a hook to stop early."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..train.step import take_steps
from .pipeline import Pipeline


def train_steps(pipeline: Pipeline, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                steps: int, batch_size: int | None = None,
                done: Callable[[int], bool] | None = None) -> tuple[int, bool, list[float]]:
    """Minimize the data loss on (x, y) for at most `steps` steps of the pipeline's update rule.

    The steps are :func:`babysit.train.step.take_steps`, as every training takes them: full
    batch without `batch_size` or for a full-batch rule, else minibatches shuffled by the
    pipeline's seed (two models trained with the same seed see the same batches). Stops after
    a step where ``done(step)`` is true. Returns (steps taken, whether the loss stayed finite,
    the training loss of every step).
    """
    optimizer = pipeline.make_optimizer(model.parameters())
    return take_steps(model, optimizer, lambda xb, yb: pipeline.data_loss(model, xb, yb), x, y,
                      steps=steps, batch_size=batch_size, seed=pipeline.options.seed, done=done)
