"""Experiment configuration: one table of defaults and their constraints, TOML files and
``--set key=value`` overrides.

A config is a nested dict. :data:`TABLE` holds, for every key, its default and the rule its
value must obey; :data:`DEFAULTS` is the table's defaults alone. Every key must exist in
:data:`DEFAULTS` (so a typo is an error with the list of valid keys, not a silently ignored
setting), every value must have the type of its default, and every value must obey its rule.
A violation always reads the same way (:func:`violation`)::

    optim.lr takes a number > 0, not -1: typically 1e-4 .. 1e-1

The config loader, the preflight options, the search stages and the monitor all check their
values through :func:`check_value`, so a key's range is written once. Tables listed in
:data:`FREE_TABLES` take any keys: they carry keyword arguments for a user's own
``module:function`` and search spaces.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from .errors import UserError


def violation(key: str, expected: str, value: Any, fix: str = "") -> str:
    """The one message shape for a value out of its range: what it takes, what it got, the fix."""
    return f"{key} takes {expected}, not {value!r}" + (f": {fix}" if fix else "")


@dataclass(frozen=True)
class Range:
    """A finite number (an integer when `whole`) between `low` and `high` (None: unbounded)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself excluded
    high_open: bool = False
    whole: bool = False
    fix: str = ""

    def admits(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.whole and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    @property
    def expected(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        if self.high is None:
            low = int(self.low) if self.whole else _short(self.low)
            return f"{kind} {'>' if self.low_open else '>='} {low}"
        if self.whole:
            return f"{kind} from {int(self.low)} to {int(self.high)}"
        return (f"{kind} in {'(' if self.low_open else '['}{_short(self.low)}, "
                f"{_short(self.high)}{')' if self.high_open else ']'}")


def _short(x: float) -> str:
    """1000000.0 -> '1e6', 0.5 -> '0.5': bounds as a person writes them."""
    return f"{x:g}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


def at_least(low: float, fix: str = "", *, whole: bool = False, high: float | None = None) -> Range:
    return Range(low, high, whole=whole, fix=fix)


def above(low: float, fix: str = "", *, high: float | None = None) -> Range:
    return Range(low, high, low_open=True, fix=fix)


def whole(low: int, fix: str = "", high: int | None = None) -> Range:
    return Range(low, high, whole=True, fix=fix)


def fraction(fix: str = "", *, closed: bool = False) -> Range:
    """A number in [0, 1), or [0, 1] when `closed`."""
    return Range(0.0, 1.0, high_open=not closed, fix=fix)


@dataclass(frozen=True)
class OneOf:
    """One of a few names; with `references`, also a user's ``package.module:function``."""

    choices: tuple[str, ...]
    references: bool = False
    fix: str = ""

    def admits(self, value: Any) -> bool:
        if not isinstance(value, str):
            return False
        if self.references and re.fullmatch(r"[\w.]+:[\w.]+", value):
            return True
        return value in self.choices

    @property
    def expected(self) -> str:
        names = " | ".join(self.choices) + (" | package.module:function" if self.references else "")
        return f"one of {names}"


@dataclass(frozen=True)
class Pattern:
    """Text matching a regular expression, described in words."""

    regex: str
    expected: str
    fix: str = ""

    def admits(self, value: Any) -> bool:
        return isinstance(value, str) and re.fullmatch(self.regex, value) is not None


SEED = whole(0, "any whole number below 2**63 (torch takes 64-bit seeds)", 2**63 - 1)
ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu", "maxout")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "lbfgs", "newton")
SCHEDULES = ("constant", "step", "exponential", "inverse_time", "plateau")
COUNT_EVERY = "how many steps between records (0: off)"

# Every key: (default, rule). A dict is a section; rule None means the type check alone.
TABLE: dict[str, Any] = {
    # The run directory is runs/<name>: one folder name, never a path that leaves runs/.
    "name": ("default", Pattern(r"[A-Za-z0-9_][A-Za-z0-9._+=-]{0,199}", "a folder name of letters, digits, "
                                "'.', '_', '-' (no '/', no '..')", "it names the folder runs/<name>")),
    "seed": (0, SEED),
    "device": ("auto", Pattern(r"auto|cpu|mps|cuda(:\d+)?", "auto, cpu, cuda, cuda:N or mps",
                               "auto picks the GPU when torch sees one")),
    "data": {
        # MNIST-1D (Greydanus 2020): models differ there (the paper: 32% logistic regression,
        # 68% MLP, 94% CNN), so search and ensembles have something to find; digits is
        # 97-99% for every model. Its 4,000 training examples are generated offline.
        "dataset": ("mnist1d", OneOf(("digits", "mnist1d", "cifar10", "mnist"), references=True)),
        "path": ("", None),  # folder with the CIFAR-10 python batches or the MNIST IDX files
        "val_fraction": (0.2, Range(0, 1, low_open=True, high_open=True, fix="the share held out, e.g. 0.2")),
        # the test split held out (before validation is drawn) where the data set has no test
        # split of its own (MNIST-1D has: its official 1,000 test examples); 0: none
        "test_fraction": (0.2, Range(0, 1, high_open=True, fix="the share held out for the final test, e.g. 0.2 (0: no test split)")),
        "split_seed": (0, SEED),  # the test and validation splits are fixed by this seed, apart from `seed`
        "standardize": (True, None),  # statistics from the training split only
        "limit": (0, whole(0, "use only the first N examples to train and validate on (0: all)")),
        "kwargs": ({}, None),
    },
    "model": {
        # convnet: 2-D convolutions on images, 1-D ones on vectors (MNIST-1D's signals). On
        # MNIST-1D's official test split the default 1-D convnet reaches ~97% where the MLP
        # reaches ~60% (bench/mnist1d_models.py).
        "name": ("convnet", OneOf(("mlp", "convnet"), references=True)),
        "depth": (3, whole(0, "hidden layers (mlp) or conv blocks (convnet)", 1000)),
        # hidden units (mlp), channels of every 1-D conv block or of the first 2-D one (convnet);
        # a layer of 2**16 units squared is 17 GB of float32 weights: more cannot be meant.
        "width": (32, whole(1, "wider layers than 65536 do not fit in memory", 65536)),
        "activation": ("relu", OneOf(ACTIVATIONS)),
        "dropout": (0.0, fraction("the probability of dropping a unit (0: no dropout)")),
        # multiplies the default initialization of every weight
        "init_scale": (1.0, above(0, "it multiplies the default initial weights (1: as is)")),
        "kwargs": ({}, None),
    },
    "loss": {
        "name": ("softmax", OneOf(("softmax", "svm"), references=True)),
        # L2 strength: reg_loss = 0.5 * reg * sum(w**2) over weight matrices
        "reg": (1e-4, at_least(0, "the L2 strength, typically 1e-6 .. 1e-1 (0: none)")),
    },
    "optim": {
        # Adam, the notes' recommended default. On the default convnet (10 epochs, step decay,
        # seeds 0-2, n=1000 test each, bench/mnist1d_models.py): Adam 1e-2 97.4/97.2/97.7%,
        # Nesterov 0.05 96.5/96.5/97.3% (a +0.4..1 pt gap, about the width of one interval).
        "name": ("adam", OneOf(OPTIMIZERS)),
        # for lbfgs and newton, 1.0 is the plain method (a full step)
        "lr": (1e-2, at_least(0, "typically 1e-4 .. 1e-1", high=1e6)),
        "mu": (0.9, fraction("momentum, 0.5 .. 0.99")),  # momentum (momentum, nesterov)
        # rewritten | lookahead (gradient at x + mu*v: two per step)
        "nesterov_form": ("rewritten", OneOf(("rewritten", "lookahead"))),
        # rmsprop: cache = decay*cache + (1-decay)*dx**2
        "decay": (0.99, fraction("the notes use 0.9, 0.99 or 0.999")),
        "beta1": (0.9, fraction("Adam's default is 0.9")),
        "beta2": (0.999, fraction("Adam's default is 0.999")),
        "eps": (1e-8, above(0, "the notes use 1e-8 .. 1e-4", high=1)),  # adagrad, rmsprop, adam
        "max_iter": (20, whole(1, "lbfgs iterations per (full-batch) epoch")),
        "history_size": (10, whole(1, "lbfgs: the number of past steps kept")),
        # lbfgs: run on minibatches anyway (it is a full-batch method)
        "force_minibatch": (False, None),
        # newton: x -= lr * (H + damping*I)^-1 grad
        "damping": (0.0, at_least(0, "0: the plain Newton step")),
        # newton: refuse to build the n x n Hessian above this
        "newton_max_params": (5000, whole(1, "the largest model newton builds a Hessian for")),
        # learning-rate annealing: constant | step | exponential | inverse_time | plateau.
        # On by default, as the notes say ("decay your learning rate"): step decay halving the
        # rate every 5 epochs is the notes' own example. Measured on the default (Adam 1e-2, 10
        # epochs, seeds 0-2): step 97.4/97.2/97.7% test, constant 98.0/96.2/96.9% — steadier
        # across seeds, within noise on the median.
        "schedule": ("step", OneOf(SCHEDULES)),
        "schedule_unit": ("epoch", OneOf(("epoch", "iteration"))),  # what t counts
        # exponential a0*exp(-k*t), inverse_time a0/(1+k*t)
        "k": (0.1, at_least(0, "the decay rate of exponential and inverse_time")),
        # step: lr *= factor every step_every; plateau: lr *= factor
        "factor": (0.5, Range(0, 1, low_open=True, fix="0.5 halves the lr")),
        "step_every": (5, whole(1, "epochs (or iterations) between decays")),
        # plateau: epochs without a better validation loss before decaying
        "patience": (2, whole(1, "epochs without a better validation loss before decaying")),
        # momentum schedule (momentum, nesterov): mu rises from mu_start to mu ...
        "mu_start": (0.5, fraction("the momentum the schedule starts from")),
        # ... over the first mu_epochs epochs (0: no momentum schedule)
        "mu_epochs": (0.0, at_least(0, "0: no momentum schedule")),
    },
    "train": {
        "epochs": (10, whole(1, "how many passes over the training split")),
        "batch_size": (64, whole(1, "examples per step, e.g. 64")),
        "checkpoints": (True, None),  # one checkpoint per epoch in checkpoints/
        # torch CPU threads while a model trains (0: torch's own, or what the process set).
        # The default convnet is tiny: 3 epochs took 0.8 s CPU on 1 thread and 12-14 s CPU on
        # 2 (OpenMP threads spin-waiting on each other; 2-core machine shared with other jobs).
        # Raise it (or 0) for large models on many cores.
        "threads": (1, whole(0, "torch CPU threads while training (0: torch's own setting)", 4096)),
        # stop when the loss exceeds this (explodes) or is not finite
        "max_loss": (1e6, above(0, "training stops when the loss exceeds it (it explodes)")),
    },
    "watch": {  # the training monitor (babysit.watch), on for every training with a run directory
        "enabled": (True, None),
        # update:weight ratios on steps 1, 1 + N, 1 + 2N, ... (0: off). The notes judge the
        # ratio's level, not each step's. bench/monitor_overhead.py (10 runs, CPU) put the
        # default monitor at 1.11x/1.03x/1.03x the bare convnet with N = 1/10/20, the digits MLP
        # at 1.29x/1.11x/1.09x (noise band +-0.02); with 20, the median the update-ratio rules
        # read over an epoch of 12 samples strayed across their threshold where every step's
        # did not (batch size 1, tests/watch): 10 keeps 24+ samples in such an epoch and 2-3 in
        # one of digits (23 steps).
        "ratio_every": (10, whole(0, COUNT_EVERY)),
        # activation/gradient histograms on steps 1, 1 + N, ... A sampled step costs the digits
        # MLP ~1.5 bare steps (~25 small ops); bench/monitor_overhead.py (10 runs, CPU, machine
        # shared) put the time inside its default monitor at 1.097x the bare loop with N = 50,
        # 1.078x with N = 100. The rules judge the latest epoch that has a sample, so one every
        # few epochs is enough: every diagnosis scenario of tests/watch (6 digits epochs, ~140
        # steps) still fires with 100.
        "hist_every": (100, whole(0, COUNT_EVERY)),
        "bins": (40, whole(1, "histogram bins, e.g. 40")),
        # steps between reads from the device and appends to watch/*.jsonl ...
        "flush_every": (50, whole(1, "steps between appends to watch/*.jsonl")),
        # ... once this long has passed since the last (fast loops batch more)
        "flush_seconds": (1.0, at_least(0, "seconds between appends to watch/*.jsonl")),
        "first_layer": (True, None),  # save the first layer's weights at the end, for their picture
        # draw watch/plots/*.png when training ends (else: babysit plots RUN_DIR)
        "plots": (False, None),
        "tensorboard": (False, None),  # also write TensorBoard event files (needs the tensorboard extra)
    },
    "ensemble": {
        # Running average of the parameters kept during every training (0 disables):
        # avg <- d*avg + (1-d)*w after each step, d = min(ema_decay, (1+t)/(10+t)).
        "ema_decay": (0.99, fraction("e.g. 0.99; 0 switches the average off")),
        "k": (5, whole(1, "members per ensemble, e.g. 5")),  # seeds, top trials, checkpoints
        # Distillation: softmax(z/T) of teacher and student. T=2 measured best on digits: its
        # students beat their hard-label twins, those at T=4 did not (ensemble/distill.py).
        "temperature": (2.0, above(0, "the softmax temperature of distillation, e.g. 2", high=1e3)),
        # distillation: weight of the soft-target loss; 1-alpha on the hard labels
        "alpha": (0.9, fraction("the weight of the soft targets, e.g. 0.9", closed=True)),
        # distillation: the student's epochs as a multiple of train.epochs (its schedules are
        # the config's). 1: the student costs one training; on MNIST-1D 2 and 3 measured
        # within noise of it on the test split (ensemble/distill.py)
        "student_budget": (1.0, above(0, "the student's epochs as a multiple of train.epochs, e.g. 2", high=100)),
        # distillation on 1-D signals: each training batch shifted circularly by up to this
        # many samples (per example), the teachers asked about the shifted inputs (function
        # matching, Beyer et al. 2022); 0 switches it off. Off by default: on MNIST-1D with
        # alpha=1, T=4 and 3x the epochs it kept 45% of the ensemble's test gain (median share
        # over 3 groups; a fifth without it), short of the half aimed at (ensemble/distill.py)
        "shift": (0, whole(0, "samples to shift the student's inputs by, e.g. 4; 0 for none")),
    },
    "preflight": {  # sanity checks before learning (babysit preflight)
        "skip": ([], None),  # check names not to run, e.g. ["gradcheck"]
        # examples the initial and regularized losses are measured on
        "examples": (512, whole(1, "examples the initial loss is measured on, e.g. 512")),
        # initial loss within +-10% of the loss at chance
        "initial_tolerance": (0.1, fraction("0.1 means within 10% of the loss at chance")),
        # the tiny subset to memorize with reg = 0
        "overfit_examples": (20, whole(1, "the notes overfit about 20 examples")),
        # at most this many full-batch steps to memorize it
        "overfit_steps": (500, whole(1, "the step budget to memorize them, e.g. 500")),
        # "near-zero cost": at most 1% of the loss at chance
        "overfit_target": (0.01, fraction("a share of the loss at chance, e.g. 0.01")),
        # real vs zeroed inputs: 3/4 to train on, 1/4 held out (so at least a few of each)
        "dependence_examples": (512, whole(8, "3/4 are trained on and 1/4 held out, e.g. 512")),
        "dependence_steps": (150, whole(1, "training steps per model, e.g. 150")),
        # real inputs must win by this much held-out accuracy
        "dependence_margin": (0.1, fraction("held-out accuracy the real inputs must win by, e.g. 0.1")),
        # torch CPU threads while it runs: its workloads are tiny (0: torch's own)
        "threads": (1, whole(0, "torch CPU threads (0: torch's own setting)", 4096)),
    },  # the preflight's gradcheck check takes its settings from [gradcheck]
    "gradcheck": {  # babysit gradcheck: analytic gradients against centered differences
        # step of (f(x+h) - f(x-h)) / 2h
        "h": (1e-5, above(0, "the notes suggest 1e-4 .. 1e-6", high=1)),
        "sweep": (False, None),  # also try h = 1e-3 .. 1e-8 and keep the best
        # datapoints of the training split the loss is checked on
        "num_points": (3, whole(1, "the notes check 2-3 datapoints")),
        # random coordinates of EVERY parameter tensor (0: all)
        "coords_per_tensor": (10, whole(0, "coordinates per tensor (0: all)")),
        # training steps before the check: the notes check in a "characteristic" mode, not
        # only at initialization (where e.g. every ReLU may sit on the same side). With a
        # burn-in the check runs twice, at initialization and after it; both are shown.
        "burn_in": (20, whole(0, "training steps before the check (0: at initialization only)")),
        # multiplies the L2 strength in the regularization check
        "reg_scale": (1.0, above(0, "it multiplies the L2 strength in its check")),
        "separate": (True, None),  # check data loss and regularization apart
        # multiplies the objective (rescue for tiny gradients)
        "scale": (1.0, above(0, "it multiplies the objective (raise it for tiny gradients)")),
        # float64 | float32 (float32 is warned about)
        "dtype": ("float64", OneOf(("float64", "float32"))),
        "batched": (True, None),  # many perturbations per forward pass (falls back to a loop)
    },
    "search": {
        # random | tpe | gp | grid (grid only for comparison); random: TPE measured no better
        # (within noise, a worse worst seed: search/samplers.py)
        "sampler": ("random", OneOf(("random", "tpe", "gp", "grid"))),
        # median | halving | none (diverging trials are always pruned)
        "pruner": ("median", OneOf(("median", "halving", "none"))),
        "workers": (0, whole(0, "local worker processes (0: one per CPU core)", 4096)),
        "threads": (0, whole(0, "torch threads per worker (0: CPU cores / workers)", 4096)),
        # "" = journal file run_dir/search/study.journal; or postgresql://...
        "storage": ("", None),
        "study": ("", None),  # study name ("" = the experiment's name)
        # Coarse to fine: each stage is {trials, epochs}; epochs = 0 means train.epochs.
        "stages": ([{"trials": 24, "epochs": 1}, {"trials": 10, "epochs": 5}, {"trials": 3, "epochs": 0}], None),
        # the next stage narrows around the best top_k trials of this one
        "top_k": (5, whole(1, "trials the next stage narrows around, e.g. 5")),
        # narrowed range = span of the top_k, widened by margin * span on each side
        "margin": (0.5, at_least(0, "widening of the narrowed range, e.g. 0.5")),
        "carry": (True, None),  # each later stage first re-trains the previous stage's best settings
        # border alarm: best trial in the outer 10% of a range (log space if log)
        "border": (0.1, Range(0, 0.5, high_open=True, fix="the outer share of a range, e.g. 0.1")),
        "auto_widen": (False, None),  # let an alarmed edge move outwards for the next stage
        # values per numeric hyperparameter for the grid sampler
        "grid_points": (4, whole(2, "values per hyperparameter of the grid, e.g. 4")),
        # s without a worker's heartbeat before its trial is retried (database)
        "grace_period": (60, at_least(1, "seconds without a worker's heartbeat, e.g. 60")),
        # s an extra babysit worker waits while nothing changes, then leaves (0: never)
        "idle_timeout": (1800, at_least(0, "seconds an idle extra worker waits, 0: never")),
        # Hyperparameters to search: config key -> {low, high[, log][, int]} or {choices}.
        "space": ({
            # the notes' lr = 10 ** uniform(-6, 1): diverging trials are pruned anyway
            "optim.lr": {"low": 1e-6, "high": 10.0, "log": True},
            "loss.reg": {"low": 1e-6, "high": 1e-1, "log": True},
            "model.dropout": {"low": 0.0, "high": 0.6, "log": False},  # the plain scale, p itself
            "optim.name": {"choices": ["nesterov", "adam"]},
            # momentum's mu, only in trials whose update rule has one (a conditional parameter)
            "optim.mu": {"low": 0.5, "high": 0.99, "when": {"optim.name": ["momentum", "nesterov"]}},
            "optim.schedule": {"choices": ["constant", "step", "exponential", "inverse_time"]},
        }, None),
    },
}


def _split(table: dict, prefix: str = "") -> tuple[dict, dict]:
    """The table's defaults (nested, as configs are) and its rules (by dotted key)."""
    defaults, rules = {}, {}
    for key, entry in table.items():
        if isinstance(entry, dict):
            defaults[key], inner = _split(entry, f"{prefix}{key}.")
            rules.update(inner)
        else:
            defaults[key], rule = entry
            if rule is not None:
                rules[f"{prefix}{key}"] = rule
    return defaults, rules


DEFAULTS, RULES = _split(TABLE)
FREE_TABLES = {"data.kwargs", "model.kwargs", "search.space"}


def check_value(key: str, value: Any) -> Any:
    """`value` if it obeys the rule of config key `key` (e.g. ``"watch.hist_every"``), else a
    UserError in the one message shape. Keys without a rule take any value of their type."""
    rule = RULES.get(key)
    if rule is not None and not rule.admits(value):
        fix = rule.fix
        if isinstance(rule, OneOf) and isinstance(value, str):
            close = difflib.get_close_matches(value, rule.choices, n=1)
            fix = f"did you mean {close[0]!r}?" if close else fix
        raise UserError(violation(key, rule.expected, value, fix))
    return value


def validate_config(config: dict) -> dict:
    """Check every value of `config` that has a rule; sections or keys it lacks are skipped."""
    for key in RULES:
        node: Any = config
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            check_value(key, node)
    return config


def default_config() -> dict[str, Any]:
    return copy.deepcopy(DEFAULTS)


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """The resolved config: defaults, then the TOML file at `path`, then ``key=value`` overrides,
    every value checked against its rule."""
    config = default_config()
    if path is not None:
        merge(config, read_toml(path))
    for item in overrides:
        key, value = parse_override(item)
        set_key(config, key, value)
    return validate_config(config)


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
    except UnicodeDecodeError:
        raise UserError(f"config file {path} is not UTF-8 text: save it as UTF-8") from None
    except OSError as exc:
        raise UserError(f"cannot read config file {path} ({exc.strerror}): check its permissions") from None


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
    kind = {bool: "true or false", int: "a whole number", float: "a number"}.get(type(default), "text")
    raise UserError(violation(key, kind, value, f"like {to_toml({'x': default})[4:].strip()}"))


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
