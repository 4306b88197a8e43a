"""Pictures of the ensemble table: each ensemble's accuracy next to its best member's, and the
accuracy of the first 1..K members (on the test split when the data has one)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..rundir import RunDir  # noqa: E402
from ..stats import wilson_interval  # noqa: E402
from .table import EnsembleRow  # noqa: E402


def _measured(rows: list[EnsembleRow]) -> tuple[str, list[dict]]:
    """The split the picture shows -- test when every row has it, else validation -- and per
    row the ensemble's and its best member's accuracy with their 95% intervals, and the gain."""
    if all(r.test and r.test_gain and r.test_best_member for r in rows):
        return "test", [{"acc": r.test["acc"], "low": r.test["low"], "high": r.test["high"],
                         "best": r.test_best_member["acc"], "best_low": r.test_best_member["low"],
                         "best_high": r.test_best_member["high"], "gain": r.test_gain["diff"],
                         "verdict": r.test_gain["verdict"]} for r in rows]
    return "validation", [{"acc": r.val_acc, "low": r.val_low, "high": r.val_high,
                           "best": r.best_member_acc, **_interval(r.best_member_acc, r.n),
                           "gain": r.gain, "verdict": r.verdict} for r in rows]


def _interval(acc: float, n: int) -> dict:
    low, high = wilson_interval(round(acc * n), n) if n else (acc, acc)
    return {"best_low": low, "best_high": high}


def _span(figures: list[dict]) -> tuple[float, float]:
    """The accuracy axis: every interval in view and at least 10 points tall, so that a
    difference of a few examples looks as small as it is (bars from a cut baseline would make
    two examples fill the panel; dots with intervals need no baseline)."""
    low = min(min(f["low"], f["best_low"]) for f in figures)
    high = max(max(f["high"], f["best_high"]) for f in figures)
    pad = max(0.02, (0.10 - (high - low)) / 2)
    return max(0.0, low - pad), min(1.0, high + pad)


def plot_table(run_dir: RunDir, rows: list[EnsembleRow]) -> None:
    """``ensemble/plots/accuracy.png``: per kind, the best member and the ensemble as dots with
    their 95% intervals, the gain and its paired verdict written above; on the test split when
    the rows were measured there (the best member is still the one best on validation)."""
    split, figures = _measured(rows)
    fig, ax = plt.subplots(figsize=(1.6 * len(rows) + 2.5, 3.6))
    xs = list(range(len(rows)))
    shift = 0.15

    def dots(offset: float, key: str, low: str, high: str, label: str, color: str) -> None:
        ax.errorbar([x + offset for x in xs], [f[key] for f in figures],
                    yerr=[[max(0.0, f[key] - f[low]) for f in figures],
                          [max(0.0, f[high] - f[key]) for f in figures]],
                    fmt="o", capsize=3, color=color, label=label)

    dots(-shift, "best", "best_low", "best_high", "best member (average: raw weights)", "#52606d")
    dots(shift, "acc", "low", "high", "ensemble (average / student)", "#2f6db3")
    for x, f in zip(xs, figures):
        ax.annotate(f"{100 * f['gain']:+.1f} pt\n{f['verdict']}", (x, max(f["high"], f["best_high"])),
                    xytext=(0, 4), textcoords="offset points", ha="center", fontsize=8)
    ax.set_ylim(*_span(figures))
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_xticks(xs, [f"{r.kind}\n({r.members})" for r in rows])
    ax.set_ylabel(f"{split} accuracy (dots: 95% CI)")
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
