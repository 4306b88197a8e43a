"""Trial bookkeeping: a stage's budget, and retrying the trials whose worker died.

Optuna's journal storage has no heartbeat, so a trial whose worker was killed (``kill -9``,
OOM, a lost machine) would stay RUNNING forever. Each trial records the worker that runs it
(``host:pid``); the master fails the trials of a worker it saw die and queues a retry with
the same hyperparameters. The retry continues from the dead trial's last checkpoint
(``continue_from``; where the dead trial had none, from the checkpoints it was itself to
continue from, ``continue_else``), so the epochs already trained are not lost. On a
database storage the heartbeat finds stale trials and calls :func:`retry_stale_trial`.
"""

from __future__ import annotations

import os
import socket

from ..processes import pid_alive

MAX_RETRIES = 2


def worker_tag(pid: int | None = None) -> str:
    return f"{socket.gethostname()}:{pid or os.getpid()}"


def trial_dir_id(frozen) -> int:
    """The trial's folder name under ``trials/``: Optuna's storage-wide trial id, unique across
    the stages' studies (trial numbers restart at 0 in every study)."""
    return frozen._trial_id


def retried_numbers(trials) -> set[int]:
    return {t.user_attrs["retry_of"] for t in trials if "retry_of" in t.user_attrs}


def is_duplicate(trial) -> bool:
    """A trial the worker skipped: the sampler drew a setting the study had already (see
    :meth:`babysit.search.worker.Worker.objective`)."""
    return "duplicate_of" in trial.user_attrs


def budget_used(trials) -> int:
    """Trials that count against a stage's budget: all but the failed ones that were retried
    (their retry counts instead) and the skipped duplicates. Duplicates are free only while
    they are fewer than the trials that count: a space with fewer settings than the budget
    (a few choices) ends its stage after at most twice the budget's draws, not never."""
    from optuna.trial import TrialState

    retried = retried_numbers(trials)
    duplicates = sum(1 for t in trials if is_duplicate(t))
    counted = sum(1 for t in trials if not (t.state == TrialState.FAIL and t.number in retried)
                  and not is_duplicate(t))
    return counted + max(0, duplicates - counted)


def duplicate_of(trial, params: dict, trials) -> int | None:
    """The number of another trial of the study with exactly these `params` (evaluated,
    running or queued), or None. Retries and carried settings repeat a setting on purpose and
    are not checked."""
    if "retry_of" in trial.user_attrs or "carried_from" in trial.user_attrs:
        return None
    for other in trials:
        if other.number != trial.number and not is_duplicate(other) and other.params == params:
            return other.number
    return None


def has_waiting(trials) -> bool:
    from optuna.trial import TrialState

    return any(t.state == TrialState.WAITING for t in trials)


def retry(study, frozen, reason: str) -> bool:
    """Queue `frozen` (a failed trial) again, continuing from its checkpoints. False when it
    was already retried MAX_RETRIES times (then it stays failed)."""
    attempts = int(frozen.user_attrs.get("attempt", 1))
    if attempts > MAX_RETRIES or frozen.number in retried_numbers(study.get_trials(deepcopy=False)):
        return False
    keep = {k: v for k, v in frozen.user_attrs.items()
            if k in ("carried_from", "stage")}
    study.enqueue_trial(frozen.params, user_attrs={
        **keep, "retry_of": frozen.number, "continue_from": trial_dir_id(frozen),
        "continue_else": sources(frozen), "attempt": attempts + 1, "retry_reason": reason},
        skip_if_exists=False)
    return True


def sources(trial) -> list[int]:
    """The folders a trial continued from, newest first: where its retry continues when the
    trial died before it had a checkpoint of its own (or had copied its source's)."""
    source = trial.user_attrs.get("continue_from")
    return [] if source is None else [source, *trial.user_attrs.get("continue_else", [])]


def fail_and_retry(study, frozen, reason: str) -> bool:
    """Mark a RUNNING trial failed (its worker is gone) and queue its retry."""
    from optuna.trial import TrialState

    # A finished trial takes no more attributes: the retry records the reason.
    study._storage.set_trial_state_values(frozen._trial_id, TrialState.FAIL)
    return retry(study, frozen, reason)


def retry_stale_trial(study, frozen) -> None:
    """Heartbeat callback of the database storage: a trial whose worker went silent."""
    retry(study, frozen, "heartbeat stopped")



def orphaned(trials, dead_tags: set[str] | None = None, *, all_local: bool = False,
             untagged_after_s: float = 30.0, silent=None) -> list:
    """RUNNING trials whose worker is gone: its tag is in `dead_tags`, or (with `all_local`) it
    ran on this host in a process that no longer exists, or it never said which worker runs it
    although it started `untagged_after_s` ago (a worker tags a trial right after asking), or
    it ran on another host and `silent(tag)` says its heartbeat stopped."""
    import datetime

    from optuna.trial import TrialState

    host = socket.gethostname()
    now = datetime.datetime.now()
    found = []
    for t in trials:
        if t.state != TrialState.RUNNING:
            continue
        tag = t.user_attrs.get("worker")
        if dead_tags and tag in dead_tags:
            found.append(t)
        elif all_local and tag is None:
            if t.datetime_start is None or (now - t.datetime_start).total_seconds() > untagged_after_s:
                found.append(t)
        elif all_local and tag.rsplit(":", 1)[0] == host and not pid_alive(int(tag.rsplit(":", 1)[1])):
            found.append(t)
        elif silent is not None and tag and tag.rsplit(":", 1)[0] != host and silent(tag):
            found.append(t)
    return found
