"""A worker: the notes' loop "sample hyperparameters, train, track validation, checkpoint".

One worker is one process. It joins a stage's study, and until the stage's budget is spent it
asks the study for a trial (the sampler picks the hyperparameters), trains it with
:func:`babysit.experiment.train` into ``trials/<id>/`` of the run directory (one checkpoint per
epoch, named with its validation score: ``trials/12/epoch_003_val_0.8731.pt``, plus
``metrics.jsonl`` and ``config.toml``), and reports every epoch's validation accuracy to the
study, which may prune it. The trial's value is its best validation accuracy.

Divergence is pruned at once: ``fit`` stops on a NaN or exploding loss, and the trial ends
PRUNED with the reason in ``diverged``. Laggards are pruned by the study's pruner.

A worker given a user's objective (:mod:`.objective`) runs that function as the trial instead
of the config's experiment; everything else (sampling, duplicates, retries, pruning) is the same.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from contextlib import nullcontext
from pathlib import Path

from ..config import to_toml
from ..errors import UserError
from ..rundir import RunDir, checkpoint_epoch, list_checkpoints, read_jsonl
from .. import experiment
from ..train import Callback, TrainState, take_steps
from ..processes import pid_alive
from .fingerprint import check_same_experiment
from .objective import Objective, run_trial
from .retry import budget_used, duplicate_of, has_waiting, sources, worker_tag
from .samplers import make_pruner, make_sampler
from .space import Space, apply

STAGE_ATTR = "babysit_stage"  # on a stage's study: what to search (see stages.StageSpec)
SEARCH_ATTR = "babysit_search"  # on the search's own study: which stage runs, for joining workers


class DuplicateSetting(Exception):
    """Raised for a trial whose setting the study has evaluated already: it ends failed, with
    ``duplicate_of``, and trains nothing."""


class ReportToStudy(Callback):
    """Report each epoch's validation accuracy to the trial; stop when the pruner says so."""

    def __init__(self, trial):
        self.trial = trial

    def on_epoch_end(self, state: TrainState) -> None:
        val_acc = state.logs["val_acc"]
        self.trial.report(val_acc, state.epoch)
        if not state.stop_reason and self.trial.should_prune():
            state.stop(f"pruned at epoch {state.epoch} (behind the other trials)")


class Worker:
    """Runs trials of one stage's study until its budget is spent."""

    def __init__(self, config: dict, study, run_dir: RunDir, master_pid: int | None = None,
                 objective: Objective | None = None):
        self.config, self.study, self.run_dir = config, study, run_dir
        self.master_pid, self.user_objective = master_pid, objective
        self.spec = study.user_attrs[STAGE_ATTR]
        self.space = Space.from_dict(self.spec["space"])

    def orphaned(self) -> bool:
        """The master that started this worker is gone (killed): leave rather than run on."""
        return self.master_pid is not None and not pid_alive(self.master_pid)

    def budget_left(self) -> bool:
        trials = self.study.get_trials(deepcopy=False)
        return has_waiting(trials) or budget_used(trials) < self.spec["trials"]

    def run(self, max_trials: int | None = None) -> int:
        done = 0
        while self.budget_left() and (max_trials is None or done < max_trials) and not self.orphaned():
            if self.spec["sampler"] == "grid" and self.study.sampler.is_exhausted(self.study) \
                    and not has_waiting(self.study.get_trials(deepcopy=False)):
                break
            self.study.optimize(self.objective, n_trials=1, catch=(UserError, DuplicateSetting),
                                gc_after_trial=False)
            done += 1
        return done

    def objective(self, trial) -> float:
        import optuna

        # First: the master finds the trials of dead workers by this. (Every attribute is one
        # locked, fsynced journal write, so a trial sets few: its folder is trials/<id>.)
        trial.set_user_attr("worker", worker_tag())
        tid = trial._trial_id
        params = self.space.suggest(trial)
        earlier = duplicate_of(trial, trial.params, self.study.get_trials(deepcopy=False))
        if earlier is not None:  # e.g. a grid, or few choices: the study has the answer already
            trial.set_user_attr("duplicate_of", earlier)
            raise DuplicateSetting(f"trial {trial.number} drew the setting of trial {earlier}: skipped")
        if self.user_objective is not None:
            return run_trial(trial, self.user_objective, params, self.spec["epochs"], self.run_dir)
        config = apply(self.config, params)
        config["train"]["epochs"] = self.spec["epochs"]
        config["train"]["checkpoints"] = True  # the notes' worker: a checkpoint every epoch
        config["name"] = f"{self.config['name']}-trial{tid}"
        trial_dir = self.run_dir / f"trials/{tid}"
        resumed = continue_from(self.run_dir, sources(trial), trial_dir, config, self.spec["epochs"])
        for record in read_jsonl(trial_dir / "metrics.jsonl") if resumed else []:
            trial.report(record["val_acc"], record["epoch"])  # the epochs it inherited
        from .. import experiment

        started = time.perf_counter()
        try:
            exp, state = experiment.train(config, trial_dir, callbacks=[ReportToStudy(trial)], quiet=True,
                                        checkpoint_dir=trial_dir, resume=resumed)
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)  # the master queues it again on --resume
            raise
        records = read_jsonl(trial_dir / "metrics.jsonl")
        trial.set_user_attr("trained", {"epochs": len(records), "epochs_trained": len(state.history),
                                        "seconds": round(time.perf_counter() - started, 3),
                                        "val_n": len(exp.data.y_val)})  # for the accuracy's interval
        best = max((r["val_acc"] for r in records if isinstance(r.get("val_acc"), float)), default=0.0)
        if state.stop_reason and "loss" in state.stop_reason:
            trial.set_user_attr("diverged", state.stop_reason)
            raise optuna.TrialPruned(state.stop_reason)
        if state.stop_reason and state.stop_reason.startswith("pruned"):
            trial.set_user_attr("pruned", state.stop_reason)
            raise optuna.TrialPruned(state.stop_reason)
        return best


