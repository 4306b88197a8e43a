"""The report's own plots, drawn from ``metrics.jsonl`` when the monitor drew none.

A plain ``babysit train`` run has one record per epoch and no monitor plots; these two
figures still give the notes' first two views of training: the loss against epochs (linear and
log scale: on a log axis a "stalls high" curve and a slow linear decrease look different), and
training against validation accuracy. The functions return matplotlib figures; the page
embeds them as SVG (:mod:`babysit.report.figures`).
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

TRAIN, VAL = "#1f77b4", "#d62728"


def _series(records: list[dict], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for r in records:
        value = r.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value) and "epoch" in r:
            xs.append(r["epoch"])
            ys.append(float(value))
    return xs, ys


def _style(ax, xlabel: str, ylabel: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3, which="both")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.spines[["top", "right"]].set_visible(False)


def loss_curves(records: list[dict]):
    """Training and validation loss per epoch, linear and log scale side by side."""
    train, val = _series(records, "train_loss"), _series(records, "val_loss")
    if not train[0] and not val[0]:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, scale in zip(axes, ("linear", "log")):
        ax.plot(*train, "o-", color=TRAIN, ms=3, label="train (mean over the epoch)")
        ax.plot(*val, "s--", color=VAL, ms=3, label="validation (end of epoch)")
        positive = all(y > 0 for y in train[1] + val[1])
        ax.set_yscale(scale if positive else "linear")
        ax.set_title(f"loss, {scale} scale" if positive or scale == "linear"
                     else "loss (log scale impossible: values <= 0)")
        _style(ax, "epoch", "loss")
    axes[0].legend(frameon=False)
    return fig


def accuracy_curves(records: list[dict]):
    """Training against validation accuracy per epoch; the gap between them is the overfit."""
    train, val = _series(records, "train_acc"), _series(records, "val_acc")
    if not train[0] and not val[0]:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(*train, "o-", color=TRAIN, ms=3, label="train")
    ax.plot(*val, "s--", color=VAL, ms=3, label="validation")
    if train[0] and val[0] and train[0][-1] == val[0][-1]:
        gap = train[1][-1] - val[1][-1]
        ax.annotate(f"gap {gap:+.3f}", (val[0][-1], val[1][-1]), textcoords="offset points",
                    xytext=(-60, -18), fontsize=9)
    ax.set_ylim(0, 1.02)
    ax.set_title("train and validation accuracy per epoch")
    _style(ax, "epoch", "accuracy (fraction correct)")
    ax.legend(frameon=False, loc="lower right")
    return fig
