"""What a search found, as records and pictures in ``run_dir/search/``.

- ``leaderboard.json`` / ``leaderboard.txt``: every trial of every stage, best first, each
  validation accuracy with its n and 95% Wilson interval (``val_n``, ``val_low``, ``val_high``)
  where the trial recorded its n, and the best trial against the runner-up.
- ``plots/scores_vs_params.png``: validation accuracy against each hyperparameter on its own
  scale (log axes for log ranges), one row per stage, so the narrowing is visible.
- ``plots/learning_curves.png``: validation (and training) accuracy per epoch of the top trials.

Records are gathered apart from drawing (as Optuna's plots do), and :func:`top_trials` reads
only the run directory, so ensembles can use a search that ran elsewhere or long ago.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

from ..rundir import RunDir, read_jsonl
from ..stats import Accuracy, UnpairedDifference
from ..train import best_checkpoint
from .retry import trial_dir_id
from .space import Space

STATE_ORDER = {"complete": 0, "pruned": 1, "diverged": 2, "running": 3, "waiting": 4, "failed": 5}


def trial_record(frozen, stage: int) -> dict:
    """One leaderboard row (without rank) from an Optuna trial."""
    attrs = frozen.user_attrs
    trained = attrs.get("trained", {})
    state = frozen.state.name.lower()
    if state == "pruned" and "diverged" in attrs:
        state = "diverged"
    fail = state == "fail"
    value = frozen.value if frozen.value is not None else (
        max(frozen.intermediate_values.values()) if frozen.intermediate_values else None)
    return {"trial": trial_dir_id(frozen), "number": frozen.number, "stage": stage,
            "params": dict(frozen.params), "val_acc": value if not fail else None,
            "epochs": trained.get("epochs", len(frozen.intermediate_values)),
            "epochs_trained": trained.get("epochs_trained", 0), "val_n": trained.get("val_n"),
            "state": "failed" if fail else state,
            "checkpoint_dir": f"trials/{trial_dir_id(frozen)}",
            "continued_from": attrs.get("continue_from"), "seconds": trained.get("seconds"),
            "started": frozen.datetime_start.timestamp() if frozen.datetime_start else None,
            "finished": frozen.datetime_complete.timestamp() if frozen.datetime_complete else None,
            "note": attrs.get("diverged") or attrs.get("pruned") or attrs.get("retry_reason")
            or attrs.get("error") or "", **({"error": attrs["error"]} if "error" in attrs else {})}


def interval_fields(record: dict) -> dict:
    """``val_low``, ``val_high``: the 95% Wilson interval of a trial's validation accuracy on
    its ``val_n`` examples (none when the trial recorded no n: a user's objective reports a
    bare fraction)."""
    value, n = record.get("val_acc"), record.get("val_n")
    if not isinstance(n, int) or n <= 0 or not isinstance(value, (int, float)) or not math.isfinite(value):
        return {}
    low, high = Accuracy.from_rate(value, n).interval
    return {"val_low": low, "val_high": high}


def top_difference(ranked: list[dict]) -> tuple[dict, dict, UnpairedDifference] | None:
    """(best, runner-up, their difference) among the scored trials, or None with fewer than two.

    The trials' per-example hits are not kept, so the interval is the unpaired one
    (:class:`babysit.stats.UnpairedDifference`): on the same validation examples it is
    wider than the paired one would be, so "within noise" here errs on the side of caution.
    """
    scored = [r for r in ranked if r["state"] in ("complete", "pruned")
              and isinstance(r.get("val_acc"), (int, float)) and isinstance(r.get("val_n"), int)]
    if len(scored) < 2:
        return None
    best, second = scored[0], scored[1]
    return best, second, UnpairedDifference(Accuracy.from_rate(best["val_acc"], best["val_n"]),
                                            Accuracy.from_rate(second["val_acc"], second["val_n"]))


def top_comparison(ranked: list[dict]) -> str | None:
    """The best trial against the runner-up, in words (see :func:`top_difference`)."""
    found = top_difference(ranked)
    if found is None:
        return None
    best, second, diff = found
    return (f"best trial {best['trial']} vs runner-up trial {second['trial']}: {diff} "
            "(per-example hits are not kept: the unpaired interval, the cautious one)")


def best_accuracy(ranked: list[dict], value: float) -> str:
    """The search's best validation accuracy as a user reads it: with its n and interval when
    the best trial recorded its n."""
    n = next((r["val_n"] for r in ranked if r.get("val_acc") == value and isinstance(r.get("val_n"), int)), None)
    return str(Accuracy.from_rate(value, n)) if n else f"{value:.4f} (n not recorded)"


def brief_accuracy(record: dict, n: bool = True) -> str:
    """A trial's validation accuracy, short: ``97.3% (96.1-98.1, n=359)`` (its 95% interval);
    the bare value when the trial recorded no n (a user's objective may not be an accuracy)."""
    value, size = record.get("val_acc"), record.get("val_n")
    if not isinstance(value, (int, float)):
        return "-"
    if not isinstance(size, int) or size <= 0:
        return f"{value:.4f}"
    return Accuracy.from_rate(value, size).brief(n=n)


def rank(records: list[dict]) -> list[dict]:
    """Best first: finished trials by validation accuracy, then the others."""
    def key(r):
        value = r["val_acc"] if isinstance(r["val_acc"], (int, float)) and math.isfinite(r["val_acc"]) else -1
        return (r["state"] not in ("complete", "pruned", "diverged"), -value, STATE_ORDER.get(r["state"], 9))
    ranked = sorted(records, key=key)
    return [{"rank": i, **r, **interval_fields(r)} for i, r in enumerate(ranked, 1)]


def write_leaderboard(run_dir: RunDir, ranked: list[dict]) -> None:
    run_dir.write_json("search/leaderboard.json", ranked)
    run_dir.write_text("search/leaderboard.txt", leaderboard_table(ranked))


def leaderboard_table(ranked: list[dict], limit: int | None = None) -> str:
    """The leaderboard as text: validation accuracy with its 95% interval, then a footer with
    the n and the best trial against the runner-up."""
    keys = sorted({k for r in ranked for k in r["params"]})
    header = ["rank", "trial", "stage", "val_acc (95% CI)", "epochs", "state"] + keys
    rows = [header]
    for r in ranked[:limit]:
        rows.append([str(r["rank"]), str(r["trial"]), str(r["stage"]), _acc_cell(r), str(r["epochs"]),
                     r["state"]] + [fmt(r["params"].get(k)) for k in keys])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
    sizes = sorted({r["val_n"] for r in ranked if isinstance(r.get("val_n"), int)})
    if sizes:
        lines.append(f"validation accuracies on n = {', '.join(map(str, sizes))} examples, 95% Wilson intervals")
    if (top := top_comparison(ranked)) is not None:
        lines.append(top)
    return "\n".join(lines) + "\n"


def _acc_cell(r: dict) -> str:
    if not isinstance(r["val_acc"], float):
        return "-"
    if "val_low" in r:
        return f"{r['val_acc']:.4f} ({r['val_low']:.3f}-{r['val_high']:.3f})"
    return f"{r['val_acc']:.4f}"


def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def top_trials(run_dir, k: int) -> list[tuple[Path, Path, float]]:
    """The `k` best trials of the search in `run_dir`: ``(trial_dir, best_checkpoint, val_acc)``.

    Reads only the run directory (``trials/*/epoch_*_val_*.pt``). A trial that continued
    another shares its early checkpoints (hard links or copies); each checkpoint content counts
    once, so the list has `k` distinct models.
    """
    run_dir = Path(run_dir)
    found, seen = [], set()
    candidates = []
    for trial_dir in (run_dir / "trials").iterdir() if (run_dir / "trials").is_dir() else []:
        ckpt = best_checkpoint(trial_dir)
        if ckpt is not None:
            candidates.append((trial_dir, ckpt, checkpoint_score(ckpt)))
    candidates.sort(key=lambda c: (-c[2], _trial_number(c[0])))
    for trial_dir, ckpt, score in candidates:
        digest = hashlib.sha1(ckpt.read_bytes()).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        found.append((trial_dir, ckpt, score))
        if len(found) == k:
            break
    return found


def checkpoint_score(path: Path) -> float:
    """The validation score in a checkpoint's name (``epoch_003_val_0.8731.pt`` -> 0.8731)."""
    try:
        return float(path.stem.rsplit("_val_", 1)[1])
    except (IndexError, ValueError):
        return float("nan")


def _trial_number(path: Path) -> int:
    return int(path.name) if path.name.isdigit() else 1 << 30


# ----------------------------------------------------------------------------- plots

def plot_scores_vs_params(run_dir: RunDir, ranked: list[dict], spaces: list[Space]) -> Path | None:
    """Validation accuracy against each hyperparameter, one row per stage, own scales."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not spaces or not ranked:
        return None
    keys = list(spaces[0].params)
    fig, axes = plt.subplots(len(spaces), len(keys), squeeze=False,
                             figsize=(3.4 * len(keys), 2.8 * len(spaces)))
    colors = {"complete": "tab:blue", "pruned": "tab:orange", "diverged": "tab:red"}
    for row, space in enumerate(spaces, 1):
        stage_records = [r for r in ranked if r["stage"] == row and isinstance(r["val_acc"], float)]
        for col, key in enumerate(keys):
            ax = axes[row - 1][col]
            _scatter_param(ax, space[key] if key in space.params else spaces[0][key], stage_records, colors)
            if row == 1:
                ax.set_title(key, fontsize=10)
            if col == 0:
                ax.set_ylabel(f"stage {row}\nval accuracy")
            ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=s) for s, c in colors.items()]
    fig.legend(handles=handles, loc="upper right", fontsize=8)
    fig.suptitle("Validation accuracy vs each hyperparameter, stage by stage (shaded: searched range)")
    fig.tight_layout()
    path = run_dir.savefig(fig, "search/plots/scores_vs_params.png")
    plt.close(fig)
    return path


def _scatter_param(ax, param, records, colors) -> None:
    points = [(r["params"][param.key], r["val_acc"], r["state"]) for r in records if param.key in r["params"]]
    if not param.numeric:
        index = {c: i for i, c in enumerate(param.choices)}
        for v, acc, state in points:
            if v in index:
                ax.scatter(index[v] + 0.15 * math.sin(17.0 * acc * 100), acc, s=18,
                           color=colors.get(state, "gray"), alpha=0.8)
        ax.set_xticks(range(len(param.choices)), [str(c) for c in param.choices])
        ax.set_xlim(-0.5, len(param.choices) - 0.5)
        return
    for v, acc, state in points:
        ax.scatter(v, acc, s=18, color=colors.get(state, "gray"), alpha=0.8)
    ax.axvspan(param.low, param.high, color="tab:green", alpha=0.08)
    if param.log:
        ax.set_xscale("log")


def plot_learning_curves(run_dir: RunDir, ranked: list[dict], top: int = 5) -> Path | None:
    """Validation (solid) and training (dashed) accuracy per epoch of the top trials."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = [r for r in ranked if r["state"] == "complete"][:top]
    if not best:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for r in best:
        records = read_jsonl(run_dir / r["checkpoint_dir"] / "metrics.jsonl")
        if not records:
            continue
        epochs = [rec["epoch"] for rec in records]
        line, = ax.plot(epochs, [rec["val_acc"] for rec in records], marker="o", ms=3,
                        label=f"trial {r['trial']} (stage {r['stage']}): {_acc_cell(r)}")
        if all("train_acc" in rec for rec in records):  # a user's objective may report none
            ax.plot(epochs, [rec["train_acc"] for rec in records], ls="--", color=line.get_color(), alpha=0.6)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (solid: validation, dashed: training)")
    ax.set_title(f"Learning curves of the top {len(best)} trials")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    path = run_dir.savefig(fig, "search/plots/learning_curves.png")
    plt.close(fig)
    return path
