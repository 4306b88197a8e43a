"""Workers sharing a study on a real PostgreSQL server (the many-machines storage).

Skips when no server answers on 127.0.0.1:5432, except with BABYSIT_REQUIRE_POSTGRES=1 (CI),
where a missing server is a failure.
"""

import os
import subprocess
import uuid

import optuna
import pytest

from babysit.config import to_toml
from babysit.search import run_search
from babysit.search.storage import delete_studies, open_storage

pytestmark = pytest.mark.slow

URLS = [os.environ.get("BABYSIT_POSTGRES_URL", ""), "postgresql://postgres@127.0.0.1:5432/test",
        "postgresql://root@127.0.0.1:5432/test"]


def reachable_url():
    import psycopg2

    errors = []
    for url in filter(None, URLS):
        try:
            psycopg2.connect(url, connect_timeout=3).close()
            return url
        except Exception as exc:  # refused, auth, missing database
            errors.append(f"{url}: {str(exc).strip().splitlines()[0]}")
    message = "no PostgreSQL server: " + "; ".join(errors)
    if os.environ.get("BABYSIT_REQUIRE_POSTGRES") == "1":
        pytest.fail(message + " (BABYSIT_REQUIRE_POSTGRES=1)")
    pytest.skip(message)


def test_workers_share_a_postgres_study(tmp_path, tiny_config, cli, cli_env):
    """Two local workers and one more that joins with `babysit worker` (as from another
    machine: its own run directory), all on one study in the database.

    Trials here take ~0.1 s, so who takes them is a race unless it is arranged: the search
    starts once the joiner is warm and waiting (its "waiting" line), so the joiner takes the
    first trials, and with --max-trials 3 it leaves the local workers at least half. (Uncapped,
    it once took all 6 on a CI machine; on a loaded one, started together, it took none.)"""
    url = reachable_url()
    name = f"babysit-test-{uuid.uuid4().hex[:10]}"
    config = tiny_config(stages=[{"trials": 6, "epochs": 1}], study=name)
    stages = [f"{name}.stage1"]
    (tmp_path / "exp.toml").write_text(to_toml(config))
    joiner = subprocess.Popen(cli("worker", str(tmp_path / "exp.toml"), "--storage", url, "--study", name,
                                  "--run-dir", str(tmp_path / "elsewhere"), "--wait", "120", "--poll", "0.2",
                                  "--max-trials", "3"),
                              env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "waiting up to 120 s for study" in joiner.stdout.readline()  # warm, the study not there yet
        result = run_search(config, tmp_path / "run", workers=2, quiet=True, storage=url)
        out, _ = joiner.communicate(timeout=60)  # it leaves after 3 trials, or when the search is finished
        assert joiner.returncode == 0 and "worker done" in out, out
        study = optuna.load_study(study_name=stages[0], storage=open_storage(url))
        trials = study.get_trials()
        assert 6 <= len(trials) <= 8 and all(t.state.name == "COMPLETE" for t in trials)
        assert len({t.user_attrs["worker"] for t in trials}) >= 2  # concurrent workers took trials
        assert result.best_value == max(t.value for t in trials)
        assert not (tmp_path / "run/search/study.journal").exists()  # the database held the study
        here = list((tmp_path / "run").glob("trials/*/epoch_001_val_*.pt"))
        there = list((tmp_path / "elsewhere").glob("trials/*/epoch_001_val_*.pt"))
        assert len(here) + len(there) == len(trials) and 1 <= len(there) <= 3
    finally:
        if joiner.poll() is None:
            joiner.kill()
        delete_studies(url, [name] + stages)
    assert name not in {s.study_name for s in open_storage(url).get_all_studies()}


def test_a_killed_extra_worker_does_not_hang_the_search(tmp_path, tiny_config, cli, cli_env):
    """kill -9 of a joined worker mid-trial: its trial stays RUNNING and takes the stage's last
    place in the budget, so no worker asks Optuna for another trial (where Optuna looks for
    stale trials). Old code: the search hung forever. Now the master finds the stale trial
    after search.grace_period (3 s here) and its retry continues from the dead trial's
    checkpoints (the run directory is shared, as on a cluster's file system)."""
    import signal
    import time

    url = reachable_url()
    name = f"babysit-test-{uuid.uuid4().hex[:10]}"
    config = tiny_config(stages=[{"trials": 2, "epochs": 8}], study=name, grace_period=3)
    config["data"]["limit"] = 0
    config["model"].update(width=64)
    config["train"]["batch_size"] = 16  # about 0.1-0.2 s an epoch on one thread: caught mid-trial
    config["search"]["space"] = {"optim.lr": {"low": 1e-3, "high": 3e-2, "log": True}}
    (tmp_path / "exp.toml").write_text(to_toml(config))
    run_dir = tmp_path / "run"
    joiner = subprocess.Popen(cli("worker", str(tmp_path / "exp.toml"), "--storage", url, "--study", name,
                                  "--run-dir", str(run_dir), "--wait", "120", "--poll", "0.2"),
                              env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    master = None
    try:
        assert "waiting up to 120 s for study" in joiner.stdout.readline()
        master = subprocess.Popen(cli("search", str(tmp_path / "exp.toml"), "--run-dir", str(run_dir),
                                      "--storage", url, "--workers", "1", "-q"),
                                  env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        tag = f":{joiner.pid}"
        deadline = time.time() + 120
        victim = None
        while victim is None and time.time() < deadline:
            try:
                trials = optuna.load_study(study_name=f"{name}.stage1", storage=open_storage(url)).get_trials()
            except KeyError:  # not created yet
                trials = []
            victim = next((t for t in trials if t.state.name == "RUNNING"
                           and t.user_attrs.get("worker", "").endswith(tag)
                           and list(run_dir.glob(f"trials/{t._trial_id}/epoch_*.pt"))), None)
            time.sleep(0.1)
        assert victim is not None, "the joined worker never ran a trial"
        joiner.send_signal(signal.SIGKILL)
        out, _ = master.communicate(timeout=150)  # old code: never returned
        assert master.returncode == 0, out
        trials = optuna.load_study(study_name=f"{name}.stage1", storage=open_storage(url)).get_trials()
        failed = next(t for t in trials if t.number == victim.number)
        assert failed.state.name == "FAIL"
        [retry] = [t for t in trials if t.user_attrs.get("retry_of") == victim.number]
        assert retry.state.name == "COMPLETE" and retry.user_attrs["continue_from"] == victim._trial_id
        assert retry.user_attrs["trained"]["epochs"] == 8 > retry.user_attrs["trained"]["epochs_trained"]
        assert sum(t.state.name == "COMPLETE" for t in trials) == 2
    finally:
        for proc in (joiner, master):
            if proc is not None and proc.poll() is None:
                proc.kill()
        delete_studies(url, [name, f"{name}.stage1"])
