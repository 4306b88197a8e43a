"""Kinks: which input "wins" each non-differentiable operation, recorded at f(x+h) and f(x-h).

A kink is a point where the objective is not differentiable: ``max(0, x)`` at 0, the hinge of
the SVM loss, the max of a maxout unit or a pooling window when two inputs tie. If the two
evaluations of a centered difference fall on different sides of a kink, the numeric gradient
mixes two slopes and cannot be trusted — even when the analytic gradient is right.

The notes' remedy is to track the *winner* of every such operation: for ``max(x, y)`` whether
x or y was larger, for ``relu(x)`` whether x was positive, for max pooling the index of the
maximum in each window. :class:`KinkRecorder` is a :class:`TorchDispatchMode`, so it sees the
ATen operations every call decomposes into — ``F.relu``, ``nn.ReLU``, ``torch.clamp``,
``x.abs()``, ``amax`` in :class:`~babysit.models.Maxout`, ``nn.MaxPool2d``, ops inside custom
``torch.autograd.Function`` forwards alike. It runs in one of two roles:

* *record*: keep the winners of every kink op (at f(x+h));
* *compare*: check each op's winners against a recorded run (at f(x-h)) and remember whether
  any differs — without keeping a second copy of them.

Under ``vmap`` the mode sees the physical batched tensors, so a mismatch tells that *some*
perturbation of the batch crossed a kink; :mod:`babysit.check.batched` then bisects the batch
to find which.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten


def _positive(args, kwargs, out):
    return args[0] > 0


def _sign(x: torch.Tensor) -> torch.Tensor:
    return (x > 0).to(torch.int8) - (x < 0).to(torch.int8)


def _abs(args, kwargs, out):
    return _sign(args[0])


def _threshold(args, kwargs, out):
    return args[0] > args[1]


def _region(x: torch.Tensor, low, high) -> torch.Tensor:
    """-1 below `low`, 0 in between, +1 above `high` (either bound may be absent)."""
    region = torch.zeros(x.shape, dtype=torch.int8, device=x.device)
    if low is not None:
        region = region - (x < low).to(torch.int8)
    if high is not None:
        region = region + (x > high).to(torch.int8)
    return region


def _clamp(args, kwargs, out):
    x = args[0]
    low = args[1] if len(args) > 1 else kwargs.get("min")
    high = args[2] if len(args) > 2 else kwargs.get("max")
    return _region(x, low, high)


def _clamp_min(args, kwargs, out):
    return args[0] > args[1]


def _clamp_max(args, kwargs, out):
    return args[0] < args[1]


def _hardtanh(args, kwargs, out):
    low = args[1] if len(args) > 1 else kwargs.get("min_val", -1.0)
    high = args[2] if len(args) > 2 else kwargs.get("max_val", 1.0)
    return _region(args[0], low, high)


def _hard_sigmoid(args, kwargs, out):  # hardsigmoid and hardswish are linear pieces joined at +-3
    return _region(args[0], -3.0, 3.0)


def _shrink(args, kwargs, out):
    lambd = args[1] if len(args) > 1 else kwargs.get("lambd", 0.5)
    return _region(args[0], -lambd, lambd)


def _pairwise(args, kwargs, out):  # maximum(a, b), minimum(a, b): which of the two is larger
    return _sign(args[0] - args[1])


def _argmax_mask(args, kwargs, out):
    """For a reduction max/min/amax/amin: the entries equal to the result (ties show as several)."""
    x = args[0]
    values = out[0] if isinstance(out, (tuple, list)) else out
    if values.dim() == 0 or values.dim() == x.dim():
        return x == values
    dims = args[1] if len(args) > 1 else kwargs.get("dim", ())
    dims = [dims] if isinstance(dims, int) else list(dims) or list(range(x.dim()))
    for d in sorted(d % x.dim() for d in dims):
        values = values.unsqueeze(d)
    return x == values


def _indices(args, kwargs, out):  # ops that already return the winners: pooling, sort, topk
    return out[1]


def _max_pool_indices(pool_with_indices: Callable) -> Callable:
    def winners(args, kwargs, out):
        return pool_with_indices(*args, **kwargs)[1]
    return winners


def _where(args, kwargs, out):
    return args[0]


def _multi_margin(args, kwargs, out):
    """Which margins ``margin - s_y + s_j`` are positive in the multiclass hinge loss."""
    scores, target = args[0], args[1]
    margin = args[3] if len(args) > 3 else kwargs.get("margin", 1)
    if scores.dim() == 1:
        scores, target = scores[None], target.reshape(1)
    correct = scores.gather(-1, target[..., None].long())
    return (scores - correct + margin) > 0


def _ops(names: str, rule: Callable) -> dict:
    table = {}
    for name in names.split():
        packet_name, _, overload = name.partition(".")
        packet = getattr(aten, packet_name, None)
        op = getattr(packet, overload or "default", None) if packet is not None else None
        if op is not None:
            table[op] = rule
    return table


#: ATen op -> function (args, kwargs, result) giving the "winner" tensor of that op.
WINNER_RULES: dict = {
    **_ops("relu relu_ leaky_relu leaky_relu_ elu elu_ selu selu_ celu celu_ prelu "
           "_prelu_kernel rrelu_with_noise", _positive),
    **_ops("threshold threshold_", _threshold),
    **_ops("hardtanh hardtanh_", _hardtanh),
    **_ops("hardsigmoid hardsigmoid_ hardswish hardswish_", _hard_sigmoid),
    **_ops("hardshrink softshrink", _shrink),
    **_ops("clamp clamp_ clamp.Tensor clamp_.Tensor clip clip_", _clamp),
    **_ops("clamp_min clamp_min_ clamp_min.Tensor clamp_min_.Tensor", _clamp_min),
    **_ops("clamp_max clamp_max_ clamp_max.Tensor clamp_max_.Tensor", _clamp_max),
    **_ops("abs abs_ absolute", _abs),
    **_ops("maximum minimum fmax fmin max.other min.other", _pairwise),
    **_ops("max min max.dim min.dim amax amin", _argmax_mask),
    **_ops("max_pool2d_with_indices max_pool3d_with_indices adaptive_max_pool2d "
           "adaptive_max_pool3d sort sort.stable topk kthvalue median.dim cummax cummin", _indices),
    **_ops("max_pool2d", _max_pool_indices(torch.nn.functional.max_pool2d_with_indices)),
    **_ops("max_pool3d", _max_pool_indices(torch.nn.functional.max_pool3d_with_indices)),
    **_ops("where.self where.ScalarSelf where.ScalarOther where.Scalar", _where),
    **_ops("multi_margin_loss", _multi_margin),
}

# max_pool1d takes (N, C, L); the 2-d rule with a (1, k) window would need different args.
WINNER_RULES[aten.max_pool1d.default] = _max_pool_indices(
    lambda x, k, *rest, **kw: torch.nn.functional.max_pool1d(x, k, *rest, **kw, return_indices=True))

# Looked up by id for every op a checked function runs: an OpOverload hashes in Python, id() in C.
_RULES_BY_ID = {id(op): rule for op, rule in WINNER_RULES.items()}


class KinkRecorder(TorchDispatchMode):
    """Records the winners of every kink op while active; or compares them with a recording.

    ``KinkRecorder()`` records; ``KinkRecorder(reference=recorder)`` compares each op's winners
    with those of `recorder` in order, and afterwards ``.crossed`` says whether any differed
    (a different op sequence counts as a difference). ``.ops`` counts the kink ops seen. With
    `measure`, ``.bytes`` is the memory the results of all ops hold: each storage counted once
    (a view, an expand or a transpose allocates nothing), to size batches by.
    """

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # torch wraps a mode's __torch_dispatch__ so that torch.compile does not trace into it;
        # nothing compiles here, and the wrapper imported torch._dynamo on the first check (1-4
        # s of a first call) and cost a few microseconds on every op of every evaluation.
        return False

    def __init__(self, reference: "KinkRecorder | None" = None, measure: bool = False):
        super().__init__()
        self.reference = reference
        self._storages: set[int] | None = set() if measure else None
        self.winners: list[torch.Tensor] = []
        self.ops: Counter = Counter()
        self.crossed = False
        self.crossed_ops: set[str] = set()  # names of the ops whose winners differed
        self.bytes = 0
        self._position = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self._storages is not None and isinstance(out, torch.Tensor):
            self._measure(args, out)
        rule = _RULES_BY_ID.get(id(func))
        if rule is not None:
            self._note(func, rule(args, kwargs, out))
        return out

    def _measure(self, args, out: torch.Tensor) -> None:
        """Add the result's storage unless it is one seen before: an input's (a view of it,
        the parameters' own memory) or an earlier result's."""
        for a in args:
            if isinstance(a, torch.Tensor):
                self._storages.add(_storage_address(a))
        address = _storage_address(out)
        if address is not None and address not in self._storages:
            self._storages.add(address)
            self.bytes += out.untyped_storage().nbytes()

    def _note(self, func, winners: torch.Tensor) -> None:
        self.ops[func.overloadpacket.__name__] += 1
        if self.reference is None:
            self.winners.append(winners)
            return
        ref = self.reference.winners
        i, self._position = self._position, self._position + 1
        if i >= len(ref) or ref[i].shape != winners.shape or not torch.equal(ref[i], winners):
            self.crossed = True
            self.crossed_ops.add(func.overloadpacket.__name__)

    def __exit__(self, *exc):
        if self.reference is not None and self._position != len(self.reference.winners):
            self.crossed = True
        return super().__exit__(*exc)


def _storage_address(t: torch.Tensor) -> int | None:
    """Where a tensor's memory starts; None for layouts without one storage (sparse, nested)."""
    try:
        return t.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):
        return None


def describe(ops: Counter) -> str:
    """``"relu x2, amax x1"``: the kink ops an objective runs, for the report."""
    return ", ".join(f"{name} x{count}" for name, count in sorted(ops.items())) or "none"
