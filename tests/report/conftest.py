"""Run directories for the report tests, made once per session by real training."""

from __future__ import annotations

import shutil

import pytest

from tests.digits import DIGITS, digits_args


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory):
    """``babysit run --quick`` on the digits MLP: the end-to-end workflow, once."""
    from babysit.cli import main

    path = tmp_path_factory.mktemp("workflow") / "quick"
    code = main(["run", "--quick", "--quiet", "--run-dir", str(path), *digits_args()])
    return code, path


@pytest.fixture(scope="session")
def plain_run(tmp_path_factory):
    """A plain ``babysit train`` run: no run.json, no stage folders, only the training."""
    from babysit import experiment
    from babysit.config import load_config

    path = tmp_path_factory.mktemp("plain") / "run"
    config = load_config(overrides=[*DIGITS, "train.epochs=3", "model.width=32", "train.batch_size=128"])
    experiment.train(config, path, quiet=True)
    return path


@pytest.fixture(scope="session")
def complete_run(quick_run, tmp_path_factory):
    """The quick run with every stage's files present (documented samples where a stage is absent)."""
    from report_samples import fill_missing_stages

    path = tmp_path_factory.mktemp("complete") / "run"
    shutil.copytree(quick_run[1], path)
    fill_missing_stages(path)
    from babysit.report import write_report
    write_report(path)
    return path
