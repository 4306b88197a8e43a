"""Data losses on class scores: softmax cross-entropy and the multiclass SVM.

Both return the mean over the batch, so their value at chance is independent of batch size:
softmax ``-ln(1/C)`` (2.303 for C=10) and Weston-Watkins SVM ``C-1`` (9 for C=10) when all
scores are equal.
"""

from __future__ import annotations

import warnings
from typing import Callable

import torch
import torch.nn.functional as F

from ..errors import UserError
from ..plugins import call_user, is_reference, load_callable

LOSSES = ("softmax", "svm")
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def softmax_loss(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """L = -log(e^{s_y} / sum_j e^{s_j}), averaged over the batch."""
    return F.cross_entropy(scores, targets)


def svm_loss(scores: torch.Tensor, targets: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Weston-Watkins multiclass hinge: L = sum_{j != y} max(0, s_j - s_y + margin), batch mean.

    Written with ``clamp`` so the hinge is visible to kink detection in the gradient check.
    """
    correct = scores.gather(1, targets[:, None])
    margins = (scores - correct + margin).clamp(min=0)
    margins = margins.scatter(1, targets[:, None], 0.0)
    return margins.sum(dim=1).mean()


def chance_loss(name: str, num_classes: int) -> float:
    """The data loss when all class scores are equal (what a freshly initialized net should give)."""
    import math

    if name == "softmax":
        return math.log(num_classes)
    if name == "svm":
        return float(num_classes - 1)
    raise UserError(f"no known chance loss for {name!r}")


def make_loss(name: str) -> LossFn:
    if name == "softmax":
        return softmax_loss
    if name == "svm":
        return svm_loss
    if is_reference(name):
        return UserLoss(name, load_callable(name, "loss"))
    raise UserError(f"unknown loss {name!r}: use one of {', '.join(LOSSES)} or package.module:function")


class UserLoss:
    """A user's ``package.module:function`` loss: what it raises or returns wrong is one line."""

    def __init__(self, reference: str, function: LossFn):
        self.reference, self.function = reference, function
        self.__name__ = getattr(function, "__name__", reference)

    def __call__(self, scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        value = call_user(self.reference, "loss", self.function, scores, targets)
        if not isinstance(value, torch.Tensor) or value.numel() != 1 or not value.is_floating_point():
            got = f"a tensor of shape {tuple(value.shape)} ({value.dtype})" if isinstance(value, torch.Tensor) \
                else f"a {type(value).__name__}"
            raise UserError(f"loss {self.reference!r} returned {got}: it must return the batch's mean "
                            "loss as a scalar floating-point tensor, e.g. loss.mean()")
        return value


def check_loss(loss_fn: LossFn, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    """Call the loss once on the model's scores for a few examples, so a broken loss fails before
    any run directory is made. In eval mode: dropout draws no random numbers, training repeats."""
    was_training = model.training
    with torch.no_grad():
        scores = model.eval()(x)
    model.train(was_training)
    loss_fn(scores, y)


def step_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The loss a module computes itself: ``model.training_step((x, y), 0)``, as a PyTorch
    Lightning module defines it (a tensor, or a dict holding ``"loss"``). The gradient check
    and the preflight use it when no separate loss function is given, so that what they check
    is exactly what the module trains on."""
    step = getattr(model, "training_step", None)
    if not callable(step):
        raise UserError(f"{type(model).__name__} has no training_step: pass a loss function "
                        "(scores, targets) -> loss, or a LightningModule")
    with warnings.catch_warnings():  # Lightning warns that self.log() has no Trainer here
        warnings.filterwarnings("ignore", message=".*self.log.*")
        out = step((x, y), 0)
    loss = out.get("loss") if isinstance(out, dict) else out
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        raise UserError(f"{type(model).__name__}.training_step returned {type(out).__name__}, not a "
                        "scalar loss tensor (or a dict with 'loss'): the checks need its loss")
    return loss
