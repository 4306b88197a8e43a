"""``babysit run``: the whole workflow of the notes, stage after stage, into one run directory.

    gradient check -> preflight -> coarse-to-fine search (local workers)
      -> final training of the best configuration (monitor + parameter average)
      -> ensembles -> the test split (once) -> report.html

Each stage prints one verdict line and is recorded in ``run.json`` as it starts and ends. A
failed gradient check or preflight stops the run (exit code 1) with the reason, unless
``force``: training on wrong gradients or a broken pipeline wastes the search budget. Each
stage returns an :class:`Outcome`, its status and one-line verdict; a search that finished no
trial leaves the final training with the given config.

Validation chooses everything (the search, the epoch, the ensembles' members); the held-out
test split is read once, at the end (:mod:`babysit.evaluation`, ``test.json``), and the run's
headline is the final model's test accuracy with its n and 95% interval.

Whatever happens — a failure, an error, Ctrl-C — run.json says so and report.html shows what
exists, before the exception travels on.
"""

from __future__ import annotations

import copy
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from .. import evaluation, experiment
from ..check import gradcheck_experiment
from ..config import DEFAULTS
from ..ensemble import build_ensembles
from ..errors import UserError
from ..report import write_report
from ..rundir import RunDir, list_checkpoints
from ..sanity import preflight_experiment
from ..search import run_search
from ..search.results import best_accuracy, top_difference
from ..stats import Accuracy
from ..train import latest_checkpoint
from .runlog import RunLog

STAGES = ("gradcheck", "preflight", "search", "train", "ensemble", "report")


@dataclass(frozen=True)
class Outcome:
    """What a stage reports: its status in ``run.json`` and the one-line verdict printed."""

    status: Literal["passed", "inconclusive", "failed", "done"]
    verdict: str


class StopRun(Exception):
    """A stage failed in a way that makes the following stages pointless (without --force)."""


def quick_config(config: dict) -> dict:
    """The config shrunk so the whole workflow fits in about a minute on 2 cores.

    Few epochs for the final training, a two-stage search with a handful of trials, small
    ensembles. The hyperparameter ranges stay as they are: --quick tries the real workflow.
    """
    quick = copy.deepcopy(config)
    quick["train"]["epochs"] = min(quick["train"]["epochs"], 4)
    if isinstance(quick.get("search"), dict) and "stages" in quick["search"]:
        quick["search"]["stages"] = [{"trials": 6, "epochs": 1}, {"trials": 2, "epochs": 0}]
        if "top_k" in quick["search"]:
            quick["search"]["top_k"] = min(quick["search"]["top_k"], 3)
    if isinstance(quick.get("ensemble"), dict) and "k" in quick["ensemble"]:
        quick["ensemble"]["k"] = min(quick["ensemble"]["k"], 3)
    # The preflight's slowest check trains two models (real against zeroed inputs): fewer
    # steps on fewer examples still separate them by far more than the margin.
    for key, cap in (("examples", 256), ("dependence_examples", 256), ("dependence_steps", 75)):
        if isinstance(quick.get("preflight"), dict) and key in quick["preflight"]:
            quick["preflight"][key] = min(quick["preflight"][key], cap)
    return quick


