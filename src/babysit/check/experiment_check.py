"""The gradient check of an experiment: its model, loss and L2 term on a few training datapoints.

This is what ``babysit gradcheck`` runs and what a full ``babysit run`` does first. It builds
the experiment from its config (the same model initialization and data as training), checks
the data loss and the regularization apart on the first ``gradcheck.num_points`` examples of
the training split, and writes ``gradcheck/report.json`` and ``report.txt`` into the run
directory when one is given.

With ``gradcheck.burn_in`` steps (the default), it checks twice: at initialization, and after
the burn-in — the notes' "characteristic mode", where the check means most (at initialization
the scores are all alike and many units may sit on the same side of their kinks). Both are
shown; the run passes only if both pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import experiment, optim
from ..config import check_value
from ..models import l2_penalty
from ..rundir import RunDir
from .api import gradcheck_model
from .report import GradcheckReport


OUTCOMES = ("passed", "inconclusive", "failed")  # worse to the right


@dataclass
class TwoPointCheck:
    """The check at initialization and after `burn_in` training steps, read as one outcome:
    the worse of the two (a wrong gradient at either point is a wrong gradient)."""

    at_init: GradcheckReport
    after_burn_in: GradcheckReport
    burn_in: int

    @property
    def outcome(self) -> str:
        return max(self.at_init.outcome, self.after_burn_in.outcome, key=OUTCOMES.index)

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    @property
    def summary(self) -> str:
        return (f"after {self.burn_in} burn-in steps: {self.after_burn_in.summary} | "
                f"at initialization: {self.at_init.summary}")

    def __str__(self) -> str:
        return (f"== after {self.burn_in} burn-in steps (the notes' characteristic mode) ==\n"
                f"{self.after_burn_in}\n{self.after_burn_in.summary}\n\n"
                f"== at initialization ==\n{self.at_init}\n{self.at_init.summary}\n\n"
                f"both: {self.outcome.upper()}")

    def to_dict(self) -> dict:
        """The after-burn-in report's fields (its rows), the joint outcome, and ``at_init``."""
        return {**self.after_burn_in.to_dict(), "passed": self.passed, "outcome": self.outcome,
                "summary": self.summary, "burn_in": self.burn_in,
                "after_burn_in": {k: v for k, v in self.after_burn_in.to_dict().items()
                                  if k in ("passed", "outcome", "summary")},
                "at_init": self.at_init.to_dict()}


def gradcheck_experiment(config: dict, run_dir: RunDir | str | Path | None = None, *,
                         quiet: bool = False) -> GradcheckReport | TwoPointCheck:
    """Check the gradients of the experiment in `config` (see the ``[gradcheck]`` section):
    at initialization, and also after ``burn_in`` training steps when it is above 0."""
    settings = validated(config["gradcheck"])
    with experiment.cpu_threads(config["train"].get("threads", 0)):  # small models: see train.threads
        at_init = check_at(config, settings, 0, quiet)
        report = at_init if not settings["burn_in"] else \
            TwoPointCheck(at_init, check_at(config, settings, settings["burn_in"], quiet), settings["burn_in"])
    if run_dir is not None:
        write_report(report, run_dir)
    return report


def check_at(config: dict, settings: dict, burn_in: int, quiet: bool) -> GradcheckReport:
    """One check of a freshly built experiment, after `burn_in` steps (0: at initialization)."""
    exp = experiment.build(config)
    reg = config["loss"]["reg"]
    # Burn-in trains on minibatches of the training split; the check itself sees num_points.
    batch_size = config["train"]["batch_size"]
    n = min(len(exp.data.y_train), max(settings["num_points"], burn_in * batch_size))
    return gradcheck_model(
        exp.model, exp.loss_fn, exp.data.x_train[:n], exp.data.y_train[:n],
        reg_fn=(lambda model: l2_penalty(model, reg)) if reg > 0 else None,
        num_points=settings["num_points"], burn_in=burn_in,
        optimizer=lambda params: optim.from_config(config["optim"], params),
        burn_in_batch_size=batch_size, dtype=settings["dtype"], reg_scale=settings["reg_scale"],
        separate=settings["separate"], h=settings["h"], sweep=settings["sweep"],
        coords_per_tensor=settings["coords_per_tensor"] or None, seed=config["seed"],
        scale=settings["scale"], batched=settings["batched"], progress=not quiet)


def write_report(report: GradcheckReport | TwoPointCheck, run_dir: RunDir | str | Path) -> None:
    """``gradcheck/report.json`` (machine-readable), ``gradcheck/report.txt`` (the tables) and,
    after an h sweep, ``gradcheck/plots/h_sweep.png`` (error against h, log-log; after the
    burn-in when there is one)."""
    from .plot import plot_sweep  # matplotlib: loaded only when a run directory is written

    run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    plot_sweep(report.after_burn_in if isinstance(report, TwoPointCheck) else report, run_dir)
    run_dir.write_json("gradcheck/report.json", report.to_dict())
    run_dir.write_text("gradcheck/report.txt", str(report) + "\n")


def validated(settings: dict) -> dict:
    """The ``[gradcheck]`` section, with every value a check can run with (else a UserError)."""
    for key, value in settings.items():
        check_value(f"gradcheck.{key}", value)
    return settings
