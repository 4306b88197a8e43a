"""The report: a table for people, a dict (report.json) for the HTML report, bad input refused."""

import json

import pytest
import torch

import babysit
from babysit import UserError
from babysit.sanity import CheckResult, PreflightReport

from . import preflight_models as M

FAST = ["gradcheck", "overfit_tiny", "input_dependence"]


def test_report_prints_a_table_and_serializes_in_the_run_directory_format(digits):
    report = babysit.preflight(M.weights_too_large, "softmax", digits, num_classes=10, skip=FAST)
    table = str(report)
    assert "FAILED, 2 of 3 checks passed" in table
    for name in ("initial_loss", "reg_increases_loss", "deterministic"):
        assert name in table
    assert "weights are initialized too large" in table  # a failure shows what to do
    data = json.loads(json.dumps(report.to_dict()))
    assert data["passed"] is False
    assert set(data["checks"]) == {"initial_loss", "reg_increases_loss", "deterministic"}
    initial = data["checks"]["initial_loss"]
    assert initial["passed"] is False and initial["loss"] > 10 * initial["chance"]
    assert {"message", "summary", "tolerance", "seconds"} <= set(initial)


def test_the_callers_random_streams_and_threads_are_left_as_they_were(digits):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        babysit.preflight(M.healthy, "softmax", digits, num_classes=10, skip=FAST, threads=1)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(torch.rand(3), expected)


def test_measured_numbers_are_attributes_and_items():
    result = CheckResult("initial_loss", True, "s", "m", {"loss": 2.3})
    assert result.loss == result["loss"] == 2.3
    with pytest.raises(AttributeError, match="measured: loss"):
        result.steps
    report = PreflightReport({"initial_loss": result})
    assert report.passed and report["initial_loss"] is result and report.failed == []


@pytest.mark.parametrize("call, words", [
    (lambda d: babysit.preflight(M.healthy, "hinge", d, num_classes=10), "unknown loss"),
    (lambda d: babysit.preflight(M.healthy, "softmax", d[0], num_classes=10), "pair (x, y)"),
    (lambda d: babysit.preflight(M.healthy, "softmax", d, num_classes=5), "labels must lie in 0..4"),
    (lambda d: babysit.preflight(M.healthy, "softmax", (d[0], d[1].float()), num_classes=10),
     "class indices"),
    (lambda d: babysit.preflight(M.healthy, "softmax", (d[0][:100], d[1]), num_classes=10), "shape"),
    (lambda d: babysit.preflight(lambda: torch.nn.Linear(64, 3), "softmax", (d[0].flatten(1), d[1]),
                                 num_classes=10), "(N, 10)"),
    (lambda d: babysit.preflight(lambda: "net", "softmax", d, num_classes=10), "torch.nn.Module"),
    (lambda d: babysit.preflight(M.healthy, "softmax", d, num_classes=10, learning_rate=1), "valid options"),
    (lambda d: babysit.preflight(M.healthy, "softmax", d, num_classes=10, skip=["gradchek"]),
     "unknown check"),
    (lambda d: babysit.preflight(M.healthy, "softmax", d, num_classes=10, overfit_steps=0), ">= 1"),
    (lambda d: babysit.preflight(M.healthy, "softmax", d, num_classes=10, optimizer="nesterovv"),
     "nesterovv"),
])
def test_bad_input_is_one_clear_user_error(digits, call, words):
    with pytest.raises(UserError, match=None) as info:
        call(digits)
    assert words in str(info.value)
