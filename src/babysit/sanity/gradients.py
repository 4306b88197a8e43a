"""``gradcheck``: the analytic gradient agrees with the centered numerical one on 2-3 datapoints.

This is :func:`babysit.gradcheck_model` (centered differences in double precision, kinks
tracked, every parameter tensor sampled, data loss and regularization checked separately) run on
a fresh model and the first few training examples, after an optional burn-in with the
pipeline's update rule (the notes: check in a "characteristic" phase; ``gradcheck_burn_in``,
``[gradcheck] burn_in`` for an experiment). The model is
checked in eval mode, dropout off, as the notes suggest; ``deterministic`` checks separately that
a seed reproduces the dropout masks.
"""

from __future__ import annotations

import math

from ..check import gradcheck_model
from .pipeline import Pipeline
from .report import CheckResult


def check_gradcheck(p: Pipeline) -> CheckResult:
    opts = p.options
    model = p.fresh_model().eval()
    # The burn-in trains on one batch; the check then uses its first gradcheck_points examples.
    x, y = p.sample(max(opts.gradcheck_points, opts.batch_size))
    options = {"burn_in": opts.gradcheck_burn_in, "optimizer": p.make_optimizer,
               "burn_in_batch_size": opts.batch_size, "seed": opts.seed, "progress": False,
               **opts.gradcheck_options}
    report = gradcheck_model(model, p.loss_fn, x, y, reg_fn=p.reg_in_use,
                             num_points=opts.gradcheck_points, **options)
    y = y[:opts.gradcheck_points]
    rows = [_row(r) for r in report.rows]
    # A crossed kink that was resolved (re-checked where nothing switches) is evidence again;
    # an inconclusive entry is not.
    trusted = [r for r in rows if not r.get("inconclusive")] or rows
    errors = [float(r["rel_error"]) for r in trusted if isinstance(r.get("rel_error"), (int, float))]
    worst = max(errors, default=float("nan"))
    bad = [r for r in rows if r.get("failed", str(r.get("verdict")) == "wrong")]
    values = {"points": len(y), "entries": len(rows), "max_rel_error": worst,
              "kinks_crossed": sum(bool(r.get("kink")) for r in rows), "wrong_entries": len(bad),
              "wrong_tensors": sorted({str(r.get("name")) for r in bad})}
    summary_text = str(report.summary)
    worst_text = f"{worst:.2g}" if math.isfinite(worst) else "n/a"
    summary = (f"{len(rows)} entries on {len(y)} points: max rel error {worst_text}"
               + (f", {len(bad)} wrong" if bad else "")
               + (f", {values['kinks_crossed']} crossed a kink" if values["kinks_crossed"] else ""))
    detail = f" ({summary_text})" if summary_text else ""
    if report.passed:
        return CheckResult("gradcheck", True, summary, (
            f"The analytic gradient of every sampled parameter entry matches the centered "
            f"numerical gradient on {len(y)} datapoints{detail}: backpropagation is right."),
            values)
    if not bad:  # inconclusive: no entry is wrong, some could not be judged — not a failure
        values["inconclusive_entries"] = sum(bool(r.get("inconclusive")) for r in rows)
        return CheckResult("gradcheck", True, summary + ", inconclusive", (
            f"No checked entry is wrong, but {values['inconclusive_entries']} could not be judged"
            f"{detail}: they sit on a kink (ReLU, max, hinge) that no smaller or one-sided step "
            "could avoid. That is not a failure of your gradient; 'babysit gradcheck' lists them "
            "with the reason, and another seed or other datapoints usually avoids them."), values)
    where = f" in {', '.join(values['wrong_tensors'])}"
    return CheckResult("gradcheck", False, summary, (
        f"The analytic gradient disagrees with the centered numerical gradient{where}"
        f"{detail}: a backward pass is wrong (a custom autograd Function, a hand-written "
        "gradient, an in-place operation, or a detach in the wrong place). 'babysit gradcheck' "
        "prints every entry that disagrees; fix the layer they belong to, and do not train until "
        "the check passes."),
        values)


def _row(row) -> dict:
    """One row of the gradient check as a dict (rows are objects with ``to_dict`` or dicts)."""
    if isinstance(row, dict):
        return row
    if hasattr(row, "to_dict"):
        return row.to_dict()
    return dict(vars(row))
