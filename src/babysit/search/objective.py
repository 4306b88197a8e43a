"""Search your own training function: ``objective(params, epochs, run_dir, report)``.

The search (master, workers, stages, retries) is the one babysit runs for its own experiments;
only the trial differs. Instead of building the config's experiment, a worker calls the user's
function with

- ``params``: the sampled values, ``{"lr": 0.0123, ...}`` (names as in the space);
- ``epochs``: how many epochs the trial should have trained when the function returns;
- ``run_dir``: the trial's folder (``trials/<id>/``), where the function saves what it needs
  to continue. A trial carried into a longer stage, or retried after its worker was killed,
  starts with a copy of its source's folder: the function finds its own last state there and
  trains on from it up to ``epochs``;
- ``report(epoch, val_acc, loss=None, train_acc=None)``: called after each epoch. It records
  the epoch (``loss`` and ``train_acc`` are optional, for the records and plots) in
  ``run_dir/metrics.jsonl`` and reports it to the study; when the trial should stop it raises
  :class:`StopTrial` — pruned (behind the other trials) or diverged (a non-finite
  ``val_acc`` or ``loss``). Let it propagate: babysit catches it and ends the trial.

A trial's value is the best validation accuracy it reported. Workers are separate processes:
they import the function by its ``package.module:function`` reference, which comes only from
the command line or the caller, never from a file in the run directory.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import UserError
from ..plugins import describe_error, load_callable
from ..rundir import RunDir, append_jsonl, read_jsonl
from .retry import sources

METRICS = "metrics.jsonl"  # babysit's record of the reported epochs, in each trial's folder


class StopTrial(BaseException):
    """Raised by ``report`` when a trial should stop (pruned or diverged).

    A ``BaseException``, like ``KeyboardInterrupt``: an ``except Exception`` in the user's
    training loop must not swallow it and train on.
    """

    def __init__(self, reason: str, diverged: bool = False):
        super().__init__(reason)
        self.reason, self.diverged = reason, diverged


@dataclass(frozen=True)
class Objective:
    """A user's objective function and the reference workers import it by."""

    reference: str
    function: Callable

    @classmethod
    def load(cls, reference: str) -> "Objective":
        return cls(reference, load_callable(reference, "objective"))


def reference_of(function: Callable) -> str:
    """``package.module:qualname`` of `function`, by which worker processes import it.

    A function defined in the script being run (``__main__``) is named by the script's file:
    a worker imports the script as a module, which skips its ``if __name__ == "__main__"`` part.
    """
    if not callable(function):
        raise UserError(f"the objective must be a function, not {type(function).__name__}")
    module, qualname = getattr(function, "__module__", None), getattr(function, "__qualname__", "")
    if not module or not qualname or "<lambda>" in qualname or "<locals>" in qualname:
        raise UserError(f"the objective {qualname or function!r} cannot be imported by worker processes "
                        "(a lambda, or a function defined inside another): define it at the top level "
                        "of a module and pass that function")
    if module == "__main__":
        script = getattr(sys.modules["__main__"], "__file__", None)
        if not script:
            raise UserError(f"the objective {qualname} is defined in an interactive session, which "
                            "worker processes cannot import: define it in a module (a .py file)")
        module = Path(script).stem
    return f"{module}:{qualname}"


def import_root(function: Callable) -> str | None:
    """The folder to put on the workers' PYTHONPATH so that they import `function`'s module as
    this process did (its package's parent), or None when it is not a file."""
    module = sys.modules.get(function.__module__)
    file = getattr(module, "__file__", None)
    if not file:
        return None
    root = Path(file).resolve().parent
    depth = 0 if function.__module__ == "__main__" else function.__module__.count(".")
    if Path(file).name == "__init__.py":
        depth += 1
    for _ in range(depth):
        root = root.parent
    return str(root)


class Report:
    """The ``report(epoch, val_acc, loss=None, train_acc=None)`` a user's objective calls after
    each epoch: records it, reports it to the study, raises :class:`StopTrial` to stop."""

    def __init__(self, trial, trial_dir: Path):
        self.trial, self.trial_dir = trial, Path(trial_dir)
        self.records = read_jsonl(self.trial_dir / METRICS) if (self.trial_dir / METRICS).exists() else []
        self.inherited = len(self.records)
        for record in self.records:  # the epochs a continued trial inherited
            trial.report(record["val_acc"], record["epoch"])

    @property
    def reported(self) -> set[int]:
        return {r["epoch"] for r in self.records}

    def __call__(self, epoch: int, val_acc: float, loss: float | None = None,
                 train_acc: float | None = None) -> None:
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
            raise UserError(f"report(epoch, val_acc) takes the epoch as a whole number >= 1, not {epoch!r}")
        val_acc, loss = _number("val_acc", val_acc), None if loss is None else _number("loss", loss)
        train_acc = None if train_acc is None else _number("train_acc", train_acc)
        for name, acc in (("val_acc", val_acc), ("train_acc", train_acc)):
            if acc is not None and math.isfinite(acc) and not 0 <= acc <= 1:
                raise UserError(f"report(epoch, val_acc) takes {name} as a fraction in [0, 1], not {acc!r}")
        if not (math.isfinite(val_acc) and (loss is None or math.isfinite(loss))):
            raise StopTrial(f"diverged at epoch {epoch} (val_acc {val_acc}, loss {loss})", diverged=True)
        if epoch not in self.reported:  # an epoch trained again after a retry counts once
            extra = {k: v for k, v in (("loss", loss), ("train_acc", train_acc)) if v is not None}
            record = {"epoch": epoch, "val_acc": val_acc, **extra}
            append_jsonl(self.trial_dir / METRICS, record)
            self.records.append(record)
            self.trial.report(val_acc, epoch)
        if self.trial.should_prune():
            raise StopTrial(f"pruned at epoch {epoch} (behind the other trials)")

    def best(self) -> float | None:
        return max((r["val_acc"] for r in self.records), default=None)


