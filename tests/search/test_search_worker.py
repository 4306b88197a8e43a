"""A worker on its own: diverging trials are pruned at once, laggards by the median rule."""

import optuna

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
    space = Space([Param("optim.lr", 50.0, 100.0, log=True)])  # SGD with lr 50+: the loss explodes
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
