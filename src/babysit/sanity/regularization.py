"""``reg_increases_loss``: raising the regularization strength raises the loss.

The full objective is ``data loss + R(W)``; with L2, ``R(W) = 0.5 * reg * sum(W**2)``. On a fresh
model the data loss is fixed, so as the strength goes 0x, 1x, 10x, 100x the total must rise.
A term with the wrong sign rewards large weights; a term that is zero regularizes nothing.
"""

from __future__ import annotations

import math

import torch

from .pipeline import Pipeline
from .report import CheckResult

FACTORS = (0.0, 1.0, 10.0, 100.0)


def check_reg_increases_loss(p: Pipeline) -> CheckResult:
    model = p.fresh_model()
    x, y = p.sample(p.options.examples)
    model.eval()
    with torch.no_grad():
        data_loss = float(p.data_loss(model, x, y))
        terms = [float(p.reg_at(model, factor)) for factor in FACTORS]
    losses = [data_loss + term for term in terms]
    rises = all(b > a for a, b in zip(losses, losses[1:]))
    values = {"factors": list(FACTORS), "losses": losses, "reg_terms": terms,
              "data_loss": data_loss, "regularization": p.reg_label}
    trail = " -> ".join(f"{loss:.4g}" for loss in losses)
    summary = f"loss {trail} at strength x{', x'.join(f'{f:g}' for f in FACTORS)}"
    if rises:
        return CheckResult("reg_increases_loss", True, summary, (
            f"With {p.reg_label}, the loss rises as the regularization strength is raised "
            f"{' -> '.join(f'x{f:g}' for f in FACTORS)}: the term is a penalty on the weights, "
            "as it should be."), values)
    if not all(math.isfinite(v) for v in losses):
        why = ("the loss is not finite at some strength: the regularization term overflows "
               "(weights far too large?) or divides by zero.")
    elif all(term == 0 for term in terms):
        why = ("the regularization term is 0 at every strength: it regularizes nothing. L2 covers "
               "the weight matrices (parameters with 2 or more dimensions); check that the model "
               "has such parameters and that the term is computed from model.parameters().")
    elif all(b < a for a, b in zip(losses, losses[1:])):
        why = ("the loss falls as the strength rises: the regularization term has the wrong sign, "
               "so the optimizer is rewarded for growing the weights. L2 is "
               "+0.5 * reg * sum(W**2), added to the data loss; fix the sign where it is added.")
    else:
        why = ("the loss does not rise steadily with the strength: the term is not proportional "
               "to a penalty on the weights. Check how the strength enters the term.")
    return CheckResult("reg_increases_loss", False, summary,
                       f"With {p.reg_label}, {why}", values)
