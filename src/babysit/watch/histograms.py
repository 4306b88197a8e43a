"""Histograms computed on the device, with a range that suits the layer.

A bounded activation gets its natural, fixed range: tanh spreads over [-1, 1] when healthy
(the notes: not all at 0, not all at +-1), sigmoid over [0, 1]. An unbounded quantity (ReLU
outputs, gradients) is binned over [0, m] or [-m, m], ``m = max |x|`` kept on the device
(``histc(x / m, bins, -1, 1)``: nothing is read back). At most 2048 evenly strided values are
binned: plenty for 40 bins, and binning is the costliest op of a sampled step.
"""

from __future__ import annotations

import torch

# bounded layer kind -> (low, high), its fixed range
FIXED_RANGES = {"tanh": (-1.0, 1.0), "hardtanh": (-1.0, 1.0), "softsign": (-1.0, 1.0),
                "sigmoid": (0.0, 1.0), "hardsigmoid": (0.0, 1.0)}
NONNEGATIVE = {"relu", "relu6", "softplus"}
MAX_VALUES = 2048  # a histogram bins at most this many values of a tensor


def histogram(x: torch.Tensor, kind: str, bins: int) -> tuple[torch.Tensor, torch.Tensor | float, torch.Tensor | float]:
    """``(counts, low, high)`` of the values in `x`, counts on x's device; the range by `kind`:
    fixed (floats) for bounded activations, else ``[0, max x]`` for non-negative ones and
    ``[-max|x|, max|x|]`` for the rest (gradients included), as device tensors."""
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
    """At most about MAX_VALUES values of `x`, an evenly strided view; the stride is odd, so it
    does not line up with the power-of-two widths of layers (it would sample one unit)."""
    flat = x.reshape(-1)
    if flat.numel() <= MAX_VALUES:
        return flat
    stride = flat.numel() // MAX_VALUES
    return flat[::stride | 1]
