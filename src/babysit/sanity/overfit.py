"""``overfit_tiny``: with regularization off, the pipeline memorizes ~20 examples.

The notes call this the most important check: before training on the whole data set, train on
a tiny subset and reach (near) zero cost. If a model cannot memorize 20 examples there is no
point in going further. Passing does not prove the features are right (see input_dependence).
"""

from __future__ import annotations

import math

from .pipeline import Pipeline
from .report import CheckResult
from .training import train_steps


def check_overfit_tiny(p: Pipeline) -> CheckResult:
    opts = p.options
    x, y = p.sample(opts.overfit_examples)
    model = p.fresh_model()
    target = opts.overfit_target * p.chance
    initial_loss, initial_acc = p.measure(model, x, y)
    curve = [initial_loss]  # the loss on the tiny set (eval mode) after every step

    def memorized(step: int) -> bool:
        loss, last["acc"] = p.measure(model, x, y)
        curve.append(loss)
        return loss <= target and last["acc"] == 1.0

    last = {"acc": initial_acc}
    steps, stayed_finite, _ = train_steps(p, model, x, y, steps=opts.overfit_steps, done=memorized)
    final_loss, train_acc = curve[-1], last["acc"]
    passed = stayed_finite and final_loss <= target and train_acc == 1.0
    values = {"examples": len(y), "steps": steps, "max_steps": opts.overfit_steps,
              "initial_loss": initial_loss, "final_loss": final_loss, "target_loss": target,
              "train_acc": train_acc, "optimizer": p.optimizer_label, "curve": curve}
    summary = (f"{len(y)} examples: loss {initial_loss:.4g} -> {final_loss:.4g} "
               f"(target <= {target:.3g}), train acc {train_acc:.0%} after {steps} steps "
               f"(max {opts.overfit_steps})")
    if passed:
        return CheckResult("overfit_tiny", True, summary, (
            f"With regularization off, {p.optimizer_label} memorized {len(y)} training examples in "
            f"{steps} full-batch steps: loss {final_loss:.3g} (at most {opts.overfit_target:.0%} "
            "of the loss at chance) and 100% training accuracy. The model, loss and update rule "
            "can learn. (This alone does not prove the features are right: see input_dependence.)"),
            values)
    if not stayed_finite or not math.isfinite(final_loss):
        why = (f"the loss became NaN or infinite after {steps} steps: the learning rate is too "
               f"high for this model ({p.optimizer_label}). Lower it, e.g. by 10x.")
    elif final_loss >= 0.99 * initial_loss:
        why = (f"the loss did not go down in {steps} steps ({initial_loss:.4g} -> {final_loss:.4g}): "
               f"the learning rate is zero or far too small ({p.optimizer_label}), or the "
               "gradients do not reach the weights (parameters frozen or detached, or not given "
               "to the optimizer).")
    else:
        why = (f"the loss went down ({initial_loss:.4g} -> {final_loss:.4g}) but did not reach "
               f"{target:.3g} with 100% training accuracy (got {train_acc:.0%}) within "
               f"{steps} steps: the model has too little capacity to memorize {len(y)} examples "
               "(make it wider or deeper; look for a bottleneck layer or scores squashed into a "
               f"small range), or the learning rate ({p.optimizer_label}) is too low or too high.")
    return CheckResult("overfit_tiny", False, summary, (
        f"With regularization off, training on {len(y)} examples, {why} Until the model can "
        "memorize a tiny subset there is no point training on the full data set."), values)