@dataclass
class Workflow:
    """One ``babysit run``: the config, the run directory and what each stage produced."""

    config: dict
    run_dir: RunDir
    quick: bool = False
    force: bool = False
    quiet: bool = False
    workers: int | None = None
    skip: tuple[str, ...] = ()
    argv: list[str] = field(default_factory=lambda: list(sys.argv))
    echo: Callable[[str], Any] = field(default=lambda line: print(line, flush=True))
    final_config: dict | None = None
    log: RunLog | None = None

    # -- driving --------------------------------------------------------------------------

    def run(self) -> int:
        """Run every stage; the exit code: 0 done, 1 stopped by a failed check or training.

        The stages run in this process (all but the search's workers) use ``train.threads``
        torch threads: on the default's small models more threads only wait on each other."""
        threads = self.config.get("train", {}).get("threads", 0)
        with experiment.cpu_threads(threads if isinstance(threads, int) else 0):
            return self._run()

    def _run(self) -> int:
        self.log = RunLog.start(self.run_dir, name=self.config["name"], config=self.config,
                                argv=self.argv, quick=self.quick, force=self.force)
        self.final_config = self.config
        steps = [("gradcheck", self.gradcheck), ("preflight", self.preflight), ("search", self.search),
                 ("train", self.train), ("ensemble", self.ensemble)]
        try:
            for name, step in steps:
                self._stage(name, step)
        except StopRun as stop:
            self.log.finish("failed", str(stop))
            self.report()
            self.echo(f"stopped: {stop}")
            return 1
        except KeyboardInterrupt:
            self._abort("interrupted", "interrupted (Ctrl-C)")
            raise
        except BaseException as exc:
            self._abort("failed", f"{type(exc).__name__}: {exc}")
            raise
        self.headline()
        self.log.finish("finished")
        self.report()
        return 0

    def _stage(self, name: str, step: Callable[[], Outcome]) -> None:
        entry = self.log.begin(name)
        if name in self.skip:
            self.log.end(entry, "skipped", "skipped on request (--skip)")
            self._say(name, "skipped", "on request (--skip)")
            return
        try:
            outcome = step()
        except StopRun as stop:
            self.log.end(entry, "failed", str(stop))
            self._say(name, "failed", str(stop))
            raise
        except UserError as exc:
            self.log.end(entry, "failed", str(exc))
            self._say(name, "failed", str(exc))
            raise StopRun(f"{name}: {exc}") from None
        except BaseException as exc:
            self.log.end(entry, "interrupted" if isinstance(exc, KeyboardInterrupt) else "error",
                         f"{type(exc).__name__}: {exc}")
            raise
        self.log.end(entry, outcome.status, outcome.verdict)
        self._say(name, outcome.status, outcome.verdict)

    def _say(self, name: str, status: str, verdict: str) -> None:
        self.echo(f"[{name:>9}] {status:<11} {verdict}")

    def _abort(self, status: str, reason: str) -> None:
        """Record why the run ended, and still write the report of what exists."""
        try:
            self.log.finish(status, reason)
            write_report(self.run_dir.path)
        except Exception:  # the original exception matters more than a failed report
            pass

    def _gate(self, what: str, passed: bool, verdict: str) -> Outcome:
        """A check's outcome; a failure stops the run unless --force."""
        if passed:
            return Outcome("passed", verdict)
        if not self.force:
            raise StopRun(f"{what} failed: {verdict} (fix it, or rerun with --force to go on anyway)")
        return Outcome("failed", verdict + " (continuing: --force)")

    # -- the stages -----------------------------------------------------------------------

    def gradcheck(self) -> Outcome:
        report = gradcheck_experiment(self.config, self.run_dir.path, quiet=self.quiet)
        if report.outcome == "inconclusive":  # no entry wrong, some unjudgeable: the run goes on
            return Outcome("inconclusive", f"{report.summary} (not a failure: going on)")
        return self._gate("gradient check", report.passed, str(report.summary))

    def preflight(self) -> Outcome:
        report = preflight_experiment(self._preflight_config(), self.run_dir.path, quiet=self.quiet)
        failed = report.failed
        if failed:
            verdict = f"failed {', '.join(failed)}: {report.checks[failed[0]].message}".rstrip(": ")
        else:
            verdict = f"all {len(report.checks)} checks passed"
        return self._gate("preflight", report.passed, verdict)

    def _preflight_config(self) -> dict:
        """The config for the preflight: its own gradient check left out when the workflow's
        gradient-check stage already ran (the same check, twice the time)."""
        ran = any(s["name"] == "gradcheck" and s["status"] in ("passed", "inconclusive", "failed")
                  for s in self.log.data["stages"])
        skip = self.config.get("preflight", {}).get("skip")
        if not ran or not isinstance(skip, list) or "gradcheck" in skip:
            return self.config
        config = copy.deepcopy(self.config)
        config["preflight"]["skip"] = [*skip, "gradcheck"]
        return config

    def search(self) -> Outcome:
        result = run_search(self.config, self.run_dir.path, workers=self.workers, quiet=self.quiet)
        alarms, board = result.alarms, result.leaderboard
        if result.best_config is None:
            return Outcome("failed", f"no trial finished in {len(board)} trials: the final "
                                     "training uses the given config")
        self.final_config = result.best_config
        changed = changed_keys(self.config, self.final_config)
        verdict = f"{len(board)} trials, best val acc {best_accuracy(board, float(result.best_value))}"
        if changed:
            verdict += " with " + ", ".join(f"{k}={_short(v)}" for k, v in changed.items())
        if (top := top_difference(board)) is not None:
            verdict += f"; over the runner-up (trial {top[1]['trial']}): {top[2]}"
        if alarms:
            verdict += f"; {len(alarms)} border alarm{'s' if len(alarms) > 1 else ''}"
        return Outcome("done", verdict)

    def train(self) -> Outcome:
        config = with_monitoring(self.final_config)
        self.final_config = config
        exp, state = experiment.train(config, self.run_dir.path, quiet=self.quiet)
        if not state.history:
            raise StopRun("final training finished no epoch")
        n_val = len(exp.data.y_val)
        best = max(state.history, key=lambda r: r["val_acc"])
        verdict = (f"{len(state.history)} epochs, best val acc "
                   f"{Accuracy.from_rate(best['val_acc'], n_val)} at epoch {best['epoch']}, final "
                   f"{Accuracy.from_rate(state.history[-1]['val_acc'], n_val)}")
        averaged = state.history[-1].get("val_acc_avg")
        if isinstance(averaged, float):
            verdict += f" (averaged weights {averaged:.4f})"
        diagnoses = self.run_dir.read_json("watch/diagnoses.json", default=None)
        if isinstance(diagnoses, list):
            codes = sorted({str(d.get("code")) for d in diagnoses if isinstance(d, dict)})
            verdict += f"; diagnoses: {', '.join(codes) if codes else 'none'}"
        if state.stop_reason:
            raise StopRun(f"final training stopped: {state.stop_reason} ({verdict})")
        # The final model and its parameter average on the test split: nothing chooses after
        # this but the ensembles' members, and they are chosen on validation.
        checkpoint = latest_checkpoint(self.run_dir / "checkpoints") if config["train"]["checkpoints"] else None
        evaluation.evaluate_training(config, self.run_dir, exp.model,
                                     state.checkpoint_extra.get("average"), checkpoint, data=exp.data)
        return Outcome("done", verdict)

    def ensemble(self) -> Outcome:
        # At most as many members as the final training left checkpoints (a short training).
        k = int(self.final_config.get("ensemble", {}).get("k", 5))
        k = max(2, min(k, len(list_checkpoints(self.run_dir / "checkpoints"))))
        kwargs: dict = {"k": k, "quiet": self.quiet}
        if self.quick:
            kwargs["kinds"] = self._quick_kinds()
        rows = build_ensembles(self.final_config, self.run_dir.path, **kwargs)
        if not rows:
            return Outcome("done", "no ensemble could be built from this run")
        best = max(rows, key=lambda r: r.val_acc)  # on validation: the test split reports
        return Outcome("done", f"{len(rows)} ensembles; best {best.kind} at val acc "
                               f"{best.val_acc:.4f} (n={best.n}, 95% CI {best.val_low:.4f}-{best.val_high:.4f}; "
                               f"{100 * best.gain:+.2f} pt over its best member, paired 95% CI "
                               f"{100 * best.gain_low:+.2f} to {100 * best.gain_high:+.2f}: {best.verdict})")

    def headline(self) -> None:
        """The run's result, printed last and kept in run.json: the final model's test accuracy
        with n and interval, and the ensemble that validation picked, on the test split."""
        report = evaluation.read(self.run_dir)
        if report is None or "final" not in report["models"]:
            lines = ["no test split evaluated (data.test_fraction = 0 or no final training): "
                     "the figures above are validation accuracies, which chose the model"]
        else:
            models = report["models"]
            lines = [f"test acc final model {evaluation.describe(models['final'])} "
                     f"[{report['source']}, evaluated once, at the end]"]
            if "average" in models:
                lines.append(f"test acc average {evaluation.describe(models['average'])}")
            rows = self.run_dir.read_json("ensemble/table.json", default=[]) or []
            ensembles = [r for r in rows if isinstance(r, dict) and f"ensemble:{r.get('kind')}" in models]
            if ensembles:  # the best on validation: picking the best on test would choose on it
                picked = max(ensembles, key=lambda r: r.get("val_acc", 0))
                entry = models[f"ensemble:{picked['kind']}"]
                lines.append(f"test acc ensemble {picked['kind']} (best on validation) "
                             f"{evaluation.describe(entry)}")
        self.log.data["headline"] = lines
        for line in lines:
            self.echo(line)

    def _quick_kinds(self) -> tuple[str, ...]:
        """Ensembles that need no extra training (no seeds, no distillation), of what exists."""
        kinds = ["checkpoints"]
        if (self.run_dir / "trials").is_dir():
            kinds.insert(0, "top_trials")
        if float(self.final_config.get("ensemble", {}).get("ema_decay", 0) or 0) > 0:
            kinds.append("average")
        return tuple(kinds)

    def report(self) -> None:
        """The last stage. Recorded as done before the page is written, so the page shows it so."""
        entry = self.log.begin("report")
        started = entry["_t0"]
        self.log.end(entry, "done", "report.html")
        path = write_report(self.run_dir.path)
        entry["verdict"] = f"{path} ({path.stat().st_size // 1024} KB)"
        entry["seconds"] = round(time.perf_counter() - started, 2)
        self.log.save_clean()
        self._say("report", "done", entry["verdict"])


