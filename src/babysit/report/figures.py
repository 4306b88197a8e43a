"""The page's figures: crisp at any screen density, titled by what they plot, axes labelled.

Line plots are embedded as SVG (they stay sharp on any display and at any zoom); pictures made
of pixels (the first layer's filters) as PNG at twice the resolution they are shown at.

The monitor's figures are drawn by the monitor's own functions (:mod:`babysit.watch.plots`),
from its records, then adjusted for the page: each title says what is plotted (the diagnoses,
not the titles, interpret), every axis has its label, line colours stay dark enough to see on
white, and the validation accuracy carries its 95% interval where the split's size is known.
The first layer's filters are drawn here: all of them (or as many as fit, saying how many), on
one colour scale shared by all, so that a weak filter looks weak.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import re

import numpy as np

from ..stats import wilson_interval
from .markup import e

MAX_FILTERS = 256  # drawn in full up to this many; beyond, the first MAX_FILTERS, said so
TITLES = {
    "accuracy": "train and validation accuracy per epoch",
    "activations": "activations per layer: distribution over units, first and last sample",
    "gradients": "gradient of the loss w.r.t. each layer's output: first and last sample",
}


def _pyplot():
    """matplotlib's pyplot on the file backend, imported only when a figure is drawn (a second
    of the page's time when every figure comes from the cache)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def svg_figure(fig, caption: str) -> str:
    """`fig` as an embedded SVG ``<figure>`` (the figure is closed), shown at its natural size
    (10 pt text reads as about 13 px) and narrower only where the page is."""
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    svg = buffer.getvalue()
    found = re.search(rb'<svg[^>]*\swidth="([\d.]+)pt"', svg)
    width = f' style="width:{round(float(found.group(1)) * 4 / 3)}px"' if found else ""
    uri = "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")
    return (f"<figure><img src=\"{uri}\" alt=\"{e(caption)}\"{width}>"
            f"<figcaption>{e(caption)}</figcaption></figure>")


def png2x_figure(fig, caption: str, dpi: int = 100) -> str:
    """`fig` as a PNG at twice `dpi`, shown at its 1x size (sharp on high-density screens)."""
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=2 * dpi, bbox_inches="tight")
    width = int(round(fig.get_window_extent().width * dpi / fig.dpi))
    plt.close(fig)
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f"<figure><img src=\"{uri}\" alt=\"{e(caption)}\" style=\"width:{width}px\">"
            f"<figcaption>{e(caption)}</figcaption></figure>")


# -- the monitor's figures ---------------------------------------------------------------------

TOPICS = ("curves", "accuracy", "ratios", "histograms", "filters")


def monitor_figures(run, n_val: int | None = None, modules: list[dict] | None = None) -> dict[str, list[str]]:
    """{"curves", "accuracy", "ratios", "histograms", "filters": [figure HTML]} from ``watch/``.

    Drawn once per state of ``watch/`` (its files' names, sizes and modification times), then
    read from the run's report cache: a finished run's records no longer change. `modules`
    (name, type, parameters) names the histogram panels."""
    from .cache import cached, figure_list

    watch = run.path / "watch"
    if not (watch / "meta.json").is_file():
        return {t: [] for t in TOPICS}
    state = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in watch.iterdir() if p.is_file())
    key = json.dumps([state, n_val, modules], default=str)
    topics = cached(run.path, "monitor-figures", hashlib.sha256(key.encode()).hexdigest(),
                    lambda: _monitor_figures(run, n_val, modules),
                    trust=lambda v: isinstance(v, dict) and all(figure_list(v.get(t, [])) for t in TOPICS))
    return {t: list(topics.get(t, [])) for t in TOPICS}


