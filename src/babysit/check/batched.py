"""Batched perturbations: many centered differences per forward pass.

Checking K coordinates of a tensor W the plain way costs 2K forward passes. Here the K
perturbations ``W + h e_i`` are evaluated in one pass with ``torch.func.vmap`` over the pairs
(i, W_i + h) — then once more for ``W - h e_i``.

The user's function takes no arguments (it closes over W), so vmap cannot feed it the
perturbed tensors directly. :class:`LeafSwap` does it instead: a ``TorchFunctionMode`` that
hands every torch call receiving W (``W.t()``, ``x @ W``, ``(W**2).sum()``) the perturbed W in
its place. This works for modules and plain closures alike, and each tensor's batched result
is verified against a plain evaluation before it is trusted. Matrix products and added biases
get a shortcut that never builds the K copies of W: their result differs from the unperturbed
one in a single column, and that column is carried through the activation and into the next
layer's product (:mod:`babysit.check.one_column`), so a pass over all 6,400 weights of a layer
costs about what K small output vectors cost, not K forward passes.

Batches are as large as ``chunk_size`` (8,192) and a memory budget allow, the budget judged
on the memory a pass was measured to hold per perturbation.

Kinks: :class:`~babysit.check.kinks.KinkRecorder` compares the winners of the +h pass with
those of the -h pass. Under vmap it sees the physical, batched tensors, so a difference says
that *some* coordinate of the chunk crossed a kink; the chunk is then bisected (crossings are
rare, so this costs a few small passes) down to the coordinates that did.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import vmap
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_map

from .kinks import KinkRecorder
from .numeric import Coordinate, Differences, Objective, flat_index, group_by_tensor, loop_differences
from .one_column import POINTWISE, OneColumn

MEMORY_BUDGET = 512 * 2**20  # bytes one batched pass may allocate
CHUNK_SIZE = 8192  # perturbations per batched pass at most (fewer where the budget says so)


class LeafSwap(TorchFunctionMode):
    """While active, torch calls that receive `leaf` get it with entry `flat` set to `value`.

    Inside vmap, `flat` and `value` are batched scalars: one perturbed copy per batch entry.
    The dense copy is built only when a call needs it. A matrix product does not: moving entry
    (i, j) of M by d changes ``a @ M`` by ``d a_i e_j`` (one output column) and ``M @ b`` by
    ``d e_i b_j`` (one output row), so the product runs once on the unperturbed M and gets a
    one-column (one-row) correction — the stack of weight copies never exists, which is what
    makes checking every weight of an MLP cheap. This covers ``F.linear`` (modules), and
    ``x @ W``, ``x @ W.t()``, ``W @ x``, ``torch.mm``/``matmul`` in plain closures alike; a
    bias vector moved by d likewise moves one column of ``F.linear(x, W, b)`` or ``h + b``.
    The one-column result is then carried through what follows (a pointwise activation, a
    bias, the next layer's product) as its parts (:mod:`babysit.check.one_column`).
    """

    def __init__(self, leaf: torch.Tensor, flat: torch.Tensor, value: torch.Tensor):
        super().__init__()
        self.leaf, self.flat, self.value = leaf, flat, value
        self._dense = None
        self._transposed = None  # leaf.t() as handed out (unperturbed), while a product may use it
        self._last: OneColumn | None = None  # the latest one-column result and its parts
        self._moved: dict[int, list] = {}  # id(placeholder) -> [placeholder, OneColumn, dense or None]

    @property
    def dense(self) -> torch.Tensor:
        if self._dense is None:
            base = self.leaf.detach().reshape(-1)
            hit = torch.arange(base.numel(), device=base.device) == self.flat
            self._dense = torch.where(hit, self.value, base).view(self.leaf.shape)
        return self._dense

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if args and self.leaf.dim() == 2 and args[0] is self.leaf and _is_transpose(func, args, kwargs):
            self._transposed = self.leaf.detach().t()
            return self._transposed
        result = self._carried(func, args, kwargs) if args and self._last is not None else None
        if result is None:
            args, kwargs = _map_tensors(self._real, args), _map_tensors(self._real, kwargs)
            result = self._shortcut(func, args, kwargs) if args else None
        if result is None:
            return func(*_map_tensors(self._swap, args), **_map_tensors(self._swap, kwargs))
        if isinstance(result, OneColumn):
            return self._hand_out(result)
        return result

    def _hand_out(self, moved: OneColumn) -> torch.Tensor:
        """A placeholder for the one-column result: a view of its unperturbed base. The next
        call either works on the parts (:meth:`_carried`) or gets the dense result, written
        then (:meth:`_real`); every torch call passes through here, so no other sees it."""
        placeholder = moved.base.detach()
        self._moved[id(placeholder)] = [placeholder, moved, None]
        self._last = moved._replace(out=placeholder)
        return placeholder

    def _real(self, a):
        """The dense result in place of a placeholder (written once, on first need)."""
        entry = self._moved.get(id(a)) if isinstance(a, torch.Tensor) else None
        if entry is None or entry[0] is not a:
            return a
        if entry[2] is None:
            entry[2] = entry[1].dense()
        if self._last is not None and self._last.out is a:
            self._last = None  # an op its rules do not know: it may write into the result
        return entry[2]

    def _placeholder(self, a) -> bool:
        entry = self._moved.get(id(a)) if isinstance(a, torch.Tensor) else None
        return entry is not None and entry[0] is a

    def _shortcut(self, func, args, kwargs):
        """The call computed from parts (a OneColumn, or a dense tensor), or None: do it plainly."""
        if self.leaf.dim() == 2:
            return self._product(func, args, kwargs)
        if self.leaf.dim() == 1:
            return self._plus_leaf(func, args, kwargs)
        return None

    def _carried(self, func, args, kwargs):
        """An op on the latest one-column result, done on its parts; None for other calls
        (and for calls that also receive the leaf or another placeholder)."""
        last = self._last
        mine = (self.leaf, self._transposed, last.out)
        others = [a for a in (*args, *kwargs.values()) if a is not last.out]
        if any(a is m for a in others for m in mine if m is not None) or any(map(self._placeholder, others)):
            return None
        if func in POINTWISE and args[0] is last.out:
            return last.pointwise(func, args[1:], kwargs)
        if func in ADDS and len(args) == 2 and not kwargs:
            other = args[1] if args[0] is last.out else args[0] if args[1] is last.out else None
            if isinstance(other, torch.Tensor) and tuple(other.shape) == (last.base.shape[-1],):
                return last.plus(other)
            return None
        if args[0] is not last.out or len(args) < 2 or not isinstance(args[1], torch.Tensor) or args[1].dim() != 2:
            return None
        matrix = args[1]
        if func is F.linear and matrix.shape[1] == last.base.shape[-1]:
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            return last.times(matrix, transposed=True, bias=bias)
        if func in MATMULS and len(args) == 2 and not kwargs and matrix.shape[0] == last.base.shape[-1]:
            return last.times(matrix, transposed=False)
        return None

    def _plus_leaf(self, func, args, kwargs):
        """A bias leaf moved: ``F.linear(x, W, leaf)``, ``h + leaf``, ``leaf + h`` move column
        `flat` of the result; None for anything else."""
        n = self.leaf.shape[0]
        if func is F.linear and len(args) >= 2 and args[0] is not self.leaf and args[1] is not self.leaf:
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            if bias is not self.leaf or args[1].dim() != 2 or args[1].shape[0] != n:
                return None
            base = F.linear(args[0], args[1], self.leaf.detach())
            return OneColumn.build(base.index_select(-1, self.flat.reshape(1)) + self._delta(), base, self.flat)
        if func not in ADDS or len(args) != 2 or kwargs:
            return None
        other = args[1] if args[0] is self.leaf else args[0] if args[1] is self.leaf else None
        if not isinstance(other, torch.Tensor) or other is self.leaf or other.dim() < 1 or other.shape[-1] != n:
            return None
        return OneColumn.build(other.index_select(-1, self.flat.reshape(1)) + self.value,
                               other + self.leaf.detach(), self.flat)

    def _swap(self, a):
        if a is self.leaf:
            return self.dense
        if a is not None and a is self._transposed:
            return self.dense.t()
        return a

    def _product(self, func, args, kwargs):
        """A matrix product with the leaf (or its transpose) as one factor, by the rank-one
        correction; None when the call is something else."""
        if func is F.linear and len(args) >= 2 and args[1] is self.leaf and args[0] is not self.leaf:
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            if bias is self.leaf:
                return None
            return self.times_right(args[0], transposed=True, bias=bias)
        if func not in MATMULS or len(args) != 2 or kwargs:
            return None
        a, b = args
        mine = (self.leaf, self._transposed)
        if b is self.leaf and not any(a is m for m in mine):
            return self.times_right(a, transposed=False)
        if b is not None and b is self._transposed and not any(a is m for m in mine):
            return self.times_right(a, transposed=True)
        if a is self.leaf and not any(b is m for m in mine) and b.dim() >= 1:
            return self.times_left(b)
        return None

    def _delta(self) -> torch.Tensor:
        return self.value - self.leaf.detach().reshape(-1)[self.flat]

    def times_right(self, a: torch.Tensor, transposed: bool, bias: torch.Tensor | None = None) -> OneColumn:
        """``a @ M (+ bias)`` with M = leaf (in x out) or leaf.t() (leaf: out x in), entry moved."""
        weight = self.leaf.detach()
        if transposed:
            n_out, n_in = weight.shape
            j, i = self.flat // n_in, self.flat % n_in
            base = F.linear(a, weight, bias)  # unperturbed: computed once for the whole batch
        else:
            n_in, n_out = weight.shape
            i, j = self.flat // n_out, self.flat % n_out
            base = torch.matmul(a, weight)
        column = base.index_select(-1, j.reshape(1)) + self._delta() * a.index_select(-1, i.reshape(1))
        return OneColumn.build(column, base, j)  # output j moves

    def times_left(self, b: torch.Tensor) -> torch.Tensor:
        """``leaf @ b`` (leaf: m x k) with entry (i, j) moved: output row i gains d b_j."""
        m, k = self.leaf.shape
        i, j = self.flat // k, self.flat % k
        base = torch.matmul(self.leaf.detach(), b)
        dim = -2 if b.dim() >= 2 else -1
        row = base.index_select(dim, i.reshape(1)) + self._delta() * b.index_select(dim, j.reshape(1))
        hit = torch.arange(m, device=base.device) == i
        return torch.where(hit.unsqueeze(-1) if dim == -2 else hit, row, base)


def _map_tensors(fn, value):
    """`fn` on every tensor in `value` (a call's args or kwargs, nested); pytree's tree_map
    for containers other than tuples, lists and dicts. Runs on every torch call of a pass."""
    kind = type(value)
    if kind is tuple or kind is list:
        return kind([_map_tensors(fn, v) for v in value]) if value else value
    if isinstance(value, torch.Tensor):
        return fn(value)
    if kind is dict:
        return {k: _map_tensors(fn, v) for k, v in value.items()}
    if isinstance(value, (tuple, list, dict)):
        return tree_map(lambda v: fn(v) if isinstance(v, torch.Tensor) else v, value)
    return value


ADDS = {torch.add, torch.Tensor.add, torch.Tensor.__add__, torch.Tensor.__radd__}
MATMULS = {torch.matmul, torch.mm, torch.Tensor.matmul, torch.Tensor.mm, torch.Tensor.__matmul__}
_TRANSPOSES = {torch.t, torch.Tensor.t, torch.Tensor.T.__get__, torch.Tensor.mT.__get__}


def _is_transpose(func, args, kwargs) -> bool:
    """Whether the call is a plain transpose of a matrix: t(), .T, .mT, transpose(0, 1)."""
    if func in _TRANSPOSES:
        return len(args) == 1 and not kwargs
    if func in (torch.transpose, torch.Tensor.transpose) and len(args) == 3 and not kwargs:
        return sorted(d % 2 for d in args[1:]) == [0, 1]
    return False


class BatchMismatch(RuntimeError):
    """The batched evaluation disagrees with a plain one (the function reads W behind torch's back)."""


class PerturbedTensor:
    """Evaluate the objective at many one-entry perturbations of one leaf tensor per pass."""

    def __init__(self, objective: Objective, name: str):
        self.objective, self.leaf = objective, objective.wrt[name]
        self.base = self.leaf.detach().reshape(-1)
        self.bytes_per_perturbation: float | None = None  # measured by the first pass

    def evaluate(self, flats: torch.Tensor, delta: float, reference: KinkRecorder | None = None):
        """f at the tensor with entry flats[k] moved by delta, for every k; and the kink record."""
        def one(flat, value):
            with LeafSwap(self.leaf, flat, value):
                return self.objective()

        with torch.no_grad(), KinkRecorder(reference, measure=self.bytes_per_perturbation is None) as recorder:
            out = vmap(one, randomness="same")(flats, self.base[flats] + delta)
        return out, recorder

    def differences(self, flats: torch.Tensor, h: float) -> Differences:
        base = self.base[flats]
        f_plus, at_plus = self.evaluate(flats, h)
        if self.bytes_per_perturbation is None:
            self.bytes_per_perturbation = at_plus.bytes / len(flats)
        f_minus, at_minus = self.evaluate(flats, -h, reference=at_plus)
        kink = [False] * len(flats)
        for i in (self.locate_kinks(flats, h) if at_minus.crossed else ()):
            kink[i] = True
        return Differences(f_plus.tolist(), f_minus.tolist(), ((base + h) - (base - h)).tolist(), kink)

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


def chunk_size_for(objective: Objective, leaf: torch.Tensor, chunk_size: int,
                   measured: float | None = None) -> int:
    """As many perturbations per pass as `chunk_size` allows within the memory budget.

    Before any pass, one perturbation is assumed to cost a dense copy of the tensor plus
    everything one evaluation allocates (f(x)'s pass), K times over in a batched pass. Most
    perturbations cost far less (a moved column is carried as its parts, no copy of the
    tensor is made): after a pass, `measured` (its bytes per perturbation) sizes the next.
    """
    per_copy = measured if measured else leaf.numel() * leaf.element_size() + objective.bytes_per_evaluation
    return max(1, min(chunk_size, int(MEMORY_BUDGET // max(per_copy, 1))))


def batched_differences(objective: Objective, coords: list[Coordinate], h: float,
                        chunk_size: int = CHUNK_SIZE, progress=None) -> Differences:
    """Centered differences of coordinates of one tensor, `chunk_size` perturbations per pass."""
    leaf = objective.wrt[coords[0].name]
    perturbed = PerturbedTensor(objective, coords[0].name)
    result = Differences()
    start = 0
    while start < len(coords):
        size = chunk_size_for(objective, leaf, chunk_size, perturbed.bytes_per_perturbation)
        chunk = coords[start:start + size]
        start += len(chunk)
        flats = flat_index(chunk, device=perturbed.base.device)
        result.extend(perturbed.differences(flats, h))
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
                chunk_size: int = CHUNK_SIZE, analytic: dict | None = None,
                progress=None) -> tuple[Differences, str | None]:
    """Centered differences for `coords`, batched where possible; and why the loop ran, if it did.

    Each tensor's batched result is checked on its coordinate with the largest analytic
    gradient (the one where a missed swap would show most) against a plain evaluation.
    """
    reason = None if batched else "batched evaluation switched off"
    groups = group_by_tensor(coords)
    in_order = _in_order(groups)  # each tensor's coordinates side by side, as they come
    result = Differences()
    columns = {key: np.zeros(len(coords), dtype=bool if key == "kink" else np.float64)
               for key in ("f_plus", "f_minus", "step", "kink")} if not in_order else {}
    for name, positions in groups.items():
        group = coords[positions[0]:positions[-1] + 1] if in_order else list(map(coords.__getitem__, positions))
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
        if in_order:
            result.extend(diffs)
        for key, column in columns.items():
            column[positions] = getattr(diffs, key)
    if not in_order:
        result = Differences(*(column.tolist() for column in columns.values()))
    return result, reason


def _in_order(groups: dict[str, list[int]]) -> bool:
    """Whether the groups are consecutive runs 0..n-1 in their order (then results concatenate)."""
    start = 0
    for positions in groups.values():
        if positions[0] != start or positions[-1] != start + len(positions) - 1:
            return False
        start += len(positions)
    return True


def _most_sensitive(group: list[Coordinate], analytic: dict | None) -> int:
    if not analytic:
        return 0
    grad = analytic[group[0].name].reshape(-1)
    flats = flat_index(group, device=grad.device)
    return int(grad[flats].abs().argmax())


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else ""
    return line if len(line) <= 160 else line[:157] + "..."


__all__ = ["LeafSwap", "PerturbedTensor", "batched_differences", "differences"]
