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
    its generic machinery: ~2 us instead of ~15 for the short arrays the rules look at, which
    adds up to a third of a diagnosis."""
    a = np.sort(np.asarray(values, dtype=float), axis=None)
    n = a.size
    if n == 0 or a[-1] != a[-1]:  # np.sort puts NaN last
        return float("nan")
    m = n // 2
    return float(a[m]) if n % 2 else float((a[m - 1] + a[m]) / 2)


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Centered moving average (shorter at the ends), the trend the noise is measured around."""
    if window <= 1 or len(values) < 2:
        return values.astype(float)
    kernel = np.ones(window)
    total = np.convolve(values, kernel, mode="same")
    count = np.convolve(np.ones_like(values, dtype=float), kernel, mode="same")
    return total / count


def shape(losses: list[float] | np.ndarray, window: int) -> CurveShape | None:
    """Measure a curve of per-step losses; None when there are too few finite ones."""
    values = np.asarray(losses, dtype=float)
    values = values[np.isfinite(values)]
    n = len(values)
    if n < 10:
        return None
    window = int(max(3, min(window, n // 4)))
    trend = moving_average(values, window)
    start = float(median(values[:min(5, n)]))
    end = float(trend[-window:].mean())
    mid = float(trend[n // 2])
    first_drop, second_drop = trend[0] - mid, mid - end
    third = trend[-max(n // 3, 2):]
    return CurveShape(
        steps=n, start=start, end=end, best=float(trend.min()), peak=float(values[min(5, n):].max(initial=start)),
        progress=(start - end) / start if start > 0 else 0.0,
        bend=float(second_drop / first_drop) if first_drop > 0 else float("nan"),
        early_drop=float((start - trend[max(n // 10, 1)]) / start) if start > 0 else 0.0,
        late_drop=float(third[0] - third[-1]),
        noise=relative_noise(values, trend, window, start))


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
