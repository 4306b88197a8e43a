"""A worker on its own: diverging trials are pruned at once, laggards by the median rule."""

import subprocess

import optuna
import pytest

from babysit.rundir import list_checkpoints, read_jsonl
from babysit.search.space import Param, Space
from babysit.search.stages import StageSpec
from babysit.search.storage import default_storage, open_storage
from babysit.search.worker import STAGE_ATTR, run_worker


def make_stage(run_dir, space, *, trials, epochs, pruner="none", queue=()):
    url = default_storage(run_dir)
    spec = StageSpec(index=1, trials=trials, epochs=epochs, space=space.to_dict(), sampler="random",
                     pruner=pruner, study="t.stage1")
    study = optuna.create_study(study_name=spec.study, storage=open_storage(url), direction="maximize")
    study.set_user_attr(STAGE_ATTR, spec.to_dict())
    for params in queue:
        study.enqueue_trial(params)
    return url, spec.study


def trials_of(url, name):
    return optuna.load_study(study_name=name, storage=open_storage(url)).get_trials()


def test_a_diverging_trial_is_pruned_after_its_first_epoch(tmp_path, tiny_config):
    config = tiny_config()
    space = Space([Param("optim.lr", 500.0, 1000.0, log=True)])  # SGD with lr 500+: the loss explodes at once
    url, name = make_stage(tmp_path, space, trials=1, epochs=5)
    assert run_worker(config, url, name, tmp_path, seed=0) == 1
    [trial] = trials_of(url, name)
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert "loss" in trial.user_attrs["diverged"]  # "nonfinite loss" or "loss exploded (...)"
    assert trial.user_attrs["trained"]["epochs"] == 1  # stopped at once, not after 5 epochs
    assert len(list_checkpoints(tmp_path / f"trials/{trial._trial_id}")) <= 1


def test_the_median_pruner_stops_a_lagging_trial(tmp_path, tiny_config):
    config = tiny_config()
    space = Space([Param("optim.lr", 1e-7, 0.5, log=True)])
    good = [{"optim.lr": lr} for lr in (0.05, 0.08, 0.1, 0.12)]
    url, name = make_stage(tmp_path, space, trials=5, epochs=4, pruner="median",
                           queue=good + [{"optim.lr": 1e-7}])  # far too small: it cannot keep up
    run_worker(config, url, name, tmp_path, seed=0)
    trials = trials_of(url, name)
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4 + ["PRUNED"]
    laggard = trials[-1]
    assert laggard.user_attrs["pruned"].startswith("pruned at epoch 1")
    records = read_jsonl(tmp_path / f"trials/{laggard._trial_id}/metrics.jsonl")
    assert len(records) == 1 < 4  # three epochs saved


def test_a_trial_killed_between_its_checkpoint_and_its_metrics_line_is_continued(tmp_path, tiny_config):
    """The checkpoint is written before the epoch's metrics line: a retry continues from it
    even when the kill came in between (the resumed run mends the line from the checkpoint)."""
    from babysit import experiment
    from babysit.rundir import RunDir
    from babysit.search.worker import continue_from

    config = tiny_config()
    config["train"].update(epochs=1, checkpoints=True)
    source = tmp_path / "trials/1"
    experiment.train(config, source, quiet=True, checkpoint_dir=source)
    (source / "metrics.jsonl").unlink()  # killed after the first checkpoint, before its line
    config["train"]["epochs"] = 2
    target = tmp_path / "trials/2"
    assert continue_from(RunDir(tmp_path), [1], target, config, 2)
    _, state = experiment.train(config, target, quiet=True, checkpoint_dir=target, resume=True)
    assert len(state.history) == 1  # one epoch trained, one inherited
    assert [r["epoch"] for r in read_jsonl(target / "metrics.jsonl")] == [1, 2]
    assert [p.name.split("_")[1] for p in list_checkpoints(target)] == ["001", "002"]


def test_a_retry_of_a_retry_that_died_before_its_first_checkpoint_continues_further_back(tmp_path, tiny_config):
    """Trial 1 trained an epoch and died; its retry 2 died before it copied trial 1's
    checkpoint (no folder at all); retry 3 continues from trial 1."""
    from babysit import experiment
    from babysit.rundir import RunDir
    from babysit.search.retry import retry, sources
    from babysit.search.worker import continue_from

    config = tiny_config()
    config["train"].update(epochs=1, checkpoints=True)
    experiment.train(config, tmp_path / "trials/1", quiet=True, checkpoint_dir=tmp_path / "trials/1")
    retry_2 = optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, user_attrs={"continue_from": 1})
    retry_3 = optuna.trial.create_trial(state=optuna.trial.TrialState.WAITING,
                                        user_attrs={"continue_from": 2, "continue_else": sources(retry_2)})
    assert sources(retry_3) == [2, 1]
    assert continue_from(RunDir(tmp_path), sources(retry_3), tmp_path / "trials/3", config, 2)
    assert [p.name.split("_")[1] for p in list_checkpoints(tmp_path / "trials/3")] == ["001"]
    assert not continue_from(RunDir(tmp_path), [2], tmp_path / "trials/4", config, 2)  # nothing further back
    study = optuna.create_study()
    study.add_trial(retry_2)
    assert retry(study, study.get_trials()[0], "its worker was gone")
    assert study.get_trials()[-1].user_attrs["continue_else"] == [1]


