"""Experiment configuration: TOML files, built-in defaults and ``--set key=value`` overrides.

A config is a nested dict. Every key must exist in :data:`DEFAULTS` (so a typo is an error
with the list of valid keys, not a silently ignored setting), and every value must have the
type of its default. Tables listed in :data:`FREE_TABLES` take any keys: they carry keyword
arguments for a user's own ``module:function`` and, later, search spaces.
"""

from __future__ import annotations

import copy
import difflib
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from .errors import UserError

DEFAULTS: dict[str, Any] = {
    "name": "default",
    "seed": 0,
    "device": "auto",  # auto | cpu | cuda | cuda:N
    "data": {
        "dataset": "digits",  # digits | mnist1d | cifar10 | mnist | package.module:function
        "path": "",  # folder with the CIFAR-10 python batches or the MNIST IDX files
        "val_fraction": 0.2,
        "split_seed": 0,  # the validation split is fixed by this seed, apart from `seed`
        "standardize": True,  # statistics from the training split only
        "limit": 0,  # use only the first N examples (0: all)
        "kwargs": {},
    },
    "model": {
        "name": "mlp",  # mlp | convnet | package.module:function
        "depth": 2,  # hidden layers (mlp) or conv blocks (convnet)
        "width": 128,  # hidden units (mlp) or channels of the first conv block (convnet)
        "activation": "relu",  # relu | tanh | sigmoid | leaky_relu | maxout
        "dropout": 0.0,
        "init_scale": 1.0,  # multiplies the default initialization of every weight
        "kwargs": {},
    },
    "loss": {
        "name": "softmax",  # softmax | svm | package.module:function
        "reg": 1e-4,  # L2 strength: reg_loss = 0.5 * reg * sum(w**2) over weight matrices
    },
    "optim": {
        "name": "nesterov",  # sgd | momentum | nesterov | adagrad | rmsprop | adam | lbfgs | newton
        "lr": 0.05,  # for lbfgs and newton, 1.0 is the plain method (a full step)
        "mu": 0.9,  # momentum (momentum, nesterov)
        "nesterov_form": "rewritten",  # rewritten | lookahead (gradient at x + mu*v: two per step)
        "decay": 0.99,  # rmsprop: cache = decay*cache + (1-decay)*dx**2
        "beta1": 0.9,  # adam
        "beta2": 0.999,  # adam
        "eps": 1e-8,  # adagrad, rmsprop, adam
        "max_iter": 20,  # lbfgs: iterations per (full-batch) epoch
        "history_size": 10,  # lbfgs
        "force_minibatch": False,  # lbfgs: run on minibatches anyway (it is a full-batch method)
        "damping": 0.0,  # newton: x -= lr * (H + damping*I)^-1 grad
        "newton_max_params": 5000,  # newton: refuse to build the n x n Hessian above this
        # learning-rate annealing: constant | step | exponential | inverse_time | plateau
        "schedule": "constant",
        "schedule_unit": "epoch",  # epoch | iteration: what t counts
        "k": 0.1,  # exponential a0*exp(-k*t), inverse_time a0/(1+k*t)
        "factor": 0.5,  # step: lr *= factor every step_every; plateau: lr *= factor
        "step_every": 5,  # step: epochs (or iterations) between decays
        "patience": 2,  # plateau: epochs without a better validation loss before decaying
        "mu_start": 0.5,  # momentum schedule (momentum, nesterov): mu rises from mu_start to mu ...
        "mu_epochs": 0.0,  # ... over the first mu_epochs epochs (0: no momentum schedule)
    },
    "train": {
        "epochs": 10,
        "batch_size": 64,
        "checkpoints": True,  # one checkpoint per epoch in checkpoints/
        "max_loss": 1e6,  # stop when the loss exceeds this (explodes) or is not finite
    },
    "watch": {  # the training monitor (babysit.watch), on for every training with a run directory
        "enabled": True,
        # update:weight ratios on steps 1, 1 + N, 1 + 2N, ... (0: off). The notes judge the
        # ratio's level, not each step's. bench/monitor_overhead.py (10 runs, CPU) put the
        # default monitor at 1.11x/1.03x/1.03x the bare convnet with N = 1/10/20, the digits MLP
        # at 1.29x/1.11x/1.09x (noise band +-0.02); with 20, the median the update-ratio rules
        # read over an epoch of 12 samples strayed across their threshold where every step's
        # did not (batch size 1, tests/watch): 10 keeps 24+ samples in such an epoch and 2-3 in
        # one of digits (23 steps).
        "ratio_every": 10,
        "hist_every": 50,  # activation/gradient histograms on steps 1, 1 + N, ... (0: off)
        "bins": 40,  # histogram bins
        "flush_every": 50,  # steps between reads from the device and appends to watch/*.jsonl ...
        "flush_seconds": 1.0,  # ... once this long has passed since the last (fast loops batch more)
        "first_layer": True,  # save the first layer's weights at the end, for their picture
        "plots": False,  # draw watch/plots/*.png when training ends (else: babysit plots RUN_DIR)
        "tensorboard": False,  # also write TensorBoard event files (needs the tensorboard extra)
    },
    "ensemble": {
        # Running average of the parameters kept during every training (0 disables):
        # avg <- d*avg + (1-d)*w after each step, d = min(ema_decay, (1+t)/(10+t)).
        "ema_decay": 0.99,
        "k": 5,  # members per ensemble (seeds, top trials, checkpoints)
        # Distillation: softmax(z/T) of teacher and student. T=2 measured best on digits: its
        # students beat their hard-label twins, those at T=4 did not (ensemble/distill.py).
        "temperature": 2.0,
        "alpha": 0.9,  # distillation: weight of the soft-target loss; 1-alpha on the hard labels
    },
    "preflight": {  # sanity checks before learning (babysit preflight)
        "skip": [],  # check names not to run, e.g. ["gradcheck"]
        "examples": 512,  # examples the initial and regularized losses are measured on
        "initial_tolerance": 0.1,  # initial loss within +-10% of the loss at chance
        "overfit_examples": 20,  # the tiny subset to memorize with reg = 0
        "overfit_steps": 500,  # at most this many full-batch steps to memorize it
        "overfit_target": 0.01,  # "near-zero cost": at most 1% of the loss at chance
        "dependence_examples": 512,  # real vs zeroed inputs: 3/4 to train on, 1/4 held out
        "dependence_steps": 150,
        "dependence_margin": 0.1,  # real inputs must win by this much held-out accuracy
        "threads": 1,  # torch CPU threads while it runs: its workloads are tiny (0: torch's own)
    },  # the preflight's gradcheck check takes its settings from [gradcheck]
    "gradcheck": {  # babysit gradcheck: analytic gradients against centered differences
        "h": 1e-5,  # step of (f(x+h) - f(x-h)) / 2h
        "sweep": False,  # also try h = 1e-3 .. 1e-8 and keep the best
        "num_points": 3,  # datapoints of the training split the loss is checked on
        "coords_per_tensor": 10,  # random coordinates of EVERY parameter tensor (0: all)
        "burn_in": 0,  # training steps before the check (a "characteristic" point, not init)
        "reg_scale": 1.0,  # multiplies the L2 strength in the regularization check
        "separate": True,  # check data loss and regularization apart
        "scale": 1.0,  # multiplies the objective (rescue for tiny gradients)
        "dtype": "float64",  # float64 | float32 (float32 is warned about)
        "batched": True,  # many perturbations per forward pass (falls back to a loop)
    },
    "search": {
        "sampler": "random",  # random | tpe | gp | grid (grid only for comparison)
        "pruner": "median",  # median | halving | none (diverging trials are always pruned)
        "workers": 0,  # local worker processes (0: one per CPU core)
        "threads": 0,  # torch threads per worker (0: CPU cores / workers)
        "storage": "",  # "" = journal file run_dir/search/study.journal; or postgresql://...
        "study": "",  # study name ("" = the experiment's name)
        # Coarse to fine: each stage is {trials, epochs}; epochs = 0 means train.epochs.
        "stages": [{"trials": 24, "epochs": 1}, {"trials": 10, "epochs": 5}, {"trials": 3, "epochs": 0}],
        "top_k": 5,  # the next stage narrows around the best top_k trials of this one
        "margin": 0.5,  # narrowed range = span of the top_k, widened by margin * span on each side
        "carry": True,  # each later stage first re-trains the previous stage's best settings
        "border": 0.1,  # border alarm: best trial in the outer 10% of a range (log space if log)
        "auto_widen": False,  # let an alarmed edge move outwards for the next stage
        "grid_points": 4,  # values per numeric hyperparameter for the grid sampler
        "grace_period": 60,  # s without a worker's heartbeat before its trial is retried (database)
        "idle_timeout": 1800,  # s an extra babysit worker waits while nothing changes, then leaves (0: never)
        # Hyperparameters to search: config key -> {low, high[, log][, int]} or {choices}.
        "space": {
            "optim.lr": {"low": 1e-6, "high": 1.0, "log": True},  # the notes' 10**uniform(-6, ...)
            "loss.reg": {"low": 1e-6, "high": 1e-1, "log": True},
            "model.dropout": {"low": 0.0, "high": 0.6},
            "optim.name": {"choices": ["nesterov", "adam"]},
        },
    },
}

