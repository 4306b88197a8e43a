"""A worker pays its process's one-time costs before its first trial."""

from babysit import experiment
from babysit.config import load_config
from babysit.search.worker import warm_up


def test_warm_up_loads_the_data_once_for_every_trial():
    experiment._cached_data.cache_clear()
    config = load_config(overrides=["data.limit=300"])
    warm_up(config)
    assert experiment._cached_data.cache_info().currsize == 1
    before = experiment._cached_data.cache_info().hits
    experiment.load_data(config)  # what the first trial does
    assert experiment._cached_data.cache_info().hits == before + 1


def test_warm_up_takes_closure_optimizers_too():
    for name in ("lbfgs", "newton"):
        warm_up(load_config(overrides=["data.limit=300", f"optim.name={name}", "model.depth=0", "model.width=1"]))
