"""The numeric gradient: centered differences on a few coordinates of every tensor.

For a coordinate x_i of a tensor, the numeric partial derivative is the centered difference

    df/dx_i  ~=  (f(x + h e_i) - f(x - h e_i)) / 2h

whose error is O(h^2), where the one-sided (f(x+h) - f(x))/h has O(h) — the notes insist on
the centered form. We divide by the step actually taken, ``(x_i + h) - (x_i - h)`` as
floating point rounds it, not by the nominal 2h.

An :class:`Objective` wraps the user's zero-argument function: it re-seeds torch before every
evaluation, so dropout draws the same mask at f(x+h), at f(x-h) and in the analytic pass (the
notes' "same seed" advice), and it can scale the objective up when gradients are tiny.

Two evaluators produce the same :class:`Differences`: a plain loop that perturbs one
coordinate in place, evaluates, and restores it bit for bit; and the batched one in
:mod:`babysit.check.batched`, which evaluates many perturbations per forward pass. The batched
one is tried first; any model it cannot run (custom autograd Functions without a vmap rule,
``.item()`` inside the forward, in-place updates of buffers) falls back to the loop.
"""

from __future__ import annotations

import itertools
import math
import operator
from dataclasses import dataclass, field
from typing import Callable, Mapping, NamedTuple, Sequence

import numpy as np
import torch

from ..errors import UserError
from .depth import layer_positions
from .kinks import KinkRecorder


class Coordinate(NamedTuple):
    """One checked entry: tensor `name`, its position `flat` in the flattened tensor, `index` in it."""

    name: str
    flat: int
    index: tuple[int, ...]


def select_coordinates(shapes: Mapping[str, tuple[int, ...]], per_tensor: int | None,
                       seed: int = 0) -> list[Coordinate]:
    """`per_tensor` random coordinates of EVERY tensor (all of them when None/0 or the tensor is small).

    The notes: check a few dimensions of every separate parameter — a bias is a tiny share of
    one long flat vector, and sampling that vector would rarely pick it.
    """
    generator = torch.Generator().manual_seed(seed)
    coords = []
    for name, shape in shapes.items():
        numel = math.prod(shape)
        if not per_tensor or numel <= per_tensor:
            flats = np.arange(numel)
        else:
            flats = np.sort(torch.randperm(numel, generator=generator)[:per_tensor].numpy())
        indices = np.stack(np.unravel_index(flats, shape), axis=1) if shape else np.zeros((numel, 0), int)
        # Coordinate._make builds each tuple in C: this runs on every weight of a network.
        coords += map(Coordinate._make, zip(itertools.repeat(name), flats.tolist(), map(tuple, indices.tolist())))
    return coords


@dataclass
class Differences:
    """Centered differences at one step h: per coordinate, f(x+h), f(x-h), the step, kink crossed."""

    f_plus: list[float] = field(default_factory=list)
    f_minus: list[float] = field(default_factory=list)
    step: list[float] = field(default_factory=list)
    kink: list[bool] = field(default_factory=list)

    def extend(self, other: "Differences") -> None:
        for key in ("f_plus", "f_minus", "step", "kink"):
            getattr(self, key).extend(getattr(other, key))

    @property
    def numeric(self) -> np.ndarray:
        return (np.asarray(self.f_plus) - np.asarray(self.f_minus)) / np.asarray(self.step)


class Objective:
    """The user's scalar function of the tensors in `wrt`, evaluated reproducibly.

    Every call seeds torch with `seed` first, so random ops (dropout) make the same draws in
    every evaluation; the result is multiplied by `scale` (1 unless gradients are tiny).
    """

    def __init__(self, fn: Callable[[], torch.Tensor], wrt: Mapping[str, torch.Tensor],
                 seed: int = 0, scale: float = 1.0):
        self.fn, self.wrt, self.seed, self.scale = fn, dict(wrt), seed, scale
        self.on_cuda = any(t.device.type == "cuda" for t in self.wrt.values())
        self.bytes_per_evaluation = 0  # measured by value(); sizes the batches
        self.depth, self.layers = None, {}  # read off the analytic pass's graph (check.depth)

    def reseed(self) -> None:
        # The CPU generator directly: torch.manual_seed also walks every lazy accelerator
        # backend, which costs more than a small forward pass.
        torch.default_generator.manual_seed(self.seed)
        if self.on_cuda:
            torch.cuda.manual_seed_all(self.seed)

    def __call__(self) -> torch.Tensor:
        self.reseed()
        out = self.fn()
        if not isinstance(out, torch.Tensor) or out.numel() != 1:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise UserError(f"the checked function must return a scalar tensor, got {got}: "
                            "reduce it first, e.g. loss.mean() or loss.sum()")
        out = out.reshape(())
        return out * self.scale if self.scale != 1.0 else out

    def value(self) -> tuple[float, KinkRecorder]:
        """f(x) and the kink ops it runs."""
        with torch.no_grad(), KinkRecorder(measure=True) as recorder:
            value = float(self())
        self.bytes_per_evaluation = recorder.bytes
        if not math.isfinite(value):
            raise UserError(f"the checked function is {value} at the check point: a gradient check "
                            "needs a finite loss (lower the learning rate / burn-in, check the data)")
        return value, recorder

    def analytic(self) -> dict[str, torch.Tensor]:
        """The gradient autograd computes through whatever the function runs."""
        leaves = list(self.wrt.values())
        flags = [t.requires_grad for t in leaves]
        try:
            for t in leaves:
                t.requires_grad_(True)
            with torch.enable_grad():
                out = self()
                self.depth, self.layers = layer_positions(out, self.wrt)
                # An output autograd did not track (detached, computed under no_grad) has a zero
                # analytic gradient; the numeric side will tell whether that is true.
                grads = (torch.autograd.grad(out, leaves, allow_unused=True) if out.requires_grad
                         else [None] * len(leaves))
        finally:
            for t, flag in zip(leaves, flags):
                t.requires_grad_(flag)
        return {name: (torch.zeros_like(t) if g is None else g.detach())
                for (name, t), g in zip(self.wrt.items(), grads)}


