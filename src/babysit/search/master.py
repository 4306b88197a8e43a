"""The master: runs the stages, keeps N worker processes alive, and summarizes each stage.

For each stage it creates the stage's study (sampler, pruner and space in the study, so every
worker — local or on another machine — reads the same), queues the settings carried over from
the previous stage, and starts N local worker processes (``babysit worker``, each in its own
session so that Ctrl-C reaches only the master). While they run it shows trials done, the
best so far and a short leaderboard, and it restarts a worker that died, after failing the
dead worker's trial and queueing its retry (see :mod:`.retry`). When the budget is spent it
writes the stage's records and border alarms, narrows the ranges, and goes on; the plots of
all stages are drawn at the end.

Ctrl-C ends the workers (their running trials are marked interrupted), records where the
search stopped, and ``--resume`` continues from there: finished stages are kept, the running
stage's interrupted or orphaned trials are retried from their last checkpoints. One master
runs in a run directory at a time (:class:`SearchLock`).

With `objective` (a ``package.module:function`` reference, see :mod:`.objective`) the same
master searches a user's own training function: the space's names are that function's
parameters, and the workers are told the reference on their command line.
"""

from __future__ import annotations

import os
import signal
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import load_config, to_toml
from ..errors import UserError
from ..rundir import RunDir
from . import fingerprint, results
from .alarms import border_alarms
from .budget import stage_budget, summary_lines
from .heartbeat import SilentWorkers
from .retry import (budget_used, fail_and_retry, has_waiting, is_duplicate, orphaned, retried_numbers, retry,
                    worker_tag)
from .samplers import check_names, grid_size
from .space import Space, apply
from .stages import StageSpec, extend_to_edges, is_fraction, narrow, parse_stages, widen_limits
from .storage import default_storage, is_database, redact
from .worker import SEARCH_ATTR, STAGE_ATTR, remove_partial_files

POLL_S = 0.3
LAUNCHES_ATTR = "babysit_launches"  # on the search's study: worker processes started so far


@dataclass
class SearchResult:
    """What :func:`run_search` found. ``leaderboard`` rows: rank, trial, stage, params,
    val_acc, epochs, state, checkpoint_dir (relative to the run directory), ...
    ``best_config`` is None for a user's objective (:mod:`.objective`): its params are the answer."""

    best_config: dict | None
    best_params: dict
    best_value: float | None
    leaderboard: list[dict]
    alarms: list[dict]
    run_dir: Path
    stages: list[dict] = field(default_factory=list)


def run_search(config: dict, run_dir, *, workers: int | None = None, resume: bool = False,
               quiet: bool = False, storage: str | None = None, objective: str | None = None,
               import_paths: list[str] = ()) -> SearchResult:
    """Search the hyperparameters in ``config['search']`` in stages; see the module docstring.
    `import_paths` go on the workers' PYTHONPATH (where `objective`'s module is found)."""
    return Master(config, run_dir, workers=workers, resume=resume, quiet=quiet, storage=storage,
                  objective=objective, import_paths=import_paths).run()


