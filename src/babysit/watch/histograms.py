"""Histograms computed on the device, with a range that suits the layer.

A bounded activation gets its natural, fixed range: tanh spreads over [-1, 1] when healthy
(the notes: not all at 0, not all at +-1), sigmoid over [0, 1]. An unbounded quantity (ReLU
outputs, gradients) has no natural range, so it is binned over [0, max] or [-m, m] with
``m = max |x|`` — and m stays on the device too: ``histc(x / m, bins, -1, 1)`` bins over a
fixed range, so nothing is read back to the host when the histogram is taken. A histogram
bins an evenly strided sample of at most 2048 values: plenty for 40 bins, and binning is the
costliest op of a sampled step.

On a CPU there is no device to keep things on, and each of those PyTorch ops costs 5-30 us
(a sampled step made ~10 of them per layer): :func:`host_summary` computes the histogram and
the summaries in one call of the compiled kernel (:mod:`._kernels`), as host numbers, with
the same binning rule (``torch.histc``'s), sample and range.
"""

from __future__ import annotations

import numpy as np
import torch

try:
    from ._kernels import summarize
except ImportError:  # not compiled on this machine: the PyTorch ops serve the CPU too
    summarize = None

# layer kind -> (low, high) of a fixed range, or the shape of a data-scaled one
FIXED_RANGES = {"tanh": (-1.0, 1.0), "hardtanh": (-1.0, 1.0), "softsign": (-1.0, 1.0),
                "sigmoid": (0.0, 1.0), "hardsigmoid": (0.0, 1.0)}
NONNEGATIVE = {"relu", "relu6", "softplus"}
MAX_VALUES = 2048  # a histogram bins at most this many values of a tensor (histc costs ~20 ns each)


def histogram(x: torch.Tensor, kind: str, bins: int) -> tuple[torch.Tensor, torch.Tensor | float, torch.Tensor | float]:
    """``(counts, low, high)`` of the values in `x`: counts on x's device, and the range as
    floats when it is fixed, else as tensors on the device.

    `kind` picks the range: a fixed one for bounded activations, ``[0, max x]`` for
    non-negative ones and ``[-max|x|, max|x|]`` for anything else (gradients included).
    """
    full = x.detach()
    x = sample(full)
    if x.dtype != torch.float32 and x.dtype != torch.float64:
        x = x.float()
    if kind in FIXED_RANGES:
        low, high = FIXED_RANGES[kind]
        return torch.histc(x, bins=bins, min=low, max=high), low, high
    # A zero scale (all values 0, e.g. a dead layer) must not divide by zero: clamp it.
    if kind in NONNEGATIVE:
        scale = full.amax().clamp_min(1e-30)
        return torch.histc(x / scale, bins=bins, min=0.0, max=1.0), 0.0, scale
    # max |x|: abs + amax is ~10x faster on a CPU than vector_norm(x, inf) (NaN propagates alike)
    scale = full.abs().amax().clamp_min(1e-30)
    return torch.histc(x / scale, bins=bins, min=-1.0, max=1.0), -scale, scale


def bin_edges(low: float, high: float, bins: int) -> list[float]:
    step = (high - low) / bins
    return [low + i * step for i in range(bins + 1)]


def sample(x: torch.Tensor) -> torch.Tensor:
    """At most about MAX_VALUES values of `x`, as an evenly strided view (no copy).

    The stride is odd, so it does not line up with the power-of-two widths layers usually
    have (a stride equal to the width would sample one unit only). The range of the
    histogram still comes from all values.
    """
    flat = x.reshape(-1)
    if flat.numel() <= MAX_VALUES:
        return flat
    stride = flat.numel() // MAX_VALUES
    return flat[::stride | 1]


# kind -> (mode, low, high) of the kernel: 0 a fixed range, 1 [0, max x], 2 [-max|x|, max|x|]
HOST_RANGES = {kind: (0, low, high) for kind, (low, high) in FIXED_RANGES.items()}
HOST_RANGES.update({kind: (1, 0.0, 0.0) for kind in NONNEGATIVE})
SYMMETRIC = (2, 0.0, 0.0)
# what a tensor the kernel cannot take raises: on another device or of a dtype NumPy lacks
# (x.numpy(): TypeError), not contiguous (BufferError), float16 or empty (ValueError)
NOT_ON_HOST = (TypeError, BufferError, ValueError)


def host_summary(values: np.ndarray, kind: str, bins: int, edge: float = -1.0,
                 units: np.ndarray | None = None) -> tuple[np.ndarray, float, float, tuple]:
    """``(counts, low, high, (saturated, positives, sum of squares))`` of `values` (a CPU
    tensor's ``.numpy()``: a caller's ``x.detach().numpy()`` raises TypeError for a tensor
    on another device or of a dtype NumPy lacks) as host numbers, in one kernel call: the
    histogram :func:`histogram` would give (the counts as an int64 array), the number of
    values within `edge` of the range's bounds (``edge >= 0``, fixed ranges) and of values
    > 0 (fixed and non-negative ranges; 0 for a symmetric one). `units`, a bool array of
    ``shape[1]`` entries, is OR-ed with "this unit (feature or channel) gave a value > 0".

    Raises one of :data:`NOT_ON_HOST` for values the kernel cannot take (or when it is not
    compiled): the caller then uses the PyTorch ops. Few calls, since a sampled step runs
    with cold caches: the kernel takes the shape from the array itself.
    """
    if summarize is None:
        raise TypeError("babysit.watch._kernels is not compiled")
    mode, low, high = HOST_RANGES.get(kind, SYMMETRIC)
    counts = np.empty(bins, dtype=np.int64)
    low, high, saturated, positives, squares = summarize(values, mode, bins, low, high, MAX_VALUES, edge,
                                                         counts, units)
    return counts, low, high, (saturated, positives, squares)  # the counts' list waits for the batch read
