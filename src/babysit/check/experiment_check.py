"""The gradient check of an experiment: its model, loss and L2 term on a few training datapoints.

This is what ``babysit gradcheck`` runs and what a full ``babysit run`` does first. It builds
the experiment from its config (the same model initialization and data as training), checks
the data loss and the regularization apart on the first ``gradcheck.num_points`` examples of
the training split, and writes ``gradcheck/report.json`` and ``report.txt`` into the run
directory when one is given.
"""

from __future__ import annotations

from pathlib import Path

from .. import experiment, optim
from ..config import check_value
from ..models import l2_penalty
from ..rundir import RunDir
from .api import gradcheck_model
from .report import GradcheckReport


def gradcheck_experiment(config: dict, run_dir: RunDir | str | Path | None = None, *,
                         quiet: bool = False) -> GradcheckReport:
    """Check the gradients of the experiment in `config` (see the ``[gradcheck]`` section)."""
    settings = validated(config["gradcheck"])
    exp = experiment.build(config)
    reg = config["loss"]["reg"]
    # Burn-in trains on minibatches of the training split; the check itself sees num_points.
    batch_size = config["train"]["batch_size"]
    n = min(len(exp.data.y_train), max(settings["num_points"], settings["burn_in"] * batch_size))
    report = gradcheck_model(
        exp.model, exp.loss_fn, exp.data.x_train[:n], exp.data.y_train[:n],
        reg_fn=(lambda model: l2_penalty(model, reg)) if reg > 0 else None,
        num_points=settings["num_points"], burn_in=settings["burn_in"],
        optimizer=lambda params: optim.from_config(config["optim"], params),
        burn_in_batch_size=batch_size, dtype=settings["dtype"], reg_scale=settings["reg_scale"],
        separate=settings["separate"], h=settings["h"], sweep=settings["sweep"],
        coords_per_tensor=settings["coords_per_tensor"] or None, seed=config["seed"],
        scale=settings["scale"], batched=settings["batched"], progress=not quiet)
    if run_dir is not None:
        write_report(report, run_dir)
    return report


def write_report(report: GradcheckReport, run_dir: RunDir | str | Path) -> None:
    """``gradcheck/report.json`` (machine-readable), ``gradcheck/report.txt`` (the table) and,
    after an h sweep, ``gradcheck/plots/h_sweep.png`` (error against h, log-log)."""
    from .plot import plot_sweep  # matplotlib: loaded only when a run directory is written

    run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    plot_sweep(report, run_dir)
    run_dir.write_json("gradcheck/report.json", report.to_dict())
    run_dir.write_text("gradcheck/report.txt", str(report) + "\n")


def validated(settings: dict) -> dict:
    """The ``[gradcheck]`` section, with every value a check can run with (else a UserError)."""
    for key, value in settings.items():
        check_value(f"gradcheck.{key}", value)
    return settings
