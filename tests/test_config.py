import pytest

from babysit.config import DEFAULTS, get_key, load_config, parse_override, to_toml
from babysit.errors import UserError


def test_defaults_resolve_without_a_file():
    config = load_config()
    assert config == DEFAULTS and config is not DEFAULTS


def test_file_and_overrides_merge_in_order(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text('name = "mine"\n[optim]\nlr = 0.5\n[model]\nactivation = "tanh"\n')
    config = load_config(path, ["optim.lr=0.001", "width=7"])
    assert config["name"] == "mine"
    assert config["optim"]["lr"] == 0.001  # --set wins over the file
    assert config["model"]["activation"] == "tanh"
    assert config["model"]["width"] == 7  # bare leaf name resolved
    assert config["train"]["epochs"] == DEFAULTS["train"]["epochs"]


def test_unknown_key_lists_valid_ones(tmp_path):
    with pytest.raises(UserError) as err:
        load_config(overrides=["optim.lrr=1"])
    assert "did you mean 'optim.lr'" in str(err.value) or "optim.lr" in str(err.value)
    path = tmp_path / "bad.toml"
    path.write_text("[model]\nwidht = 3\n")
    with pytest.raises(UserError, match="valid keys in \\[model\\] are .*width"):
        load_config(path)


def test_types_are_checked_and_coerced():
    assert load_config(overrides=["optim.lr=1"])["optim"]["lr"] == 1.0
    assert isinstance(load_config(overrides=["optim.lr=1"])["optim"]["lr"], float)
    with pytest.raises(UserError, match="takes a whole number"):
        load_config(overrides=["train.epochs=abc"])
    with pytest.raises(UserError, match="takes a number"):
        load_config(overrides=["optim.lr=fast"])


def test_override_syntax_and_ambiguity():
    assert parse_override("model.activation=tanh") == ("model.activation", "tanh")
    assert parse_override("lr=1e-3") == ("lr", 0.001)
    with pytest.raises(UserError, match="key=value"):
        parse_override("lr")
    with pytest.raises(UserError, match="ambiguous: write one of data.kwargs, model.kwargs"):
        load_config(overrides=["kwargs={}"])


def test_free_tables_take_any_key():
    config = load_config(overrides=["model.kwargs.hidden=3"])
    assert config["model"]["kwargs"] == {"hidden": 3}


def test_bad_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_config(bad)


def test_resolved_config_round_trips(tmp_path):
    config = load_config(overrides=["lr=0.3"])
    path = tmp_path / "c.toml"
    path.write_text(to_toml(config))
    assert load_config(path) == config
    assert get_key(config, "lr") == 0.3


# --- the table of defaults and constraints ----------------------------------------------------
from babysit import config as cfg  # noqa: E402


def test_every_default_obeys_its_own_rule_and_every_number_has_one():
    cfg.validate_config(cfg.default_config())
    numeric = [k for k in cfg.all_keys(cfg.DEFAULTS)
               if isinstance(get_key(cfg.DEFAULTS, k), (int, float)) and not isinstance(get_key(cfg.DEFAULTS, k), bool)]
    assert numeric and [k for k in numeric if k not in cfg.RULES] == []


def test_the_table_names_what_the_modules_build():
    """The choices in the table are the names the modules accept: they cannot drift apart."""
    from babysit import data, models, optim
    from babysit.optim.schedules import SCHEDULES

    assert cfg.RULES["optim.name"].choices == optim.OPTIMIZERS
    assert set(cfg.RULES["model.activation"].choices) == set(models.ACTIVATIONS)
    assert cfg.RULES["optim.schedule"].choices == SCHEDULES
    assert cfg.RULES["data.dataset"].choices == data.DATASETS
    assert cfg.RULES["model.name"].choices == models.MODELS
    assert cfg.RULES["loss.name"].choices == models.LOSSES


@pytest.mark.parametrize("key, value, message", [
    ("optim.lr", -1, "optim.lr takes a number in [0, 1e6], not -1: typically 1e-4 .. 1e-1"),
    ("optim.lr", float("nan"), "optim.lr takes a number in [0, 1e6], not nan"),
    ("train.batch_size", 0, "train.batch_size takes a whole number >= 1, not 0: examples per step, e.g. 64"),
    ("train.batch_size", 2.5, "train.batch_size takes a whole number >= 1, not 2.5"),
    ("train.batch_size", True, "train.batch_size takes a whole number >= 1, not True"),
    ("watch.hist_every", -1, "watch.hist_every takes a whole number >= 0, not -1"),
    ("ensemble.alpha", 2, "ensemble.alpha takes a number in [0, 1], not 2"),
    ("model.init_scale", float("inf"), "model.init_scale takes a number > 0, not inf"),
    ("optim.name", "adamm", "optim.name takes one of sgd | momentum | nesterov | adagrad | rmsprop | adam | "
                            "lbfgs | newton, not 'adamm': did you mean 'adam'?"),
    ("model.name", "my.models:Net", None),
    ("model.name", "my models", "model.name takes one of mlp | convnet | package.module:function"),
    ("device", "cuda:1", None),
    ("device", "tpu", "device takes auto, cpu, cuda, cuda:N or mps, not 'tpu'"),
    ("name", "exp-1.b", None),
    ("name", "../up", "name takes a folder name"),
    ("name", "a/b", "name takes a folder name"),
    ("name", "", "name takes a folder name"),
    ("seed", 2**64, "seed takes a whole number from 0 to 9223372036854775807, not 18446744073709551616"),
    ("data.kwargs", {"anything": 1}, None),  # free tables have no rule
])
def test_check_value_speaks_the_one_template(key, value, message):
    if message is None:
        assert cfg.check_value(key, value) == value
        return
    with pytest.raises(UserError) as err:
        cfg.check_value(key, value)
    assert str(err.value).startswith(message), str(err.value)


def test_the_loader_checks_file_values_too(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text("[ensemble]\nema_decay = 1.5\n")
    with pytest.raises(UserError, match=r"ensemble.ema_decay takes a number in \[0, 1\), not 1.5"):
        load_config(path)
