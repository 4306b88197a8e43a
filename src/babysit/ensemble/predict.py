"""Ensemble prediction (the average of the members' class probabilities) and what it costs.

    p(y | x) = (1/K) * sum_k softmax(f_k(x))

Averaging probabilities rather than raw scores keeps one over-confident member from
outvoting the rest, and is what the notes mean by "average the predictions".

Cost is measured against a single model: wall-clock seconds to predict the validation split
(median of a few repetitions) and peak memory in MB — on a GPU torch's allocator peak; on the
CPU the peak of live tensor bytes (the members' weights and buffers, plus the activations
allocated while predicting), counted by :class:`PeakTensorMemory`.
"""

from __future__ import annotations

import statistics
import time
import weakref
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


@torch.no_grad()
def member_probabilities(model: nn.Module, x: torch.Tensor, temperature: float = 1.0,
                         batch_size: int = 1024) -> torch.Tensor:
    """softmax(f(x) / T) of one model, in eval mode, batch by batch."""
    was_training = model.training
    model.eval()
    out = torch.cat([torch.softmax(model(x[i:i + batch_size]) / temperature, dim=1)
                     for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out


@torch.no_grad()
def ensemble_probabilities(models: Sequence[nn.Module], x: torch.Tensor, temperature: float = 1.0,
                           batch_size: int = 1024) -> torch.Tensor:
    """(1/K) sum_k softmax(f_k(x) / T): the members' class probabilities averaged."""
    total = None
    for model in models:  # one member at a time: activations of one model live at once
        p = member_probabilities(model, x, temperature, batch_size)
        total = p if total is None else total.add_(p)
    return total / len(models)


@torch.no_grad()
def members_curve(models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor) -> tuple[list[float], float]:
    """The notes' "more members, diminishing gains", and how much the members disagree.

    curve[m-1] is the accuracy of the ensemble of the first m members (m = 1..K, in the
    members' order): (1/m) sum_{k<=m} softmax(f_k(x)), argmax against y. Disagreement is the
    share of examples on which two members predict different classes, averaged over the
    K(K-1)/2 pairs: members that agree everywhere have nothing to add to each other.
    """
    running, curve, predictions = None, [], []
    for m, model in enumerate(models, start=1):
        p = member_probabilities(model, x)
        predictions.append(p.argmax(dim=1))
        running = p if running is None else running + p
        curve.append(accuracy(running / m, y))
    pairs = [(i, j) for i in range(len(models)) for j in range(i + 1, len(models))]
    disagreement = (sum((predictions[i] != predictions[j]).float().mean().item() for i, j in pairs)
                    / len(pairs)) if pairs else 0.0
    return curve, disagreement


def accuracy(probabilities: torch.Tensor, y: torch.Tensor) -> float:
    """Share of rows whose most probable class is the label (counted exactly, like evaluate)."""
    return (probabilities.argmax(dim=1) == y).sum().item() / max(len(y), 1)


@dataclass
class EvalCost:
    seconds: float
    memory_mb: float


def eval_cost(models: Sequence[nn.Module], x: torch.Tensor, repeats: int = 3) -> EvalCost:
    """Seconds (median of `repeats`) and peak memory (MB) of predicting `x` with `models`."""
    return compare_cost(models, models[:1], x, repeats)[0]


def compare_cost(models: Sequence[nn.Module], single: Sequence[nn.Module], x: torch.Tensor,
                 repeats: int = 5) -> tuple[EvalCost, EvalCost]:
    """Costs of predicting `x` with `models` and with `single`, timed side by side.

    The two are timed in alternation (so a busy machine slows both alike), each timing
    repeating the prediction until it lasts at least 20 ms (a single small model takes well
    under a millisecond, below the clock's noise); seconds are per prediction, median of
    `repeats`.
    """
    loops = {id(models): _loops_for(models, x), id(single): _loops_for(single, x)}
    times: dict[int, list[float]] = {id(models): [], id(single): []}
    for _ in range(repeats):
        for group in (models, single):
            times[id(group)].append(_time(group, x, loops[id(group)]) / loops[id(group)])
    return tuple(EvalCost(statistics.median(times[id(group)]), peak_memory_mb(group, x))
                 for group in (models, single))


def _time(models: Sequence[nn.Module], x: torch.Tensor, loops: int) -> float:
    _sync(x.device)
    started = time.perf_counter()
    for _ in range(loops):
        ensemble_probabilities(models, x)
    _sync(x.device)
    return time.perf_counter() - started


def _loops_for(models: Sequence[nn.Module], x: torch.Tensor, at_least: float = 0.02) -> int:
    """How many predictions in a row last `at_least` seconds (after one warm-up call)."""
    ensemble_probabilities(models, x)  # warm-up: first calls pay for lazy init and caches
    loops = 1
    while (elapsed := _time(models, x, loops)) < at_least and loops < 10_000:
        loops = max(loops * 2, int(loops * at_least / max(elapsed, 1e-9)) + 1)
    return loops


def peak_memory_mb(models: Sequence[nn.Module], x: torch.Tensor) -> float:
    """Peak memory of one prediction of `x`: the members' tensors plus the activations' peak."""
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
        torch.cuda.reset_peak_memory_stats(x.device)
        ensemble_probabilities(models, x)
        return torch.cuda.max_memory_allocated(x.device) / 2**20
    resident = [x, *(t for m in models for t in [*m.parameters(), *m.buffers()])]
    with PeakTensorMemory(resident) as counter:
        ensemble_probabilities(models, x)
    return counter.peak / 2**20


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PeakTensorMemory(TorchDispatchMode):
    """Counts the bytes of tensor storage alive inside the ``with`` block; ``peak`` is the most
    at once. `resident` tensors (weights, inputs) count from the start; any other storage from
    the op that creates it until it is freed (a weak reference tells), so views and in-place
    ops add nothing."""

    def __init__(self, resident: Sequence[torch.Tensor] = ()):
        super().__init__()
        self.live: dict[int, int] = {}
        self.now = self.peak = 0
        for t in resident:
            self._track(t.untyped_storage())

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self._track(t.untyped_storage())
        return out

    def _track(self, storage) -> None:
        key = id(storage)
        if key in self.live:
            return
        size = storage.nbytes()
        self.live[key] = size
        self.now += size
        self.peak = max(self.peak, self.now)
        weakref.finalize(storage, self._free, key)

    def _free(self, key: int) -> None:
        self.now -= self.live.pop(key, 0)
