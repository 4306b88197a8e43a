"""The ensemble table: one row per ensemble, written to ``run_dir/ensemble/table.{json,txt}``.

Columns: kind, members, val_acc (the ensemble's validation accuracy), best_member_acc (its
best single member's), gain (the difference, in accuracy units), eval_seconds and
eval_memory_mb (predicting the validation split), time_ratio and memory_ratio (those costs
over one member's), detail (where the members came from); and the noise: n (validation
examples), val_low/val_high (the accuracy's 95% Wilson interval), gain_low/gain_high (the
paired 95% interval of the gain, :mod:`babysit.stats`) and verdict ("gain", "loss" or
"within noise" when that interval holds 0); curve (the accuracy of the first 1..K members
together: the notes' diminishing gains) and disagreement (the members' mean pairwise share of
examples labelled differently), both on ``curve_split``.

The text table shows each accuracy with its 95% interval and says the n's once, below it.

When the data has a test split, the rows measured there once, at the end, after validation
made every choice (:mod:`babysit.evaluation`, ``RUN_DIR/test.json``): ``test`` ({acc, n,
low, high}: the test accuracy and its 95% Wilson interval), ``test_best_member`` (the same for
the baseline: the member best on validation, or the raw weights for ``average``) and
``test_gain`` ({diff, low, high, verdict, ...}: the paired difference,
:meth:`babysit.stats.PairedDifference.to_dict`); None without a test split.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..rundir import RunDir
from ..stats import Accuracy


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
    curve_split: str = "validation"  # the examples curve and disagreement were measured on
    test: dict | None = None  # {acc, n, low, high} on the test split, when there is one
    test_best_member: dict | None = None  # the baseline's, on the same test examples
    test_gain: dict | None = None  # {diff, low, high, verdict, ...}: paired, test over baseline

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """One line: validation accuracy and gain, and the test figures when measured."""
        line = (f"val acc {self.val_acc:.4f} (n={self.n}, 95% CI {self.val_low:.4f}-{self.val_high:.4f}), "
                f"best member {self.best_member_acc:.4f}, gain {100 * self.gain:+.2f} pt "
                f"({100 * self.gain_low:+.2f} to {100 * self.gain_high:+.2f}): {self.verdict}")
        if self.test and self.test_gain:
            t, g = self.test, self.test_gain
            line += (f"; test acc {t['acc']:.4f} (n={t['n']}, 95% CI {t['low']:.4f}-{t['high']:.4f}), "
                     f"gain {100 * g['diff']:+.2f} pt ({100 * g['low']:+.2f} to {100 * g['high']:+.2f}): "
                     f"{g['verdict']}")
        return line


HEADERS = {"kind": "kind", "members": "members", "val_acc": "val acc (95% CI)",
           "best_member_acc": "best member (95% CI)", "gain": "gain (95% CI)", "verdict": "verdict",
           "test": "test acc (95% CI)", "test_best_member": "test best member (95% CI)",
           "test_gain": "test gain (95% CI)", "test_verdict": "test verdict", "disagreement": "disagree",
           "eval_seconds": "eval s", "eval_memory_mb": "eval MB",
           "time_ratio": "x time", "memory_ratio": "x memory", "detail": "detail"}


def _accuracy(figure: dict | None) -> str:
    """{acc, low, high} as a cell: ``0.9410 (0.925-0.954)`` (n in the footer)."""
    return "-" if not figure else f"{figure['acc']:.4f} ({figure['low']:.3f}-{figure['high']:.3f})"


def _cell(row: EnsembleRow, name: str) -> str:
    if name in ("test", "test_best_member"):
        return _accuracy(getattr(row, name))
    if name == "test_gain":
        g = row.test_gain
        return "-" if not g else f"{100 * g['diff']:+.2f} pt ({100 * g['low']:+.1f} to {100 * g['high']:+.1f})"
    if name == "test_verdict":
        return row.test_gain["verdict"] if row.test_gain else "-"
    value = getattr(row, name)
    if name == "gain":
        return f"{100 * value:+.2f} pt ({100 * row.gain_low:+.1f} to {100 * row.gain_high:+.1f})"
    if name == "val_acc":
        return f"{value:.4f} ({row.val_low:.3f}-{row.val_high:.3f})"
    if name == "best_member_acc":  # on the row's n validation examples, like val_acc
        return _accuracy(Accuracy.from_rate(value, row.n).to_dict()) if row.n else f"{value:.4f}"
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
    """A plain-text table, columns aligned; numbers right-aligned. The test columns appear
    when some row was measured on a test split."""
    tested = any(r.test for r in rows)
    names = [n for n in HEADERS if tested or not n.startswith("test")]
    cells = [[HEADERS[n] for n in names]] + [[_cell(r, n) for n in names] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(names))]
    left = {"kind", "detail"}
    lines = ["  ".join(c.ljust(w) if n in left else c.rjust(w)
                       for c, w, n in zip(row, widths, names)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    n = {r.n for r in rows}
    lines.append(f"accuracies on n = {', '.join(map(str, sorted(n))) or '?'} validation examples; a gain "
                 "whose paired interval holds 0 is within noise")
    if tested:
        n_test = sorted({r.test["n"] for r in rows if r.test})
        lines.append(f"test: n = {', '.join(map(str, n_test))} examples, read once after validation chose "
                     "the members and the best member (the baseline of every gain)")
    curves = [r for r in rows if len(r.curve) >= 2 and r.n]
    for r in curves:
        n = r.test["n"] if r.curve_split == "test" and r.test else r.n
        lines.append(f"{r.kind}: {r.curve_split} accuracy of the first 1..{len(r.curve)} members (95% CI), "
                     f"n = {n}: " + ", ".join(_accuracy(Accuracy.from_rate(acc, n).to_dict()) for acc in r.curve))
    return "\n".join(lines) + "\n"


def write_table(run_dir: RunDir, rows: list[EnsembleRow]) -> None:
    run_dir.write_json("ensemble/table.json", [r.to_dict() for r in rows])
    run_dir.write_text("ensemble/table.txt", format_table(rows))


def read_table(run_dir: RunDir) -> list[EnsembleRow]:
    return [EnsembleRow(**r) for r in run_dir.read_json("ensemble/table.json", default=[])]
