"""The search space: parsing, scales, and one-line errors for bad ranges."""

import math
import subprocess

import numpy as np
import optuna
import pytest

from babysit.config import load_config
from babysit.errors import UserError
from babysit.search.space import Space, apply


def space_of(table):
    return Space.from_config(load_config(), table)


def test_bare_and_dotted_keys_resolve_and_defaults_apply():
    space = space_of({"lr": {"low": 1e-6, "high": 1}, "loss.reg": {"low": 1e-5, "high": 1e-1},
                      "dropout": {"low": 0, "high": 0.6}, "depth": {"low": 1, "high": 4},
                      "optim": {"choices": ["nesterov", "adam"]}})
    assert list(space.params) == ["optim.lr", "loss.reg", "model.dropout", "model.depth", "optim.name"]
    assert space["optim.lr"].log and space["loss.reg"].log  # log scale by default for lr and reg
    assert not space["model.dropout"].log and not space["model.dropout"].int
    assert space["model.depth"].int  # the config key holds an int
    assert space["optim.name"].choices == ("nesterov", "adam")


def test_toml_dotted_keys_are_nested_tables_and_still_work(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text('[search.space]\noptim.lr = {low = 1e-4, high = 1e-1}\n'
                    'model.width = {low = 16, high = 128, log = true}\n')
    config = load_config(path)
    space = Space.from_config(config)  # the file's space replaces the default one
    assert list(space.params) == ["optim.lr", "model.width"]
    assert space["model.width"].int and space["model.width"].log


def test_log_uniform_sampling_is_uniform_in_the_exponent():
    space = space_of({"lr": {"low": 1e-6, "high": 1.0}})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    exponents = []
    for _ in range(2000):
        trial = study.ask()
        exponents.append(math.log10(space.suggest(trial)["optim.lr"]))
        study.tell(trial, 0.0)
    exponents = np.array(exponents)
    assert exponents.min() >= -6 and exponents.max() <= 0
    # Each decade gets ~1/6 of the samples (a linear-uniform draw would put 90% in the last one).
    counts = np.histogram(exponents, bins=6, range=(-6, 0))[0] / len(exponents)
    assert np.all(np.abs(counts - 1 / 6) < 0.04), counts


def test_apply_writes_values_into_the_config():
    config = apply(load_config(), {"optim.lr": 0.003, "model.depth": 3, "optim.name": "adam"})
    assert config["optim"] == {**config["optim"], "lr": 0.003, "name": "adam"}
    assert config["model"]["depth"] == 3


@pytest.mark.parametrize("table, fragment", [
    ({"lr": {"low": 1, "high": 1e-3}}, "low must be below high"),
    ({"lr": {"low": 0.1, "high": 0.1}}, "low must be below high"),
    ({"lr": {"low": 0, "high": 1}}, "a log range needs low > 0"),
    ({"dropout": {"low": -1, "high": 1, "log": True}}, "a log range needs low > 0"),
    ({"depth": {"low": 1.5, "high": 4}}, "must be integers"),
    ({"lr": {"low": 1e-3}}, "needs both low and high"),
    ({"lr": {"low": 1e-3, "high": 1, "scale": "log"}}, "unknown field"),
    ({"optim": {"choices": []}}, "non-empty list"),
    ({"optim": {"choices": ["nesterov", "adamw"]}}, "unknown update rule"),
    ({"lrr": {"low": 1e-3, "high": 1}}, "did you mean"),
    ({"lr": 0.1}, "must be a table"),
    ({}, "search space is empty"),
])
def test_bad_spaces_are_one_line_user_errors(table, fragment):
    with pytest.raises(UserError) as info:
        space_of(table)
    message = str(info.value)
    assert fragment in message and "\n" not in message


def test_cli_reports_a_bad_range_in_one_line(tmp_path, cli_env, cli):
    path = tmp_path / "bad.toml"
    path.write_text("[search.space]\nlr = {low = 0, high = 1, log = true}\n")
    proc = subprocess.run(cli("search", str(path), "--run-dir", str(tmp_path / "run"), "-q"),
                          capture_output=True, text=True, env=cli_env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "babysit: error: search.space.lr: a log range needs low > 0 (got low=0): use a positive "
        "low like 1e-6, or log = false"]
    assert "Traceback" not in proc.stderr


def test_the_default_space_is_the_notes_space():
    """lr = 10 ** uniform(-6, 1) as the notes write it; dropout on its plain scale; the rule,
    the schedule, and momentum's mu (only for a momentum rule) among the searched."""
    space = Space.from_config(load_config())
    lr = space["optim.lr"]
    assert (lr.low, lr.high, lr.log) == (1e-6, 10.0, True)
    assert not space["model.dropout"].log
    assert set(space["optim.schedule"].choices) >= {"step", "exponential", "inverse_time"}
    assert space["optim.mu"].when == (("optim.name", ("momentum", "nesterov")),)
    assert "nesterov" in space["optim.name"].choices


def test_momentum_is_sampled_only_in_trials_of_a_momentum_rule():
    space = space_of({"optim": {"choices": ["nesterov", "adam", "momentum"]},
                      "mu": {"low": 0.5, "high": 0.99, "when": {"optim.name": ["momentum", "nesterov"]}},
                      "lr": {"low": 1e-4, "high": 1.0}})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    rules = set()
    for _ in range(60):
        trial = study.ask()
        params = space.suggest(trial)
        rules.add(params["optim.name"])
        assert ("optim.mu" in params) == (params["optim.name"] != "adam"), params
        assert trial.params == params  # the study records exactly what the trial used
        study.tell(trial, 0.0)
    assert rules == {"nesterov", "adam", "momentum"}
    assert "if optim.name in {momentum, nesterov}" in space.describe()
    assert Space.from_dict(space.to_dict()).to_dict() == space.to_dict()  # as the stages store it


def test_a_condition_on_a_key_the_search_does_not_vary_is_decided_from_the_config(tmp_path):
    path = tmp_path / "exp.toml"  # TOML's dotted key inside when is a nested table: still read
    path.write_text('[optim]\nname = "nesterov"\n[search.space]\n'
                    'optim.mu = {low = 0.5, high = 0.99, when = {optim.name = ["nesterov"]}}\n')
    space = Space.from_config(load_config(path))
    assert space["optim.mu"].when == ()  # nesterov is fixed: mu is always searched
    with pytest.raises(UserError, match=r"searched only when optim.name is one of nesterov, but "
                                        r"optim.name = 'adam' and is not searched"):
        Space.from_config(load_config(path, ["optim.name=adam"]))
    with pytest.raises(UserError, match="when must be a table"):
        space_of({"mu": {"low": 0.5, "high": 0.9, "when": "optim.name"}})
    with pytest.raises(UserError, match="not an unconditional choices"):
        space_of({"lr": {"low": 1e-4, "high": 1.0},
                  "mu": {"low": 0.5, "high": 0.9, "when": {"optim.lr": [0.1]}}})
