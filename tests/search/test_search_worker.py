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
