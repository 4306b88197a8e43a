"""A small finished 'run' shared by the ensemble tests: a final training with checkpoints and
three search trials in trials/<n>/, all real trainings on a slice of digits."""

import contextlib

import pytest
import torch

from babysit import experiment
from babysit.config import load_config
from babysit.rundir import RunDir
from tests.digits import DIGITS

SMALL = [*DIGITS, "train.epochs=3", "model.width=32", "train.batch_size=64", "data.limit=600"]


def small_config(*extra: str) -> dict:
    return load_config(overrides=[*SMALL, *extra])


@contextlib.contextmanager
def one_thread():
    """These models are tiny: a second intra-op thread only spin-waits (on a busy machine a
    0.2 ms forward pass then takes 100 ms). Restored afterwards for the rest of the suite."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="session")
def small():
    """small(*overrides) -> a fast config: 3 epochs of a narrow MLP on 600 digits."""
    return small_config


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> RunDir:
    run_dir = RunDir(tmp_path_factory.mktemp("run"))
    with one_thread():
        experiment.train(small_config(), run_dir, quiet=True)
        for number, lr in enumerate([0.05, 0.02, 0.001]):  # the last one barely learns
            trial = run_dir / "trials" / str(number)
            experiment.train(small_config(f"optim.lr={lr}", f"seed={10 + number}"), trial,
                             quiet=True, checkpoint_dir=trial)
    return run_dir
