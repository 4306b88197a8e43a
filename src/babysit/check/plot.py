"""The notes' picture of the step size: relative error against h, log-log, per tensor.

Too large an h and the truncation error O(h^2) of the centered difference dominates; too
small and round-off ~eps |f| / h does: the curve is a V, and the sweep keeps the h at its
bottom. Drawn for the tensors with the largest errors (where a wrong h would show first),
with the chosen h marked.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..rundir import RunDir  # noqa: E402
from .report import GradcheckReport  # noqa: E402

WORST_TENSORS = 5
FLOOR = 1e-17  # exact agreement (error 0) drawn here: a log axis has no 0


def worst_tensors(report: GradcheckReport, count: int = WORST_TENSORS) -> list[str]:
    """The tensors with the largest error over the sweep, worst first."""
    worst: dict[str, float] = {}
    for entry in report.sweep or []:
        for name, error in entry.get("per_tensor", {}).items():
            worst[name] = max(worst.get(name, 0.0), error)
    return sorted(worst, key=worst.get, reverse=True)[:count]


def plot_sweep(report: GradcheckReport, run_dir: RunDir, rel: str = "gradcheck/plots/h_sweep.png"):
    """Draw the sweep into the run directory; None when no sweep ran."""
    if not report.sweep:
        return None
    steps = [e["h"] for e in report.sweep]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name in worst_tensors(report):
        errors = [max(e["per_tensor"].get(name, 0.0), FLOOR) for e in report.sweep]
        ax.loglog(steps, errors, marker="o", label=name)
    ax.axvline(report.h, color="black", linestyle="--", linewidth=1)
    ax.annotate(f"chosen h = {report.h:g}", (report.h, 0.03), xycoords=("data", "axes fraction"),
                xytext=(4, 0), textcoords="offset points", va="bottom", fontsize=8)
    for level, band in ((1e-2, "wrong above"), (1e-4, "uneasy above"), (1e-7, "happy below")):
        ax.axhline(level, color="#bbbbbb", linewidth=0.8)
        ax.annotate(band, (1.0, level), xycoords=("axes fraction", "data"), xytext=(-2, 2),
                    textcoords="offset points", ha="right", fontsize=7, color="#777777")
    ax.set_xlabel("step h")
    ax.set_ylabel("worst relative error in the tensor")
    ax.set_title("Gradient check: relative error against h (worst tensors)")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, fontsize=8)
    path = run_dir.savefig(fig, rel)
    plt.close(fig)
    return path
