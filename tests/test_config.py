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
