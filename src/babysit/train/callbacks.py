"""The callback protocol of :func:`babysit.fit`: everything that watches or acts during training.

A callback overrides any of the hooks below; each receives the :class:`TrainState`. The order
within one training step is::

    on_batch_begin -> forward, loss -> backward -> after_backward
      -> before_optimizer_step -> optimizer.step() -> after_optimizer_step -> on_batch_end

Per-epoch results are in ``state.logs`` at ``on_epoch_end``. Setting ``state.stop_reason``
ends training after the current step (early stopping, pruning, divergence).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import nn

HOOKS = ("on_train_begin", "on_epoch_begin", "on_batch_begin", "after_backward",
         "before_optimizer_step", "after_optimizer_step", "on_batch_end", "on_epoch_end",
         "on_train_end")


@dataclass
class TrainState:
    """What a callback can see and change while :func:`fit` runs."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: Callable
    data: Any  # babysit.data.DataSplit, on the training device
    epochs: int
    batch_size: int
    reg: float = 0.0
    config: dict = field(default_factory=dict)
    epoch: int = 0  # the current epoch, counted from 1
    step: int = 0  # optimizer steps taken so far, over all epochs
    batch: int = 0  # index of the batch within the epoch
    steps_per_epoch: int = 0
    xb: torch.Tensor | None = None
    yb: torch.Tensor | None = None
    scores: torch.Tensor | None = None
    loss_tensor: torch.Tensor | None = None  # the current batch's objective, before .item()
    loss: float = float("nan")  # the current batch's objective (data loss + regularization)
    logs: dict = field(default_factory=dict)  # this epoch's results, filled at its end
    history: list[dict] = field(default_factory=list)  # logs of every finished epoch
    stop_reason: str | None = None
    generator: torch.Generator | None = None  # shuffles the training split each epoch
    # Tensors a callback wants saved in every checkpoint next to the weights (e.g. the
    # parameter average under "average"); the Checkpointer writes them as they are at epoch end.
    checkpoint_extra: dict = field(default_factory=dict)

    @property
    def epoch_float(self) -> float:
        """Position in training measured in epochs, the notes' x axis (e.g. 2.5 = mid epoch 3)."""
        return (self.step / self.steps_per_epoch) if self.steps_per_epoch else float(self.epoch)

    def stop(self, reason: str) -> None:
        self.stop_reason = self.stop_reason or reason


class Callback:
    """Base class: every hook does nothing. Override the ones you need."""

    def on_train_begin(self, state: TrainState) -> None: ...
    def on_epoch_begin(self, state: TrainState) -> None: ...
    def on_batch_begin(self, state: TrainState) -> None: ...
    def after_backward(self, state: TrainState) -> None: ...
    def before_optimizer_step(self, state: TrainState) -> None: ...
    def after_optimizer_step(self, state: TrainState) -> None: ...
    def on_batch_end(self, state: TrainState) -> None: ...
    def on_epoch_end(self, state: TrainState) -> None: ...
    def on_train_end(self, state: TrainState) -> None: ...


class CallbackList:
    """Calls a hook on every callback that overrides it (base no-ops are skipped: per-step cost)."""

    def __init__(self, callbacks: Sequence[Callback]):
        self.callbacks = list(callbacks)
        self._bound = {hook: [getattr(cb, hook) for cb in self.callbacks
                              if getattr(type(cb), hook, None) is not getattr(Callback, hook)]
                       for hook in HOOKS}

    def __call__(self, hook: str, state: TrainState) -> None:
        for method in self._bound[hook]:
            method(state)
