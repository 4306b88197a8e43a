"""The preflight of an experiment config, written into its run directory."""

from __future__ import annotations

from pathlib import Path

import torch

from .. import experiment, optim
from ..check.experiment_check import validated
from ..config import to_toml
from ..rundir import RunDir
from ..train import resolve_device
from .report import PreflightReport
from .runner import preflight


def preflight_experiment(config: dict, run_dir: RunDir | str | Path | None = None, *,
                         quiet: bool = False) -> PreflightReport:
    """Run the preflight on the experiment `config` describes (its model, loss, L2 strength,
    update rule, batch size, seed and device, with the ``[preflight]`` settings and, for the
    gradcheck check, the ``[gradcheck]`` ones), on its training split. With `run_dir`, writes
    ``preflight/report.json``, ``report.txt`` and ``plots/``."""
    gradcheck = gradcheck_settings(config)
    optim.from_config(config["optim"], [torch.zeros(1, requires_grad=True)])  # bad names fail now
    data = experiment.load_split(config)

    def make_model():
        return experiment.new_model(config, data)

    def make_optimizer(params):
        return optim.from_config(config["optim"], params)

    make_optimizer.label = f"{config['optim']['name']} with lr {config['optim']['lr']:g}"
    report = preflight(make_model, config["loss"]["name"], (data.x_train, data.y_train),
                       num_classes=data.num_classes, reg=config["loss"]["reg"],
                       optimizer=make_optimizer, batch_size=config["train"]["batch_size"],
                       seed=config["seed"], device=resolve_device(config["device"]), quiet=quiet,
                       **gradcheck, **config["preflight"])
    report.title = (f"preflight of {config['name']} ({data.name}, {config['model']['name']}, "
                    f"{config['loss']['name']} loss)")
    if run_dir is not None:
        save_report(report, run_dir, config)
    return report


def gradcheck_settings(config: dict) -> dict:
    """The ``[gradcheck]`` section as preflight options: one place sets how gradients are checked,
    for ``babysit gradcheck`` and for the preflight alike."""
    settings = dict(validated(config["gradcheck"]))
    options = {key: settings[key] for key in ("h", "sweep", "scale", "batched", "dtype",
                                              "reg_scale", "separate")}
    options["coords_per_tensor"] = settings["coords_per_tensor"] or None  # 0: all of them
    return {"gradcheck_points": settings["num_points"], "gradcheck_burn_in": settings["burn_in"],
            "gradcheck_options": options}


def save_report(report: PreflightReport, run_dir: RunDir | str | Path, config: dict | None = None) -> Path:
    """Write ``preflight/report.json``, ``preflight/report.txt`` and ``preflight/plots/*.png``
    (and ``config.toml`` when the run directory has none yet); returns the JSON path."""
    from .plots import save_plots  # matplotlib: only when writing

    run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    if config is not None and not (run_dir / "config.toml").exists():
        run_dir.write_text("config.toml", to_toml(config))
    run_dir.write_text("preflight/report.txt", report.details())
    save_plots(report, run_dir)
    return run_dir.write_json("preflight/report.json", report.to_dict())
