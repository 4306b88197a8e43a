"""Model ensembles (the notes' "Evaluation: ensembles"): members from different seeds, the top
trials of a search or the checkpoints of one run; the running average of the parameters; and
distillation of an ensemble into one model."""

from ..train.averaging import ParameterAverage, reestimate_batchnorm
from .build import KINDS, build_ensembles
from .distill import DistillationLoss, distill, distillation_loss
from .members import (Member, average_from_checkpoint, checkpoint_members, seed_members,
                      top_trial_members)
from .predict import EvalCost, accuracy, ensemble_probabilities, eval_cost
from .table import EnsembleRow, format_table, read_table

__all__ = ["build_ensembles", "KINDS", "EnsembleRow", "format_table", "read_table", "Member",
           "seed_members", "top_trial_members", "checkpoint_members", "average_from_checkpoint",
           "ensemble_probabilities", "accuracy", "eval_cost", "EvalCost", "ParameterAverage",
           "reestimate_batchnorm", "distill", "distillation_loss", "DistillationLoss"]
