"""Shared fixtures. Tests run on the real digits data; nothing is downloaded."""

import os

import pytest
import torch

# Two cores: keep intra-op threads from fighting the test runner and worker processes.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def small_config():
    """The default experiment, shrunk to a couple of fast epochs."""
    from babysit.config import load_config

    return load_config(overrides=["train.epochs=2", "model.width=32", "train.batch_size=128"])
