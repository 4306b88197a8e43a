"""An experiment: everything a config describes, built and trained into a run directory.

This is the glue every stage uses — ``babysit train``, the gradient check, the preflight, each
search trial and each ensemble member build their data, model, loss and optimizer here.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from . import data as data_mod
from . import models, optim
from .config import to_toml, validate_config
from .errors import UserError
from .plugins import describe_error, refuse_code_from
from .rundir import RunDir, dumps, load_checkpoint
from .train import (Callback, cpu_threads, Checkpointer, MetricsLogger, ParameterAverage, ProgressBar,
                    TrainState, fit, latest_checkpoint, resolve_device, schedule_callbacks,
                    seed_everything)
from .watch.callback import from_config as watch_companion


@dataclass
class Experiment:
    config: dict
    data: data_mod.DataSplit
    model: nn.Module
    loss_fn: Callable
    optimizer: torch.optim.Optimizer

    @property
    def reg(self) -> float:
        return self.config["loss"]["reg"]


@functools.lru_cache(maxsize=8)
def _cached_data(frozen: str) -> data_mod.DataSplit:
    return data_mod.from_config(json.loads(frozen))


def load_split(config: dict) -> data_mod.DataSplit:
    """The config's data split; loaded once per process for the same ``[data]`` section.

    (``babysit.load_data(name, ...)`` loads a data set by name; this one reads a config.)"""
    return _cached_data(json.dumps(config["data"], sort_keys=True))


def new_model(config: dict, data: data_mod.DataSplit) -> nn.Module:
    """A fresh model for `config`, initialized from ``config['seed']``, checked against the data.

    (``babysit.build_model(name, ...)`` builds a zoo model by name; this one reads a config.)"""
    seed_everything(config["seed"])
    model = models.from_config(config["model"], data.input_shape, data.num_classes)
    check_shapes(model, data, config["model"]["name"])
    return model


def check_shapes(model: nn.Module, data: data_mod.DataSplit, name: str) -> None:
    """One forward pass on two examples: the model must take the inputs and give (N, C) scores.

    A mismatch (a user's model built for other inputs or another number of classes) is a
    UserError here rather than a traceback from deep inside the first training step.
    """
    sample = data.x_train[:2]
    try:
        with torch.no_grad():
            was_training = model.training
            scores = model.eval()(sample.to(next(model.parameters(), sample).device))
            model.train(was_training)
    except RuntimeError as exc:  # torch's word for a shape mismatch
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"model {name!r} cannot take this data's inputs of shape "
                        f"{tuple(data.input_shape)} ({first}): build it for those inputs") from None
    except Exception as exc:  # the user's forward() raised
        raise UserError(f"model {name!r} raised {describe_error(exc)} on 2 examples: fix its "
                        "forward()") from None
    expected = (len(sample), data.num_classes)
    if not isinstance(scores, torch.Tensor) or tuple(scores.shape) != expected:
        got = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise UserError(f"model {name!r} gives scores of shape {got} for {len(sample)} examples; "
                        f"expected {expected}: one score per class ({data.num_classes} classes)")


def build(config: dict) -> Experiment:
    data = load_split(config)
    model = new_model(config, data)
    loss_fn = models.make_loss(config["loss"]["name"])
    models.check_loss(loss_fn, model, data.x_train[:2], data.y_train[:2])
    optimizer = optim.from_config(config["optim"], model.parameters())
    return Experiment(config, data, model, loss_fn, optimizer)


def validate(config: dict, *, search: bool = False, objective: bool = False) -> None:
    """Raise now the UserError `config` would hit later, before any run directory is made.

    Builds the experiment once (data, model and its shapes, loss, optimizer) and checks the
    schedule and the monitor's options; with `search`, also the search space and stages.
    With `objective` (a search of a user's own training function) nothing of the config's
    experiment is trained: only the values, the space (its names free) and the stages.
    """
    validate_config(config)  # every value in its range (the monitor's options included)
    if not objective:
        build(config)
        optim.check_schedule_config(config["optim"])
    if search:
        from .search.space import Space
        from .search.stages import parse_stages

        Space.from_config(config, free=objective)
        parse_stages(config)


def train(config: dict, run_dir: RunDir | str | Path | None = None, *,
          callbacks: Sequence[Callback] = (), quiet: bool = False,
          checkpoint_dir: str | Path | None = None, resume: bool = False,
          loss_fn: Callable | None = None) -> tuple[Experiment, TrainState]:
    """Build the experiment in `config` and train it, writing into `run_dir` (if given).

    Every stage that trains an experiment comes through here, so each gets the config's
    companions (schedules, momentum ramp, parameter average, monitor); `callbacks` are added
    after them, and `loss_fn` replaces the config's loss (distillation's soft targets).

    The run directory gets ``config.toml``, ``metrics.jsonl`` and one checkpoint per epoch in
    ``checkpoints/`` (or `checkpoint_dir`). With `resume`, training continues from the latest
    checkpoint there: model, optimizer and shuffling state are restored, so the resumed run
    gives the same numbers as one that was never interrupted.
    """
    exp = build(config)
    if loss_fn is not None:
        exp.loss_fn = loss_fn
    run_dir = RunDir(run_dir) if run_dir is not None and not isinstance(run_dir, RunDir) else run_dir
    cbs: list[Callback] = []
    resume_state = None
    # Companions first: what they add to the epoch's logs (val_acc_avg) and to
    # state.checkpoint_extra (the averaged weights) is then in metrics.jsonl and the checkpoint.
    cbs.extend(companions(config, run_dir, exp))
    if run_dir is not None:
        run_dir.path.mkdir(parents=True, exist_ok=True)
        run_dir.write_text("config.toml", to_toml(config))  # a resume's --set included
        ckpt_dir = Path(checkpoint_dir) if checkpoint_dir else run_dir / "checkpoints"
        if resume:
            resume_state = _restore(exp, ckpt_dir, run_dir)
        # Checkpoint first, then the metrics line: a kill in between loses no weights, and
        # _restore mends the metrics file from the checkpoint.
        if config["train"]["checkpoints"]:
            cbs.append(Checkpointer(ckpt_dir))
        cbs.append(MetricsLogger(run_dir / "metrics.jsonl"))
    if not quiet:
        cbs.append(ProgressBar(desc=config["name"]))
    cbs.extend(callbacks)
    with cpu_threads(config["train"].get("threads", 0)):
        state = fit(exp.model, exp.data, optimizer=exp.optimizer, loss_fn=exp.loss_fn,
                    epochs=config["train"]["epochs"], batch_size=config["train"]["batch_size"],
                    reg=exp.reg, callbacks=cbs, device=resolve_device(config["device"]),
                    seed=config["seed"], max_loss=config["train"]["max_loss"], config=config,
                    resume=resume_state)
    return exp, state


def companions(config: dict, run_dir: RunDir | None, exp: Experiment) -> list[Callback]:
    """The callbacks every experiment trains with by default, as its config asks.

    One line per companion (learning-rate schedules, the monitor, parameter averaging...):
    each reads its own config section and returns nothing when switched off.
    """
    found: list[Callback] = []
    found += schedule_callbacks(config["optim"])
    ema_decay = config.get("ensemble", {}).get("ema_decay", 0.0)
    if ema_decay > 0:  # the running average of the parameters (babysit.train.averaging)
        found.append(ParameterAverage(ema_decay))
    if (monitor := watch_companion(config, run_dir)) is not None:  # last: it sees every log
        found.append(monitor)
    return found


def _restore(exp: Experiment, ckpt_dir: Path, run_dir: RunDir) -> dict | None:
    """Load the latest checkpoint into `exp`; make metrics.jsonl end at that same epoch."""
    last = latest_checkpoint(ckpt_dir)
    if last is None:
        return None
    ckpt = load_checkpoint(last, keys=("model", "optimizer", "epoch", "metrics"))
    try:
        exp.model.load_state_dict(ckpt["model"])
        exp.optimizer.load_state_dict(ckpt["optimizer"])
        epoch = int(ckpt["epoch"])
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"checkpoint {last} does not fit this config's model ({first[:200]}): resume "
                        "with the config it was trained with, or start a new run") from None
    kept = [r for r in run_dir.records("metrics.jsonl") if r.get("epoch", 0) <= epoch]
    if not kept or kept[-1].get("epoch") != epoch:
        kept.append(ckpt["metrics"])
    run_dir.write_text("metrics.jsonl", "".join(dumps(r) + "\n" for r in kept))
    standard = {"model", "optimizer", "epoch", "metrics", "config", "generator", "torch_rng"}
    return {"epoch": epoch, "generator": ckpt.get("generator"), "torch_rng": ckpt.get("torch_rng"),
            "checkpoint_extra": {k: v for k, v in ckpt.items() if k not in standard}}


def model_from_checkpoint(path: str | Path, *, trusted: dict | None = None) -> tuple[nn.Module, dict]:
    """Rebuild the model a checkpoint was written from, with its weights loaded.

    The checkpoint's config may name a user's own model, data set or loss only where the
    `trusted` config (the one the user gave) names the same: see
    :func:`babysit.plugins.refuse_code_from`.
    """
    ckpt = load_checkpoint(path, keys=("model", "config"))
    config = ckpt.get("config") if isinstance(ckpt, dict) else None
    if not isinstance(config, dict):
        raise UserError(f"checkpoint {path} holds no config: it was not written by babysit")
    refuse_code_from(config, f"checkpoint {path}", trusted=trusted,
                     fix="pass the config that names it with --config (babysit ensemble)")
    model = new_model(config, load_split(config))
    _load_weights(model, ckpt["model"], path)
    return model, ckpt


def _load_weights(model: nn.Module, state: dict, path) -> None:
    try:
        model.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"checkpoint {path} does not fit its config's model ({first[:200]}): it was "
                        "altered or mixed from two runs; remove it") from None
