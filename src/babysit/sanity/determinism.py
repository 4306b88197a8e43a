"""``deterministic``: two evaluations of the loss under the same seed give identical numbers.

A gradient check compares f(x+h), f(x-h) and the analytic gradient; with dropout active they
are only comparable if every evaluation draws the same masks, i.e. the same seed reproduces
them. The same holds for reruns and resumed runs. The loss and its gradient are evaluated twice
in training mode (dropout on) after the same seeding babysit's training does, and must agree bit
for bit; a third evaluation under another seed tells whether the model is random at all.
"""

from __future__ import annotations

import torch
from torch import nn

from ..train import seed_everything
from .pipeline import Pipeline
from .report import CheckResult


def _evaluate(p: Pipeline, model: nn.Module, x, y, seed: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    seed_everything(seed)
    model.zero_grad(set_to_none=True)
    loss = p.data_loss(model, x, y) + p.reg_fn(model)
    loss.backward()
    grads = [q.grad.detach().clone() for q in model.parameters() if q.grad is not None]
    return loss.detach().clone(), grads


def _same(a: tuple[torch.Tensor, list[torch.Tensor]], b: tuple[torch.Tensor, list[torch.Tensor]]) -> bool:
    return (torch.equal(a[0], b[0]) and len(a[1]) == len(b[1])
            and all(torch.equal(g, h) for g, h in zip(a[1], b[1])))


def check_deterministic(p: Pipeline) -> CheckResult:
    seed = p.options.seed
    model = p.fresh_model()
    model.train()  # dropout on: that is where randomness lives
    x, y = p.sample(p.options.batch_size)
    first = _evaluate(p, model, x, y, seed)
    second = _evaluate(p, model, x, y, seed)
    other = _evaluate(p, model, x, y, seed + 1)
    identical = _same(first, second)
    random_model = not _same(first, other)
    dropout = any(isinstance(m, nn.modules.dropout._DropoutNd) for m in model.modules())
    loss_diff = float((first[0] - second[0]).abs())
    values = {"seed": seed, "loss_first": float(first[0]), "loss_second": float(second[0]),
              "loss_difference": loss_diff, "gradients_identical": identical,
              "has_dropout": dropout, "random_in_training": random_model}
    kind = ("dropout active" if dropout and random_model else
            "random in training mode" if random_model else "no dropout or other randomness")
    summary = (f"two losses under seed {seed}: {float(first[0]):.6g} and {float(second[0]):.6g} "
               f"({'identical' if identical else 'DIFFERENT'}); {kind}")
    if identical:
        note = ("the same seed reproduces its random draws, so gradient checks with that seed "
                "and reruns are valid." if random_model else
                "the model has no randomness, so any evaluation is repeatable.")
        return CheckResult("deterministic", True, summary, (
            f"Two evaluations of the loss and its gradient in training mode under seed {seed} "
            f"are bit-identical ({kind}): {note}"), values)
    what = "loss" if loss_diff else "gradient (the loss agrees)"
    return CheckResult("deterministic", False, summary, (
        f"Two evaluations in training mode under the same seed {seed} give a different {what}: "
        "the model draws random numbers that the seed does not control (a private "
        "torch.Generator, random.SystemRandom, time- or os-based seeds) or runs nondeterministic "
        "kernels. Draw dropout masks from torch's global generator (nn.Dropout, F.dropout) so a "
        "fixed seed reproduces them (and torch.use_deterministic_algorithms(True) on GPU); "
        "otherwise gradient checks compare different functions and reruns differ."), values)
