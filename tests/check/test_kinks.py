"""Correct kinked objectives pass; crossing a kink is detected (not blamed on the gradient)."""

import pytest
import torch
from torch import nn
import torch.nn.functional as F

from babysit import gradcheck, gradcheck_model
from babysit.check.kinks import KinkRecorder
from babysit.models import Maxout, svm_loss

from .planted import HalfReLU


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


def test_a_coordinate_exactly_on_a_kink_nothing_resolves_is_inconclusive_not_failed():
    w = torch.tensor([0.0, 1.0, -2.0, 3e-6], dtype=torch.float64)
    report = gradcheck(lambda: (torch.relu(w) + w.abs()).sum(), {"w": w})
    by_index = {r.index[0]: r for r in report.rows}
    assert {i for i, r in by_index.items() if r.kink} == {0, 3}  # winners differ at w +- 1e-5
    # 3e-6 above the switch: the right side crosses nothing, and the gradient is right there.
    assert by_index[3].resolved == "one-sided right h=1e-05" and by_index[3].verdict == "happy"
    # On the kink itself: abs switches on either side (its subgradient 0 is neither slope).
    assert by_index[0].inconclusive and "abs" in by_index[0].note
    assert not report.failures and report.outcome == "inconclusive" and not report.passed
    assert "INCONCLUSIVE" in report.summary and "w[0]" in report.summary


def test_on_the_kink_the_side_that_crosses_nothing_decides():
    w = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    report = gradcheck(lambda: (2.0 * torch.relu(w) + w).sum(), {"w": w})
    on_kink = [r for r in report.rows if r.kink]
    assert len(on_kink) == 2 and all(r.resolved.startswith("one-sided left") for r in on_kink)
    assert all(r.verdict == "happy" and r.numeric == pytest.approx(1.0) for r in on_kink)
    assert report.passed, str(report)


def test_a_switch_on_both_sides_is_resolved_by_a_smaller_centered_step():
    w = torch.zeros(1, dtype=torch.float64)  # relu switches at +3e-6 and at -3e-6
    report = gradcheck(lambda: (torch.relu(w - 3e-6) + torch.relu(-w - 3e-6) + w).sum(), {"w": w})
    (r,) = report.rows
    assert r.kink and r.resolved == "centered h=1e-06" and r.numeric == pytest.approx(1.0)
    assert report.passed


def kinked_relu_problem(num_hidden=5, gap=1e-7):
    """A 2-layer ReLU net whose first datapoint's hidden preactivations sit `gap` from zero."""
    g = torch.Generator().manual_seed(4)
    model = nn.Sequential(nn.Linear(4, num_hidden), nn.ReLU(), nn.Linear(num_hidden, 3)).double()
    x = torch.randn(3, 4, generator=g, dtype=torch.float64)
    with torch.no_grad():
        signs = torch.tensor([1.0, -1.0] * num_hidden, dtype=torch.float64)[:num_hidden]
        model[0].bias.copy_(-(x[0] @ model[0].weight.t()) + gap * signs)
    return model, x, torch.tensor([0, 1, 2])


def assert_resolved(report):
    assert report.kinks_crossed >= 5, str(report)
    assert report.kinks_resolved == report.kinks_crossed and not report.inconclusive, str(report)
    assert report.passed and report.outcome == "passed", str(report)


def test_relu_net_checked_at_its_kinks_passes_with_the_crossings_resolved():
    model, x, y = kinked_relu_problem()
    assert_resolved(gradcheck_model(model, F.cross_entropy, x, y))
    # The same network written as a plain function of plain tensors.
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    w1, b1, w2, b2 = params.values()
    report = gradcheck(lambda: F.cross_entropy(torch.relu(x @ w1.t() + b1) @ w2.t() + b2, y), params,
                       coords_per_tensor=None)
    assert_resolved(report)
    assert report.numeric_mode == "batched"


def test_a_wrong_gradient_at_the_kinks_still_fails():
    model, x, y = kinked_relu_problem()
    buggy = lambda: F.cross_entropy(model[2](HalfReLU.apply(model[0](x))), y)  # noqa: E731
    report = gradcheck(buggy, dict(model.named_parameters()))
    assert report.outcome == "failed" and {"0.weight", "0.bias"} <= {r.name for r in report.failures}
    assert any(r.resolved for r in report.failures)  # judged on the resolved value, not excused


def test_maxout_at_its_switches_passes_with_the_crossings_resolved():
    torch.manual_seed(5)
    model = nn.Sequential(Maxout(4, 5), nn.Linear(5, 3)).double()
    x = torch.randn(3, 4, dtype=torch.float64)
    with torch.no_grad():  # pieces (2j, 2j+1) of every unit tie up to 1e-7 on the first datapoint
        lin = model[0].linear
        z = x[0] @ lin.weight.t() + lin.bias
        lin.bias[1::2] += z[0::2] - z[1::2] + 1e-7
    report = gradcheck_model(model, F.cross_entropy, x, torch.tensor([0, 1, 2]))
    assert "amax" in report.kink_ops
    assert_resolved(report)


def test_max_pool_at_its_switches_passes_with_the_crossings_resolved():
    torch.manual_seed(6)
    model = nn.Sequential(nn.Linear(6, 8), nn.Unflatten(1, (1, 2, 4)), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(2, 3)).double()
    x = torch.randn(3, 6, dtype=torch.float64)
    with torch.no_grad():  # in both 2x2 windows, two entries tie up to 1e-7 on the first datapoint
        z = x[0] @ model[0].weight.t() + model[0].bias
        for a, b in ((0, 5), (2, 7)):  # (row 0, col 0) vs (row 1, col 1) of each window
            top = max(z[[a, a + 1, a + 4, a + 5]])
            model[0].bias[a] += top - z[a] + 2e-7
            model[0].bias[b] += top - z[b] + 1e-7
    report = gradcheck_model(model, F.cross_entropy, x, torch.tensor([0, 1, 2]), coords_per_tensor=None)
    assert "max_pool2d_with_indices" in report.kink_ops
    assert_resolved(report)


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
