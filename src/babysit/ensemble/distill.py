"""Distillation (Hinton, Vinyals & Dean 2015, "dark knowledge"): one student trained on the
ensemble's softened outputs, so a single model keeps most of the ensemble's gain at the
evaluation cost of one model.

With teacher probabilities at temperature T, ``p_T = (1/K) sum_k softmax(z_k / T)``, and the
student's ``q_T = softmax(s / T)``, the student minimizes::

    L = alpha * T^2 * KL(p_T || q_T) + (1 - alpha) * CE(softmax(s), y)

A high T softens the targets, so the small probabilities a teacher gives the wrong classes
(which "2"s look like "3"s) carry signal. The gradient of the soft term with respect to the
scores is ``(q_T - p_T) / T``; for large T it approaches ``(s - v) / (C T^2)`` for
zero-mean scores s and teacher logits v, so the factor T^2 keeps the soft term's gradients
on the same scale whatever T is, and alpha means the same at every temperature.

Which T: the notes leave it open. On the default experiment (digits, 5 seed teachers, a
student of the same MLP and budget) a moderate T is what pays. Over 6 disjoint groups of
teachers, the student at T=2 beat its twin trained on the hard labels alone (same seed) in all
6 groups, by 0.5 pt on average, and the ensemble it learned from by 0.2 pt on average; at T=4
it did no better than the twin (0.2 pt below on average, above it in 2 groups) and fell 0.5 pt
below the ensemble. T=2.5 and 3 measured close to 2; T=1.5 and 1 below the ensemble. So
``ensemble.temperature`` defaults to 2; alpha stays 0.9 (0.5 to 1.0 measured alike at T=2).
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import experiment
from ..config import DEFAULTS
from ..models import softmax_loss
from ..rundir import RunDir, list_checkpoints
from ..train import Callback, TrainState
from .predict import ensemble_probabilities


def distillation_loss(student_scores: torch.Tensor, teacher_probs: torch.Tensor, targets: torch.Tensor,
                      temperature: float, alpha: float) -> torch.Tensor:
    """alpha * T^2 * KL(p_T || softmax(s/T)) + (1 - alpha) * CE(s, y), batch means.

    `teacher_probs` are already softened at `temperature` (rows sum to 1).
    """
    log_q = F.log_softmax(student_scores / temperature, dim=1)
    soft = F.kl_div(log_q, teacher_probs, reduction="batchmean")
    hard = F.cross_entropy(student_scores, targets)
    return alpha * temperature ** 2 * soft + (1.0 - alpha) * hard


class SoftTargets(Callback):
    """The teachers' softened probabilities for the current training batch, computed as it begins.

    With `mix` > 0 the batch is first replaced by mixtures of its examples (function matching,
    Beyer et al. 2022, "Knowledge distillation: a good teacher is patient and consistent"):
    ``x' = lam * x + (1 - lam) * x[perm]``, lam ~ Beta(mix, mix) per example, and the teachers
    are asked about x' itself. On its training examples an ensemble is as sure as each of its
    members (they fit them), so its soft targets there say little; between the examples its
    members disagree, and that is the knowledge the student is to learn. The hard-label term
    becomes ``lam * CE(s, y) + (1 - lam) * CE(s, y[perm])``.
    """

    def __init__(self, teachers: Sequence[nn.Module], temperature: float, mix: float = 0.0,
                 seed: int = 0):
        self.teachers, self.temperature, self.mix, self.seed = list(teachers), temperature, mix, seed
        self.current: torch.Tensor | None = None
        self.partner: torch.Tensor | None = None  # y[perm] of the mixed batch
        self.weight: torch.Tensor | None = None  # lam per example

    def on_train_begin(self, state: TrainState) -> None:
        device = state.data.x_train.device
        for teacher in self.teachers:
            teacher.to(device).eval()
        # Its own stream of mixtures: torch's (shuffling, dropout) stays the config's.
        self.rng = np.random.default_rng(self.seed)

    def on_batch_begin(self, state: TrainState) -> None:
        if self.mix > 0 and len(state.yb) > 1:
            self._mix_batch(state)
        self.current = ensemble_probabilities(self.teachers, state.xb, self.temperature)

    def _mix_batch(self, state: TrainState) -> None:
        n, device = len(state.yb), state.xb.device
        lam = torch.as_tensor(self.rng.beta(self.mix, self.mix, n), dtype=state.xb.dtype, device=device)
        perm = torch.as_tensor(self.rng.permutation(n), device=device)
        shape = (n,) + (1,) * (state.xb.dim() - 1)
        state.xb = lam.view(shape) * state.xb + (1 - lam.view(shape)) * state.xb[perm]
        self.weight, self.partner = lam, state.yb[perm]

    def on_batch_end(self, state: TrainState) -> None:
        # outside a training batch (validation) the loss is the plain one
        self.current = self.partner = self.weight = None


class DistillationLoss:
    """The loss `fit` calls: distillation during a training batch, hard-label softmax otherwise.

    So ``val_loss`` in the logs stays the usual cross-entropy, comparable with any other run.
    """

    def __init__(self, soft_targets: SoftTargets, temperature: float, alpha: float):
        self.soft_targets, self.temperature, self.alpha = soft_targets, temperature, alpha

    def __call__(self, scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        soft = self.soft_targets
        if soft.current is None:
            return softmax_loss(scores, targets)
        if soft.weight is None:
            return distillation_loss(scores, soft.current, targets, self.temperature, self.alpha)
        # A mixed batch: its hard labels are the two sources' labels, weighted as mixed.
        lam = soft.weight
        return (lam * self._loss(scores, soft.current, targets)
                + (1 - lam) * self._loss(scores, soft.current, soft.partner)).mean()

    def _loss(self, scores: torch.Tensor, teacher: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per example: alpha * T^2 * KL(p_T || q_T) + (1 - alpha) * CE(s, y)."""
        log_q = F.log_softmax(scores / self.temperature, dim=1)
        soft = (teacher * (teacher.clamp_min(1e-12).log() - log_q)).sum(dim=1)
        hard = F.cross_entropy(scores, targets, reduction="none")
        return self.alpha * self.temperature ** 2 * soft + (1.0 - self.alpha) * hard


