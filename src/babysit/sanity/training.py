"""A few steps of training, as the checks that train need it: data loss only (regularization
off), the pipeline's own update rule, and a hook to stop early."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from .pipeline import Pipeline


def train_steps(pipeline: Pipeline, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                steps: int, batch_size: int | None = None,
                done: Callable[[int], bool] | None = None) -> tuple[int, bool, list[float]]:
    """Minimize the data loss on (x, y) for at most `steps` steps.

    Full batch without `batch_size`; otherwise minibatches drawn with replacement from a
    generator seeded by the pipeline's seed, so two models trained with the same seed see the
    same batches. The step goes through a closure, which every torch optimizer accepts (and
    L-BFGS needs). Stops after a step where ``done(step)`` is true. Returns (steps taken,
    whether the loss stayed finite, the training loss of every step).
    """
    optimizer = pipeline.make_optimizer(model.parameters())
    generator = torch.Generator().manual_seed(pipeline.options.seed)
    model.train()
    losses: list[float] = []
    for step in range(1, steps + 1):
        if batch_size is None or batch_size >= len(y):
            xb, yb = x, y
        else:
            idx = torch.randint(len(y), (batch_size,), generator=generator).to(x.device)
            xb, yb = x[idx], y[idx]

        def closure() -> torch.Tensor:
            optimizer.zero_grad(set_to_none=True)
            loss = pipeline.data_loss(model, xb, yb)
            loss.backward()
            return loss

        loss = optimizer.step(closure)
        losses.append(float(torch.as_tensor(loss).detach()) if loss is not None else math.nan)
        if loss is not None and not math.isfinite(losses[-1]):
            return step, False, losses
        if done is not None and done(step):
            return step, True, losses
    return steps, True, losses
