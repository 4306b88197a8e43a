"""Pictures of the ensemble table: each ensemble's accuracy next to its best member's, and the
accuracy of the first 1..K members (on the test split when the data has one)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..rundir import RunDir  # noqa: E402
from .table import EnsembleRow  # noqa: E402


def _measured(rows: list[EnsembleRow]) -> tuple[str, list[dict]]:
    """The split the picture shows -- test when every row has it, else validation -- and per
    row {acc, low, high, best, gain, verdict} there."""
    if all(r.test and r.test_gain and r.test_best_member for r in rows):
        return "test", [{"acc": r.test["acc"], "low": r.test["low"], "high": r.test["high"],
                         "best": r.test_best_member["acc"], "gain": r.test_gain["diff"],
                         "verdict": r.test_gain["verdict"]} for r in rows]
    return "validation", [{"acc": r.val_acc, "low": r.val_low, "high": r.val_high,
                           "best": r.best_member_acc, "gain": r.gain, "verdict": r.verdict}
                          for r in rows]


def plot_table(run_dir: RunDir, rows: list[EnsembleRow]) -> None:
    """``ensemble/plots/accuracy.png``: paired bars per kind, gain written above each pair; on
    the test split when the rows were measured there (the best member is still the one best
    on validation)."""
    split, figures = _measured(rows)
    fig, ax = plt.subplots(figsize=(1.6 * len(rows) + 2.5, 3.6))
    xs = range(len(rows))
    width = 0.38
    ax.bar([x - width / 2 for x in xs], [f["best"] for f in figures], width,
           label="best member (average: raw weights)", color="#9aa5b1")
    # The ensemble's bar carries its 95% Wilson interval; the label, the gain's paired verdict.
    errors = [[max(0.0, f["acc"] - f["low"]) for f in figures], [max(0.0, f["high"] - f["acc"]) for f in figures]]
    ax.bar([x + width / 2 for x in xs], [f["acc"] for f in figures], width, yerr=errors, capsize=3,
           label="ensemble (average / student), 95% CI", color="#2f6db3")
    for x, f in zip(xs, figures):
        ax.annotate(f"{100 * f['gain']:+.1f} pt\n{f['verdict']}", (x, max(f["high"], f["best"])),
                    xytext=(0, 4), textcoords="offset points", ha="center", fontsize=8)
    low = min(min(f["low"], f["best"]) for f in figures)
    ax.set_ylim(max(0.0, low - 0.05), min(1.0, max(max(f["high"], f["best"]) for f in figures) + 0.05))
    ax.set_xticks(list(xs), [f"{r.kind}\n({r.members})" for r in rows])
    ax.set_ylabel(f"{split} accuracy")
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
    n = curves[0].test["n"] if curves[0].curve_split == "test" and curves[0].test else curves[0].n
    ax.set_ylabel(f"{curves[0].curve_split} accuracy (n={n})")
    ax.set_xticks(range(1, max(len(r.curve) for r in curves) + 1))
    ax.set_title("More members, diminishing gains")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, fontsize=8)
    run_dir.savefig(fig, "ensemble/plots/members.png")
    plt.close(fig)
    return True
