"""Crashes lose nothing: kill -9 a worker (the master retries its trial from its checkpoints),
then kill -9 the whole search and finish it with --resume."""

import os
import signal
import subprocess

import optuna
import pytest

from babysit.config import to_toml
from babysit.rundir import list_checkpoints
from babysit.search.retry import retried_numbers
from babysit.search.storage import default_storage, open_storage
from tests.search.processes import kill_with_workers, wait_for

pytestmark = pytest.mark.slow

TRIALS, EPOCHS = 4, 10  # a fourth trial starts fresh after the retry: one to catch early


def stage_trials(run_dir):
    if not (run_dir / "search" / "study.journal").exists():
        return []  # opening the storage would make it, and the run directory is the master's to make
    try:
        return optuna.load_study(study_name="default.stage1",
                                 storage=open_storage(default_storage(run_dir))).get_trials()
    except KeyError:  # the master has not created the stage yet
        return []


def running_with_checkpoint(run_dir, epochs_left=1):
    """A running trial with a checkpoint and at least `epochs_left` epochs still to train (so
    that a kill sent now still finds it running: each look at the journal takes a while)."""
    for t in stage_trials(run_dir):
        if t.state.name == "RUNNING" and "worker" in t.user_attrs and 0 < len(list_checkpoints(
                run_dir / f"trials/{t._trial_id}")) <= EPOCHS - epochs_left:
            return t
    return None


def start_search(tmp_path, tiny_config, cli, cli_env, *, trials, epochs, dropout=None):
    """`babysit search` with 2 workers in a process of its own, on trials slow enough (batches
    of 16 from all the data, about 0.2 s an epoch) to be caught mid-trial; run dir tmp_path/run."""
    config = tiny_config(stages=[{"trials": trials, "epochs": epochs}])
    config["data"]["limit"] = 0
    config["model"].update(width=64)
    config["train"]["batch_size"] = 16
    config["search"]["space"] = {"optim.lr": {"low": 1e-3, "high": 3e-2, "log": True}}
    if dropout:
        config["search"]["space"]["model.dropout"] = dropout
    path = tmp_path / "exp.toml"
    path.write_text(to_toml(config))
    return subprocess.Popen(cli("search", str(path), "--run-dir", str(tmp_path / "run"), "--workers", "2", "-q"),
                            env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_kill_worker_then_kill_search_then_resume(tmp_path, tiny_config, cli, cli_env):
    run_dir = tmp_path / "run"
    master = start_search(tmp_path, tiny_config, cli, cli_env, trials=TRIALS, epochs=EPOCHS)
    try:
        # 1. kill -9 one worker in the middle of a trial: the master retries that trial
        victim = wait_for(lambda: running_with_checkpoint(run_dir), what="a trial with a checkpoint")
        os.kill(int(victim.user_attrs["worker"].rsplit(":", 1)[1]), signal.SIGKILL)
        retry = wait_for(lambda: [t for t in stage_trials(run_dir)
                                  if t.user_attrs.get("retry_of") == victim.number], what="the retry")
        assert retry[0].user_attrs["continue_from"] == victim._trial_id

        # 2. kill -9 the master and its workers while trials run
        wait_for(lambda: running_with_checkpoint(run_dir, epochs_left=4), what="another running trial")
        kill_with_workers(master)
    finally:
        if master.poll() is None:
            master.kill()
    assert any(t.state.name == "RUNNING" for t in stage_trials(run_dir))  # left behind by the crash

    # 3. --resume finishes the search; the orphaned trials are retried from their checkpoints
    done = subprocess.run(cli("search", "--resume", str(run_dir), "--workers", "2", "-q"),
                          env=cli_env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    trials = stage_trials(run_dir)
    states = [t.state.name for t in trials]
    assert "RUNNING" not in states and "WAITING" not in states
    failed = {t.number for t in trials if t.state.name == "FAIL"}
    assert failed and failed <= retried_numbers(trials)  # every lost trial was run again
    assert states.count("COMPLETE") == TRIALS  # the whole budget, nothing lost
    for t in trials:
        if t.state.name == "COMPLETE":
            assert t.user_attrs["trained"]["epochs"] == EPOCHS
            names = [p.name for p in list_checkpoints(run_dir / f"trials/{t._trial_id}")]
            assert names == sorted(names) and len(names) == EPOCHS
    # the retries continued: they trained fewer epochs than a fresh trial would
    continued = [t for t in trials if t.state.name == "COMPLETE" and "continue_from" in t.user_attrs]
    assert continued and any(t.user_attrs["trained"]["epochs_trained"] < EPOCHS for t in continued)
    assert not list(run_dir.glob("trials/*/.*.tmp"))
    assert (run_dir / "search/leaderboard.json").is_file()


def test_a_second_master_is_refused_and_a_resume_after_a_kill_draws_new_settings(
        tmp_path, tiny_config, cli, cli_env, capsys):
    """Old code: a second master ran on the same run directory, and after kill -9 and
    --resume the workers' seeds started over: the stage trained its first settings again."""
    from babysit.cli import main

    run_dir = tmp_path / "run"
    master = start_search(tmp_path, tiny_config, cli, cli_env, trials=8, epochs=3,
                          dropout={"low": 0.0, "high": 0.5})
    try:
        wait_for(lambda: sum(t.state.name == "COMPLETE" for t in stage_trials(run_dir)) >= 2,
                 what="two complete trials")
        capsys.readouterr()
        assert main(["search", "--resume", str(run_dir), "-q"]) == 2  # the first master holds the lock
        refusal = capsys.readouterr().err
        assert f"another babysit search (pid {master.pid}) is running in {run_dir}" in refusal
        kill_with_workers(master)
    finally:
        if master.poll() is None:
            master.kill()
    # the kill dropped the lock with its holder: the resume runs
    done = subprocess.run(cli("search", "--resume", str(run_dir), "--workers", "2", "-q"),
                          env=cli_env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    trials = stage_trials(run_dir)
    drawn = [tuple(sorted(t.params.items())) for t in trials if t.params and "retry_of" not in t.user_attrs]
    assert len(drawn) >= 8 and len(set(drawn)) == len(drawn)  # no setting drawn twice
    assert not any("duplicate_of" in t.user_attrs for t in trials)  # the seeds did not repeat
    assert sum(t.state.name == "COMPLETE" for t in trials) == 8