def distill(config: dict, teachers: Sequence[nn.Module], run_dir: RunDir | None = None, *,
            temperature: float | None = None, alpha: float | None = None, seed: int | None = None,
            mix: float | None = None, epochs: int | None = None,
            quiet: bool = False) -> tuple[nn.Module, TrainState]:
    """Train one student of `config`'s architecture on the `teachers`' softened outputs.

    `temperature`, `alpha`, `mix` (0: no mixing) and `epochs` default to ``ensemble.temperature``,
    ``ensemble.alpha``, ``ensemble.mix`` and ``ensemble.distill_epochs`` (0: ``train.epochs``). The student starts from `seed` (a seed no teacher used, so its gain is not its
    init's) and trains as :func:`babysit.experiment.train` trains any experiment of `config`
    (its optimizer, schedules and companions), writing ``config.toml``, ``metrics.jsonl``,
    checkpoints and the monitor's records into `run_dir` when given.
    """
    section = {**DEFAULTS["ensemble"], **config.get("ensemble", {})}
    temperature = section["temperature"] if temperature is None else temperature
    alpha = section["alpha"] if alpha is None else alpha
    mix = section["mix"] if mix is None else mix
    epochs = section["distill_epochs"] if epochs is None else epochs
    config = copy.deepcopy(config)
    if seed is not None:
        config["seed"] = seed
    if epochs:
        config["train"]["epochs"] = epochs
    config["name"] = f"{config['name']}-student"
    config["ensemble"] = {**section, "temperature": temperature, "alpha": alpha, "mix": mix,
                          "distill_epochs": epochs}  # as trained
    soft = SoftTargets(teachers, temperature, mix, seed=config["seed"])
    if run_dir is not None:
        # A new student replaces the last one: its files would mix with this one's.
        for stale in list_checkpoints(run_dir / "checkpoints"):
            stale.unlink()
        (run_dir / "metrics.jsonl").unlink(missing_ok=True)
    # The experiment's own training path: the config's schedules, momentum ramp, parameter
    # average and monitor, as every other training of this config gets them.
    exp, state = experiment.train(config, run_dir, callbacks=[soft], quiet=quiet,
                                  loss_fn=DistillationLoss(soft, temperature, alpha))
    return exp.model.eval(), state
