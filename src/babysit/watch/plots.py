"""The monitor's plots, drawn from its records into ``run_dir/watch/plots/*.png``.

One figure per instrument of the notes: the loss against epochs (linear and log scale), train
and validation accuracy, update:weight ratios per tensor against the 1e-3 target, activation
and gradient histograms per layer, the RMS gradient per tensor, and the first layer's weights.
Plot data is gathered from the :class:`~babysit.watch.records.History` apart from drawing.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..rundir import RunDir  # noqa: E402
from . import first_layer  # noqa: E402
from .curves import moving_average  # noqa: E402
from .records import History, load_history  # noqa: E402

TRAIN, VAL, TARGET = "#1f77b4", "#d62728", "#2ca02c"


def draw_all(run_dir: str | Path | RunDir, history: History | None = None) -> list[Path]:
    """Draw every plot the records allow; returns the PNG paths written."""
    run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    history = history if history is not None else load_history(run_dir)
    written = []
    for name, draw in (("loss", loss), ("accuracy", accuracy), ("update_ratios", update_ratios),
                       ("activations", activations), ("gradients", gradients),
                       ("gradient_norms", gradient_norms), ("first_layer", first_layer_weights)):
        fig = draw(history, run_dir) if name == "first_layer" else draw(history)
        if fig is None:
            continue
        written.append(run_dir.savefig(fig, f"watch/plots/{name}.png"))
        plt.close(fig)
    return written


def loss(h: History):
    """Per-step loss against epochs, linear and log, with its moving average."""
    rows = [r for r in h.steps if isinstance(r["loss"], (int, float)) and math.isfinite(r["loss"])]
    if not rows:
        return None
    position = h.epoch_position()
    x = np.array([position(r["step"]) for r in rows])
    y = np.array([r["loss"] for r in rows])
    per_epoch = max(len(rows) // max(len(h.epochs), 1), 1)
    trend = moving_average(y, max(3, min(per_epoch, len(y) // 4 or 1)))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, scale in zip(axes, ("linear", "log")):
        ax.plot(x, y, color=TRAIN, alpha=0.3, lw=0.8, label="per step")
        ax.plot(x, trend, color=TRAIN, lw=2, label="moving average")
        if scale == "log" and (y > 0).all():
            ax.set_yscale("log")
        ax.set(xlabel="epoch", ylabel="loss", title=f"training loss ({scale} scale)")
        ax.grid(alpha=0.3)
    val = [(r["epoch"], r["val_loss"]) for r in h.epochs if _finite(r.get("val_loss"))]
    if val:
        for ax in axes:
            ax.plot(*zip(*val), "o-", color=VAL, ms=4, label="validation (per epoch)")
    axes[0].legend(frameon=False)
    fig.tight_layout()
    return fig


def accuracy(h: History):
    rows = [r for r in h.epochs if "train_acc" in r or "val_acc" in r]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for key, color, label in (("train_acc", TRAIN, "train"), ("val_acc", VAL, "validation")):
        pts = [(r["epoch"], r[key]) for r in rows if _finite(r.get(key))]
        if pts:
            ax.plot(*zip(*pts), "o-", color=color, ms=4, label=label)
    ax.set(xlabel="epoch", ylabel="accuracy", title="train / validation accuracy (a big gap: overfitting)")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def update_ratios(h: History):
    """log10 of ||dw||/||w|| per tensor against epochs; the notes' target ~1e-3 dashed."""
    if not h.ratios:
        return None
    fig, ax = _per_tensor(h, h.ratios, "ratios", range(len(h.param_names)), "viridis",
                          "update:weight ratio per tensor (solid: weights, dotted: biases)", "||dw|| / ||w||",
                          smooth=max(3, min(len(h.ratios) // 20, 50)))
    target = h.meta.get("target_ratio", 1e-3)
    ax.axhline(target, color=TARGET, ls="--", lw=1.5, label=f"target ~{target:g}")
    ax.axhspan(target / 10, target * 10, color=TARGET, alpha=0.07)
    ax.legend(fontsize=7, ncol=2, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def gradient_norms(h: History):
    """RMS gradient per weight tensor over training: vanishing shows as a fan of lines."""
    if not h.grad_norms:
        return None
    fig, ax = _per_tensor(h, h.grad_norms, "rms", h.weight_indices, "plasma",
                          "gradient per weight tensor (first layer dark, last light)", "RMS gradient")
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def _per_tensor(h: History, records: list[dict], key: str, tensors, cmap: str, title: str, ylabel: str,
                smooth: int = 0):
    """One line per tensor index in `tensors` of ``record[key]`` against epochs, log scale;
    with `smooth`, the moving average of log10 over that many samples. Weights solid, biases dotted."""
    position = h.epoch_position()
    x = np.array([position(r["step"]) for r in records])
    values = np.array([r[key] for r in records], dtype=float)
    colors, weights, tensors = plt.get_cmap(cmap), set(h.weight_indices), list(tensors)
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for k, i in enumerate(tensors):
        col = values[:, i]
        ok = np.isfinite(col) & (col > 0)
        if ok.sum() < 2:
            continue
        y = 10 ** moving_average(np.log10(col[ok]), smooth) if smooth else col[ok]
        ax.plot(x[ok], y, lw=1.6 if i in weights else 0.8, ls="-" if i in weights else ":",
                color=colors(k / max(len(tensors) - 1, 1)), label=h.param_names[i])
    ax.set(yscale="log", xlabel="epoch", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3, which="both")
    return fig, ax


def _histogram_grid(h: History, records: list[dict], title: str, xlabel: str, describe=None):
    """One panel per layer in forward order: the first sampled histogram (light), the last (dark)."""
    kinds = {layer["name"]: layer["kind"] for layer in h.meta.get("layers", [])}
    layers: dict[str, list[dict]] = {name: [] for name in kinds}
    for r in records:
        layers.setdefault(r["layer"], []).append(r)
    layers = {name: recs for name, recs in layers.items() if recs}
    if not layers:
        return None
    n = len(layers)
    cols, rows = min(n, 4), math.ceil(n / min(n, 4))
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.6 * rows), squeeze=False)
    for ax, (layer, recs) in zip(axes.flat, layers.items()):
        for rec, alpha in ((recs[0], 0.35), (recs[-1], 0.9)):
            counts = np.asarray(rec["counts"], dtype=float)
            low, high = rec["low"], rec["high"]
            if not (_finite(low) and _finite(high)) or high <= low or counts.sum() == 0:
                continue
            edges = np.linspace(low, high, len(counts) + 1)
            ax.stairs(counts / counts.sum(), edges, fill=alpha < 0.5, alpha=alpha, color=TRAIN,
                      label=f"step {rec['step']}")
        kind = kinds.get(layer, "")
        title = f"layer {layer} ({kind})" if kind else f"layer {layer}"
        ax.set_title(title + (f"\n{describe(recs[-1])}" if describe else ""), fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, frameon=False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def activations(h: History):
    def describe(r):
        if "saturated" in r:
            return f"saturated {r['saturated']:.0%}"
        if "zero_fraction" in r:
            return f"zero {r['zero_fraction']:.0%}"
        return ""
    return _histogram_grid(h, h.activations, "activations per layer (tanh should spread over [-1, 1])",
                           "activation", describe)


def gradients(h: History):
    return _histogram_grid(h, h.gradients, "gradient of the loss w.r.t. each layer's output",
                           "gradient", lambda r: f"RMS {r['rms']:.1e}")


def first_layer_weights(h: History, run_dir: RunDir):
    weight = first_layer.load(run_dir)
    if weight is None:
        return None
    kind, pictures = first_layer.as_pictures(weight, tuple(h.meta.get("input_shape") or ()) or None)
    name = h.meta.get("first_layer") or "first layer"
    if kind == "tiles":
        return _tiles(pictures, f"{name}: first-layer filters (smooth and diverse is good; noisy: "
                                "not converged, bad lr or too little regularization)")
    fig, ax = plt.subplots(figsize=(8, 4))
    limit = float(np.abs(pictures).max()) or 1.0
    image = ax.imshow(pictures, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.03)
    ax.set(xlabel="input", ylabel="unit", title=f"{name}: first-layer weights (units x inputs)")
    fig.tight_layout()
    return fig


def _tiles(pictures: np.ndarray, title: str, limit: int = 64):
    """Each filter scaled to its own range, laid out in a square grid."""
    pictures = pictures[:limit]
    cols = math.ceil(math.sqrt(len(pictures)))
    rows = math.ceil(len(pictures) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.1 * cols + 1, 1.1 * rows + 0.8), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, pic in zip(axes.flat, pictures):
        low, high = pic.min(), pic.max()
        pic = (pic - low) / (high - low) if high > low else np.zeros_like(pic)
        ax.imshow(pic[..., 0] if pic.shape[-1] == 1 else pic, cmap="gray", interpolation="nearest")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
