"""A worker pays its process's one-time costs before its first trial."""

import pytest
import torch

from babysit import experiment
from babysit.config import load_config
from babysit.search.worker import warm_up
from tests.digits import DIGITS


def test_warm_up_loads_the_data_once_for_every_trial():
    experiment._cached_data.cache_clear()
    config = load_config(overrides=[*DIGITS, "data.limit=300"])
    warm_up(config)
    assert experiment._cached_data.cache_info().currsize == 1
    before = experiment._cached_data.cache_info().hits
    experiment.load_split(config)  # what the first trial does
    assert experiment._cached_data.cache_info().hits == before + 1


@pytest.mark.parametrize("rule", ["optim.name=lbfgs", "optim.name=newton",
                                  "optim.nesterov_form=lookahead", "optim.name=adam"])
def test_warm_up_takes_one_real_step_with_every_kind_of_update_rule(rule):
    """Closure rules (L-BFGS, Newton, Nesterov's lookahead form) included: a warm-up that
    called step() without a closure killed every worker of such a search."""
    config = load_config(overrides=[*DIGITS, "data.limit=300", "model.depth=0", "model.width=1", rule])
    start = experiment.build(config).model.state_dict()
    warmed = warm_up(config).model.state_dict()
    assert start.keys() == warmed.keys()
    assert all(torch.isfinite(w).all() for w in warmed.values())
    assert any(not torch.equal(start[k], warmed[k]) for k in start)  # the step moved the weights


@pytest.mark.slow
def test_a_search_with_the_lookahead_form_runs_its_trials(tmp_path, tiny_config):
    """`babysit search` with optim.nesterov_form = "lookahead" once ended in "workers keep
    dying"; `babysit train` with the same config worked."""
    from babysit.search import run_search

    config = tiny_config(stages=[{"trials": 2, "epochs": 1}], top_k=1, 
                         space={"optim.lr": {"low": 0.01, "high": 0.1, "log": True}})
    config["optim"]["nesterov_form"] = "lookahead"
    result = run_search(config, tmp_path, workers=1, quiet=True)
    assert len(result.leaderboard) == 2
    assert all(row["epochs"] == 1 for row in result.leaderboard)
    assert result.best_config["optim"]["nesterov_form"] == "lookahead"


def test_local_workers_start_together(tmp_path):
    """A worker marks itself ready and waits for its peers; a late one (a restart) finds them
    ready and goes on at once; a peer that never comes costs at most the timeout."""
    import os
    import threading
    import time

    from babysit.search.worker import wait_for_peers

    ready = tmp_path / "ready"
    late = threading.Timer(0.3, lambda: (ready / "12345").touch())
    late.start()
    started = time.monotonic()
    wait_for_peers(ready, 2, timeout_s=10)
    assert 0.25 <= time.monotonic() - started < 5  # waited for the peer, not for the timeout
    assert sorted(p.name for p in ready.iterdir()) == sorted(["12345", str(os.getpid())])
    started = time.monotonic()
    wait_for_peers(ready, 2, timeout_s=10)  # a restarted worker: the others are marked already
    assert time.monotonic() - started < 0.2
    started = time.monotonic()
    wait_for_peers(tmp_path / "alone", 3, timeout_s=0.3)  # the others never come
    assert 0.3 <= time.monotonic() - started < 2
