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

**Verdict.** ``passed``, ``failed`` or ``inconclusive``. A coordinate *fails* when all hold:

* its relative error is above 1e-4 (verdict ``uneasy`` or ``wrong``);
* it is not inconclusive: a coordinate whose centered difference crossed a kink (the winners
  of some max/relu/clamp/... differ between f(x+h) and f(x-h): the numeric value mixes two
  slopes) is checked again with a smaller step or a one-sided difference that crosses
  nothing (:mod:`babysit.check.resolve`), and judged on that; only when nothing resolves it
  is it inconclusive;
* ``|a - n|`` exceeds the round-off floor of the numeric estimate,
  ``16 * eps * max(|f(x+h)|, |f(x-h)|) / h`` — below it the difference is floating-point noise,
  not a wrong formula (this matters for tiny gradients of a large loss).

The check fails when any coordinate fails, is inconclusive when none fails but some are
inconclusive (``babysit gradcheck`` exits 3: not a verdict on the user's gradient), and passes
otherwise. For an objective without kinks, rows in the ``ok`` band pass but are listed in the
warnings, as the notes call 1e-4 too high there.

Rows where analytic and numeric are both exactly 0 agree, but they say nothing about the
formula: they are counted apart, with why they are zero (``zero_reasons``), and a tensor whose
checked rows are all zero is reported as not exercised unless other coordinates could be
checked (:mod:`babysit.check.api` picks them among the nonzero analytic entries).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple
from statistics import median

import numpy as np

from .kinks import describe

HAPPY, OK, UNEASY = 1e-7, 1e-4, 1e-2
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


class GradRow(NamedTuple):
    """One checked coordinate: tensor `name` at `index`, both gradients and the verdict.

    A tuple, not a class with a ``__dict__``: a check of every weight makes ~10,000 rows, and
    the garbage collector stops tracking tuples of plain numbers, so a kept report adds
    nothing to its later passes over the whole heap.
    """

    name: str
    index: tuple[int, ...]
    analytic: float
    numeric: float
    rel_error: float
    kink: bool
    verdict: str
    abs_error: float = 0.0
    floor: float = 0.0
    resolved: str = ""  # how a kink-crossed row was checked again ("centered h=1e-08", ...)
    note: str = ""  # why a crossed row stayed unresolved; why a zero row is zero
    crossed_numeric: float | None = None  # the centered difference across the kink, for the record

    @property
    def inconclusive(self) -> bool:
        """Crossed a kink at h and nothing (smaller step, one-sided difference) resolved it."""
        return self.kink and not self.resolved

    @property
    def failed(self) -> bool:
        """The rule for one row (see the module docstring)."""
        return self.rel_error > OK and not self.inconclusive and self.abs_error > self.floor

    @property
    def zero(self) -> bool:
        """Analytic and numeric both exactly 0: agreement that says nothing about the formula."""
        return self.analytic == 0.0 and self.numeric == 0.0

    def to_dict(self) -> dict:
        return {"name": self.name, "index": list(self.index), "analytic": self.analytic,
                "numeric": self.numeric, "rel_error": self.rel_error, "kink": self.kink,
                "verdict": self.verdict, "abs_error": self.abs_error, "floor": self.floor,
                "failed": self.failed, "resolved": self.resolved, "inconclusive": self.inconclusive,
                "zero": self.zero, "note": self.note, "crossed_numeric": self.crossed_numeric}


def make_row(name: str, index: tuple[int, ...], analytic: float, f_plus: float, f_minus: float,
             step: float, kink: bool, eps: float) -> GradRow:
    numeric = (f_plus - f_minus) / step
    rel = relative_error(analytic, numeric)
    return GradRow(name, index, analytic, numeric, rel, kink, verdict(rel), abs(analytic - numeric),
                   roundoff_floor(f_plus, f_minus, step / 2, eps))


def make_rows(names: list[str], indices: list[tuple[int, ...]], analytic, f_plus, f_minus, step,
              kink, eps) -> list[GradRow]:
    """:func:`make_row` for many coordinates at once (NumPy does the arithmetic)."""
    a, fp, fm, st = (np.asarray(v, dtype=np.float64) for v in (analytic, f_plus, f_minus, step))
    numeric = (fp - fm) / st
    diff = np.abs(a - numeric)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where((a == 0) & (numeric == 0), 0.0, diff / np.maximum(np.abs(a), np.abs(numeric)))
    rel = np.where(np.isfinite(a) & np.isfinite(numeric), rel, np.inf)
    floor = ROUNDOFF_FACTOR * np.asarray(eps) * np.maximum(np.abs(fp), np.abs(fm)) / (st / 2)
    verdicts = np.select([rel <= HAPPY, rel <= OK, rel <= UNEASY], ["happy", "ok", "uneasy"], "wrong")
    n = len(names)
    fields = zip(names, indices, a.tolist(), numeric.tolist(), rel.tolist(), list(map(bool, kink)),
                 verdicts.tolist(), diff.tolist(), floor.tolist(), [""] * n, [""] * n, [None] * n)
    return list(map(GradRow._make, fields))  # _make builds the tuple in C: 10,000 rows


@dataclass
class GradcheckReport:
    """The outcome of a gradient check. ``str(report)`` is the table; ``.summary`` one line.

    ``outcome`` is ``"passed"``, ``"failed"`` or ``"inconclusive"``; ``passed`` is True only
    for the first. ``depth`` is the number of layers with weights between the input and the
    loss, ``layers`` the layer (1 = next to the input) each checked tensor sits in.
    """

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
    not_exercised: dict[str, str] = field(default_factory=dict)  # tensor -> why it was not
    depth: int | None = None
    layers: dict[str, int] = field(default_factory=dict)

    @property
    def failures(self) -> list[GradRow]:
        return [r for r in self.rows if r.rel_error > OK and r.failed]  # the cheap test first

    @property
    def inconclusive(self) -> list[GradRow]:
        return [r for r in self.rows if r.kink and r.inconclusive]

    @property
    def zero_rows(self) -> list[GradRow]:
        return [r for r in self.rows if r.zero]

    @property
    def kinks_crossed(self) -> int:
        return sum(r.kink for r in self.rows)

    @property
    def kinks_resolved(self) -> int:
        return sum(bool(r.resolved) for r in self.rows)

    @property
    def has_kinks(self) -> bool:
        """Whether the objective runs any non-differentiable op (relu, max, clamp, ...)."""
        return bool(self.kink_ops)

    @property
    def outcome(self) -> str:
        if not self.rows or self.failures:
            return "failed"
        return "inconclusive" if self.inconclusive else "passed"

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    @property
    def zero_reasons(self) -> dict[str, int]:
        """Why the exactly-zero rows are zero, with how many rows each reason covers."""
        return dict(Counter(r.note or "zero here on these datapoints" for r in self.zero_rows))

    @property
    def worst(self) -> GradRow | None:
        """The largest relative error that means something: not inconclusive, and not a large
        relative error that round-off explains (a tiny gradient of a large loss)."""
        explained = lambda r: r.inconclusive or (r.rel_error > OK and not r.failed)  # noqa: E731
        trusted = ([r for r in self.rows if not explained(r)]
                   or [r for r in self.rows if not r.inconclusive] or self.rows)
        return max(trusted, key=lambda r: r.rel_error, default=None)

    def layer_text(self, name: str) -> str:
        layer = self.layers.get(name.split(":", 1)[-1])
        return f"layer {layer} of {self.depth}" if layer and self.depth else ""

    @property
    def summary(self) -> str:
        where = f"h={self.h:g}, {self.dtype}, {self.numeric_mode}"
        if self.depth:
            where = f"depth {self.depth}, " + where
        if not self.rows:
            return f"gradient check FAILED: nothing to check (no coordinates); {where}"
        zeros = len(self.zero_rows)
        compared = len(self.rows) - zeros
        tensors = len({r.name for r in self.rows})
        counted = (f"{compared} coordinates of {tensors} tensors compared"
                   + (f" (+{zeros} exactly 0 on both sides, counted apart)" if zeros else ""))
        kinks = (f"{self.kinks_crossed} crossed a kink, {self.kinks_resolved} of them resolved"
                 if self.kinks_crossed else "no kink crossed")
        worst = self.worst
        worst_text = f"worst relative error {worst.rel_error:.1e} ({worst.verdict}) at {label(worst)}"
        idle = (f"; not exercised: {', '.join(sorted(self.not_exercised))}" if self.not_exercised else "")
        if self.outcome == "passed":
            return f"gradient check PASSED: {counted}, {worst_text}, {kinks}{idle}; {where}"
        if self.failures:
            bad = {r.name for r in self.failures}
            return (f"gradient check FAILED: {len(self.failures)} of {len(self.rows)} coordinates "
                    f"disagree in {', '.join(sorted(bad))}; {worst_text}, {kinks}{idle}; {where}")
        first = self.inconclusive[0]
        return (f"gradient check INCONCLUSIVE: {len(self.inconclusive)} of {len(self.rows)} coordinates "
                f"sit on a kink nothing resolves (first: {label(first)}: {first.note}); none of the "
                f"{counted} disagrees, {worst_text}{idle}; {where}")

    def __str__(self) -> str:
        return format_table(self)

    def to_dict(self) -> dict:
        """JSON-safe: plain floats (non-finite ones as strings), lists, strings and bools."""
        return _json_safe({
            "passed": self.passed, "outcome": self.outcome, "summary": self.summary,
            "rows": [r.to_dict() for r in self.rows],
            "sweep": self.sweep, "warnings": list(self.warnings), "h": self.h, "dtype": self.dtype,
            "kinks_crossed": self.kinks_crossed, "kinks_resolved": self.kinks_resolved,
            "inconclusive": len(self.inconclusive), "zero_rows": len(self.zero_rows),
            "zero_reasons": self.zero_reasons, "not_exercised": dict(self.not_exercised),
            "depth": self.depth, "layers": dict(self.layers), "kink_ops": dict(self.kink_ops),
            "numeric_mode": self.numeric_mode, "fallback": self.fallback, "seconds": self.seconds,
            "shapes": {k: list(v) for k, v in self.shapes.items()},
            "rule": "fail when a coordinate has rel_error > 1e-4 beyond the round-off floor; a "
                    "coordinate whose difference crossed a kink is judged on a smaller step or a "
                    "one-sided difference that crosses nothing, and is inconclusive (never a "
                    "failure) where nothing resolves it; exactly-zero rows are counted apart"})


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
    """One h of the sweep: worst/median error of the rows that mean something, per tensor too."""
    trusted = [r for r in rows if not r.inconclusive and not r.zero]
    per_tensor: dict[str, float] = {}
    for r in trusted:
        per_tensor[r.name] = max(per_tensor.get(r.name, 0.0), r.rel_error)
    errors = [r.rel_error for r in trusted]
    return {"h": h, "worst_rel_error": max(errors, default=0.0),
            "median_rel_error": median(errors) if errors else 0.0,
            "failures": sum(r.failed for r in rows), "inconclusive": sum(r.inconclusive for r in rows),
            "kinks_crossed": sum(r.kink for r in rows), "per_tensor": per_tensor}


def best_h(entries: list[dict]) -> float:
    """Fewest failing, then fewest inconclusive coordinates, then the smallest worst error,
    then the smaller median."""
    return min(entries, key=lambda e: (e["failures"], e["inconclusive"], e["worst_rel_error"],
                                       e["median_rel_error"]))["h"]


def depth_remark(report: GradcheckReport) -> str | None:
    """The notes: errors accumulate with depth; said where a deep net shows uneasy rows."""
    uneasy = [r for r in report.rows if r.verdict in ("uneasy", "wrong") and not r.inconclusive]
    if not report.depth or report.depth < 3 or not uneasy:
        return None
    where = sorted({report.layer_text(r.name) for r in uneasy if report.layer_text(r.name)})
    return (f"the notes: relative errors accumulate with depth, so in a {report.depth}-layer net "
            f"errors up to ~1e-2 can be fine (a 10-layer net's input gradient, say); here the "
            f"uneasy rows sit in {', '.join(where) or 'unknown layers'} — while a single "
            f"differentiable function at 1e-2 is almost surely wrong")


def _mark(r: GradRow) -> str:
    if r.failed:
        return "  <-- fails"
    if r.inconclusive:
        return f"  inconclusive: {r.note}"
    text = f"  resolved: {r.resolved}" if r.resolved else ""
    if r.rel_error > OK:
        text += "  (within round-off)"
    return text


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
        state = ("FAILS" if any(r.failed for r in rows) else
                 "inconclusive" if any(r.inconclusive for r in rows) else "ok")
        layer = report.layer_text(name)
        zeros = sum(r.zero for r in rows)
        lines.append(f"{name}  {tuple(shape) if shape is not None else ''}  {len(rows)} of {total} "
                     f"checked{f' ({zeros} exactly 0)' if zeros else ''}, worst {worst.rel_error:.1e} "
                     f"({worst.verdict}){f', {layer}' if layer else ''}: {state}")
        if name in report.not_exercised:
            lines += [f"    NOT EXERCISED: {report.not_exercised[name]}", ""]
            continue
        lines.append(head)
        for r in rows:
            index = "(" + ", ".join(map(str, r.index)) + ")"
            lines.append(f"    {index:<14} {r.analytic:>14.6e} {r.numeric:>14.6e} {r.rel_error:>10.1e}  "
                         f"{'yes' if r.kink else '':<5} {r.verdict}{_mark(r)}")
        lines.append("")
    if report.zero_rows:
        reasons = "; ".join(f"{n} {why}" for why, n in report.zero_reasons.items())
        lines.append(f"exactly 0 on both sides, counted apart ({len(report.zero_rows)} rows): {reasons}")
    if report.sweep:
        lines.append("h sweep (worst / median relative error of the rows that mean something):")
        for e in report.sweep:
            best = "  <-- best" if e["h"] == report.h else ""
            lines.append(f"    h={e['h']:<7g} worst {e['worst_rel_error']:.1e}  median "
                         f"{e['median_rel_error']:.1e}  failing {e['failures']}  inconclusive "
                         f"{e.get('inconclusive', 0)}  kinks {e['kinks_crossed']}{best}")
        lines.append("")
    if report.numeric_mode == "numpy":
        lines.append("kinks: not tracked (NumPy code runs no torch ops to watch)")
    else:
        resolved = (f"; {report.kinks_crossed} coordinates crossed one at h, {report.kinks_resolved} "
                    f"resolved by a smaller step or a one-sided difference" if report.kinks_crossed else "")
        lines.append(f"kink ops in the objective: {describe(report.kink_ops)}{resolved}")
    if report.depth:
        lines.append(f"depth: {report.depth} layers with weights between input and loss (the notes: "
                     "relative errors accumulate with depth; ~1e-2 can be fine in a 10-layer net)")
    if report.fallback:
        lines.append(f"numeric side ran as a plain loop: {report.fallback}")
    remark = depth_remark(report)
    for w in report.warnings + ([remark] if remark else []):
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
