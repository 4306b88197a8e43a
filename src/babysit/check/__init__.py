"""Gradient checking: analytic gradients against centered differences, kinks understood.

``gradcheck(fn, wrt)``, ``gradcheck_model(model, loss_fn, x, y)``, ``gradcheck_numpy(f, x, grad)``
and ``gradcheck_experiment(config)`` (the check ``babysit gradcheck`` runs) all return a
:class:`GradcheckReport`. Modules: ``numeric`` (centered differences, coordinates),
``batched`` (many perturbations per forward pass), ``kinks`` (winners of non-differentiable
ops), ``resolve`` (crossed kinks checked again), ``zeros`` (rows 0 = 0, apart), ``depth``
(where each tensor sits), ``report`` (bands, verdict, table), ``plot`` (the h sweep),
``api`` and ``experiment_check``.
"""

from .api import SWEEP, check_objectives, gradcheck, gradcheck_model, gradcheck_numpy
from .experiment_check import gradcheck_experiment
from .report import GradcheckReport, GradRow, relative_error, verdict

__all__ = ["gradcheck", "gradcheck_model", "gradcheck_numpy", "gradcheck_experiment",
           "check_objectives", "GradcheckReport", "GradRow", "relative_error", "verdict", "SWEEP"]