def continue_from(run_dir: RunDir, source_ids: list[int], trial_dir: Path, config: dict, epochs: int) -> bool:
    """Start `trial_dir` from the checkpoints of the first trial in `source_ids` that has any
    (a retry of a killed trial, or a setting carried into a longer stage; a retry's sources
    go back along the retries that died before their first checkpoint). Returns whether
    training resumes from them."""
    for source_id in source_ids:
        source = run_dir / f"trials/{source_id}"
        remove_partial_files(source)  # its writer is gone: a temp file it left is garbage
        checkpoints = list_checkpoints(source)
        if checkpoints:
            break
    else:
        return False  # nothing to continue
    if checkpoint_epoch(checkpoints[-1]) > epochs:
        return False  # it already trained longer than this stage
    trial_dir.mkdir(parents=True, exist_ok=True)
    for path in checkpoints:
        link_or_copy(path, trial_dir / path.name)
    # A kill between an epoch's checkpoint and its metrics line leaves the line out (or the
    # whole file, after the first epoch): resuming mends it from the checkpoint.
    if (source / "metrics.jsonl").exists():
        shutil.copyfile(source / "metrics.jsonl", trial_dir / "metrics.jsonl")
    RunDir(trial_dir).write_text("config.toml", to_toml(config))
    return True


def remove_partial_files(folder: Path) -> None:
    """Delete the temp files of writes a kill -9 cut short (the renamed files are whole)."""
    for path in Path(folder).glob(".*.tmp"):
        path.unlink(missing_ok=True)


