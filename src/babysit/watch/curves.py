"""The shape of a loss curve, as numbers: start, trend, progress, bend and noise.

The notes read the loss curve by eye — a low learning rate gives a nearly linear decrease, a
good one a fast exponential-looking drop, a too-high one drops fast and stalls at a bad loss,
a much-too-high one explodes, and a small batch makes the curve wiggle. These helpers measure
those features on the per-step losses so the rules in :mod:`babysit.watch.diagnoses` can judge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class CurveShape:
    steps: int  # finite losses measured
    start: float  # median of the first few losses: where training began (about chance)
    end: float  # mean of the trend over the last window
    best: float  # lowest point of the trend
    peak: float  # highest finite loss seen after the start
    progress: float  # (start - end) / start: share of the starting loss removed
    bend: float  # drop in the second half / drop in the first half (1 = a straight line)
    early_drop: float  # share of the starting loss removed in the first tenth of training
    late_drop: float  # how much the trend fell over the last third of training
    noise: float  # spread of the losses around the trend late in training, over the start loss


def median(values) -> float:
    """The median as ``np.median`` gives it (NaN when any value is NaN, NaN when empty), without
    its generic machinery, which costs more than the sort for the short arrays the rules read."""
    a = np.sort(np.asarray(values, dtype=float), axis=None)
    n = a.size
    if n == 0 or a[-1] != a[-1]:  # np.sort puts NaN last
        return float("nan")
    m = n // 2
    return float(a[m]) if n % 2 else float((a[m - 1] + a[m]) / 2)


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Centered moving average (shorter at the ends), the trend the noise is measured around."""
    window = min(window, len(values))  # a longer kernel would make np.convolve's output longer
    if window <= 1:
        return values.astype(float)
    kernel = np.ones(window)
    total = np.convolve(values, kernel, mode="same")
    count = np.convolve(np.ones_like(values, dtype=float), kernel, mode="same")
    return total / count


@dataclass
class LossNumbers:
    """What the loss-curve rules read of the per-step losses, measured in one go."""

    finite: int  # losses that are finite (the others are left out of the rest)
    first_nonfinite: int  # index of the first NaN/Inf loss, -1 if none
    early: float  # median of the first min(3, finite - 1) finite losses (NaN with fewer than 2)
    top: float  # the largest finite loss after the first (NaN with fewer than 2)
    shape: CurveShape | None  # None with fewer than 10 finite losses


def measure(losses: list[float] | np.ndarray, window: int) -> LossNumbers:
    """The loss-curve numbers of the per-step `losses`, over the n finite losses x and their
    trend, a moving average over ``w = max(3, min(window, n // 4))`` losses: start = median of
    x[:5]; end = mean of trend[-w:]; best = min(trend); progress = (start - end) / start; bend
    = (trend[n//2] - end) / (trend[0] - trend[n//2]); early drop = (start - trend[n//10]) /
    start; late drop = the trend's fall over the last third; noise: :func:`relative_noise`."""
    values = np.asarray(losses, dtype=float)
    ok = np.isfinite(values)
    bad = np.flatnonzero(~ok)
    x = values[ok]
    n = len(x)
    early, top = (median(x[:min(3, n - 1)]), float(x[1:].max())) if n >= 2 else (float("nan"), float("nan"))
    numbers = LossNumbers(n, int(bad[0]) if len(bad) else -1, early, top, None)
    if n < 10:
        return numbers
    w = int(max(3, min(window, n // 4)))
    trend = moving_average(x, w)
    start, end = median(x[:min(5, n)]), float(trend[-w:].mean())
    first_drop, second_drop = trend[0] - trend[n // 2], trend[n // 2] - end
    numbers.shape = CurveShape(
        steps=n, start=start, end=end, best=float(trend.min()), peak=float(x[min(5, n):].max(initial=start)),
        progress=(start - end) / start if start > 0 else 0.0,
        bend=float(second_drop / first_drop) if first_drop > 0 else float("nan"),
        early_drop=float((start - trend[max(n // 10, 1)]) / start) if start > 0 else 0.0,
        late_drop=float(trend[-max(n // 3, 2)] - trend[-1]), noise=relative_noise(x, trend, w, start))
    return numbers


def relative_noise(values: np.ndarray, trend: np.ndarray, window: int, height: float) -> float:
    """How thick the curve looks: spread of the loss around its trend, as a share of the plot.

    Median over the windows of the second half of std(loss - trend) / `height` (the starting
    loss: the height of the loss plot a person would look at). Measured against the plot rather
    than the current loss, because near zero loss any batch looks noisy in relative terms while
    the curve on screen is already a thin line; the second half, because at the start every
    example has about the chance loss and no batch size wiggles.
    """
    start = len(values) // 2
    blocks = (len(values) - start) // window  # whole windows of the second half
    if blocks == 0 or height <= 0:
        return 0.0
    deviation = (values - trend)[start:start + blocks * window].reshape(blocks, window)
    return float(median(deviation.std(axis=1)) / height)  # one std over all windows at once
