"""The gradient check's verdict: rows per coordinate, the notes' error bands, the pass rule, a table.

Relative error (the notes' symmetric form; both exactly zero counts as agreement)::

    rel = |a - n| / max(|a|, |n|)          (0 when a == n == 0)

Bands (verdict of one row):

=========  ===================  ==============================================================
verdict    rel error            the notes say
=========  ===================  ==============================================================
happy      <= 1e-7              you should be happy
ok         1e-7 .. 1e-4         fine for objectives with kinks; too high without any
uneasy     1e-4 .. 1e-2         should make you uncomfortable
wrong      > 1e-2               the gradient is probably wrong
=========  ===================  ==============================================================

**Pass rule.** The check passes when (1) no coordinate *fails* and (2) at most half of the
checked coordinates crossed a kink. A coordinate fails when all three hold:

* its relative error is above 1e-4 (verdict ``uneasy`` or ``wrong``);
* its finite differences did not cross a kink (the winners of every max/relu/clamp/... were the
  same at f(x+h) and f(x-h); across a kink the numeric value mixes two slopes and proves nothing);
* ``|a - n|`` exceeds the round-off floor of the numeric estimate,
  ``16 * eps * max(|f(x+h)|, |f(x-h)|) / h`` — below it the difference is floating-point noise,
  not a wrong formula (this matters for tiny gradients of a large loss).

Rule (2) keeps a check from passing on kink-exempt rows alone: use fewer datapoints or a
smaller h. For an objective without kinks, rows in the ``ok`` band pass but are listed in the
warnings, as the notes call 1e-4 too high there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import median

from .kinks import describe

HAPPY, OK, UNEASY = 1e-7, 1e-4, 1e-2
MAX_KINK_SHARE = 0.5
ROUNDOFF_FACTOR = 16.0
TINY_GRADIENT = 1e-10


def relative_error(analytic: float, numeric: float) -> float:
    """|a - n| / max(|a|, |n|), and 0 when both are exactly zero."""
    if analytic == 0.0 and numeric == 0.0:
        return 0.0
    if not (math.isfinite(analytic) and math.isfinite(numeric)):
        return math.inf
    return abs(analytic - numeric) / max(abs(analytic), abs(numeric))


def verdict(rel_error: float) -> str:
    if rel_error <= HAPPY:
        return "happy"
    if rel_error <= OK:
        return "ok"
    if rel_error <= UNEASY:
        return "uneasy"
    return "wrong"


def roundoff_floor(f_plus: float, f_minus: float, h: float, eps: float) -> float:
    """How far rounding alone can move the centered difference: ~eps |f| / h."""
    return ROUNDOFF_FACTOR * eps * max(abs(f_plus), abs(f_minus)) / h


@dataclass
class GradRow:
    """One checked coordinate: tensor `name` at `index`, both gradients and the verdict."""

    name: str
    index: tuple[int, ...]
    analytic: float
    numeric: float
    rel_error: float
    kink: bool
    verdict: str
    abs_error: float = 0.0
    floor: float = 0.0

    @property
    def failed(self) -> bool:
        """The pass rule for one row (see the module docstring)."""
        return self.rel_error > OK and not self.kink and self.abs_error > self.floor

    def to_dict(self) -> dict:
        return {"name": self.name, "index": list(self.index), "analytic": self.analytic,
                "numeric": self.numeric, "rel_error": self.rel_error, "kink": self.kink,
                "verdict": self.verdict, "abs_error": self.abs_error, "floor": self.floor,
                "failed": self.failed}


def make_row(name: str, index: tuple[int, ...], analytic: float, f_plus: float, f_minus: float,
             step: float, kink: bool, eps: float) -> GradRow:
    numeric = (f_plus - f_minus) / step
    rel = relative_error(analytic, numeric)
    floor = ROUNDOFF_FACTOR * eps * max(abs(f_plus), abs(f_minus)) / (step / 2)  # roundoff_floor
    return GradRow(name, index, analytic, numeric, rel, kink, verdict(rel), abs(analytic - numeric), floor)


@dataclass
class GradcheckReport:
    """The outcome of a gradient check. ``str(report)`` is the table; ``.summary`` one line."""

    rows: list[GradRow]
    h: float
    dtype: str = "float64"
    sweep: list[dict] | None = None
    warnings: list[str] = field(default_factory=list)
    kink_ops: dict[str, int] = field(default_factory=dict)
    numeric_mode: str = "batched"
    fallback: str | None = None
    seconds: float = 0.0
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def failures(self) -> list[GradRow]:
        return [r for r in self.rows if r.failed]

    @property
    def kinks_crossed(self) -> int:
        return sum(r.kink for r in self.rows)

    @property
    def has_kinks(self) -> bool:
        """Whether the objective runs any non-differentiable op (relu, max, clamp, ...)."""
        return bool(self.kink_ops)

    @property
    def too_many_kinks(self) -> bool:
        return bool(self.rows) and self.kinks_crossed > MAX_KINK_SHARE * len(self.rows)

    @property
    def passed(self) -> bool:
        return bool(self.rows) and not self.failures and not self.too_many_kinks

    @property
    def worst(self) -> GradRow | None:
        trusted = [r for r in self.rows if not r.kink] or self.rows
        return max(trusted, key=lambda r: r.rel_error, default=None)

    @property
    def summary(self) -> str:
        n, tensors = len(self.rows), len({r.name for r in self.rows})
        where = f"h={self.h:g}, {self.dtype}, {self.numeric_mode}"
        crossed = f"{self.kinks_crossed} crossed a kink"
        if not self.rows:
            return f"gradient check FAILED: nothing to check (no coordinates); {where}"
        worst = self.worst
        worst_text = f"worst relative error {worst.rel_error:.1e} ({worst.verdict}) at {label(worst)}"
        if self.passed:
            return f"gradient check PASSED: {n} coordinates of {tensors} tensors, {worst_text}, {crossed}; {where}"
        if self.failures:
            bad = {r.name for r in self.failures}
            return (f"gradient check FAILED: {len(self.failures)} of {n} coordinates disagree in "
                    f"{', '.join(sorted(bad))}; {worst_text}, {crossed}; {where}")
        return (f"gradient check FAILED: {crossed} of {n} coordinates, too many to trust the "
                f"check (use fewer datapoints or a smaller h); {where}")

    def __str__(self) -> str:
        return format_table(self)

    def to_dict(self) -> dict:
        """JSON-safe: plain floats (non-finite ones as strings), lists, strings and bools."""
        return _json_safe({
            "passed": self.passed, "summary": self.summary, "rows": [r.to_dict() for r in self.rows],
            "sweep": self.sweep, "warnings": list(self.warnings), "h": self.h, "dtype": self.dtype,
            "kinks_crossed": self.kinks_crossed, "kink_ops": dict(self.kink_ops),
            "numeric_mode": self.numeric_mode, "fallback": self.fallback, "seconds": self.seconds,
            "shapes": {k: list(v) for k, v in self.shapes.items()},
            "rule": "fail when a coordinate has rel_error > 1e-4, did not cross a kink and "
                    "|a-n| exceeds the round-off floor; or when more than half crossed a kink"})


def label(row: GradRow) -> str:
    return f"{row.name}[{', '.join(map(str, row.index))}]"


def band_warnings(rows: list[GradRow], has_kinks: bool) -> list[str]:
    """The notes: 1e-7..1e-4 is fine only with kinks in the objective."""
    if has_kinks:
        return []
    high = [r for r in rows if r.verdict == "ok" and r.abs_error > r.floor]
    if not high:
        return []
    return [f"{len(high)} coordinates have relative errors between 1e-7 and 1e-4 and the objective "
            f"has no kinks, where the notes call 1e-4 too high (first: {label(high[0])}, "
            f"{high[0].rel_error:.1e}); try the h sweep"]


def sweep_entry(h: float, rows: list[GradRow]) -> dict:
    trusted = [r.rel_error for r in rows if not r.kink]
    return {"h": h, "worst_rel_error": max(trusted, default=0.0),
            "median_rel_error": median(trusted) if trusted else 0.0,
            "failures": sum(r.failed for r in rows), "kinks_crossed": sum(r.kink for r in rows)}


def best_h(entries: list[dict]) -> float:
    """Fewest failing coordinates, then the smallest worst error, then the smaller median."""
    return min(entries, key=lambda e: (e["failures"], e["worst_rel_error"], e["median_rel_error"]))["h"]


def format_table(report: GradcheckReport) -> str:
    lines = []
    groups: dict[str, list[GradRow]] = {}
    for row in report.rows:
        groups.setdefault(row.name, []).append(row)
    head = f"    {'index':<14} {'analytic':>14} {'numeric':>14} {'rel error':>10}  {'kink':<5} verdict"
    for name, rows in groups.items():
        shape = report.shapes.get(name.split(":", 1)[-1])
        total = math.prod(shape) if shape is not None else len(rows)
        worst = max(rows, key=lambda r: r.rel_error)
        state = "FAILS" if any(r.failed for r in rows) else "ok"
        lines.append(f"{name}  {tuple(shape) if shape is not None else ''}  {len(rows)} of {total} "
                     f"checked, worst {worst.rel_error:.1e} ({worst.verdict}): {state}")
        if all(r.analytic == 0.0 and r.numeric == 0.0 for r in rows):
            lines += [f"    all {len(rows)} exactly zero on both sides", ""]
            continue
        lines.append(head)
        for r in rows:
            index = "(" + ", ".join(map(str, r.index)) + ")"
            mark = "  <-- fails" if r.failed else ""
            lines.append(f"    {index:<14} {r.analytic:>14.6e} {r.numeric:>14.6e} {r.rel_error:>10.1e}  "
                         f"{'yes' if r.kink else '':<5} {r.verdict}{mark}")
        lines.append("")
    if report.sweep:
        lines.append("h sweep (worst / median relative error without kink-crossed rows):")
        for e in report.sweep:
            best = "  <-- best" if e["h"] == report.h else ""
            lines.append(f"    h={e['h']:<7g} worst {e['worst_rel_error']:.1e}  median "
                         f"{e['median_rel_error']:.1e}  failing {e['failures']}  kinks {e['kinks_crossed']}{best}")
        lines.append("")
    lines.append(f"kink ops in the objective: {describe(report.kink_ops)}")
    if report.fallback:
        lines.append(f"numeric side ran as a plain loop: {report.fallback}")
    for w in report.warnings:
        lines.append(f"warning: {w}")
    lines.append(report.summary)
    return "\n".join(lines)


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