def link_or_copy(src: Path, dst: Path) -> None:
    """Checkpoints are never modified after they are written, so a hard link is a safe copy."""
    if dst.exists():
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def stop_on_sigterm() -> None:
    """The master ends workers with SIGTERM: turn it into KeyboardInterrupt, so the running
    trial is marked failed-and-interrupted and retried on --resume."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)


def run_worker(config: dict, storage: str, study_name: str, run_dir, *, seed: int | None = None,
               threads: int | None = None, max_trials: int | None = None, poll_s: float = 1.0,
               master_pid: int | None = None, wait_s: float = 0.0, start_together: int = 0,
               on_wait=None, objective: str | None = None) -> int:
    """Join `study_name` in `storage` and run trials; returns how many.

    `study_name` is a stage's study, or the search's own study name: then the worker follows
    the search from stage to stage until the master marks it finished (how workers on other
    machines join with ``babysit worker CONFIG --storage URL --study NAME``). A worker started
    by a local master (`master_pid`) leaves when that master dies; one that joined leaves when
    nothing has changed for ``search.idle_timeout`` seconds, and says through `on_wait` what it
    waits for. With `wait_s`, a worker started before the master waits that long for the study
    to appear, warm, and calls `on_wait(message)` once if it has to wait. With
    `start_together`, the master's local workers wait for each other after warming up
    (:func:`wait_for_peers`). A config whose experiment differs from the search's is refused
    (:mod:`.fingerprint`). With `objective` (``package.module:function``), trials run that
    user's function (:mod:`.objective`).
    """
    import optuna
    import torch

    from .heartbeat import beating
    from .storage import heartbeat_interval, is_database, open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if threads:
        torch.set_num_threads(threads)
    user = Objective.load(objective) if objective else None  # importing it is its warm-up
    if user is None:
        warm_up(config)
    if start_together > 1:
        wait_for_peers(RunDir(run_dir) / "search/ready", start_together)
    store = open_storage(storage, grace_s=config["search"]["grace_period"])
    attrs = _study_attrs(store, study_name, storage, wait_s, poll_s, on_wait)
    check_same_experiment(attrs, config, study_name, _config_fix(attrs), objective)
    run_dir = RunDir(run_dir)
    # On a journal shared with other machines, the master hears this worker by its heartbeat
    # file; a database keeps the heartbeats itself.
    interval = heartbeat_interval(config["search"]["grace_period"])
    with nullcontext() if is_database(storage) else beating(storage, worker_tag(), interval):
        if STAGE_ATTR in attrs:
            return _stage_worker(config, store, study_name, run_dir, seed, master_pid, user).run(max_trials)
        return follow_search(config, store, study_name, run_dir, seed=seed, max_trials=max_trials,
                             poll_s=poll_s, master_pid=master_pid, on_wait=on_wait, objective=user)


def follow_search(config, store, study_name, run_dir, *, seed, max_trials, poll_s, master_pid, on_wait,
                  objective=None) -> int:
    """Run trials of the search's current stage, stage after stage, until it is finished."""
    import optuna

    done, workers = 0, {}
    # A local master's workers live as long as it does; a worker that joined from elsewhere
    # leaves once nothing has happened for search.idle_timeout (its master may be dead).
    idle = IdleWatch(None if master_pid else config["search"]["idle_timeout"], on_wait)
    while master_pid is None or pid_alive(master_pid):
        state = optuna.load_study(study_name=study_name, storage=store).user_attrs[SEARCH_ATTR]
        current = state.get("current")
        if current and current not in workers:
            workers[current] = _stage_worker(config, store, current, run_dir, seed, master_pid, objective)
        if current and workers[current].budget_left():
            done += workers[current].run(max_trials and max_trials - done)
            idle.reset()
            if max_trials is not None and done >= max_trials:
                return done
        elif state.get("finished"):
            return done
        else:  # the master is between stages, or other workers finish this one
            trials = workers[current].study.get_trials(deepcopy=False) if current else []
            if idle.expired(_waiting_for(study_name, current, trials), _progress(state, trials)):
                return done
            time.sleep(poll_s)
    return done


class IdleWatch:
    """Says what a waiting worker waits for (each time that changes), and tells it to leave
    once its study has not changed for `timeout_s` seconds (None or 0: never)."""

    def __init__(self, timeout_s: float | None, say=None):
        self.timeout_s, self.say = timeout_s, say or (lambda message: None)
        self.reset()

    def reset(self) -> None:
        self.seen, self.said, self.since = None, None, time.monotonic()

    def expired(self, waiting_for: str, progress) -> bool:
        if progress != self.seen:
            self.seen, self.since = progress, time.monotonic()
        if waiting_for != self.said:
            self.said = waiting_for
            limit = f" (leaving after {self.timeout_s:g} s without a change)" if self.timeout_s else ""
            self.say(f"waiting for {waiting_for}{limit}")
        if self.timeout_s and time.monotonic() - self.since >= self.timeout_s:
            self.say(f"leaving: nothing changed in the study for {self.timeout_s:g} s (search.idle_timeout); "
                     "if its master died, resume the search with babysit search --resume RUN_DIR "
                     "and start this worker again")
            return True
        return False


