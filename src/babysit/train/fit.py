"""`fit()`: the one training loop. Minibatch SGD-style training with callbacks.

Per step it does exactly what a hand-written PyTorch loop does (reading the loss once, to stop
on a non-finite or exploding one) and the callback hooks, whose no-op defaults are skipped.
``bench/fit_overhead.py`` measures the cost against a bare loop.

The training accuracy is measured like the validation accuracy: at the end of each epoch, in
eval mode, on a fixed sample of the training split as large as the validation split. The
running mean over the epoch's minibatches would mix weights of the whole epoch and, with
dropout on, score a thinned network — it sits below validation and hides the gap the notes
ask you to read (train far above val: overfitting; both low: too little capacity).
"""

from __future__ import annotations

import contextlib

import math
import random
import time
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..config import check_value
from ..errors import UserError
from ..models import l2_penalty, softmax_loss
from .callbacks import Callback, CallbackList, TrainState
from .step import Stepping, take_step


class TrainingDiverged(UserError):
    """The loss became NaN/Inf or exploded past ``max_loss``."""


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so a run with the same config repeats exactly."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def cpu_threads(threads: int):
    """Run with `threads` intra-op CPU threads (0: as they are), restored afterwards.

    ``train.threads``: small models train faster on one thread than on several that wait
    on each other (see its comment in :mod:`babysit.config`); the preflight's tiny workloads likewise."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {device!r} asked for, but torch sees no CUDA GPU: use device = 'cpu'")
    try:
        return torch.device(device)
    except RuntimeError:
        raise UserError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from None


@torch.no_grad()
def evaluate(model: nn.Module, loss_fn: Callable, x: torch.Tensor, y: torch.Tensor,
             batch_size: int = 1024) -> tuple[float, float]:
    """(mean data loss, accuracy) of `model` on (x, y), in eval mode (dropout off)."""
    was_training = model.training
    model.eval()
    total_loss = torch.zeros((), device=x.device, dtype=torch.float64)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for i in range(0, len(y), batch_size):
        scores = model(x[i:i + batch_size])
        total_loss += loss_fn(scores, y[i:i + batch_size]).double() * len(scores)
        correct += (scores.argmax(dim=1) == y[i:i + batch_size]).sum()
    model.train(was_training)
    n = max(len(y), 1)
    return total_loss.item() / n, correct.item() / n


def objective(model: nn.Module, loss_fn: Callable, scores: torch.Tensor, targets: torch.Tensor,
              reg: float) -> torch.Tensor:
    """Data loss plus L2 regularization: the quantity the optimizer minimizes."""
    loss = loss_fn(scores, targets)
    return loss + l2_penalty(model, reg) if reg else loss


def fit(model: nn.Module, data, *, optimizer: torch.optim.Optimizer, loss_fn: Callable = softmax_loss,
        epochs: int = 10, batch_size: int = 64, reg: float = 0.0,
        callbacks: Sequence[Callback] = (), device: str | torch.device = "cpu", seed: int = 0,
        max_loss: float = 1e6, config: dict | None = None, resume: dict | None = None) -> TrainState:
    """Train `model` on `data` (a :class:`~babysit.data.DataSplit`) and return the final state.

    Each epoch shuffles the training split (seeded by `seed`), takes minibatches of
    `batch_size`, minimizes ``loss_fn(scores, y) + 0.5 * reg * sum(W**2)``, then evaluates on
    the validation split. ``state.history`` holds one dict per epoch with ``train_loss``,
    ``train_acc``, ``val_loss``, ``val_acc``, ``lr`` and ``seconds``. How each step is taken
    (minibatch or the whole training split, with or without a closure) is the optimizer's to
    say (:mod:`babysit.train.step`): a full-batch method (L-BFGS, Newton) takes one step per
    epoch on the whole training split, the hooks running as for one big batch. Training stops
    early when
    the loss is not finite or exceeds `max_loss` (``state.stop_reason`` says why) or when a
    callback calls ``state.stop``. `resume` (``epoch``, ``generator``, ``torch_rng`` from a
    checkpoint) continues a run after that epoch with the random streams it had, and puts its
    ``checkpoint_extra`` (what callbacks saved) back into ``state.checkpoint_extra``.
    """
    check_value("train.epochs", epochs)
    check_value("train.batch_size", batch_size)
    device = resolve_device(device) if isinstance(device, str) else device
    seed_everything(seed)
    model.to(device)
    data = data.to(device)
    generator = torch.Generator().manual_seed(seed)
    start_epoch = int(resume["epoch"]) if resume else 0
    if resume and resume.get("generator") is not None:
        generator.set_state(resume["generator"])
    if resume and resume.get("torch_rng") is not None:
        torch.set_rng_state(resume["torch_rng"])
    n = len(data.y_train)
    stepping = Stepping.of(optimizer)
    if stepping.full_batch:
        batch_size = n  # second-order methods: one closure step per epoch on the whole set
    state = TrainState(model=model, optimizer=optimizer, loss_fn=loss_fn, data=data, epochs=epochs,
                       batch_size=batch_size, reg=reg, config=config or {},
                       steps_per_epoch=math.ceil(n / batch_size), epoch=start_epoch,
                       step=start_epoch * math.ceil(n / batch_size), generator=generator)
    if resume and resume.get("checkpoint_extra"):
        state.checkpoint_extra.update(resume["checkpoint_extra"])  # e.g. the parameter average
    x_sample, y_sample = train_sample(data)
    hooks = CallbackList(callbacks)
    hooks("on_train_begin", state)
    try:
        for epoch in range(start_epoch + 1, epochs + 1):
            if state.stop_reason:
                break
            state.epoch = epoch
            started = time.perf_counter()
            hooks("on_epoch_begin", state)
            train_loss = _train_one_epoch(state, hooks, stepping, generator, max_loss)
            _, train_acc = evaluate(model, loss_fn, x_sample, y_sample)
            val_loss, val_acc = evaluate(model, loss_fn, data.x_val, data.y_val)
            state.logs = {"epoch": epoch, "step": state.step, "train_loss": train_loss,
                          "train_acc": train_acc, "val_loss": val_loss, "val_acc": val_acc,
                          "lr": optimizer.param_groups[0].get("lr", float("nan")),
                          "seconds": time.perf_counter() - started}
            if state.stop_reason:
                state.logs["stopped"] = state.stop_reason
            hooks("on_epoch_end", state)
            state.history.append(dict(state.logs))
    finally:  # a KeyboardInterrupt or an error too: callbacks close what they hold (the monitor writes its records)
        hooks("on_train_end", state)
    return state


def train_sample(data, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed sample of the training split the training accuracy is measured on: as many
    examples as the validation split has (all of them when the training split is smaller),
    drawn once by `seed`, so every epoch (and every run on the same data) scores the same ones
    and the train/val gap compares like with like."""
    n_train, n_val = len(data.y_train), len(data.y_val)
    if train_sample_size(data) == n_train:
        return data.x_train, data.y_train
    pick = torch.randperm(n_train, generator=torch.Generator().manual_seed(seed))[:n_val]
    pick = pick.to(data.y_train.device)
    return data.x_train[pick], data.y_train[pick]


