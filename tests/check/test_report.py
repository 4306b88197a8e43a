"""Relative error, the notes' bands and the pass rule, on hand-made rows."""

import json

import pytest

from babysit.check.report import GradcheckReport, GradRow, make_row, relative_error, verdict


def row(rel, kink=False, name="w", abs_error=1.0, floor=0.0):
    return GradRow(name, (0,), 1.0, 1.0 - rel, rel, kink, verdict(rel), abs_error, floor)


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
    assert GradcheckReport([row(1e-9), row(0.5, kink=True)], h=1e-5).passed  # kink: exempt
    # Within the round-off floor the difference is noise, not a wrong formula.
    assert GradcheckReport([row(1e-9), row(0.5, abs_error=1e-12, floor=1e-10)], h=1e-5).passed
    # More than half of the rows crossed a kink: nothing left to trust.
    assert not GradcheckReport([row(1e-9), row(1e-9, kink=True), row(1e-9, kink=True)], h=1e-5).passed
    assert not GradcheckReport([], h=1e-5).passed


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
