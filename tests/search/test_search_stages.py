"""Coarse to fine: stage parsing and the narrowing rule."""

import math

import pytest

from babysit.config import load_config
from babysit.errors import UserError
from babysit.search.alarms import border_alarms
from babysit.search.space import Param, Space
from babysit.search.stages import extend_to_edges, narrow, parse_stages, widen_limits

SPACE = Space([Param("optim.lr", 1e-6, 1.0, log=True), Param("model.dropout", 0.0, 0.6),
               Param("model.depth", 1, 4, int=True),
               Param("optim.name", choices=("sgd", "nesterov", "adam"))])


def top(*lrs, dropout=0.3, depth=2, name="adam"):
    return [{"params": {"optim.lr": lr, "model.dropout": dropout, "model.depth": depth, "optim.name": name}}
            for lr in lrs]


def test_narrowing_follows_the_top_trials_on_their_scale():
    fine = narrow(SPACE, top(1e-3, 1e-2), limits=SPACE, margin=0.5)
    lr = fine["optim.lr"]
    # top span is 1 decade: widened by half a decade on each side
    assert math.isclose(math.log10(lr.low), -3.5) and math.isclose(math.log10(lr.high), -1.5)
    assert lr.log
    assert fine["optim.name"].choices == ("adam",)  # only the choices of the top trials remain
    drop = fine["model.dropout"]  # all at 0.3: a minimum span of 10% of the range keeps it open
    assert drop.low < 0.3 < drop.high and drop.high - drop.low < 0.1


def test_narrowing_is_clipped_to_the_limits_and_integers_keep_a_neighbour():
    fine = narrow(SPACE, top(0.5, 0.9, depth=4), limits=SPACE, margin=0.5)
    assert fine["optim.lr"].high == 1.0
    depth = fine["model.depth"]
    assert depth.int and depth.low < depth.high <= 4 and depth.high == 4


def test_auto_widen_lets_the_next_stage_look_past_an_alarmed_edge():
    ranked = top(0.9, 0.5)
    alarms = border_alarms(SPACE, ranked, border=0.1, top_k=2)
    limits = widen_limits(SPACE, alarms)
    assert limits["optim.lr"].high > 1.0
    fine = extend_to_edges(narrow(SPACE, ranked, limits=limits, margin=0.5), limits, alarms, 0.5)
    assert fine["optim.lr"].high > 1.0
    assert fine["optim.lr"].low > 1e-6


def test_stages_parse_with_full_training_for_zero_epochs():
    config = load_config(overrides=["train.epochs=7"])
    config["search"]["stages"] = [{"trials": 5, "epochs": 1}, {"trials": 2, "epochs": 0}]
    assert parse_stages(config) == [{"trials": 5, "epochs": 1}, {"trials": 2, "epochs": 7}]


@pytest.mark.parametrize("stages, fragment", [
    ([], "non-empty list"),
    ([{"trials": 0, "epochs": 1}], "trials takes a whole number >= 1, not 0"),
    ([{"trials": 3, "epochs": -1}], "epochs takes a whole number >= 0 or a fraction of an epoch in (0, 1), not -1"),
    ([{"trials": 3, "epoch": 1}], "unknown key(s) epoch"),
    ([5], "must be a table"),
])
def test_bad_stages_are_user_errors(stages, fragment):
    config = load_config()
    config["search"]["stages"] = stages
    with pytest.raises(UserError, match=None) as info:
        parse_stages(config)
    assert fragment in str(info.value)


@pytest.mark.parametrize("key, value", [("grace_period", 0), ("grace_period", -5), ("idle_timeout", -1)])
def test_heartbeat_and_idle_times_are_checked(key, value):
    from babysit.config import load_config
    from babysit.errors import UserError

    with pytest.raises(UserError, match=f"search.{key} takes a number >= "):
        load_config(overrides=[f"search.{key}={value}"])  # the config's own rules, at load
    config = load_config()
    config["search"][key] = value  # set from Python, past the loader: the stages check it too
    with pytest.raises(UserError, match=f"search.{key} takes a number >= "):
        parse_stages(config)


def test_a_stage_may_be_a_fraction_of_an_epoch_but_not_more_than_one_as_a_float():
    config = load_config()
    config["search"]["stages"] = [{"trials": 8, "epochs": 0.5}, {"trials": 2, "epochs": 3}]
    assert parse_stages(config)[0] == {"trials": 8, "epochs": 0.5}
    config["search"]["stages"] = [{"trials": 8, "epochs": 1.5}]
    with pytest.raises(UserError, match="a whole number >= 0 or a fraction of an epoch in"):
        parse_stages(config)
