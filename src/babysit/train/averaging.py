"""A running, exponentially decaying average of the parameters, kept while training goes on.

After every optimizer step the averaged weights move a little towards the current ones::

    avg_t = d_t * avg_{t-1} + (1 - d_t) * w_t,      d_t = min(decay, (1 + t) / (10 + t))

The warm-up ``(1 + t) / (10 + t)`` (as in TensorFlow's ExponentialMovingAverage) keeps the
first averages from being dragged towards the random initialization when a run has few steps.
The notes: evaluating the averaged weights "almost always" gives a few percent over the raw
ones, because the average sits nearer the bottom of the valley the raw weights bounce around.

BatchNorm: its running mean and variance are buffers, not parameters. They are averaged with
the same rule (integer buffers such as ``num_batches_tracked`` are copied), but statistics
gathered under *other* weights are only an approximation for the averaged ones, so when the
model has BatchNorm layers they are re-estimated under the averaged weights — one pass over
the training split in train mode, as :func:`torch.optim.swa_utils.update_bn` does — before
every evaluation and before the averaged weights are saved.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from .callbacks import Callback, TrainState
from .fit import evaluate

AVERAGE_KEY = "average"  # where the averaged weights live in each checkpoint


def ema_multi_avg_fn(decay: float):
    """The in-place update ``avg <- d_t*avg + (1-d_t)*w`` for a group of same-dtype tensors."""
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"decay must be in [0, 1), got {decay}")

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged) -> None:
        if not (averaged[0].is_floating_point() or averaged[0].is_complex()):
            for a, c in zip(averaged, current):  # step counters: an average means nothing
                a.copy_(c)
            return
        t = float(n_averaged)
        d = min(decay, (1.0 + t) / (10.0 + t))
        torch._foreach_lerp_(averaged, current, 1.0 - d)

    return update


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
               for m in model.modules())


def reestimate_batchnorm(model: nn.Module, x_train: torch.Tensor, batch_size: int = 256) -> None:
    """Recompute every BatchNorm's running statistics under `model`'s current weights.

    The statistics become the plain average over the minibatches of ``x_train`` (momentum
    None): the mean of the batch means and of the batch variances.
    """
    batches = [x_train[i:i + batch_size] for i in range(0, len(x_train), batch_size)]
    update_bn(batches, model)


class RunningAverage:
    """The averaged copy of a model: :func:`ema_multi_avg_fn` over its parameters and buffers.

    Same rule and same state as ``torch.optim.swa_utils.AveragedModel(model,
    multi_avg_fn=ema_multi_avg_fn(decay), use_buffers=True)``: the first update copies the
    weights, later ones lerp towards them. It differs only in cost — the tensor lists are built
    once and the step count is a Python int, so an update is one ``_foreach_lerp_`` (AveragedModel
    regroups every tensor and reads its counter on every step: ~10x slower on a small MLP).
    """

    def __init__(self, model: nn.Module, decay: float):
        self.module = copy.deepcopy(model)
        self.update_fn = ema_multi_avg_fn(decay)
        self.n_averaged = 0
        self._bind(model)

    def _bind(self, model: nn.Module) -> None:
        def tensors(m: nn.Module) -> list[torch.Tensor]:
            return [t.detach() for t in (*m.parameters(), *m.buffers())]

        self._source = model
        pairs = list(zip(tensors(self.module), tensors(model)))
        self._floats = ([a for a, c in pairs if a.is_floating_point()],
                        [c for a, c in pairs if a.is_floating_point()])
        self._others = [(a, c) for a, c in pairs if not a.is_floating_point()]

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        if model is not self._source:
            self._bind(model)
        averaged, current = self._floats
        if self.n_averaged == 0:
            torch._foreach_copy_(averaged, current)
        elif averaged:
            self.update_fn(averaged, current, self.n_averaged)
        for a, c in self._others:  # step counters: an average means nothing
            a.copy_(c)
        self.n_averaged += 1


class ParameterAverage(Callback):
    """Keeps the exponentially decaying average of the weights during :func:`babysit.fit`.

    Each epoch it evaluates the averaged weights on the validation split next to the raw ones
    (``val_loss_avg``, ``val_acc_avg`` in the epoch's logs, so in ``metrics.jsonl``) and puts
    them in ``state.checkpoint_extra["average"]``, so every checkpoint carries them for use
    after training (:func:`babysit.ensemble.members.average_from_checkpoint`). It lives next to the loop
    because every training keeps it (``ensemble.ema_decay``), not only the ensembles.
    """

    def __init__(self, decay: float = 0.99):
        self.decay = decay
        self.average: RunningAverage | None = None

    def on_train_begin(self, state: TrainState) -> None:
        self.average = RunningAverage(state.model, self.decay)
        saved = state.checkpoint_extra.get(AVERAGE_KEY)
        if saved is not None and state.epoch > 0:  # resumed: go on from the saved average
            self.average.module.load_state_dict(saved)
            self.average.n_averaged = state.step

    def after_optimizer_step(self, state: TrainState) -> None:
        self.average.update(state.model)

    def on_epoch_end(self, state: TrainState) -> None:
        model = self.averaged_model(state.data.x_train, state.batch_size)
        val_loss, val_acc = evaluate(model, state.loss_fn, state.data.x_val, state.data.y_val)
        state.logs["val_loss_avg"], state.logs["val_acc_avg"] = val_loss, val_acc
        state.checkpoint_extra[AVERAGE_KEY] = {k: v.detach().clone()
                                               for k, v in model.state_dict().items()}
        state.checkpoint_extra["average_decay"] = self.decay

    def averaged_model(self, x_train: torch.Tensor | None = None, batch_size: int = 256) -> nn.Module:
        """The averaged weights as a plain model (BatchNorm statistics re-estimated if it has any)."""
        model = self.average.module
        if has_batchnorm(model) and x_train is not None:
            model = copy.deepcopy(model)  # keep the running average of the buffers untouched
            reestimate_batchnorm(model, x_train, batch_size)
        return model