def _monitor_figures(run, n_val: int | None, modules: list[dict] | None) -> dict[str, list[str]]:
    plt = _pyplot()
    topics: dict[str, list[str]] = {t: [] for t in TOPICS}
    try:
        from ..watch import plots as monitor
        from ..watch.records import load_history

        history = load_history(run.path)
    except Exception:  # an installation without the monitor, or unreadable records
        return topics
    drawings = (("curves", "loss", monitor.loss, "training loss per step (moving average) and validation loss"),
                ("accuracy", "accuracy", monitor.accuracy, TITLES["accuracy"]),
                ("ratios", "update_ratios", monitor.update_ratios, "update:weight ratio ||Δw||/||w|| per tensor"),
                ("histograms", "gradient_norms", monitor.gradient_norms, "RMS gradient per weight tensor"),
                ("histograms", "activations", monitor.activations, TITLES["activations"]),
                ("histograms", "gradients", monitor.gradients, TITLES["gradients"]))
    for topic, name, draw, caption in drawings:
        try:
            fig = draw(history)
        except Exception:
            plt.close("all")
            continue
        if fig is None:
            continue
        _adjust(fig, name, n_val, modules)
        topics[topic].append(svg_figure(fig, caption))
    filters = first_layer_figure(run, history.meta)
    if filters:
        topics["filters"].append(filters)
    return topics


def _adjust(fig, name: str, n_val: int | None, modules: list[dict] | None = None) -> None:
    """The page's corrections to a monitor figure: title, axis labels, colours, intervals."""
    from matplotlib.ticker import MaxNLocator

    axes = fig.axes
    if name == "accuracy" and axes:
        ax = axes[0]
        ax.set_title(TITLES["accuracy"])
        ax.set_ylabel("accuracy (fraction correct)")
        if n_val:
            _validation_band(ax, n_val)
        ax.set_ylim(0.0, 1.02)  # the whole scale: a small gap must not fill the panel
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # one point per epoch: no 1.5
    if name in ("activations", "gradients"):
        if fig._suptitle is not None:
            fig._suptitle.set_text(TITLES[name])
        for ax in axes:
            if ax.has_data():
                ax.set_ylabel("share of units", fontsize=8)
                ax.set_title(panel_title(ax.get_title(), modules), fontsize=9)
                # few x ticks, small values as "x 1e-3" once: -0.006 and -0.004 printed over each other
                ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
                ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
        fig.tight_layout()
    if name in ("update_ratios", "gradient_norms") and axes:
        _darken(axes[0])
        axes[0].set_xlabel("epoch")
    if name == "update_ratios" and axes:
        axes[0].set_title("update:weight ratio per tensor (solid: weights, dotted: biases)")


PANEL = re.compile(r"^layer (\S+)(?: \((\w+)\))?")


def panel_title(title: str, modules: list[dict] | None) -> str:
    """The monitor's "layer 2 (relu)" as the page names layers: the module's qualified name,
    its type, and the weight layer whose output it transforms (``2: ReLU after 1 (Linear)``)."""
    found = PANEL.match(title)
    if not found:
        return title
    name, kind = found.group(1), found.group(2)
    listed = [m for m in modules or [] if isinstance(m, dict) and m.get("name")]
    names = [m["name"] for m in listed]
    label = f"{name}: {kind}" if kind else name
    if name in names:
        at = names.index(name)
        label = f"{name}: {listed[at].get('type') or kind}"
        before = [m for m in listed[:at] if m.get("parameters")]
        if before:  # the weight layer's type too, where the panel is wide enough for it
            full = f" after {before[-1]['name']} ({before[-1].get('type')})"
            label += full if len(label + full) <= 34 else f" after {before[-1]['name']}"
    return label + title[found.end():]


def _validation_band(ax, n: int) -> None:
    """The 95% Wilson interval of each epoch's validation accuracy on its n examples."""
    for line in ax.get_lines():
        if line.get_label() != "validation":
            continue
        x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
        bounds = [wilson_interval(int(round(v * n)), n) for v in y]
        ax.fill_between(x, [b[0] for b in bounds], [b[1] for b in bounds], color=line.get_color(),
                        alpha=0.15, lw=0, label=f"validation 95% interval (n={n})")
    ax.legend(frameon=False, loc="lower right")


