"""The ensemble table: one row per ensemble, written to ``run_dir/ensemble/table.{json,txt}``.

Columns: kind, members, val_acc (the ensemble's validation accuracy), best_member_acc (its
best single member's), gain (the difference, in accuracy units), eval_seconds and
eval_memory_mb (predicting the validation split), time_ratio and memory_ratio (those costs
over one member's), detail (where the members came from).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

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

    def to_dict(self) -> dict:
        return asdict(self)


HEADERS = {"kind": "kind", "members": "members", "val_acc": "val acc", "best_member_acc": "best member",
           "gain": "gain", "eval_seconds": "eval s", "eval_memory_mb": "eval MB",
           "time_ratio": "x time", "memory_ratio": "x memory", "detail": "detail"}


def _cell(name: str, value) -> str:
    if name == "gain":
        return f"{100 * value:+.2f} pt"
    if name in ("val_acc", "best_member_acc"):
        return f"{value:.4f}"
    if name == "eval_seconds":
        return f"{value:.4f}"
    if name == "eval_memory_mb":
        return f"{value:.2f}"
    if name in ("time_ratio", "memory_ratio"):
        return f"{value:.1f}"
    return str(value)


def format_table(rows: list[EnsembleRow]) -> str:
    """A plain-text table, columns aligned; numbers right-aligned."""
    names = [f.name for f in fields(EnsembleRow)]
    cells = [[HEADERS[n] for n in names]] + [[_cell(n, getattr(r, n)) for n in names] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(names))]
    left = {"kind", "detail"}
    lines = ["  ".join(c.ljust(w) if n in left else c.rjust(w)
                       for c, w, n in zip(row, widths, names)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def write_table(run_dir: RunDir, rows: list[EnsembleRow]) -> None:
    run_dir.write_json("ensemble/table.json", [r.to_dict() for r in rows])
    run_dir.write_text("ensemble/table.txt", format_table(rows))


def read_table(run_dir: RunDir) -> list[EnsembleRow]:
    return [EnsembleRow(**r) for r in run_dir.read_json("ensemble/table.json", default=[])]
