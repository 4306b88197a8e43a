"""Correct kinked objectives pass; crossing a kink is detected (not blamed on the gradient)."""

import pytest
import torch
from torch import nn
import torch.nn.functional as F

from babysit import gradcheck, gradcheck_model
from babysit.check.kinks import KinkRecorder
from babysit.models import Maxout, svm_loss


def test_relu_mlp_passes_and_names_its_kink_ops():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4))
    report = gradcheck_model(model, F.cross_entropy, torch.randn(3, 10), torch.tensor([0, 1, 3]))
    assert report.passed, str(report)
    assert report.kink_ops == {"relu": 2}
    assert report.numeric_mode == "batched"
    assert {r.name for r in report.rows} == {n for n, _ in model.named_parameters()}


def test_multiclass_svm_at_small_weights_passes():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(20, 10))
    with torch.no_grad():
        model[0].weight.mul_(1e-3)
        model[0].bias.zero_()
    report = gradcheck_model(model, svm_loss, torch.randn(3, 20), torch.tensor([2, 5, 7]),
                             coords_per_tensor=None)
    assert report.passed, str(report)
    assert "clamp" in report.kink_ops


def test_max_pooling_convnet_and_maxout_pass():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          Maxout(4 * 4 * 4, 6), nn.Linear(6, 3))
    report = gradcheck_model(model, F.cross_entropy, torch.randn(2, 1, 8, 8), torch.tensor([0, 2]))
    assert report.passed, str(report)
    assert {"max_pool2d_with_indices", "amax", "relu"} <= set(report.kink_ops)


def test_a_coordinate_sitting_on_a_kink_is_marked_and_exempt():
    w = torch.tensor([0.0, 1.0, -2.0, 3e-6], dtype=torch.float64)
    report = gradcheck(lambda: (torch.relu(w) + w.abs()).sum(), {"w": w})
    kinked = {r.index[0] for r in report.rows if r.kink}
    assert kinked == {0, 3}  # relu/abs winners differ at w +- h for 0 and 3e-6 (h = 1e-5)
    assert any(r.verdict == "wrong" for r in report.rows if r.kink)  # numeric is a mix of slopes
    assert report.passed and report.kinks_crossed == 2
    assert "2 crossed a kink" in report.summary


def test_too_many_kinks_crossed_cannot_pass():
    w = torch.zeros(6, dtype=torch.float64)
    report = gradcheck(lambda: torch.relu(w).sum(), {"w": w})
    assert report.kinks_crossed == 6 and not report.failures
    assert not report.passed and "too many" in report.summary


@pytest.mark.parametrize("batched", [True, False])
def test_batched_bisection_finds_exactly_the_crossing_coordinates(batched):
    w = torch.linspace(-1, 1, 300, dtype=torch.float64)
    near = [17, 150, 151, 299]
    with torch.no_grad():
        w[near] = torch.tensor([2e-6, -3e-6, 0.0, 1e-6], dtype=torch.float64)
    fn = lambda: torch.where(w > 0, w, 0.1 * w).sum() + torch.maximum(w, torch.zeros_like(w)).sum()  # noqa: E731
    report = gradcheck(fn, {"w": w}, coords_per_tensor=None, batched=batched, chunk_size=64)
    assert report.numeric_mode == ("batched" if batched else "loop")
    assert sorted(r.index[0] for r in report.rows if r.kink) == near


@pytest.mark.parametrize("op", [
    lambda x: F.relu(x), lambda x: F.leaky_relu(x, 0.1), lambda x: x.clamp(min=0.0),
    lambda x: x.abs(), lambda x: x.view(2, 3).amax(dim=1), lambda x: torch.max(x.view(2, 3), dim=1).values,
    lambda x: torch.maximum(x, -x), lambda x: torch.where(x > 0, x, 0.0 * x),
    lambda x: F.max_pool1d(x.view(1, 1, 6), 3), lambda x: F.relu6(x)])
def test_recorder_sees_the_winner_flip(op):
    x = torch.tensor([0.0, -0.5, 1e-7, 0.3, -0.4, 0.1], dtype=torch.float64)  # x[2] ties x[0]
    at = lambda shift: x + torch.tensor([0, 0, shift, 0, 0, 0], dtype=torch.float64)  # noqa: E731
    with KinkRecorder() as plus:
        op(at(1e-6))
    with KinkRecorder(reference=plus) as same:
        op(at(1e-6))
    with KinkRecorder(reference=plus) as minus:
        op(at(-1e-6))
    assert plus.ops and not same.crossed and minus.crossed