def with_monitoring(config: dict) -> dict:
    """The config with the monitor and the parameter average switched on where they are off."""
    config = copy.deepcopy(config)
    watch = config.get("watch")
    if isinstance(watch, dict) and watch.get("enabled") is False:
        watch["enabled"] = True
    average = config.get("ensemble")
    if isinstance(average, dict) and not average.get("ema_decay", 1):
        average["ema_decay"] = DEFAULTS["ensemble"]["ema_decay"]
    return config


def changed_keys(before: dict, after: dict, prefix: str = "") -> dict:
    """Dotted keys whose values differ (what the search chose), the search section left out."""
    out = {}
    for key, value in after.items():
        dotted = f"{prefix}{key}"
        if dotted in ("search", "name"):
            continue
        old = before.get(key) if isinstance(before, dict) else None
        if isinstance(value, dict) and isinstance(old, dict):
            out.update(changed_keys(old, value, dotted + "."))
        elif value != old:
            out[dotted] = value
    return out


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def prepare_run_dir(run_dir: str | Path | None, name: str) -> RunDir:
    """A fresh run directory: the given one must be new or empty (stages would mix otherwise)."""
    if run_dir is None:
        return RunDir.create("runs", name)
    return RunDir.fresh(run_dir, "run")


def run_workflow(config: dict, run_dir: str | Path | None = None, *, quick: bool = False,
                 force: bool = False, quiet: bool = False, workers: int | None = None,
                 skip: tuple[str, ...] | list[str] = (), argv: list[str] | None = None,
                 echo: Callable[[str], Any] | None = None) -> tuple[int, RunDir]:
    """Run the whole workflow; returns (exit code, run directory).

    `skip` names stages not to run (any of gradcheck, preflight, search, train, ensemble);
    without a search the final training uses `config` as given.
    """
    unknown = sorted(set(skip) - set(STAGES[:-1]))
    if unknown:
        raise UserError(f"cannot skip {', '.join(unknown)}: stages are {', '.join(STAGES[:-1])}")
    config = quick_config(config) if quick else copy.deepcopy(config)
    rd = prepare_run_dir(run_dir, config["name"])
    flow = Workflow(config, rd, quick=quick, force=force, quiet=quiet, workers=workers, skip=tuple(skip),
                    argv=list(argv if argv is not None else sys.argv))
    if echo is not None:
        flow.echo = echo
    return flow.run(), rd