def test_a_drawn_duplicate_is_skipped_and_a_small_space_ends_its_stage(tmp_path, tiny_config):
    """Two settings, a budget of 4: each is trained once; the repeats the sampler draws train
    nothing, and the stage still ends (duplicates count once they outnumber the real trials)."""
    from babysit.search.retry import budget_used

    config = tiny_config()
    space = Space([Param("optim.name", choices=("sgd", "adam"))])
    url, name = make_stage(tmp_path, space, trials=4, epochs=1)
    run_worker(config, url, name, tmp_path, seed=0)
    trials = trials_of(url, name)
    trained = [t for t in trials if "duplicate_of" not in t.user_attrs]
    assert sorted(t.params["optim.name"] for t in trained) == ["adam", "sgd"]
    assert all(t.state.name == "COMPLETE" for t in trained)
    skipped = [t for t in trials if "duplicate_of" in t.user_attrs]
    assert skipped and all(t.state.name == "FAIL" for t in skipped)
    assert all(not (tmp_path / f"trials/{t._trial_id}").exists() for t in skipped)
    assert budget_used(trials) >= 4 and len(trials) <= 2 * 4


@pytest.mark.parametrize("stage_state, waits_for", [
    ("between stages", "the master of study 's' to start its next stage"),
    ("a trial left running", "1 trial(s) of 't.stage1' still running on other workers"),
])
def test_a_joined_worker_says_what_it_waits_for_and_leaves_when_nothing_changes(
        tmp_path, tiny_config, cli, cli_env, stage_state, waits_for):
    """The master died (between stages, or with a dead worker's trial still RUNNING and the
    stage's budget taken): old workers polled forever without a word."""
    from babysit.config import load_config, to_toml
    from babysit.search import fingerprint
    from babysit.search.worker import SEARCH_ATTR

    config = tiny_config()
    config["search"]["idle_timeout"] = 2
    (tmp_path / "exp.toml").write_text(to_toml(config))
    url, stage = make_stage(tmp_path, Space([Param("optim.lr", 0.01, 0.1, log=True)]), trials=1, epochs=1)
    storage = open_storage(url)
    current = None
    if stage_state == "a trial left running":
        optuna.load_study(study_name=stage, storage=storage).ask()  # RUNNING, its worker gone
        current = stage
    search = optuna.create_study(study_name="s", storage=storage)
    search.set_user_attr(fingerprint.ATTR, fingerprint.record(load_config(tmp_path / "exp.toml")))
    search.set_user_attr(SEARCH_ATTR, {"stages": [stage], "current": current, "finished": False,
                                       "run_dir": str(tmp_path)})
    done = subprocess.run(cli("worker", str(tmp_path / "exp.toml"), "--storage", url, "--study", "s",
                              "--run-dir", str(tmp_path), "--poll", "0.2"),
                          env=cli_env, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"waiting for {waits_for} (leaving after 2 s without a change)"
    assert lines[1].startswith("leaving: nothing changed in the study for 2 s")


def test_the_master_finds_a_silent_worker_on_another_machine_by_its_heartbeat_file(tmp_path):
    """On the journal, a worker on another host cannot be asked whether it lives: while its
    heartbeat file changes its trial is left alone; once it stops for the grace period, the
    trial is found orphaned (and the master retries it). Old code: never found."""
    import time

    from babysit.search.heartbeat import SilentWorkers, beating, heartbeat_dir
    from babysit.search.retry import orphaned

    journal = tmp_path / "study.journal"
    study = optuna.create_study(storage=open_storage(str(journal)))
    trial = study.ask()
    trial.set_user_attr("worker", "elsewhere:4242")  # a worker on another machine
    watch = SilentWorkers(journal, grace_s=0.5)
    with beating(journal, "elsewhere:4242", 0.05):
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:  # beating: never orphaned, however long
            assert orphaned(study.get_trials(), all_local=True, silent=watch.silent) == []
            time.sleep(0.05)
        other = study.ask()  # and another worker there, that never beat
        other.set_user_attr("worker", "elsewhere:777")
        assert not (heartbeat_dir(journal) / "elsewhere:777").exists()
        assert orphaned(study.get_trials(), all_local=True, silent=watch.silent) == []  # first look
        time.sleep(0.7)
        assert [t.number for t in orphaned(study.get_trials(), all_local=True, silent=watch.silent)] == [1]
    assert not (heartbeat_dir(journal) / "elsewhere:4242").exists()  # left in order: file removed
    orphaned(study.get_trials(), all_local=True, silent=watch.silent)  # sees the last change
    time.sleep(0.7)  # its beats stopped: a grace period later its trial is orphaned too
    assert [t.number for t in orphaned(study.get_trials(), all_local=True, silent=watch.silent)] == [0, 1]