FREE_TABLES = {"data.kwargs", "model.kwargs", "search.space"}


def default_config() -> dict[str, Any]:
    return copy.deepcopy(DEFAULTS)


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """The resolved config: defaults, then the TOML file at `path`, then ``key=value`` overrides."""
    config = default_config()
    if path is not None:
        merge(config, read_toml(path))
    for item in overrides:
        key, value = parse_override(item)
        set_key(config, key, value)
    return config


def read_toml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} does not exist: give the path of a TOML file, "
                        "or none for the built-in default")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config file {path} is not valid TOML ({exc}): fix that line") from None


def merge(config: dict, updates: dict, prefix: str = "") -> dict:
    """Merge `updates` into `config` in place, checking every key and type against it."""
    for key, value in updates.items():
        dotted = f"{prefix}{key}"
        if prefix.rstrip(".") in FREE_TABLES:
            config[key] = value
            continue
        if dotted in FREE_TABLES and isinstance(value, dict):
            config[key] = copy.deepcopy(value)  # a free table given replaces the default one
            continue
        if key not in config:
            raise UserError(unknown_key_message(dotted, config, prefix))
        if isinstance(config[key], dict):
            if not isinstance(value, dict):
                raise UserError(f"config key '{dotted}' is a table: write [{dotted}] with keys "
                                f"{', '.join(sorted(config[key])) or '(any)'}")
            merge(config[key], value, dotted + ".")
        else:
            config[key] = coerce(dotted, value, config[key])
    return config