def _waiting_for(study_name: str, current: str | None, trials) -> str:
    from optuna.trial import TrialState

    if current is None:
        return f"the master of study {study_name!r} to start its next stage"
    running = sum(1 for t in trials if t.state == TrialState.RUNNING)
    return f"{running} trial(s) of {current!r} still running on other workers"


def _progress(state: dict, trials) -> tuple:
    """What changes while a search makes progress: its stage, and each trial's state and epochs."""
    return (state.get("current"), state.get("finished"),
            tuple((t.number, t.state, len(t.intermediate_values)) for t in trials))


def warm_up(config: dict):
    """Pay this process's one-time costs before asking for a trial, so no trial is charged
    for them: loading the data (kept for every later trial), PyTorch's lazy imports on the
    first optimizer (~2-4 s: torch._dynamo) and its first forward and backward pass.

    Without it the first trial of every worker ran several seconds longer than the others:
    its recorded duration misled, and a search with more workers paid it once per worker.
    The step is taken as every training takes it (a closure where the update rule needs
    one); returns the experiment it warmed up on.
    """
    exp = experiment.build(config)
    take_steps(exp.model, exp.optimizer, lambda xb, yb: exp.loss_fn(exp.model(xb), yb),
               exp.data.x_train, exp.data.y_train, steps=1,
               batch_size=config["train"]["batch_size"], seed=config["seed"])
    return exp


def wait_for_peers(ready: Path, peers: int, timeout_s: float = 30.0, poll_s: float = 0.02) -> None:
    """Mark this worker ready in the folder `ready`, then wait (up to `timeout_s`) until
    `peers` workers are. Processes started together do not finish starting together (imports,
    the data, a first pass: seconds, more on a cold disk), and a quick stage could otherwise
    be over before the last one asks for a trial. A restarted worker finds the others marked
    already and goes on at once."""
    ready.mkdir(parents=True, exist_ok=True)
    (ready / str(os.getpid())).touch()
    deadline = time.monotonic() + timeout_s
    while sum(1 for _ in ready.iterdir()) < peers and time.monotonic() < deadline:
        time.sleep(poll_s)


def _study_attrs(store, study_name: str, storage: str, wait_s: float, poll_s: float, on_wait=None) -> dict:
    """The user attributes of `study_name`, once the master has written them."""
    from .storage import redact

    deadline = time.time() + wait_s
    while True:
        found = {s.study_name: s for s in store.get_all_studies()}.get(study_name)
        attrs = found.user_attrs if found else {}
        if STAGE_ATTR in attrs or SEARCH_ATTR in attrs:
            return attrs
        if time.time() >= deadline:
            break
        if on_wait:
            on_wait(f"waiting up to {wait_s:g} s for study {study_name!r} in {redact(storage)}")
            on_wait = None  # said once
        time.sleep(poll_s)
    if found is None:
        raise UserError(f"no study named {study_name!r} in {redact(storage)}: start the search with "
                        "babysit search (or give --wait SECONDS), and give its study name")
    raise UserError(f"study {study_name!r} was not made by babysit search: give the study "
                    "name that babysit search printed")


def _config_fix(attrs: dict) -> str:
    where = attrs.get(SEARCH_ATTR, {}).get("run_dir")
    return (f"start the worker with the search's config ({where}/config.toml on the master's machine)"
            if where else "start the worker with the config the search was started with")


def _stage_worker(config, store, study_name, run_dir, seed, master_pid=None, objective=None) -> Worker:
    import optuna

    attrs = optuna.load_study(study_name=study_name, storage=store).user_attrs
    check_same_experiment(attrs, config, study_name, _config_fix(attrs),
                          objective.reference if objective else None)
    spec = attrs[STAGE_ATTR]
    space = Space.from_dict(spec["space"])
    seed = None if seed is None else seed + 7919 * spec["index"]  # a fresh stream per stage
    sampler = make_sampler(spec["sampler"], space, seed=seed, grid_points=spec.get("grid_points", 4))
    study = optuna.load_study(study_name=study_name, storage=store, sampler=sampler,
                              pruner=make_pruner(spec["pruner"], spec["epochs"]))
    return Worker(config, study, run_dir, master_pid, objective)
