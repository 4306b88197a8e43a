"""The CLI as a user meets it: real processes, real exit codes, no tracebacks."""

import subprocess
import sys

import pytest

from babysit.cli import main

from babysit.rundir import list_checkpoints, read_jsonl
from tests.digits import digits_args


def babysit(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "babysit.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_help_lists_the_verbs():
    result = babysit("--help")
    assert result.returncode == 0
    assert "train" in result.stdout


def test_train_default_end_to_end(tmp_path):
    result = babysit("train", *digits_args(), "--set", "train.epochs=2", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "runs" / "default"
    assert "run directory: runs/default" in result.stdout
    assert len(read_jsonl(run_dir / "metrics.jsonl")) == 2
    assert len(list_checkpoints(run_dir / "checkpoints")) == 2
    assert (run_dir / "config.toml").is_file()
    again = babysit("train", *digits_args(), "--set", "train.epochs=1", "--quiet", cwd=tmp_path)
    assert "runs/default-2" in again.stdout  # a second run never overwrites the first


def test_train_from_a_config_file_and_resume(tmp_path):
    config = tmp_path / "exp.toml"
    config.write_text('name = "tiny"\n[model]\nwidth = 16\n[train]\nepochs = 2\n')
    result = babysit("train", *digits_args(), str(config), "--run-dir", str(tmp_path / "r"), "--quiet")
    assert result.returncode == 0, result.stderr
    more = babysit("train", "--resume", str(tmp_path / "r"), "--set", "train.epochs=3", "--quiet")
    assert more.returncode == 0, more.stderr
    assert [r["epoch"] for r in read_jsonl(tmp_path / "r" / "metrics.jsonl")] == [1, 2, 3]


@pytest.mark.parametrize("args, message", [
    (["train", "--set", "optim.lrr=0.1"], "unknown config key 'optim.lrr'"),
    (["train", "--set", "data.dataset=imagenet"], "data.dataset takes one of digits"),
    (["train", "--set", "model.name=resnet"], "model.name takes one of mlp | convnet"),
    (["train", "--set", "loss.name=hinge"], "loss.name takes one of softmax | svm"),
    (["train", "--set", "model.name=nosuchpkg.mod:fn"], "cannot import module 'nosuchpkg.mod'"),
    (["train", "--set", "data.dataset=mnist", "--set", "data.path=no_such_folder"], "is not a folder"),
    (["train", "missing.toml"], "does not exist"),
    (["train", "--resume", "no_such_run"], "holds no run"),
    (["train", "--set", "watch.flush_seconds=-1"], "watch.flush_seconds takes a number >= 0, not -1"),
    (["train", "--set", "watch.hist_every=-5"], "watch.hist_every takes a whole number >= 0, not -5"),
])
def test_bad_input_is_one_clear_line(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main([*args, "--quiet"]) == 2  # returns, never raises
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "runs").exists()  # refused before a run directory is made


def test_bad_input_in_a_real_process_has_no_traceback(tmp_path):
    result = babysit("train", *digits_args(), "--set", "train.batch_size=0", "--quiet", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("babysit: error:") and "Traceback" not in result.stderr


def test_config_prints_the_resolved_toml(capsys):
    import tomllib

    assert main(["config", "--set", "lr=0.125"]) == 0
    printed = tomllib.loads(capsys.readouterr().out)
    assert printed["optim"]["lr"] == 0.125 and printed["data"]["dataset"] == "mnist1d"


def test_config_shows_the_default_experiment_and_the_notes_defaults(capsys):
    """What `babysit config` prints is what a run uses: MNIST-1D with the 1-D convnet, and the
    notes' defaults (issue 16, item 5), each visible there."""
    import tomllib

    assert main(["config"]) == 0
    config = tomllib.loads(capsys.readouterr().out)
    assert config["data"]["dataset"] == "mnist1d" and config["model"]["name"] == "convnet"
    assert config["optim"]["schedule"] == "step"  # "decay your learning rate": annealing on
    assert config["gradcheck"]["burn_in"] > 0  # checked after a burn-in (and at initialization)
    space = config["search"]["space"]
    assert space["optim.lr"] == {"low": 1e-6, "high": 10.0, "log": True}  # 10 ** uniform(-6, 1)
    assert space["model.dropout"]["log"] is False  # dropout on its plain scale
    assert "step" in space["optim.schedule"]["choices"]  # the schedule is searched
    assert space["optim.mu"]["when"] == {"optim.name": ["momentum", "nesterov"]}  # mu, conditional



@pytest.mark.parametrize("args, message", [
    (["run", "--set", "optim.name=adamw"], "optim.name takes one of sgd | momentum"),
    (["run", "--set", "optim.schedule=cosine"], "cosine"),
    (["search", "--set", "search.space.lr={low=1,high=0.1,log=true}"], "low must be below high"),
    (["train", "--set", "model.activation=gelu"], "model.activation takes one of relu"),
    (["search", "--workers", "-1"], "--workers takes a number >= 1"),
    (["search", "--set", "search.workers=-1"], "search.workers takes a whole number from 0 to 4096, not -1"),
])
def test_bad_config_leaves_no_run_directory(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main([*args, "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "runs").exists()