def unknown_key_message(dotted: str, table: dict, prefix: str) -> str:
    valid = sorted(table)
    close = difflib.get_close_matches(dotted.rsplit(".", 1)[-1], valid, n=1)
    hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
    where = f"[{prefix.rstrip('.')}]" if prefix else "the top level"
    return f"unknown config key '{dotted}'{hint}: valid keys in {where} are {', '.join(valid)}"


def coerce(key: str, value: Any, default: Any) -> Any:
    """`value` converted to the type of `default`, or a UserError naming the expected type."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, str):
        return value if isinstance(value, str) else str(value)
    else:
        return value
    raise UserError(f"config key '{key}' takes a {type(default).__name__} "
                    f"(like {default!r}), not {value!r}")


def parse_override(item: str) -> tuple[str, Any]:
    """``"optim.lr=1e-3"`` -> ``("optim.lr", 0.001)``; values are read as TOML, else as text."""
    if "=" not in item:
        raise UserError(f"--set takes key=value (e.g. --set optim.lr=0.01), not {item!r}")
    key, raw = (s.strip() for s in item.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def all_keys(config: dict, prefix: str = "") -> list[str]:
    """Every settable dotted key, free tables included as a whole."""
    keys = []
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and dotted not in FREE_TABLES:
            keys.extend(all_keys(value, dotted + "."))
        else:
            keys.append(dotted)
    return keys


def resolve_key(config: dict, key: str) -> str:
    """A full dotted key; a bare leaf name (``lr``) is accepted where it is unambiguous."""
    keys = all_keys(config)
    if key in keys or any(key.startswith(k + ".") for k in keys if k in FREE_TABLES):
        return key
    matches = [k for k in keys if k.rsplit(".", 1)[-1] == key]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise UserError(f"config key '{key}' is ambiguous: write one of {', '.join(matches)}")
    close = difflib.get_close_matches(key, keys, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise UserError(f"unknown config key '{key}'{hint}: valid keys are {', '.join(keys)}")


def set_key(config: dict, key: str, value: Any) -> None:
    """Set one dotted key, with the same checks as a config file."""
    parts = resolve_key(config, key).split(".")
    update: Any = value
    for part in reversed(parts):
        update = {part: update}
    merge(config, update)


def get_key(config: dict, key: str) -> Any:
    node: Any = config
    for part in resolve_key(config, key).split("."):
        node = node[part]
    return node


def to_toml(config: dict) -> str:
    return tomli_w.dumps(config)