def train_sample_size(data) -> int:
    """How many training examples :func:`train_sample` scores (the n of ``train_acc``)."""
    return min(len(data.y_train), len(data.y_val))


def _train_one_epoch(state: TrainState, hooks: CallbackList, stepping: Stepping,
                     generator: torch.Generator, max_loss: float) -> float:
    """One pass over the training split; returns the mean objective over its steps."""
    model, optimizer, data = state.model, state.optimizer, state.data
    x, y, batch_size = data.x_train, data.y_train, state.batch_size
    model.train()
    order = None if stepping.full_batch else torch.randperm(len(y), generator=generator).to(x.device)
    loss_sum, seen = 0.0, 0

    def evaluate_batch() -> tuple[torch.Tensor, torch.Tensor]:
        scores = model(state.xb)
        return scores, objective(model, state.loss_fn, scores, state.yb, state.reg)

    def observe(scores: torch.Tensor, loss: torch.Tensor) -> None:
        state.scores, state.loss_tensor = scores, loss
        hooks("after_backward", state)
        hooks("before_optimizer_step", state)

    for state.batch, start in enumerate(range(0, len(y), batch_size)):
        idx = order[start:start + batch_size] if order is not None else slice(None)
        state.xb, state.yb = x[idx], y[idx]
        hooks("on_batch_begin", state)
        scores, loss = take_step(optimizer, stepping, evaluate_batch, observe)
        state.step += 1
        hooks("after_optimizer_step", state)
        state.loss = loss.item()  # the one host sync per step
        loss_sum += state.loss * len(state.yb)
        seen += len(state.yb)
        if not math.isfinite(state.loss) or state.loss > max_loss:
            state.stop("nonfinite loss" if not math.isfinite(state.loss)
                       else f"loss exploded ({state.loss:.3g} > max_loss {max_loss:g})")
        hooks("on_batch_end", state)
        if state.stop_reason:
            break
    return loss_sum / max(seen, 1)
