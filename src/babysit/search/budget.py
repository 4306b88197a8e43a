"""What each stage of a search spent, and what its narrowing bought.

For stage k, over the leaderboard rows of the search (each with its ``stage``):

- ``epochs_spent``: the epochs its trials trained (a carried trial counts only its new
  epochs, not those it continued from);
- ``budget_share``: epochs_spent / the epochs all stages have spent so far (the shares of a
  finished search add up to 1);
- ``best_before`` / ``best_after``: the best validation accuracy of a complete trial in the
  stages before k / up to and including k, as ``{"acc", "n", "low", "high"}`` with its 95%
  Wilson interval on the n validation examples (``n``, ``low``, ``high`` are null for a user's
  objective, whose validation size babysit does not know); null when there is none.

The gain of a stage is best_after - best_before: what searching narrower ranges (or longer)
found that the stages before it had not.
"""

from __future__ import annotations

from ..stats import Accuracy, wilson_interval


def best_accuracy(rows: list[dict]) -> dict | None:
    """The best validation accuracy of the complete trials in `rows`, with its interval."""
    complete = [r for r in rows if r["state"] == "complete" and isinstance(r["val_acc"], float)]
    if not complete:
        return None
    best = max(complete, key=lambda r: r["val_acc"])
    n = best.get("val_n")
    low, high = wilson_interval(round(best["val_acc"] * n), n) if n else (None, None)
    return {"acc": best["val_acc"], "n": n, "low": low, "high": high}


def stage_budget(records: list[dict], rows: list[dict]) -> None:
    """Add the fields above to each finished stage record (stages.json), in place."""
    spent = {r["index"]: float(sum(row["epochs_trained"] for row in rows if row["stage"] == r["index"]))
             for r in records}
    total = sum(spent.values())
    for record in records:
        k = record["index"]
        record["epochs_spent"] = spent[k]
        record["budget_share"] = spent[k] / total if total else 0.0
        record["best_before"] = best_accuracy([row for row in rows if row["stage"] < k])
        record["best_after"] = best_accuracy([row for row in rows if row["stage"] <= k])


def summary_lines(records: list[dict], *, finished: bool = True) -> list[str]:
    """One line per stage: its epochs and share of them, and the best before and after it
    (while the search runs, the share is of the epochs spent so far)."""
    whole = "of the search" if finished else "of the epochs so far"
    lines = []
    for r in records:
        if "epochs_spent" not in r:
            continue
        lines.append(f"stage {r['index']}: {r['epochs_spent']:g} epochs ({100 * r['budget_share']:.0f}% "
                     f"{whole}); best val acc {describe(r['best_before'])} -> "
                     f"{describe(r['best_after'])}{gain(r['best_before'], r['best_after'])}")
    return lines


def describe(best: dict | None) -> str:
    if best is None:
        return "none"
    if best["n"] is None:
        return f"{best['acc']:.4f}"
    return Accuracy.from_rate(best["acc"], best["n"]).brief()  # its 95% interval and n


def gain(before: dict | None, after: dict | None) -> str:
    """The stage's gain in points; "within noise" when the new best lies inside the old one's
    interval (the two bests are on the same validation examples, so this is the plain reading
    of the interval, not a paired test)."""
    if before is None or after is None:
        return ""
    diff = 100 * (after["acc"] - before["acc"])
    if diff == 0:
        return " (no gain)"
    noise = before["high"] is not None and after["acc"] <= before["high"]
    return f" ({diff:+.1f} pt{', within noise' if noise else ''})"
