"""Fixtures for the search tests: tiny real experiments on a subset of the digits."""

import os
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _tiny_config(**search):
    """The digits MLP (tests/digits.py) on 500 digits with a small MLP; `search` overrides [search]."""
    from babysit.config import load_config

    from tests.digits import DIGITS

    config = load_config(overrides=[*DIGITS, "data.limit=500", "model.width=16", "model.depth=1",
                                    "train.batch_size=50", "train.epochs=3"])
    config["search"].update({"workers": 2, "pruner": "none", **search})
    return config


@pytest.fixture
def cli_env():
    """Environment for running `python -m babysit.cli` from this tree in a subprocess."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))}


@pytest.fixture(scope="session")
def tiny_config():
    """A function: tiny_config(**search) -> config (see _tiny_config)."""
    return _tiny_config


@pytest.fixture
def cli():
    """The argv of the babysit command with these arguments."""
    return lambda *args: [sys.executable, "-m", "babysit.cli", *args]
