"""Batched perturbations: many centered differences per forward pass.

Checking K coordinates of a tensor W the plain way costs 2K forward passes. Here the K
perturbed copies ``W + h e_i`` are stacked into one (K, *W.shape) tensor and the objective is
evaluated once over the stack with ``torch.func.vmap`` — then once more for ``W - h e_i``.

The user's function takes no arguments (it closes over W), so vmap cannot feed it the stack
directly. :class:`LeafSwap` does it instead: a ``TorchFunctionMode`` that hands every torch call
receiving W (``F.linear(x, W, b)``, ``W.t()``, ``x @ W``) the batched tensor in its place.
This works for modules and plain closures alike, and the batched result is verified against
a plain evaluation before it is trusted.

Kinks: :class:`~babysit.check.kinks.KinkRecorder` compares the winners of the +h pass with
those of the -h pass. Under vmap it sees the physical, batched tensors, so a difference says
that *some* coordinate of the chunk crossed a kink; the chunk is then bisected (crossings are
rare, so this costs a few small passes) down to the coordinates that did.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import vmap
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_map

from .kinks import KinkRecorder
from .numeric import Coordinate, Differences, Objective, group_by_tensor, loop_differences

MEMORY_BUDGET = 256 * 2**20  # bytes for one stack of dense perturbed copies, where one is needed


class LeafSwap(TorchFunctionMode):
    """While active, torch calls that receive `leaf` get it with entry `flat` set to `value`.

    Inside vmap, `flat` and `value` are batched scalars: one perturbed copy per batch entry.
    The dense copy is built only when a call needs it. ``F.linear`` does not: since
    ``x (W + d E_ji)^T = x W^T + d x_i e_j``, it runs once on the unperturbed W and adds the
    one-entry correction — the stack of weight copies never exists, which is what makes
    checking every weight of an MLP cheap.
    """

    def __init__(self, leaf: torch.Tensor, flat: torch.Tensor, value: torch.Tensor):
        super().__init__()
        self.leaf, self.flat, self.value = leaf, flat, value
        self._dense = None

    @property
    def dense(self) -> torch.Tensor:
        if self._dense is None:
            base = self.leaf.detach().reshape(-1)
            hit = torch.arange(base.numel(), device=base.device) == self.flat
            self._dense = torch.where(hit, self.value, base).view(self.leaf.shape)
        return self._dense

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if (func is F.linear and len(args) >= 2 and args[1] is self.leaf and args[0] is not self.leaf
                and self.leaf.dim() == 2):
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            return self.linear(args[0], self.dense if bias is self.leaf else bias)
        swap = lambda a: self.dense if a is self.leaf else a  # noqa: E731
        return func(*tree_map(swap, args), **tree_map(swap, kwargs))

    def linear(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        weight = self.leaf.detach()
        out_features, in_features = weight.shape
        delta = self.value - weight.reshape(-1)[self.flat]
        x_i = x.index_select(-1, (self.flat % in_features).reshape(1)).squeeze(-1)
        e_j = F.one_hot(self.flat // in_features, out_features).to(x.dtype)
        return F.linear(x, weight, bias) + (delta * x_i).unsqueeze(-1) * e_j


class BatchMismatch(RuntimeError):
    """The batched evaluation disagrees with a plain one (the function reads W behind torch's back)."""


class StackedTensor:
    """Evaluate the objective at many one-entry perturbations of one leaf tensor per pass."""

    def __init__(self, objective: Objective, name: str):
        self.objective, self.leaf = objective, objective.wrt[name]
        self.base = self.leaf.detach().reshape(-1)

    def evaluate(self, flats: torch.Tensor, delta: float, reference: KinkRecorder | None = None):
        """f at the tensor with entry flats[k] moved by delta, for every k; and the kink record."""
        def one(flat, value):
            with LeafSwap(self.leaf, flat, value):
                return self.objective()

        with torch.no_grad(), KinkRecorder(reference) as recorder:
            out = vmap(one, randomness="same")(flats, self.base[flats] + delta)
        return out, recorder

    def differences(self, flats: torch.Tensor, h: float) -> Differences:
        base = self.base[flats]
        f_plus, at_plus = self.evaluate(flats, h)
        f_minus, at_minus = self.evaluate(flats, -h, reference=at_plus)
        crossed = self.locate_kinks(flats, h) if at_minus.crossed else set()
        return Differences(f_plus.tolist(), f_minus.tolist(), ((base + h) - (base - h)).tolist(),
                           [i in crossed for i in range(len(flats))])

    def locate_kinks(self, flats: torch.Tensor, h: float, offset: int = 0) -> set[int]:
        """Positions whose +h and -h passes took different winners, found by bisection."""
        if len(flats) == 1:
            return {offset}
        half = len(flats) // 2
        found: set[int] = set()
        for lo, hi in ((0, half), (half, len(flats))):
            _, at_plus = self.evaluate(flats[lo:hi], h)
            _, at_minus = self.evaluate(flats[lo:hi], -h, reference=at_plus)
            if at_minus.crossed:
                found |= self.locate_kinks(flats[lo:hi], h, offset + lo)
        return found


def chunk_size_for(leaf: torch.Tensor, chunk_size: int) -> int:
    """As many copies per stack as `chunk_size` allows within the memory budget."""
    per_copy = max(leaf.numel() * leaf.element_size(), 1)
    return max(1, min(chunk_size, MEMORY_BUDGET // per_copy))


def batched_differences(objective: Objective, coords: list[Coordinate], h: float,
                        chunk_size: int = 1024, progress=None) -> Differences:
    """Centered differences of coordinates of one tensor, `chunk_size` perturbations per pass."""
    size = chunk_size_for(objective.wrt[coords[0].name], chunk_size)
    stacked = StackedTensor(objective, coords[0].name)
    result = Differences()
    for start in range(0, len(coords), size):
        chunk = coords[start:start + size]
        flats = torch.tensor([c.flat for c in chunk], device=stacked.base.device)
        result.extend(stacked.differences(flats, h))
        if progress is not None:
            progress.update(len(chunk))
    return result


def verify(objective: Objective, coord: Coordinate, h: float, batched: Differences, position: int) -> None:
    """Raise BatchMismatch unless a plain evaluation gives the batched f(x+h), f(x-h) of `coord`."""
    plain = loop_differences(objective, [coord], h)
    eps = torch.finfo(objective.wrt[coord.name].dtype).eps
    for got, want in ((batched.f_plus[position], plain.f_plus[0]),
                      (batched.f_minus[position], plain.f_minus[0])):
        if not abs(got - want) <= 1e3 * eps * max(abs(want), 1e-300):
            raise BatchMismatch(f"batched f = {got!r}, plain f = {want!r} for {coord.name}{list(coord.index)}")


def differences(objective: Objective, coords: list[Coordinate], h: float, *, batched: bool = True,
                chunk_size: int = 1024, analytic: dict | None = None,
                progress=None) -> tuple[Differences, str | None]:
    """Centered differences for `coords`, batched where possible; and why the loop ran, if it did.

    Each tensor's batched result is checked on its coordinate with the largest analytic
    gradient (the one where a missed swap would show most) against a plain evaluation.
    """
    reason = None if batched else "batched evaluation switched off"
    per_position: list = [None] * len(coords)
    for name, positions in group_by_tensor(coords).items():
        group = [coords[i] for i in positions]
        diffs = None
        if reason is None:
            try:
                diffs = batched_differences(objective, group, h, chunk_size, progress)
                position = _most_sensitive(group, analytic)
                verify(objective, group[position], h, diffs, position)
            except BatchMismatch as exc:
                reason, diffs = f"batched evaluation disagreed with a plain one ({exc})", None
            except Exception as exc:  # noqa: BLE001 - anything vmap cannot run falls back
                reason, diffs = f"cannot batch ({type(exc).__name__}: {_first_line(exc)})", None
        if diffs is None:
            diffs = loop_differences(objective, group, h)
            if progress is not None:
                progress.update(len(group))
        for j, i in enumerate(positions):
            per_position[i] = (diffs.f_plus[j], diffs.f_minus[j], diffs.step[j], diffs.kink[j])
    f_plus, f_minus, step, kink = (list(column) for column in zip(*per_position))
    return Differences(f_plus, f_minus, step, kink), reason


def _most_sensitive(group: list[Coordinate], analytic: dict | None) -> int:
    if not analytic:
        return 0
    grad = analytic[group[0].name].reshape(-1)
    flats = torch.tensor([c.flat for c in group], device=grad.device)
    return int(grad[flats].abs().argmax())


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else ""
    return line if len(line) <= 160 else line[:157] + "..."


__all__ = ["LeafSwap", "StackedTensor", "batched_differences", "differences"]
