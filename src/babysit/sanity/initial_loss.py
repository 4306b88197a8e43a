"""``initial_loss``: at initialization, with regularization off, the loss is the loss at chance.

A freshly initialized network has small, nearly equal class scores, so its data loss is what
equal scores give: softmax ``-ln(1/C)`` (every class gets probability 1/C; 2.303 for C=10) and
the Weston-Watkins SVM ``C-1`` (every one of the C-1 margins of 1 is violated; 9 for C=10).
"""

from __future__ import annotations

import math

import torch

from .pipeline import Pipeline
from .report import CheckResult


def check_initial_loss(p: Pipeline) -> CheckResult:
    model = p.fresh_model()
    x, y = p.sample(p.options.examples)
    model.eval()  # dropout off: the loss of the model as initialized, not of one random mask
    with torch.no_grad():
        scores = p.scores(model, x)
        loss = float(p.data_loss(model, x, y))
    chance, tol = p.chance, p.options.initial_tolerance
    ratio = loss / chance if chance else math.inf
    score_std = float(scores.float().std())
    values = {"loss": loss, "chance": chance, "ratio": ratio, "tolerance": tol,
              "score_std": score_std, "examples": len(y)}
    at_chance = f"{p.chance_formula} = {chance:.4g}"
    summary = f"loss {loss:.4g} vs chance {at_chance}: ratio {ratio:.3f} (tolerance ±{tol:.0%})"
    if not math.isfinite(loss):
        return CheckResult("initial_loss", False, summary, (
            f"The data loss at initialization is {loss}: the initial scores overflow. The weights "
            "are initialized far too large (or the inputs hold huge values): scale the initial "
            "weights down (model.init_scale < 1) and standardize the inputs."), values)
    if abs(ratio - 1) <= tol:
        return CheckResult("initial_loss", True, summary, (
            f"The data loss of the freshly initialized model ({loss:.4g}, regularization off) is "
            f"within ±{tol:.0%} of its value at chance, {at_chance}: the class scores start out "
            f"small and nearly equal (score std {score_std:.3g}), as they should."), values)
    if ratio > 1:
        return CheckResult("initial_loss", False, summary, (
            f"The data loss at initialization, {loss:.4g}, is {ratio:.2g}x its value at chance "
            f"({at_chance}; tolerance ±{tol:.0%}). A fresh model should spread its bets evenly; "
            f"instead its class scores are large and unequal (score std {score_std:.3g}), which "
            "means the weights are initialized too large. Scale the initial weights down "
            "(model.init_scale < 1, or a 1/sqrt(fan_in) initialization such as torch's default "
            "or Kaiming's) until the initial loss is at chance; with weights this large the "
            "first updates are spent undoing the initialization, and units saturate."), values)
    return CheckResult("initial_loss", False, summary, (
        f"The data loss at initialization, {loss:.4g}, is below its value at chance "
        f"({at_chance}; tolerance ±{tol:.0%}): a model that has learned nothing already predicts "
        "the labels. The model is not freshly initialized (weights loaded from a trained run?), "
        "the labels leak into the inputs, or the loss is not the batch mean of the loss per "
        "example (check the loss function)."), values)
