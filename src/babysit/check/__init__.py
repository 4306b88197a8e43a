"""Gradient checking: analytic gradients against centered differences, kinks understood.

``gradcheck(fn, wrt)``, ``gradcheck_model(model, loss_fn, x, y)``, ``gradcheck_numpy(f, x, grad)``
and ``gradcheck_experiment(config)`` (the check ``babysit gradcheck`` runs) all return a
:class:`GradcheckReport`. Modules: ``numeric`` (centered differences, coordinates),
``batched`` (many perturbations per forward pass), ``kinks`` (winners of non-differentiable
ops), ``resolve`` (crossed kinks checked again), ``zeros`` (rows 0 = 0, apart), ``depth``
(where each tensor sits), ``report`` (bands, verdict, table), ``plot`` (the h sweep),
``api`` and ``experiment``.
"""

from .api import SWEEP, check_objectives, gradcheck, gradcheck_model, gradcheck_numpy
from .report import GradcheckReport, GradRow, relative_error, verdict

__all__ = ["gradcheck", "gradcheck_model", "gradcheck_numpy", "gradcheck_experiment",
           "check_objectives", "GradcheckReport", "GradRow", "relative_error", "verdict", "SWEEP"]


def __getattr__(name):
    # The experiment glue imports the data and model zoo: load it only when asked for.
    if name == "gradcheck_experiment":
        from .experiment import gradcheck_experiment
        return gradcheck_experiment
    raise AttributeError(name)