class Master:
    def __init__(self, config, run_dir, *, workers=None, resume=False, quiet=False, storage=None,
                 objective=None, import_paths=()):
        self.config = config
        self.search = config["search"]
        self.objective, self.import_paths = objective, list(import_paths)
        check_names(self.search["sampler"], self.search["pruner"])
        self.base_space = Space.from_config(config, free=objective is not None)
        self.stage_plans = parse_stages(config)
        if objective is not None and any(is_fraction(p["epochs"]) for p in self.stage_plans):
            raise UserError("a stage of a fraction of an epoch needs babysit's own experiment (the trial "
                            "stops after that share of the steps): give your objective's stages whole epochs")
        self.run_dir = RunDir(run_dir)
        self.resume, self.quiet = resume, quiet
        self.storage_url = storage or self.search["storage"] or default_storage(self.run_dir.path)
        self.study_name = self.search["study"] or config["name"]
        self.workers = workers or self.search["workers"] or os.cpu_count() or 1
        if self.workers < 1:
            raise UserError(f"--workers must be >= 1, not {self.workers}")
        self.records: list[dict] = []  # stages.json
        self.alarms: list[dict] = []
        self.launches = 0
        self.finished = False
        self.lock = None  # search/.lock, held while this master runs
        self.experiment: dict = {}  # fingerprint.record() of the experiment the trials train

    # ------------------------------------------------------------------ the stages

    def run(self) -> SearchResult:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if self.storage_url != default_storage(self.run_dir.path):
            # A storage the user named (a database, a journal elsewhere) is opened before the
            # run directory holds anything: a bad URL leaves no half-made search behind.
            self.storage = self._open_storage()
        try:
            self._prepare_run_dir()
            return self._run_stages()
        finally:
            if self.lock is not None:
                self.lock.release()

    def _run_stages(self) -> SearchResult:
        self.storage = getattr(self, "storage", None) or self._open_storage()
        if self.resume:
            self._check_recorded_studies()
            self._check_experiment()
        self._announce()
        limits = self.base_space
        space = self.base_space
        previous: list[dict] = []
        self.supervisor = Supervisor(self)
        try:
            for index, plan in enumerate(self.stage_plans, 1):
                done = self._recorded(index)
                if done and done["status"] == "done":
                    space, limits, previous = self._replay(done, limits)
                    continue
                spec = self._stage_spec(index, plan, space, previous, done)
                ranked = self._run_stage(spec)
                space, limits, previous = self._after_stage(spec, ranked, limits)
            self._set_search_state(current=None, finished=True)
            self.finished = True
        finally:
            self.supervisor.stop()
        for trial_dir in (self.run_dir / "trials").glob("*"):
            remove_partial_files(trial_dir)  # no worker runs now: leftovers of killed writes
        return self._result()

    def _prepare_run_dir(self) -> None:
        stages_file = self.run_dir / "search/stages.json"
        if self.resume:
            if not stages_file.exists():
                raise UserError(f"{self.run_dir.path} holds no search to resume (no search/stages.json): "
                                "give the run directory that babysit search wrote")
            self.records = self._read_records("search/stages.json", required=("index", "study", "spec", "status"))
            self.alarms = self._read_records("search/alarms.json", required=("stage",))
        elif stages_file.exists():
            raise UserError(f"{self.run_dir.path} already holds a search: continue it with "
                            f"--resume {self.run_dir.path}, or choose another --run-dir")
        self.run_dir.path.mkdir(parents=True, exist_ok=True)
        self.lock = SearchLock.take(self.run_dir)
        if not self.resume and stages_file.exists():  # a master that started as we checked
            raise UserError(f"{self.run_dir.path} already holds a search: continue it with "
                            f"--resume {self.run_dir.path}, or choose another --run-dir")
        if not self.resume:
            self.run_dir.write_text("config.toml", to_toml(self.config))
            # As the workers will read it (they load config.toml), so their fingerprints match.
            self.experiment = fingerprint.record(load_config(self.run_dir / "config.toml"), self.objective)
            self._set_search_state(current=None, finished=False, create=True)

    def _read_records(self, rel: str, required: tuple[str, ...]) -> list[dict]:
        """A list of records the search wrote (stages.json, alarms.json), or one line saying
        why it cannot be resumed from (a hand-edited, truncated or foreign file)."""
        import json

        path = self.run_dir / rel
        try:
            records = self.run_dir.read_json(rel, [])
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{path} is damaged ({type(exc).__name__} at {str(exc)[:60]}): it cannot be "
                            "resumed; start a new search with another --run-dir") from None
        if not isinstance(records, list) or not all(isinstance(r, dict) and all(k in r for k in required)
                                                    for r in records):
            raise UserError(f"{path} is not a record babysit search wrote (a list of tables with "
                            f"{', '.join(required)}): it cannot be resumed; start a new search with "
                            "another --run-dir")
        return records

    def _check_recorded_studies(self) -> None:
        """On --resume: the search's study and every stage stages.json records must be in the
        storage (a journal emptied or replaced, or another database, would start the stages
        over silently, or fail on a missing study)."""
        names = {s.study_name for s in self.storage.get_all_studies()}
        missing = [name for name in [self.study_name] + [r["study"] for r in self.records] if name not in names]
        if missing:
            raise UserError(f"the study storage {redact(self.storage_url)} holds no study {missing[0]!r} of "
                            f"the search in {self.run_dir.path}: resume with the storage and study name "
                            "the search was started with, or start a new search")

    def _check_experiment(self) -> None:
        """On --resume: the experiment must be the one the search's trials trained."""
        import optuna

        attrs = optuna.load_study(study_name=self.study_name, storage=self.storage).user_attrs
        fingerprint.check_same_experiment(
            attrs, self.config, self.study_name,
            f"resume without --set for these keys (the search trains {self.run_dir.path}/config.toml), "
            "and with the --objective it searched, if any", self.objective)
        self.experiment = attrs.get(fingerprint.ATTR) or fingerprint.record(self.config, self.objective)
        self.launches = attrs.get(LAUNCHES_ATTR, 0)

    def _announce(self) -> None:
        if self.quiet:
            return
        where = redact(self.storage_url) if is_database(self.storage_url) else self.storage_url
        plan = ", ".join(f"{p['trials']}x{p['epochs']} ep" for p in self.stage_plans)
        print(f"search into {self.run_dir.path}: {self.workers} workers, sampler "
              f"{self.search['sampler']}, stages {plan}\n"
              f"  space: {self.base_space.describe()}\n"
              f"  study '{self.study_name}' in {where} (join from elsewhere: babysit worker CONFIG "
              f"--storage URL --study {self.study_name})", file=sys.stderr)

    def _recorded(self, index: int) -> dict | None:
        return next((r for r in self.records if r["index"] == index), None)

    def _stage_spec(self, index, plan, space, previous, recorded) -> StageSpec:
        if recorded:  # resuming this stage: the space it was started with
            return StageSpec(**recorded["spec"])
        if self.search["sampler"] == "grid":
            total = grid_size(space, self.search["grid_points"])
            if plan["trials"] > total:
                plan = {**plan, "trials": total}
        carried = previous[:min(self.search["top_k"], plan["trials"])] if self.search["carry"] else []
        return StageSpec(index=index, trials=plan["trials"], epochs=plan["epochs"],
                         space=space.to_dict(), sampler=self.search["sampler"],
                         pruner=self.search["pruner"], study=f"{self.study_name}.stage{index}",
                         grid_points=self.search["grid_points"], carried=[r["trial"] for r in carried])

    def _run_stage(self, spec: StageSpec) -> list[dict]:
        import optuna

        study = optuna.create_study(study_name=spec.study, storage=self.storage, direction="maximize",
                                    load_if_exists=True)
        record = self._recorded(spec.index)
        if record is None:
            study.set_user_attr(fingerprint.ATTR, self.experiment)  # before STAGE_ATTR: joiners wait for that
            study.set_user_attr(STAGE_ATTR, spec.to_dict())
            self._queue_carried(study, spec)
            record = {"index": spec.index, "study": spec.study, "spec": spec.to_dict(),
                      "status": "running", "started": time.time()}
            self.records.append(record)
        else:
            record["status"] = "running"
            self._retry_leftovers(study)
        self._write_stages()
        self._set_search_state(current=spec.study, finished=False)
        try:
            self.supervisor.watch(study, spec)
        except KeyboardInterrupt:
            record["status"] = "interrupted"
            self._write_stages()
            if not self.quiet:
                print(f"search interrupted in stage {spec.index}: continue with "
                      f"babysit search --resume {self.run_dir.path}", file=sys.stderr)
            raise
        return self._rank_stage(study, spec.index)

    def _queue_carried(self, study, spec: StageSpec) -> None:
        """The previous stage's best settings, first in line, continuing from their checkpoints."""
        previous = {r["trial"]: r for r in self._ranked_all()}
        # Part of an epoch is not an epoch: a setting from such a stage starts afresh.
        afresh = spec.index > 1 and is_fraction(self._recorded(spec.index - 1)["spec"]["epochs"])
        for trial_id in spec.carried:
            row = previous[trial_id]
            attrs = {"carried_from": trial_id} if afresh else {"carried_from": trial_id, "continue_from": trial_id}
            study.enqueue_trial(row["params"], user_attrs=attrs)

    def _retry_leftovers(self, study) -> None:
        """On --resume: trials left RUNNING by dead workers, or failed by Ctrl-C, run again."""
        trials = study.get_trials(deepcopy=False)
        local = [] if is_database(self.storage_url) else orphaned(trials, all_local=True, untagged_after_s=0)
        for frozen in local:
            fail_and_retry(study, frozen, "its worker was gone when the search resumed")
        self._retry_interrupted(study)

    def _retry_interrupted(self, study) -> None:
        """Trials whose worker was stopped (SIGTERM, Ctrl-C) run again."""
        from optuna.trial import TrialState

        trials = study.get_trials(deepcopy=False)
        retried = retried_numbers(trials)
        for frozen in trials:
            if frozen.state == TrialState.FAIL and frozen.user_attrs.get("interrupted") \
                    and frozen.number not in retried:
                retry(study, frozen, "interrupted")

    def _rank_stage(self, study, index: int) -> list[dict]:
        return results.rank([results.trial_record(t, index) for t in study.get_trials(deepcopy=False)
                             if not is_duplicate(t)])

    def _after_stage(self, spec: StageSpec, ranked: list[dict], limits: Space):
        """Record the stage, raise its border alarms, and plan the next stage's space."""
        space = Space.from_dict(spec.space)
        useful = [r for r in ranked if r["state"] in ("complete", "pruned") and r["val_acc"] is not None]
        errors = [r["error"] for r in ranked if r.get("error")]
        if not useful and errors:  # the user's objective fails: its first error says why
            raise UserError(f"stage {spec.index}: every trial failed, e.g. {errors[0]}")
        if not useful:
            raise UserError(f"stage {spec.index}: no trial trained without diverging or failing "
                            f"(see {self.run_dir.path}/search/logs): lower the learning-rate range "
                            "or check the experiment with babysit train")
        alarms = border_alarms(space, useful, border=self.search["border"], top_k=self.search["top_k"],
                               stage=spec.index)
        self.alarms = [a for a in self.alarms if a["stage"] != spec.index] + alarms
        top = useful[:self.search["top_k"]]
        if self.search["auto_widen"] and alarms:
            limits = widen_limits(limits, alarms)
        next_space = narrow(space, top, limits=limits, margin=self.search["margin"])
        if self.search["auto_widen"] and alarms:
            next_space = extend_to_edges(next_space, limits, alarms, self.search["margin"])
        record = self._recorded(spec.index)
        record.update(self._stage_summary(ranked, alarms, next_space))
        everything = self._ranked_all()
        stage_budget([r for r in self.records if r["status"] == "done"], everything)
        self._write_stages()
        self.run_dir.write_json("search/alarms.json", self.alarms)
        results.write_leaderboard(self.run_dir, everything)  # plots: once, at the end
        if not self.quiet:
            self._print_stage(spec, ranked, alarms)
        complete = [r for r in useful if r["state"] == "complete"]
        return next_space, limits, complete or useful

    def _stage_summary(self, ranked, alarms, next_space) -> dict:
        count = {s: sum(1 for r in ranked if r["state"] == s)
                 for s in ("complete", "pruned", "diverged", "failed")}
        best = ranked[0] if ranked else None
        return {"status": "done", "finished": time.time(), "counts": count,
                "epochs_trained": sum(r["epochs_trained"] for r in ranked),
                "best": {k: best[k] for k in ("trial", "val_acc", "params", "epochs")} if best else None,
                "alarms": [a["message"] for a in alarms], "next_space": next_space.to_dict()}

    def _replay(self, record: dict, limits: Space):
        """A stage finished before --resume: its results, as if it had just run."""
        import optuna

        study = optuna.load_study(study_name=record["study"], storage=self.storage)
        ranked = self._rank_stage(study, record["index"])
        stage_alarms = [a for a in self.alarms if a["stage"] == record["index"]]
        if self.search["auto_widen"] and stage_alarms:
            limits = widen_limits(limits, stage_alarms)
        useful = [r for r in ranked if r["state"] in ("complete", "pruned") and r["val_acc"] is not None]
        complete = [r for r in useful if r["state"] == "complete"]
        return Space.from_dict(record["next_space"]), limits, complete or useful

    # ------------------------------------------------------------------ records

    def _ranked_all(self) -> list[dict]:
        import optuna

        rows = []
        for record in self.records:
            study = optuna.load_study(study_name=record["study"], storage=self.storage)
            rows += [results.trial_record(t, record["index"]) for t in study.get_trials(deepcopy=False)
                     if not is_duplicate(t)]
        return results.rank(rows)

    def _write_stages(self) -> None:
        self.run_dir.write_json("search/stages.json", self.records)

    def _write_results(self) -> list[dict]:
        """Leaderboard and plots of every stage so far."""
        ranked = self._ranked_all()
        results.write_leaderboard(self.run_dir, ranked)
        spaces = [Space.from_dict(r["spec"]["space"]) for r in self.records]
        results.plot_scores_vs_params(self.run_dir, ranked, spaces)
        results.plot_learning_curves(self.run_dir, ranked)
        return ranked

    def _print_stage(self, spec: StageSpec, ranked: list[dict], alarms: list[dict]) -> None:
        record = self._recorded(spec.index)
        c = record["counts"]
        best = record["best"]
        lines = [f"stage {spec.index}/{len(self.stage_plans)} done: {c['complete']} complete, "
                 f"{c['pruned']} pruned, {c['diverged']} diverged, {c['failed']} failed; "
                 f"{record['epochs_trained']} epochs trained"]
        if best and best["val_acc"] is not None:
            scored = next((r for r in ranked if r["trial"] == best["trial"]), best)  # it has val_n
            lines.append(f"  best: trial {best['trial']} val acc {results.brief_accuracy(scored)}  "
                         + ", ".join(f"{k}={results.fmt(v)}" for k, v in best["params"].items()))
        lines += [f"  {line}" for line in summary_lines([record], finished=False)]
        lines += [f"  border alarm: {a['message']}" for a in alarms]
        lines += [f"  trial {r['trial']} failed: {r['error']}" for r in ranked if r.get("error")]
        print("\n".join(lines), file=sys.stderr)

    def _open_storage(self):
        from .storage import open_storage

        return open_storage(self.storage_url, grace_s=self.search["grace_period"])

    def search_study(self):
        import optuna

        return optuna.load_study(study_name=self.study_name, storage=self.storage)

    def _set_search_state(self, *, current, finished, create=False) -> None:
        """The search's own study tells workers that joined with its name which stage runs."""
        import optuna

        storage = getattr(self, "storage", None) or self._open_storage()
        self.storage = storage
        names = {s.study_name for s in storage.get_all_studies()}
        if create and self.study_name in names:
            raise UserError(f"study '{self.study_name}' already exists in {redact(self.storage_url)}: "
                            f"give another name (--study or search.study), or --resume the run")
        study = optuna.create_study(study_name=self.study_name, storage=storage, load_if_exists=True)
        if create:
            study.set_user_attr(fingerprint.ATTR, self.experiment)
        study.set_user_attr(SEARCH_ATTR, {"stages": [f"{self.study_name}.stage{i}"
                                                     for i in range(1, len(self.stage_plans) + 1)],
                                          "current": current, "finished": finished,
                                          "run_dir": str(self.run_dir.path)})

    def _result(self) -> SearchResult:
        ranked = self._write_results()
        best = next((r for r in ranked if r["state"] == "complete"), None)
        best_config = None
        if best is not None and self.objective is None:
            best_config = apply(self.config, best["params"])
            best_config["train"]["epochs"] = best["epochs"]
        return SearchResult(best_config=best_config, best_params=dict(best["params"]) if best else {},
                            best_value=best["val_acc"] if best else None, leaderboard=ranked,
                            alarms=self.alarms, run_dir=self.run_dir.path, stages=self.records)


