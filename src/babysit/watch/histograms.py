"""Histograms computed on the device, with a range that suits the layer.

A bounded activation gets its natural, fixed range: tanh spreads over [-1, 1] when healthy
(the notes: not all at 0, not all at +-1), sigmoid over [0, 1]. An unbounded quantity (ReLU
outputs, gradients) has no natural range, so it is binned over [0, max] or [-m, m] with
``m = max |x|`` — and m stays on the device too: ``histc(x / m, bins, -1, 1)`` bins over a
fixed range, so nothing is read back to the host when the histogram is taken. A histogram
bins an evenly strided sample of at most 2048 values: plenty for 40 bins, and binning is the
costliest op of a sampled step.
"""

from __future__ import annotations

import torch

# layer kind -> (low, high) of a fixed range, or the shape of a data-scaled one
FIXED_RANGES = {"tanh": (-1.0, 1.0), "hardtanh": (-1.0, 1.0), "softsign": (-1.0, 1.0),
                "sigmoid": (0.0, 1.0), "hardsigmoid": (0.0, 1.0)}
NONNEGATIVE = {"relu", "relu6", "softplus"}
MAX_VALUES = 2048  # a histogram bins at most this many values of a tensor


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
        scale = full.amax().float().clamp_min(1e-30)
        return torch.histc(x / scale, bins=bins, min=0.0, max=1.0), 0.0, scale
    scale = full.abs().amax().float().clamp_min(1e-30)  # max |x| (NaN propagates)
    return torch.histc(x / scale, bins=bins, min=-1.0, max=1.0), -scale, scale


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
