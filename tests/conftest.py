"""Shared fixtures. Tests run on the real digits data; nothing is downloaded."""

import pytest
import torch

# The test models are tiny: one intra-op thread is faster for them than two fighting each
# other (and the worker processes some tests start) for the machine's two cores.
torch.set_num_threads(1)


@pytest.fixture
def small_config():
    """The digits MLP (tests/digits.py), shrunk to a couple of fast epochs."""
    from babysit.config import load_config

    from tests.digits import DIGITS

    return load_config(overrides=[*DIGITS, "train.epochs=2", "model.width=32", "train.batch_size=128"])