class SearchLock:
    """One master per run directory: an exclusive ``flock`` on ``search/.lock``, held while the
    master runs. The kernel drops it with its holder, so a master killed with ``-9`` leaves
    no stale lock behind (a lock file with a pid in it would need guessing whether that pid
    is still the master)."""

    def __init__(self, fd: int):
        self.fd = fd

    @classmethod
    def take(cls, run_dir: RunDir) -> "SearchLock":
        import fcntl

        path = run_dir / "search/.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise UserError(f"another babysit search (pid {holder}) is running in {run_dir.path}: "
                            "wait for it to finish, or stop it before starting or resuming this one") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # for the message above; the lock is the flock
        return cls(fd)

    def release(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor drops the flock


class Supervisor:
    """Keeps `n` local worker processes alive for the whole search.

    The workers join the search's own study and follow it stage by stage (as workers on other
    machines do), so a process, its imports and its loaded data serve every stage.
    """

    def __init__(self, master: Master):
        self.master = master
        self.procs: list[subprocess.Popen | None] = []
        self.restarts = 0
        self.max_restarts = 3 * master.workers + 3
        self.next_stale_check = 0.0
        self.silent_workers = SilentWorkers(master.storage_url, master.search["grace_period"])

    def watch(self, study, spec: StageSpec) -> None:
        """Return when the stage's budget is spent and none of its trials still runs."""
        from tqdm.auto import tqdm

        m = self.master
        self.study, self.spec = study, spec
        bar = tqdm(total=spec.trials, desc=f"stage {spec.index}/{len(m.stage_plans)} ({spec.epochs} ep)",
                   unit="trial", file=sys.stderr, disable=m.quiet or None, dynamic_ncols=True)
        self.shown = None
        try:
            if not self.procs:
                shutil.rmtree(m.run_dir / "search/ready", ignore_errors=True)  # the workers' start line
                self.procs = [self._launch(slot) for slot in range(m.workers)]
            while True:
                self._tend()
                trials = study.get_trials(deepcopy=False)
                self._show(bar, trials)
                if not self._budget_left(trials) and not self._running(trials):
                    break
                time.sleep(POLL_S)
        finally:
            bar.close()

    def _budget_left(self, trials) -> bool:
        return has_waiting(trials) or budget_used(trials) < self.spec.trials

    def _running(self, trials) -> bool:
        from optuna.trial import TrialState

        return any(t.state == TrialState.RUNNING for t in trials)

    def _launch(self, slot: int) -> subprocess.Popen:
        m = self.master
        m.launches += 1
        # Every worker this search ever starts samples its own stream: the count of launches is
        # kept in the study, so a --resume does not start the seeds over (and redraw the
        # settings the first launch drew: a kill, a resume, and the same trials again).
        m.search_study().set_user_attr(LAUNCHES_ATTR, m.launches)
        threads = m.search["threads"] or max(1, (os.cpu_count() or 1) // m.workers)
        seed = m.config["seed"] * 100003 + m.launches
        (m.run_dir / "search/logs").mkdir(parents=True, exist_ok=True)
        log = open(m.run_dir / f"search/logs/worker-{slot}.log", "ab")
        src = str(Path(__file__).resolve().parents[2])  # so the child imports this same babysit
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, *m.import_paths,
                                                                           os.environ.get("PYTHONPATH")]))}
        cmd = [sys.executable, "-m", "babysit.cli", "worker", str(m.run_dir / "config.toml"),
               "--storage", m.storage_url, "--study", m.study_name, "--run-dir", str(m.run_dir.path),
               "--seed", str(seed), "--threads", str(threads), "--poll", "0.3", "--master-pid", str(os.getpid()),
               "--start-together", str(m.workers), "--quiet"]
        if m.objective:  # never from the run directory: see plugins.refuse_code_from
            cmd += ["--objective", m.objective]
        try:
            return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)  # Ctrl-C reaches the master only
        finally:
            log.close()

    def _tend(self) -> None:
        """Restart workers that died, after failing their trials and queueing retries. On the
        journal, also retry trials whose worker is gone without our noticing (killed between
        asking for a trial and saying who runs it, before a --resume, or on another machine:
        its heartbeat file stopped, see :mod:`.heartbeat`); on a database, trials whose
        heartbeat stopped."""
        for slot, proc in enumerate(self.procs):
            if proc is not None and proc.poll() is not None:
                self._bury(proc, slot)
                self.procs[slot] = self._launch(slot)
        if not is_database(self.master.storage_url):
            for frozen in orphaned(self.study.get_trials(deepcopy=False), all_local=True,
                                   silent=self.silent_workers.silent):
                fail_and_retry(self.study, frozen, "its worker was gone")
        elif time.monotonic() >= self.next_stale_check:
            self._fail_stale_trials()
        self.master._retry_interrupted(self.study)  # e.g. Ctrl-C on a worker of another machine

    def _fail_stale_trials(self) -> None:
        """On a database: fail the trials whose worker stopped beating its heartbeat for
        search.grace_period seconds, and queue their retries (the storage's callback). Optuna
        looks only when a worker asks for a trial, and once a stage's budget is taken (the
        dead worker's trial counts against it) none asks: the master must look."""
        import warnings

        import optuna

        self.next_stale_check = time.monotonic() + 1.0  # one query a second is plenty
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(self.study)

    def _bury(self, proc: subprocess.Popen, slot: int) -> None:
        tag = worker_tag(proc.pid)
        lost = orphaned(self.study.get_trials(deepcopy=False), {tag})
        for frozen in lost:
            fail_and_retry(self.study, frozen, f"worker {tag} died (exit {proc.returncode})")
        self.restarts += 1
        if not self.master.quiet:
            from tqdm.auto import tqdm

            tqdm.write(f"worker {slot} (pid {proc.pid}) died with exit code {proc.returncode}; "
                       f"{len(lost)} trial(s) queued again; restarting it", file=sys.stderr)
        if self.restarts > self.max_restarts:
            raise UserError(f"workers keep dying ({self.restarts} times): see "
                            f"{self.master.run_dir.path}/search/logs/worker-{slot}.log")

    def _show(self, bar, trials) -> None:
        """Trials done, the best so far and a one-line leaderboard (only redrawn on change)."""
        from optuna.trial import TrialState

        retried = retried_numbers(trials)
        finished = [t for t in trials if t.state.is_finished() and not is_duplicate(t)]
        done_count = sum(1 for t in finished if not (t.state == TrialState.FAIL and t.number in retried))
        ranked = results.rank([results.trial_record(t, self.spec.index) for t in finished])
        scored = [r for r in ranked if r["state"] in ("complete", "pruned") and r["val_acc"] is not None]
        running = sum(1 for t in trials if t.state == TrialState.RUNNING)
        line = f"running {running}"
        if scored:
            # Each accuracy with its 95% interval; the n once (the trials share the validation split).
            sizes = {r.get("val_n") for r in scored[:3]}
            one_n = len(sizes) == 1 and isinstance(next(iter(sizes)), int)
            leader = ", ".join(f"#{r['trial']} {results.brief_accuracy(r, n=not one_n)}" for r in scored[:3])
            params = ", ".join(f"{k.rsplit('.', 1)[-1]}={results.fmt(v)}" for k, v in scored[0]["params"].items())
            size = f" n={next(iter(sizes))}" if one_n else ""
            line = f"top: {leader}{size} | #{scored[0]['trial']}: {params} | {line}"
        if (done_count, line) != self.shown:
            self.shown = (done_count, line)
            bar.n = min(self.spec.trials, done_count)
            bar.set_postfix_str(line, refresh=False)
            bar.refresh()

    def stop(self, timeout_s: float = 15.0) -> None:
        """End the workers: they leave by themselves once the search is marked finished;
        otherwise (Ctrl-C, an error) SIGTERM marks their trials interrupted, then SIGKILL."""
        live = [p for p in self.procs if p is not None and p.poll() is None]
        finished = self.master.finished
        deadline = time.time() + (5.0 if finished else 0.0)
        while finished and time.time() < deadline and any(p.poll() is None for p in live):
            time.sleep(0.1)
        for p in live:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.time() + timeout_s
        for p in live:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        study = getattr(self, "study", None)
        if study is not None and live:
            for frozen in orphaned(study.get_trials(deepcopy=False), {worker_tag(p.pid) for p in live}):
                fail_and_retry(study, frozen, "its worker was stopped")
        self.procs = []
