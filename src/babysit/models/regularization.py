"""L2 regularization, kept apart from the data loss (checks need the two parts separately)."""

from __future__ import annotations

import torch
from torch import nn


def regularized_parameters(model: nn.Module) -> list[torch.Tensor]:
    """The weights L2 applies to: every parameter with 2 or more dimensions (not biases)."""
    return [p for p in model.parameters() if p.dim() > 1]


def l2_penalty(model: nn.Module, reg: float) -> torch.Tensor:
    """R(W) = 0.5 * reg * sum_W sum(W**2), whose gradient is reg * W."""
    params = regularized_parameters(model)
    if not params or reg == 0:
        ref = next(model.parameters(), torch.zeros(()))
        return torch.zeros((), dtype=ref.dtype, device=ref.device)
    return 0.5 * reg * sum((p * p).sum() for p in params)
