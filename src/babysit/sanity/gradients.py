"""``gradcheck``: the analytic gradient agrees with the centered numerical one on 2-3 datapoints.

This is :func:`babysit.gradcheck_model` (centered differences in double precision, kinks
tracked, every parameter tensor sampled, data loss and regularization checked separately) run on
a fresh model and the first few training examples.
"""

from __future__ import annotations

import math

from .pipeline import Pipeline
from .report import CheckResult


def check_gradcheck(p: Pipeline) -> CheckResult:
    from .. import gradcheck_model  # imported here: the gradient check is its own stage

    model = p.fresh_model()
    x, y = p.sample(p.options.gradcheck_points)
    report = gradcheck_model(model, p.loss_fn, x, y, reg_fn=p.reg_fn,
                             num_points=p.options.gradcheck_points, **p.options.gradcheck_options)
    rows = [_row(r) for r in report.rows]
    errors = [r["rel_error"] for r in rows if isinstance(r.get("rel_error"), (int, float))]
    worst = max(errors, default=float("nan"))
    bad = [r for r in rows if str(r.get("verdict", "")).lower() in ("wrong", "fail", "failed")]
    values = {"points": len(y), "entries": len(rows), "max_rel_error": worst,
              "wrong_entries": len(bad),
              "worst": sorted({str(r.get("name")) for r in bad})[:5]}
    summary_text = report.summary if isinstance(report.summary, str) else ""
    if isinstance(report.summary, dict):
        values["gradcheck"] = report.summary
    worst_text = f"{worst:.2g}" if math.isfinite(worst) else "n/a"
    summary = (f"{len(rows)} entries on {len(y)} points: max rel error {worst_text}"
               + (f", {len(bad)} wrong" if bad else ""))
    detail = f" ({summary_text})" if summary_text else ""
    if report.passed:
        return CheckResult("gradcheck", True, summary, (
            f"The analytic gradient of every sampled parameter entry matches the centered "
            f"numerical gradient on {len(y)} datapoints{detail}: backpropagation is right."),
            values)
    where = f" in {', '.join(values['worst'])}" if values["worst"] else ""
    return CheckResult("gradcheck", False, summary, (
        f"The analytic gradient disagrees with the centered numerical gradient{where}"
        f"{detail}: a backward pass is wrong (a custom autograd Function, a hand-written "
        "gradient, an in-place operation, or a detach in the wrong place). Run 'babysit check' "
        "for the full table, fix the layer named there, and do not train until it passes."),
        values)


def _row(row) -> dict:
    if isinstance(row, dict):
        return row
    if hasattr(row, "_asdict"):
        return row._asdict()
    return dict(vars(row)) if hasattr(row, "__dict__") else {}