def _darken(ax) -> None:
    """Recolour the per-tensor lines from a colour map without its pale end (yellow on white)."""
    plt = _pyplot()
    lines = [line for line in ax.get_lines() if not str(line.get_label()).startswith(("_", "target"))
             and line.get_linestyle() != "--"]
    cmap = plt.get_cmap("viridis")
    for k, line in enumerate(lines):
        line.set_color(cmap(0.7 * k / max(len(lines) - 1, 1)))
    if ax.get_legend() is not None and lines:
        ax.legend(fontsize=7, ncol=1, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def first_layer_figure(run, meta: dict) -> str:
    """Every first-layer filter (up to MAX_FILTERS) on one symmetric colour scale, or ''."""
    plt = _pyplot()
    try:
        from ..watch import first_layer

        weight = first_layer.load(run.path)
    except Exception:
        return ""
    if weight is None:
        return ""
    kind, pictures = first_layer.as_pictures(weight, tuple(meta.get("input_shape") or ()) or None)
    name = meta.get("first_layer") or "first layer"
    limit = float(np.abs(pictures).max()) or 1.0
    if kind != "tiles":
        fig, ax = plt.subplots(figsize=(7, 3.6))
        image = ax.imshow(pictures, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        fig.colorbar(image, ax=ax, fraction=0.03, label="weight")
        ax.set(xlabel="input index", ylabel="unit", title=f"{name}: weights, {pictures.shape[0]} units x "
                                                           f"{pictures.shape[1]} inputs")
        return png2x_figure(fig, f"{name}: all {pictures.shape[0]} units, one colour scale")
    total = len(pictures)
    shown = pictures[:MAX_FILTERS]
    grey = shown.shape[-1] == 1
    mosaic = _mosaic(shown[..., 0] if grey else _to_unit(shown, limit))
    cols = math.ceil(math.sqrt(len(shown)))
    fig, ax = plt.subplots(figsize=(min(7.5, 0.45 * cols + 1.5), min(7.5, 0.45 * cols + 0.8)))
    if grey:
        image = ax.imshow(mosaic, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        fig.colorbar(image, ax=ax, fraction=0.04, label="weight (one scale for all filters)")
    else:
        ax.imshow(mosaic, interpolation="nearest")
    ax.axis("off")
    said = f"all {total} filters" if total == len(shown) else f"the first {len(shown)} of {total} filters"
    ax.set_title(f"{name}: {said}", fontsize=10)
    rough = roughness(pictures)
    return png2x_figure(fig, f"{name}: {said}, one colour scale (white: 0); roughness {rough:.2f} "
                             "(the median over filters of squared neighbour differences over their variance: "
                             "2 for white noise, far less for smooth filters)")


def roughness(pictures: np.ndarray) -> float:
    """The median over filters of mean squared neighbour difference / the filter's variance.

    White noise scores 2 (neighbours independent), a smooth filter far less: the notes' "noisy
    filters" as one number. Pictures are ``(K, H, W, C)``."""
    pics = pictures.astype(float)
    steps = np.concatenate([(np.diff(pics, axis=1) ** 2).reshape(len(pics), -1),
                            (np.diff(pics, axis=2) ** 2).reshape(len(pics), -1)], axis=1).mean(axis=1)
    spread = pics.reshape(len(pics), -1).var(axis=1)
    ok = spread > 0
    return float(np.median(steps[ok] / spread[ok])) if ok.any() else float("nan")


def _to_unit(pictures: np.ndarray, limit: float) -> np.ndarray:
    """Colour filters mapped to [0, 1] by one shared scale (0.5: a weight of 0)."""
    return np.clip(0.5 + pictures / (2 * limit), 0.0, 1.0)


def _mosaic(pictures: np.ndarray) -> np.ndarray:
    """Tiles in a square grid, one NaN pixel apart (drawn blank)."""
    k, h, w = pictures.shape[:3]
    cols = math.ceil(math.sqrt(k))
    rows = math.ceil(k / cols)
    shape = (rows * (h + 1) - 1, cols * (w + 1) - 1) + pictures.shape[3:]
    out = np.full(shape, np.nan if pictures.ndim == 3 else 1.0, dtype=float)
    for i, pic in enumerate(pictures):
        r, c = divmod(i, cols)
        out[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = pic
    return out


# -- the report's own curves, from metrics.jsonl (no monitor records) ---------------------------

def metrics_figures(records: list[dict], n_val: int | None = None) -> dict[str, list[str]]:
    from . import plots

    out: dict[str, list[str]] = {"curves": [], "accuracy": []}
    fig = plots.loss_curves(records)
    if fig is not None:
        out["curves"].append(svg_figure(fig, "loss per epoch, linear and log scale (from metrics.jsonl)"))
    fig = plots.accuracy_curves(records)
    if fig is not None:
        if n_val:
            _validation_band(fig.axes[0], n_val)
        out["accuracy"].append(svg_figure(fig, "train and validation accuracy per epoch (from metrics.jsonl)"))
    return out
