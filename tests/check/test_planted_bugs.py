"""Planted backward bugs in custom autograd Functions must fail the check; the same code
without the bug must pass."""

import pytest
import torch
from torch import nn

from babysit import gradcheck_model

from .planted import HandNet, l2


def check(bug=None, reg_bug=None, **options):
    torch.manual_seed(0)
    model = HandNet(bug)
    x, y = torch.randn(3, 6), torch.tensor([0, 1, 2])
    return gradcheck_model(model, nn.functional.cross_entropy, x, y, reg_fn=l2(reg_bug), **options)


def test_correct_hand_written_backward_passes():
    report = check()
    assert report.passed, str(report)
    assert report.numeric_mode == "loop"  # custom Functions without a vmap rule: the fallback
    assert "autograd.Function" in report.fallback


@pytest.mark.parametrize("bug, tensor", [("bias", "hidden.bias"), ("transposed", "hidden.weight")])
def test_wrong_layer_gradient_fails_in_that_tensor(bug, tensor):
    report = check(bug)
    assert not report.passed
    assert {r.name for r in report.failures} == {tensor}
    assert all(r.verdict == "wrong" for r in report.failures)
    assert "FAILED" in report.summary and tensor in report.summary


def test_missing_factor_fails_everywhere_upstream():
    report = check("factor")
    assert not report.passed
    failing = {r.name for r in report.failures}
    assert {"hidden.weight", "hidden.bias", "inp.weight", "inp.bias"} <= failing
    assert not failing & {"out.weight", "out.bias"}  # downstream of the bug: right
    assert all(0.4 < r.rel_error < 0.6 for r in report.failures)  # half the true gradient


def test_regularization_gradient_off_by_a_factor_fails_in_the_reg_check():
    report = check(reg_bug="reg")
    assert not report.passed
    failing = {r.name for r in report.failures}
    assert failing and all(name.startswith("reg:") for name in failing)
    assert {r.name for r in report.rows if r.name.startswith("reg:")} >= {"reg:hidden.weight", "reg:inp.weight"}


def test_summed_check_needs_a_raised_reg_strength_to_see_the_reg_bug():
    # The notes: checked as one sum, a wrong regularization gradient can hide behind the data
    # gradient when the regularization is weak; raising its strength exposes it.
    weak = check(reg_bug="reg", separate=False, reg_scale=1e-6, coords_per_tensor=4)
    strong = check(reg_bug="reg", separate=False, reg_scale=100.0, coords_per_tensor=4)
    assert weak.passed, str(weak)
    assert not strong.passed
    assert {r.name for r in strong.failures} == {"inp.weight", "hidden.weight", "out.weight"}
