"""Relative error, the notes' bands and the pass rule, on hand-made rows."""

import json

import pytest

from babysit.check.report import GradcheckReport, GradRow, make_row, relative_error, verdict


def row(rel, kink=False, name="w", abs_error=1.0, floor=0.0, resolved="", analytic=1.0):
    return GradRow(name, (0,), analytic, analytic - rel * analytic, rel, kink, verdict(rel), abs_error,
                   floor, resolved)


def test_relative_error_is_symmetric_and_both_zero_agree():
    assert relative_error(0.0, 0.0) == 0.0
    assert relative_error(1.0, 0.0) == relative_error(0.0, 1.0) == 1.0
    assert relative_error(2.0, 1.0) == relative_error(1.0, 2.0) == 0.5
    assert relative_error(1.0, float("nan")) == float("inf")


@pytest.mark.parametrize("rel, expected", [(0.0, "happy"), (1e-7, "happy"), (2e-7, "ok"), (1e-4, "ok"),
                                           (2e-4, "uneasy"), (1e-2, "uneasy"), (2e-2, "wrong")])
def test_bands(rel, expected):
    assert verdict(rel) == expected


def test_pass_rule():
    assert GradcheckReport([row(1e-9), row(5e-5)], h=1e-5).passed  # happy and ok pass
    assert not GradcheckReport([row(1e-9), row(3e-4)], h=1e-5).passed  # uneasy fails
    assert not GradcheckReport([row(1e-9), row(0.5)], h=1e-5).passed  # wrong fails
    # Within the round-off floor the difference is noise, not a wrong formula.
    assert GradcheckReport([row(1e-9), row(0.5, abs_error=1e-12, floor=1e-10)], h=1e-5).passed
    assert not GradcheckReport([], h=1e-5).passed


@pytest.mark.parametrize("rows, outcome", [
    ([row(1e-9), row(1e-9, kink=True, resolved="centered h=1e-08")], "passed"),  # resolved: judged
    ([row(1e-9), row(0.5, kink=True, resolved="one-sided left h=1e-05")], "failed"),
    ([row(1e-9), row(0.5, kink=True)], "inconclusive"),  # crossed, nothing resolved it
    ([row(0.5), row(0.5, kink=True)], "failed"),  # a failure outweighs an inconclusive row
    ([row(1e-9, kink=True)] * 3, "inconclusive"),
])
def test_outcome_of_kinked_rows(rows, outcome):
    report = GradcheckReport(rows, h=1e-5)
    assert report.outcome == outcome and report.passed == (outcome == "passed")
    assert outcome.upper() in report.summary


def test_exactly_zero_rows_are_counted_apart():
    zero = GradRow("b", (0,), 0.0, 0.0, 0.0, False, "happy", note="dead unit")
    report = GradcheckReport([row(1e-9, name="w"), zero, zero], h=1e-5,
                             not_exercised={"reg:b": "not in the regularization"})
    assert report.passed and len(report.zero_rows) == 2 and report.zero_reasons == {"dead unit": 2}
    assert "1 coordinates of 2 tensors compared (+2 exactly 0 on both sides" in report.summary
    assert "not exercised: reg:b" in report.summary
    assert "2 dead unit" in str(report) and report.to_dict()["zero_rows"] == 2


def test_summary_names_the_worst_error_that_means_something():
    noise = row(1.0, name="b", abs_error=1e-18, floor=1e-10)  # zero gradient, round-off numeric
    crossed = row(0.9, kink=True, name="k")  # inconclusive: its numeric value means nothing
    report = GradcheckReport([row(3e-8, name="w"), noise, crossed], h=1e-5)
    assert report.outcome == "inconclusive" and report.worst.name == "w"
    assert "3.0e-08 (happy) at w[0]" in report.summary
    assert "(within round-off)" in str(report)


def test_make_row_uses_the_centered_difference_and_its_roundoff_floor():
    r = make_row("w", (1, 2), analytic=3.0, f_plus=1.0 + 3e-5, f_minus=1.0 - 3e-5, step=2e-5,
                 kink=False, eps=2.0 ** -52)
    assert r.numeric == pytest.approx(3.0, rel=1e-9)
    assert r.verdict == "happy" and not r.failed
    assert r.floor == pytest.approx(16 * 2.0 ** -52 * (1.0 + 3e-5) / 1e-5)


def test_table_groups_per_tensor_and_dict_is_json():
    report = GradcheckReport([row(1e-9, name="a"), row(0.5, name="b"), row(1e-9, name="a")], h=1e-5,
                             shapes={"a": (2,), "b": (3, 1)}, warnings=["careful"])
    text = str(report)
    assert text.index("a  (2,)") < text.index("b  (3, 1)") and text.count("a  (2,)") == 1
    assert "<-- fails" in text and "warning: careful" in text
    assert text.splitlines()[-1] == report.summary and "FAILED" in report.summary
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert set(data) >= {"passed", "summary", "rows", "sweep", "warnings"}
    assert set(data["rows"][0]) >= {"name", "index", "analytic", "numeric", "rel_error", "kink", "verdict"}
    assert data["passed"] is False and data["rows"][1]["verdict"] == "wrong"


def test_depth_is_in_the_verdict_and_uneasy_rows_of_a_deep_net_get_the_notes_remark():
    rows = [row(1e-9, name="8.weight"), row(5e-3, name="0.weight", abs_error=1.0)]
    report = GradcheckReport(rows, h=1e-5, depth=10, layers={"0.weight": 1, "8.weight": 10})
    text = str(report)
    assert "depth 10" in report.summary and "layer 1 of 10" in text and "layer 10 of 10" in text
    assert "accumulate with depth" in text and "uneasy rows sit in layer 1 of 10" in text
    shallow = GradcheckReport(rows, h=1e-5, depth=2, layers={"0.weight": 1, "8.weight": 2})
    assert "uneasy rows sit in" not in str(shallow)
    assert report.to_dict()["layers"] == {"0.weight": 1, "8.weight": 10}
