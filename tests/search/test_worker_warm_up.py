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
