"""Drawing the rules' paths (:mod:`.paths`): a PNG with both surfaces, or an animated GIF."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ..rundir import atomic_write_bytes  # noqa: E402
from .paths import SURFACES, Surface, all_paths  # noqa: E402

COLORS = {"sgd": "#d62728", "momentum": "#1f77b4", "nesterov": "#17becf", "adagrad": "#2ca02c",
          "rmsprop": "#9467bd", "adam": "#ff7f0e"}
# Where paths overlap (sgd, momentum and nesterov run along the same ridge of the saddle), the
# earlier ones are drawn wider so each stays visible underneath the next.
WIDTHS = {"sgd": 3.4, "momentum": 2.3, "nesterov": 1.3}


def _landscape(ax, surface: Surface) -> None:
    xmin, xmax, ymin, ymax = surface.box
    xs, ys = np.meshgrid(np.linspace(xmin, xmax, 200), np.linspace(ymin, ymax, 200))
    grid = torch.tensor(np.stack([xs, ys]))
    zs = surface.f(grid).numpy()
    ax.contourf(xs, ys, zs, levels=30, cmap="Greys", alpha=0.55)
    ax.contour(xs, ys, zs, levels=15, colors="white", linewidths=0.5, alpha=0.8)
    ax.plot(*surface.start, "ko", ms=6, zorder=5)
    ax.annotate("start", surface.start, textcoords="offset points", xytext=(6, 6), fontsize=9)
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.set_title(surface.title)
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def _label(rule: str, surface: Surface) -> str:
    return f"{rule} (lr {surface.lr[rule]:g})"


def figure(paths: dict | None = None):
    """The figure: one panel per surface, every first-order rule's path, with a legend."""
    paths = paths or all_paths()
    fig, axes = plt.subplots(1, len(SURFACES), figsize=(13, 5.2))
    for ax, surface in zip(axes, SURFACES):
        _landscape(ax, surface)
        for rule, path in paths[surface.name].items():
            ax.plot(path[:, 0], path[:, 1], "-", color=COLORS.get(rule), lw=WIDTHS.get(rule, 1.8),
                    label=_label(rule, surface))
            ax.plot(path[-1, 0], path[-1, 1], "o", color=COLORS.get(rule), ms=4)
        ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    fig.suptitle("Update rules from the same start (momentum, Nesterov: lr inside the velocity)")
    fig.tight_layout()
    return fig


def save_png(out: str | Path) -> Path:
    import io

    fig = figure()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(out, buffer.getvalue())


def save_gif(out: str | Path, frames: int = 40, fps: int = 10) -> Path:
    """The paths growing step by step, written with matplotlib's PillowWriter."""
    import os
    import tempfile

    from matplotlib.animation import FuncAnimation, PillowWriter

    paths = all_paths()
    fig, axes = plt.subplots(1, len(SURFACES), figsize=(10, 4.2))
    lines, heads = [], []
    for ax, surface in zip(axes, SURFACES):
        _landscape(ax, surface)
        for rule, path in paths[surface.name].items():
            line, = ax.plot([], [], "-", color=COLORS.get(rule), lw=WIDTHS.get(rule, 1.8),
                            label=_label(rule, surface))
            head, = ax.plot([], [], "o", color=COLORS.get(rule), ms=5)
            lines.append((line, path))
            heads.append((head, path))
        ax.legend(loc="lower right", fontsize=7, framealpha=0.9)
    fig.tight_layout()
    longest = max(len(p) for d in paths.values() for p in d.values())

    def draw(frame: int):
        upto = 1 + round(frame * (longest - 1) / max(frames - 1, 1))
        for (line, path), (head, _) in zip(lines, heads):
            shown = path[:upto]
            line.set_data(shown[:, 0], shown[:, 1])
            head.set_data(shown[-1:, 0], shown[-1:, 1])
        return [a for a, _ in lines] + [h for h, _ in heads]

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".gif")
    os.close(fd)
    try:
        FuncAnimation(fig, draw, frames=frames, blit=True).save(tmp, writer=PillowWriter(fps=fps), dpi=60)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)  # atomic, like every babysit write
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