def _number(name: str, value) -> float:
    try:
        return float(value)  # a 0-d tensor or NumPy number too
    except (TypeError, ValueError):
        raise UserError(f"report(epoch, val_acc) takes {name} as a number, not {value!r}") from None


def continue_objective(run_dir: RunDir, source_ids: list[int], trial_dir: Path, epochs: int) -> bool:
    """Start `trial_dir` as a copy of the first source trial's folder that recorded an epoch
    (a retry of a killed trial, or a setting carried into a longer stage), unless it already
    trained longer than `epochs`. Returns whether the trial continues."""
    for source_id in source_ids:
        source = run_dir / f"trials/{source_id}"
        records = read_jsonl(source / METRICS) if (source / METRICS).exists() else []
        if records:
            break
    else:
        return False
    if max(r["epoch"] for r in records) > epochs:
        return False
    shutil.copytree(source, trial_dir, dirs_exist_ok=True)
    return True


def run_trial(trial, objective: Objective, params: dict, epochs: int, run_dir: RunDir) -> float:
    """One trial of a user's objective; its value is the best validation accuracy reported.

    Pruned and diverged trials end PRUNED; what the user's function raises ends the trial
    FAILED with one line naming the function and the trial's parameters.
    """
    import optuna

    trial_dir = run_dir / f"trials/{trial._trial_id}"
    continue_objective(run_dir, sources(trial), trial_dir, epochs)
    trial_dir.mkdir(parents=True, exist_ok=True)
    report = Report(trial, trial_dir)
    started = time.perf_counter()
    try:
        objective.function(dict(params), epochs, trial_dir, report)
    except StopTrial as stop:
        trial.set_user_attr("diverged" if stop.diverged else "pruned", stop.reason)
        raise optuna.TrialPruned(stop.reason) from None
    except KeyboardInterrupt:
        trial.set_user_attr("interrupted", True)  # the master queues it again on --resume
        raise
    except Exception as exc:  # the user's code: theirs to fix, the search goes on
        line = (f"objective {objective.reference!r} raised {describe_error(exc)} in trial {trial.number} "
                f"with {', '.join(f'{k}={v!r}' for k, v in params.items())}: fix it there")
        trial.set_user_attr("error", line)
        print(line, file=sys.stderr, flush=True)
        raise UserError(line) from None
    finally:
        trial.set_user_attr("trained", {"epochs": max(report.reported, default=0),
                                        "epochs_trained": len(report.records) - report.inherited,
                                        "seconds": round(time.perf_counter() - started, 3)})
    best = report.best()
    if best is None:
        trial.set_user_attr("error", f"objective {objective.reference!r} reported no epoch")
        raise UserError(f"objective {objective.reference!r} returned without calling report(epoch, "
                        f"val_acc) in trial {trial.number}: report each epoch's validation accuracy")
    return best


def search_objective(objective: Callable | str, space: dict, *, stages: list[dict] | None = None,
                     storage: str | None = None, workers: int | None = None, run_dir=None,
                     sampler: str = "random", resume: bool = False, quiet: bool = False,
                     seed: int = 0, **search):
    """Search the hyperparameters of your own training function, as babysit searches its own.

    `objective` is a top-level function (or its ``"package.module:function"`` reference)
    called as ``objective(params, epochs, run_dir, report)`` (see the module docstring);
    `space` is in the form of ``[search.space]``, e.g. ``{"lr": {"low": 1e-6, "high": 10,
    "log": True}}`` (lr and reg log-scale by default); `stages` a list of ``{"trials": N,
    "epochs": E}``, coarse to fine. Other ``[search]`` keys (``top_k``, ``pruner``,
    ``border``, ...) may be given as keywords. Returns a :class:`SearchResult` whose
    ``best_params`` are the best complete trial's values.
    """
    from ..config import check_value, default_config, validate_config
    from ..rundir import RunDir
    from .master import run_search
    from .space import Space
    from .stages import parse_stages

    if isinstance(objective, str):  # an import error now, in one line, not in every worker
        reference, function = objective, Objective.load(objective).function
    else:
        reference, function = reference_of(objective), objective
    root = import_root(function)
    paths = [root] if root else []
    if not isinstance(space, dict):
        raise UserError(f"the space must be a dict like {{'lr': {{'low': 1e-6, 'high': 1, 'log': True}}}}, "
                        f"not {type(space).__name__}")
    config = default_config()
    config["name"] = reference.rsplit(":", 1)[-1].replace(".", "-")
    config["seed"] = seed
    unknown = sorted(set(search) - set(config["search"]))
    if unknown:
        raise UserError(f"search_objective() got unknown search option(s) {', '.join(unknown)}: "
                        f"use the [search] keys ({', '.join(sorted(config['search']))})")
    config["search"].update(search, space=space, sampler=sampler)
    if stages is not None:
        config["search"]["stages"] = stages
    validate_config(config)
    check_value("seed", seed)
    Space.from_config(config, free=True)
    parse_stages(config)
    if run_dir is None:
        run_dir = RunDir.create("runs", config["name"]).path
    return run_search(config, run_dir, workers=workers, resume=resume, quiet=quiet, storage=storage,
                      objective=reference, import_paths=paths)
