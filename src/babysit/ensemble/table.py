"""The ensemble table: one row per ensemble, written to ``run_dir/ensemble/table.{json,txt}``.

Columns: kind, members, val_acc (the ensemble's validation accuracy), best_member_acc (its
best single member's), gain (the difference, in accuracy units), eval_seconds and
eval_memory_mb (predicting the validation split), time_ratio and memory_ratio (those costs
over one member's), detail (where the members came from); and the noise: n (validation
examples), val_low/val_high (the accuracy's 95% Wilson interval), gain_low/gain_high (the
paired 95% interval of the gain, :mod:`babysit.stats`) and verdict ("gain", "loss" or
"within noise" when that interval holds 0); curve (the accuracy of the first 1..K members
together: the notes' diminishing gains) and disagreement (the members' mean pairwise share of
examples labelled differently); test and test_gain (the same on the test split, once, at the
end: ``RUN_DIR/test.json``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..rundir import RunDir


@dataclass
class EnsembleRow:
    kind: str  # seeds | top_trials | checkpoints | average | distill
    members: int
    val_acc: float
    best_member_acc: float
    gain: float
    eval_seconds: float
    eval_memory_mb: float
    time_ratio: float = 1.0
    memory_ratio: float = 1.0
    detail: str = ""
    n: int = 0
    val_low: float = float("nan")
    val_high: float = float("nan")
    gain_low: float = float("nan")
    gain_high: float = float("nan")
    verdict: str = ""
    curve: list[float] = field(default_factory=list)  # accuracy of the first 1..K members
    disagreement: float | None = None  # mean share of examples two members label differently
    # the final evaluation (babysit.evaluation): {"acc", "n", "low", "high"} on the test split,
    # and the paired difference with the best member (the raw weights for "average"); None
    # when the data has no test split
    test: dict | None = None
    test_gain: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


HEADERS = {"kind": "kind", "members": "members", "val_acc": "val acc (95% CI)", "best_member_acc": "best member",
           "gain": "gain (95% CI)", "verdict": "verdict", "disagreement": "disagree",
           "eval_seconds": "eval s", "eval_memory_mb": "eval MB",
           "time_ratio": "x time", "memory_ratio": "x memory", "detail": "detail"}


def _cell(row: EnsembleRow, name: str) -> str:
    value = getattr(row, name)
    if name == "gain":
        return f"{100 * value:+.2f} pt ({100 * row.gain_low:+.1f} to {100 * row.gain_high:+.1f})"
    if name == "val_acc":
        return f"{value:.4f} ({row.val_low:.3f}-{row.val_high:.3f})"
    if name == "best_member_acc":
        return f"{value:.4f}"
    if name == "eval_seconds":
        return f"{value:.4f}"
    if name == "eval_memory_mb":
        return f"{value:.2f}"
    if name == "disagreement":
        return "-" if value is None else f"{value:.1%}"  # None: one model, nothing to disagree
    if name in ("time_ratio", "memory_ratio"):
        return f"{value:.1f}"
    return str(value)


def format_table(rows: list[EnsembleRow]) -> str:
    """A plain-text table, columns aligned; numbers right-aligned."""
    names = list(HEADERS)
    cells = [[HEADERS[n] for n in names]] + [[_cell(r, n) for n in names] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(names))]
    left = {"kind", "detail"}
    lines = ["  ".join(c.ljust(w) if n in left else c.rjust(w)
                       for c, w, n in zip(row, widths, names)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    n = {r.n for r in rows}
    lines.append(f"accuracies on n = {', '.join(map(str, sorted(n))) or '?'} validation examples; a gain "
                 "whose paired interval holds 0 is within noise")
    return "\n".join(lines) + "\n"


def write_table(run_dir: RunDir, rows: list[EnsembleRow]) -> None:
    run_dir.write_json("ensemble/table.json", [r.to_dict() for r in rows])
    run_dir.write_text("ensemble/table.txt", format_table(rows))


def read_table(run_dir: RunDir) -> list[EnsembleRow]:
    return [EnsembleRow(**r) for r in run_dir.read_json("ensemble/table.json", default=[])]
