"""The preflight's two pictures: the tiny set being memorized, and real against zeroed inputs.

Drawn from the numbers in the report (``curve``, ``real_curve``, ``zeroed_curve``) into
``preflight/plots/*.png`` of the run directory, where the HTML report picks them up.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..rundir import RunDir  # noqa: E402
from .report import PreflightReport  # noqa: E402

REAL, ZEROED, TARGET = "#1f77b4", "#9a9a9a", "#d62728"


def save_plots(report: PreflightReport, run_dir: RunDir) -> list[Path]:
    """Draw the plots the report has numbers for; returns the files written."""
    written = []
    for name, draw in (("overfit_tiny", _overfit), ("input_dependence", _dependence)):
        check = report.checks.get(name)
        if check is None:
            continue
        fig = draw(check)
        try:
            written.append(run_dir.savefig(fig, f"preflight/plots/{name}.png"))
        finally:
            plt.close(fig)
    return written


def _overfit(check):
    fig, ax = plt.subplots(figsize=(6, 3.6))
    curve = np.asarray(check.curve, dtype=float)
    ax.plot(np.arange(len(curve)), curve, color=REAL, lw=1.8, label="loss on the tiny set")
    ax.axhline(check.target_loss, color=TARGET, ls="--", lw=1, label=f"target {check.target_loss:.3g}")
    ax.set_yscale("log")
    ax.set_xlabel("full-batch step")
    ax.set_ylabel("data loss (reg 0)")
    verdict = (f"memorized in {check.steps} steps" if check.passed
               else f"not memorized in {check.steps} steps")
    ax.set_title(f"overfit_tiny: {check.examples} examples, {verdict}", fontsize=10)
    ax.legend(frameon=False, fontsize=8)
    _tidy(ax)
    return fig


def _dependence(check):
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for key, color, label in (("real_curve", REAL, f"real inputs: held-out acc {check.real_acc:.0%}"),
                              ("zeroed_curve", ZEROED, f"zeroed inputs: held-out acc {check.zeroed_acc:.0%}")):
        curve = np.asarray(check[key], dtype=float)
        steps = np.arange(1, len(curve) + 1)
        ax.plot(steps, curve, color=color, lw=0.6, alpha=0.35)
        ax.plot(steps, _smooth(curve), color=color, lw=1.8, label=label)
    ax.set_xlabel("training step (minibatch)")
    ax.set_ylabel("training loss")
    ax.set_title(f"input_dependence: gain {check.gain:+.0%} "
                 f"({'ok' if check.passed else 'FAIL'}, needs {check.margin:.0%})", fontsize=10)
    ax.legend(frameon=False, fontsize=8)
    _tidy(ax)
    return fig


def _smooth(values: np.ndarray, window: int = 10) -> np.ndarray:
    """Running mean over the last `window` steps (shorter at the start)."""
    sums = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    return (sums[idx] - sums[lo]) / (idx - lo)


def _tidy(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(alpha=0.25, lw=0.5)
