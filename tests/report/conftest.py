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
    """The quick run with every stage's files present (documented samples where a stage is absent,
    a test.json in the shared contract's format where the final evaluation wrote none)."""
    from report_samples import fill_missing_stages, plant_test_json

    path = tmp_path_factory.mktemp("complete") / "run"
    shutil.copytree(quick_run[1], path)
    fill_missing_stages(path)
    if not (path / "test.json").exists():
        plant_test_json(path)
    from babysit.report import write_report
    write_report(path)
    return path


def _run_and_capture(path, *settings):
    """``babysit run`` of the final training only (no search, no ensembles), monitored, with
    `settings` over the ``DIGITS`` experiment; returns (exit code, what it printed on stdout, on stderr)."""
    import contextlib
    import io

    from babysit.cli import main

    args = ["run", "--skip", "gradcheck,preflight,search,ensemble", "--run-dir", str(path)]
    for item in (*DIGITS, *settings):  # digits with the MLP, as the planted runs were designed on
        args += ["--set", item]
    out, err = io.StringIO(), io.StringIO()  # not terminals, as a log file is not
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="session")
def planted_runs(tmp_path_factory):
    """Three real trainings on digits: healthy, a far too high learning rate, overfitting.

    healthy: 8 epochs of a 64-unit MLP, validation flat over the last epochs;
    lr_too_high: nesterov at lr 3 (the loss explodes in the first epoch: the run stops);
    overfitting: 40 training examples, 256 units, no regularization, 30 epochs of Adam.
    """
    root = tmp_path_factory.mktemp("planted")
    runs = {
        "healthy": _run_and_capture(root / "healthy", "train.epochs=8", "model.width=64"),
        "lr_too_high": _run_and_capture(root / "lr_too_high", "optim.lr=3.0", "train.epochs=3"),
        "overfitting": _run_and_capture(root / "overfitting", "data.limit=100", "data.val_fraction=0.6",
                                        "model.width=256", "loss.reg=0", "optim.name=adam", "optim.lr=1e-3",
                                        "train.batch_size=10", "train.epochs=30"),
    }
    return {name: (root / name, *result) for name, result in runs.items()}
