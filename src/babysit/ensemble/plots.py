"""One picture of the ensemble table: each ensemble's accuracy next to its best member's."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..rundir import RunDir  # noqa: E402
from .table import EnsembleRow  # noqa: E402


def plot_table(run_dir: RunDir, rows: list[EnsembleRow]) -> None:
    """``ensemble/plots/accuracy.png``: paired bars per kind, gain written above each pair."""
    fig, ax = plt.subplots(figsize=(1.6 * len(rows) + 2.5, 3.6))
    xs = range(len(rows))
    width = 0.38
    ax.bar([x - width / 2 for x in xs], [r.best_member_acc for r in rows], width,
           label="best member (average: raw weights)", color="#9aa5b1")
    # The ensemble's bar carries its 95% Wilson interval; the label, the gain's paired verdict.
    errors = [[max(0.0, r.val_acc - r.val_low) for r in rows], [max(0.0, r.val_high - r.val_acc) for r in rows]]
    ax.bar([x + width / 2 for x in xs], [r.val_acc for r in rows], width, yerr=errors, capsize=3,
           label="ensemble (average / student), 95% CI", color="#2f6db3")
    for x, r in zip(xs, rows):
        top = max(r.val_high, r.best_member_acc)
        ax.annotate(f"{100 * r.gain:+.1f} pt\n{r.verdict}", (x, top), xytext=(0, 4),
                    textcoords="offset points", ha="center", fontsize=8)
    low = min(min(r.val_low, r.best_member_acc) for r in rows)
    ax.set_ylim(max(0.0, low - 0.05), min(1.0, max(max(r.val_high, r.best_member_acc) for r in rows) + 0.05))
    ax.set_xticks(list(xs), [f"{r.kind}\n({r.members})" for r in rows])
    ax.set_ylabel("validation accuracy")
    ax.set_title("Ensembles against their best single member", pad=24)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, fontsize=8, ncol=2, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    run_dir.savefig(fig, "ensemble/plots/accuracy.png")
    plt.close(fig)


def plot_members_curve(run_dir: RunDir, rows: list[EnsembleRow]) -> bool:
    """``ensemble/plots/members.png``: accuracy of the first 1..K members of each ensemble —
    the notes' "more members, diminishing gains" — with the members' disagreement in the legend.
    Returns False (and draws nothing) when no row has a curve of two or more members."""
    curves = [r for r in rows if len(r.curve) >= 2]
    if not curves:
        return False
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for r in curves:
        ax.plot(range(1, len(r.curve) + 1), r.curve, marker="o",
                label=f"{r.kind} (members disagree on {r.disagreement:.1%})")
    ax.set_xlabel("members in the ensemble (first m)")
    ax.set_ylabel(f"validation accuracy (n={curves[0].n})")
    ax.set_xticks(range(1, max(len(r.curve) for r in curves) + 1))
    ax.set_title("More members, diminishing gains")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, fontsize=8)
    run_dir.savefig(fig, "ensemble/plots/members.png")
    plt.close(fig)
    return True