def loop_differences(objective: Objective, coords: list[Coordinate], h: float) -> Differences:
    """One coordinate at a time: perturb in place, evaluate twice, restore the exact old value."""
    result = Differences()
    for c in coords:
        leaf = objective.wrt[c.name]
        with torch.no_grad():
            original = leaf[c.index].clone()
            plus, minus = original + h, original - h
            try:
                leaf[c.index] = plus
                with KinkRecorder() as at_plus:
                    f_plus = float(objective())
                leaf[c.index] = minus
                with KinkRecorder(reference=at_plus) as at_minus:
                    f_minus = float(objective())
            finally:
                leaf[c.index] = original
        result.f_plus.append(f_plus)
        result.f_minus.append(f_minus)
        result.step.append(float(plus - minus))
        result.kink.append(at_minus.crossed)
    return result


def numpy_differences(f: Callable[[np.ndarray], float], x: np.ndarray, coords: list[Coordinate],
                      h: float) -> Differences:
    """Centered differences of a NumPy function on a private copy of x (kinks are not visible)."""
    result = Differences()
    work = np.array(x, dtype=np.float64, copy=True)
    for c in coords:
        original = work[c.index]
        plus, minus = original + h, original - h
        work[c.index] = plus
        f_plus = float(f(work))
        work[c.index] = minus
        f_minus = float(f(work))
        work[c.index] = original
        result.f_plus.append(f_plus)
        result.f_minus.append(f_minus)
        result.step.append(float(plus - minus))
        result.kink.append(False)
    return result


_NAME, _FLAT = operator.itemgetter(0), operator.itemgetter(1)  # of a Coordinate, at C speed


def group_by_tensor(coords: list[Coordinate]) -> dict[str, list[int]]:
    """Positions in `coords` of each tensor's coordinates, tensors in order of appearance."""
    return group_positions(list(map(_NAME, coords)))


def group_positions(names: list[str]) -> dict[str, list[int]]:
    """name -> its positions in `names`. The names come in runs (a tensor's coordinates side by
    side), so the runs are counted at C speed by groupby; this runs on 10,000 names."""
    groups: dict[str, list[int]] = {}
    start = 0
    for name, run in itertools.groupby(names):
        count = len(list(run))
        groups.setdefault(name, []).extend(range(start, start + count))
        start += count
    return groups


def flat_index(coords: Sequence[Coordinate], positions: Sequence[int] | None = None,
               device: torch.device | None = None) -> torch.Tensor:
    """Where the coordinates (those at `positions`, or all) sit in their flattened tensor, as
    one index tensor. NumPy builds it: torch.tensor on a list of 10,000 ints costs a millisecond."""
    picked = map(coords.__getitem__, positions) if positions is not None else iter(coords)
    count = len(positions) if positions is not None else len(coords)
    index = torch.from_numpy(np.fromiter(map(_FLAT, picked), dtype=np.int64, count=count))
    return index.to(device) if device is not None and device.type != "cpu" else index


def values_at(tensors: Mapping[str, torch.Tensor], coords: list[Coordinate]) -> list[float]:
    """tensors[c.name] at each coordinate, read with one gather per tensor."""
    values = np.zeros(len(coords))
    for name, positions in group_by_tensor(coords).items():
        flat = tensors[name].detach().reshape(-1)
        values[positions] = flat[flat_index(coords, positions, flat.device)].double().cpu().numpy()
    return values.tolist()
