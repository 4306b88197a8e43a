"""The border alarm: best trials at an edge of a range, measured on the range's own scale."""

from babysit.search.alarms import border_alarms, position
from babysit.search.space import Param, Space

LR = Param("optim.lr", 1e-6, 1.0, log=True)
DROPOUT = Param("model.dropout", 0.0, 0.6)
DEPTH = Param("model.depth", 1, 4, int=True)


def ranked(*params):
    return [{"params": p} for p in params]


def test_position_is_on_the_log_scale_for_log_ranges():
    assert position(LR, 1e-3) == 0.5
    assert abs(position(LR, 0.3) - (6 + -0.5229) / 6) < 1e-3  # 0.3 is at 91% in log space


def test_best_lr_at_the_upper_edge_raises_an_alarm_with_a_wider_range():
    trials = ranked({"optim.lr": 0.5}, {"optim.lr": 0.3}, {"optim.lr": 1e-3})
    [alarm] = border_alarms(Space([LR]), trials, border=0.1, top_k=3, stage=1)
    assert alarm["key"] == "optim.lr" and alarm["edge"] == "high" and alarm["stage"] == 1
    assert alarm["top_k_on_edge"] == 2  # 0.5 and 0.3 are both in the outer 10% (log scale)
    low, high = alarm["proposed"]
    assert low == 1e-6 and high > 1.0
    assert "upper edge" in alarm["message"] and "widen it to" in alarm["message"]


def test_best_in_the_middle_raises_nothing():
    trials = ranked({"optim.lr": 1e-3, "model.dropout": 0.3}, {"optim.lr": 0.9, "model.dropout": 0.59})
    assert border_alarms(Space([LR, DROPOUT]), trials, border=0.1, top_k=2) == []


def test_linear_range_lower_edge_and_natural_limits():
    [alarm] = border_alarms(Space([DROPOUT]), ranked({"model.dropout": 0.02}), border=0.1)
    assert alarm["edge"] == "low"
    assert alarm["proposed"] is None  # dropout cannot go below 0
    assert "natural limit" in alarm["message"]
    [alarm] = border_alarms(Space([DROPOUT]), ranked({"model.dropout": 0.59}), border=0.1)
    assert alarm["edge"] == "high" and alarm["proposed"] == [0.0, 0.8999999999999999]


def test_integer_range_widens_by_whole_numbers_and_categoricals_are_ignored():
    optim = Param("optim.name", choices=("sgd", "adam"))
    [alarm] = border_alarms(Space([DEPTH, optim]), ranked({"model.depth": 4, "optim.name": "adam"}))
    assert alarm["key"] == "model.depth" and alarm["proposed"] == [1, 6]
