"""The three entry points: options, copies left untouched, dropout, sweep, warnings, bad input."""

import numpy as np
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from babysit import UserError, gradcheck, gradcheck_model, gradcheck_numpy
from babysit.check import SWEEP


def mlp(dropout=0.0):
    torch.manual_seed(0)
    layers = [nn.Linear(8, 12), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else []) + [nn.Linear(12, 3)]
    return nn.Sequential(*layers)


def data(n=5):
    g = torch.Generator().manual_seed(3)
    return torch.randn(n, 8, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_model_data_and_rng_are_left_untouched():
    model, (x, y) = mlp(0.3), data(40)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x0, rng = x.clone(), torch.get_rng_state()
    report = gradcheck_model(model, F.cross_entropy, x, y, burn_in=5, optimizer=torch.optim.Adam(model.parameters()),
                             reg_fn=lambda m: 1e-3 * sum((p ** 2).sum() for p in m.parameters()))
    assert report.passed, str(report)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters()) and model[0].weight.dtype == torch.float32
    assert torch.equal(x, x0) and torch.equal(torch.get_rng_state(), rng)
    assert report.dtype == "float64"


def test_burn_in_moves_the_check_point():
    model, (x, y) = mlp(), data(64)
    at_init = gradcheck_model(model, F.cross_entropy, x, y)
    later = gradcheck_model(model, F.cross_entropy, x, y, burn_in=10,
                            optimizer=lambda params: torch.optim.SGD(params, lr=0.5))
    assert later.passed
    assert [r.analytic for r in at_init.rows] != [r.analytic for r in later.rows]


def test_dropout_passes_because_every_evaluation_draws_the_same_mask():
    model, (x, y) = mlp(dropout=0.5), data()
    report = gradcheck_model(model, F.cross_entropy, x, y, coords_per_tensor=None)
    assert report.passed, str(report)
    assert report.numeric_mode == "batched"


def test_every_tensor_gets_coordinates_biases_included():
    model, (x, y) = mlp(), data()
    report = gradcheck_model(model, F.cross_entropy, x, y, coords_per_tensor=5)
    counts = {n: sum(r.name == n for r in report.rows) for n, _ in model.named_parameters()}
    assert counts == {"0.weight": 5, "0.bias": 5, "2.weight": 5, "2.bias": 3}  # 2.bias has 3 entries
    every = gradcheck_model(model, F.cross_entropy, x, y, coords_per_tensor=None)
    assert len(every.rows) == sum(p.numel() for p in model.parameters())
    assert len({(r.name, r.index) for r in every.rows}) == len(every.rows)


def test_batched_and_loop_agree():
    model, (x, y) = mlp(), data()
    fast = gradcheck_model(model, F.cross_entropy, x, y, coords_per_tensor=8)
    slow = gradcheck_model(model, F.cross_entropy, x, y, coords_per_tensor=8, batched=False)
    assert (fast.numeric_mode, slow.numeric_mode) == ("batched", "loop")
    for a, b in zip(fast.rows, slow.rows):
        assert a.numeric == pytest.approx(b.numeric, rel=1e-6, abs=1e-9) and a.kink == b.kink


def test_sweep_reports_every_h_and_keeps_the_best():
    w = torch.linspace(0.5, 2.0, 7, dtype=torch.float64)
    report = gradcheck(lambda: (torch.exp(3 * w) / w).sum(), {"w": w}, sweep=True)
    assert [e["h"] for e in report.sweep] == list(SWEEP)
    best = min(report.sweep, key=lambda e: (e["failures"], e["worst_rel_error"]))
    assert report.h == best["h"] and report.passed
    by_h = {e["h"]: e["worst_rel_error"] for e in report.sweep}
    assert by_h[1e-3] > by_h[1e-5]  # truncation error O(h^2) at large h
    assert by_h[1e-8] > by_h[1e-5]  # round-off error ~eps/h at tiny h
    assert "h sweep" in str(report) and "<-- best" in str(report)


def test_tiny_gradients_warn_and_offer_a_rescale():
    w = torch.linspace(0.5, 1.5, 5, dtype=torch.float64)
    tiny = gradcheck(lambda: 1e-12 * (w ** 3).sum(), {"w": w})
    assert any("tiny" in m and "scale=1e+12" in m for m in tiny.warnings)
    rescaled = gradcheck(lambda: 1e-12 * (w ** 3).sum(), {"w": w}, scale=1e12)
    assert not any("tiny" in m for m in rescaled.warnings) and rescaled.passed


def test_float32_is_allowed_and_warned_about():
    model, (x, y) = mlp(), data()
    report = gradcheck_model(model, F.cross_entropy, x, y, dtype="float32", h=1e-2)
    assert report.dtype == "float32"
    assert any("float64" in m and "single precision" in m for m in report.warnings)


def test_inputs_can_be_checked_and_are_restored_bit_for_bit():
    model, (x, y) = mlp(), data()
    model, x = model.double(), x.double()
    x0 = x.clone()
    report = gradcheck(lambda: F.cross_entropy(model(x), y), {"x": x}, coords_per_tensor=None)
    assert report.passed and len(report.rows) == x.numel()
    assert torch.equal(x, x0) and not x.requires_grad


def test_wrong_gradient_through_detach_is_caught_in_both_modes():
    w = torch.randn(6, dtype=torch.float64)
    fn = lambda: (w * w.detach()).sum()  # noqa: E731 - autograd sees half of d(w^2)/dw
    for batched in (True, False):
        report = gradcheck(fn, {"w": w}, batched=batched)
        assert not report.passed and all(r.verdict == "wrong" for r in report.rows)


def test_numpy_form():
    x = np.random.default_rng(0).normal(size=(4, 3))
    x0 = x.copy()
    f = lambda z: float(np.sum(np.tanh(z) ** 2))  # noqa: E731
    right = 2 * np.tanh(x) * (1 - np.tanh(x) ** 2)
    assert gradcheck_numpy(f, x, right, coords_per_tensor=None).passed
    wrong = gradcheck_numpy(f, x, 2 * np.tanh(x), coords_per_tensor=None)
    assert not wrong.passed and wrong.numeric_mode == "numpy"
    assert np.array_equal(x, x0)


@pytest.mark.parametrize("call, message", [
    (lambda w: gradcheck(lambda: w * 2, {"w": w}), "scalar"),
    (lambda w: gradcheck(lambda: w.sum(), {}), "non-empty"),
    (lambda w: gradcheck(lambda: w.sum(), {"w": w.requires_grad_() * 2}), "leaf"),
    (lambda w: gradcheck(lambda: w.sum(), {"w": w}, h=-1.0), r"gradcheck.h takes a number in \(0, 1\], not -1.0"),
    (lambda w: gradcheck(lambda: w.sum() / 0.0, {"w": w}), "finite"),
    (lambda w: gradcheck_numpy(lambda z: 0.0, np.zeros(3), np.zeros(4)), "shape"),
])
def test_bad_input_is_one_clear_user_error(call, message):
    w = torch.ones(3, dtype=torch.float64)
    with pytest.raises(UserError, match=message):
        call(w)


def test_exactly_zero_rows_are_counted_apart_with_why():
    model, (x, y) = mlp(), data(3)
    with torch.no_grad():
        model[0].bias[:6] = -100.0  # units 0-5 dead on every datapoint
    reg = lambda m: 1e-2 * sum((p ** 2).sum() for n, p in m.named_parameters() if "weight" in n)  # noqa: E731
    report = gradcheck_model(model, F.cross_entropy, x, y, reg_fn=reg, coords_per_tensor=None)
    assert report.passed, str(report)
    zero = report.zero_rows
    assert {r.name for r in zero} >= {"0.bias", "reg:0.bias", "reg:2.bias"}
    assert all("dead unit" in r.note for r in zero if r.name == "0.bias")
    assert {r.index for r in zero if r.name == "0.bias"} >= {(i,) for i in range(6)}
    assert set(report.not_exercised) == {"reg:0.bias", "reg:2.bias"}
    assert "not in the regularization" in report.not_exercised["reg:0.bias"]
    compared = len(report.rows) - len(zero)
    assert f"{compared} coordinates of 8 tensors compared (+{len(zero)} exactly 0" in report.summary


def test_a_tensor_whose_chosen_rows_are_all_zero_gets_rows_that_exercise_it():
    model, (x, y) = mlp(), data(3)
    with torch.no_grad():
        model[0].bias[:10] = -100.0  # 10 of 12 units dead: most coordinates of 0.weight are 0 = 0
    report = gradcheck_model(model, F.cross_entropy, x, y, coords_per_tensor=2, seed=1)
    rows = [r for r in report.rows if r.name == "0.weight"]
    assert any(r.zero for r in rows) and any(not r.zero for r in rows), str(report)
    assert all(r.index[0] >= 10 for r in rows if not r.zero)  # the live units' weights
    assert report.passed and not report.not_exercised


@pytest.mark.parametrize("form", [
    lambda x, w: x @ w.t(), lambda x, w: torch.matmul(x, w.T), lambda x, w: x.mm(w.transpose(0, 1)),
    lambda x, w: (w @ x.t()).t(), lambda x, w: x @ w.t() + (w.t() ** 2).sum(),
    lambda x, w: torch.stack([w @ x[0], w @ x[1]]), lambda x, w: F.linear(x, w)])
def test_matrix_products_in_plain_functions_batch_and_agree_with_the_loop(form):
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(3, 5, generator=g, dtype=torch.float64), torch.randn(4, 5, generator=g, dtype=torch.float64)
    v = torch.randn(4, 4, generator=g, dtype=torch.float64)  # square: x @ v and v @ x both fit
    fn = lambda: torch.tanh(form(x, w) @ v).sum() + torch.tanh(v @ form(x, w).t()).sum()  # noqa: E731
    fast = gradcheck(fn, {"w": w, "v": v}, coords_per_tensor=None)
    slow = gradcheck(fn, {"w": w, "v": v}, coords_per_tensor=None, batched=False)
    assert fast.numeric_mode == "batched" and fast.passed, str(fast)
    for a, b in zip(fast.rows, slow.rows):
        assert a.numeric == pytest.approx(b.numeric, rel=1e-8, abs=1e-12)


@pytest.mark.parametrize("bias_form", [lambda h, b: h + b, lambda h, b: b + h, lambda h, b: torch.add(h, b),
                                       lambda h, b: h + b[None, :], lambda h, b: h + 2.0])
def test_a_bias_added_to_a_batched_product_agrees_with_the_loop(bias_form):
    g = torch.Generator().manual_seed(1)
    x, w = torch.randn(3, 5, generator=g, dtype=torch.float64), torch.randn(4, 5, generator=g, dtype=torch.float64)
    b = torch.randn(4, generator=g, dtype=torch.float64)
    fn = lambda: torch.tanh(bias_form(x @ w.t(), b)).pow(2).sum()  # noqa: E731
    fast = gradcheck(fn, {"w": w, "b": b}, coords_per_tensor=None)
    slow = gradcheck(fn, {"w": w, "b": b}, coords_per_tensor=None, batched=False)
    assert fast.numeric_mode == "batched" and fast.passed, str(fast)
    for a, s in zip(fast.rows, slow.rows):
        assert a.numeric == pytest.approx(s.numeric, rel=1e-8, abs=1e-12)


@pytest.mark.parametrize("act", [F.relu, torch.tanh, F.gelu, lambda h: F.leaky_relu(h, 0.1), lambda h: h.relu(),
                                 lambda h: F.hardtanh(h, -0.5, 0.5), torch.nn.ReLU(inplace=True)])
@pytest.mark.parametrize("form", ["module", "function"])
def test_a_moved_column_carried_through_activation_and_next_layer_agrees_with_the_loop(act, form):
    # Moving a weight or a bias moves one hidden unit; the batched pass carries that column
    # through the activation and the next layer's product (check.one_column) instead of K
    # dense copies. Values, kink crossings and the verdict must be the loop's.
    torch.manual_seed(4)
    x, y = torch.randn(3, 6, dtype=torch.float64), torch.tensor([0, 2, 1])
    w1, b1 = torch.randn(7, 6, dtype=torch.float64), torch.randn(7, dtype=torch.float64) * 0.1
    w2, b2 = torch.randn(3, 7, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    b1[0] = -float(x[0] @ w1[0]) + 3e-6  # unit 0 sits 3e-6 from its switch on datapoint 0
    params = {"w1": w1, "b1": b1, "w2": w2, "b2": b2}
    if form == "module":
        fn = lambda: F.cross_entropy(F.linear(act(F.linear(x, w1, b1)), w2, b2), y)  # noqa: E731
    else:
        fn = lambda: F.cross_entropy((act(x @ w1.t() + b1) + b1) @ w2.t() + b2, y)  # noqa: E731
    fast = gradcheck(fn, params, coords_per_tensor=None)
    slow = gradcheck(fn, params, coords_per_tensor=None, batched=False)
    assert fast.numeric_mode == "batched", fast.fallback
    assert fast.outcome == slow.outcome != "failed", str(fast)
    assert [r.kink for r in fast.rows] == [r.kink for r in slow.rows]
    for a, s in zip(fast.rows, slow.rows):
        assert a.numeric == pytest.approx(s.numeric, rel=1e-7, abs=1e-9)


@pytest.mark.parametrize("fn", [
    lambda x, w, v: F.linear(x[:1], w[:1]),  # the product itself is the objective (1 x 1)
    lambda x, w, v: (F.linear(x, w).relu() @ v).relu().sum(),  # carried twice, then dense
    lambda x, w, v: (lambda h: (h * h).sum() + h.relu().sum())(F.linear(x, w)),  # used twice
    lambda x, w, v: (lambda h: h.relu_().sum() + h.sum())(F.linear(x, w)),  # written in place
    lambda x, w, v: F.linear(F.linear(x, w).tanh(), w[:, :4]).sum(),  # the leaf again, as the next weight
])
def test_one_column_placeholders_never_leak_into_a_value(fn):
    # A one-column result is handed out as a placeholder; whatever the function does with it
    # next (return it, reuse it, write into it, multiply it by the leaf again) must give the
    # loop's values, batched.
    g = torch.Generator().manual_seed(2)
    x, w = torch.randn(3, 5, generator=g, dtype=torch.float64), torch.randn(4, 5, generator=g, dtype=torch.float64)
    v = torch.randn(4, 2, generator=g, dtype=torch.float64)
    fast = gradcheck(lambda: fn(x, w, v), {"w": w, "v": v}, coords_per_tensor=None)
    slow = gradcheck(lambda: fn(x, w, v), {"w": w, "v": v}, coords_per_tensor=None, batched=False)
    assert fast.numeric_mode == "batched", fast.fallback
    assert fast.outcome == slow.outcome == "passed", str(fast)
    for a, s in zip(fast.rows, slow.rows):
        assert a.numeric == pytest.approx(s.numeric, rel=1e-7, abs=1e-9)


def test_a_wrong_activation_gradient_fails_on_the_batched_carried_path():
    # relu in the forward pass, identity in the backward (a straight-through slip): the
    # numeric side runs batched, the moved unit carried through relu and the next layer.
    torch.manual_seed(7)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).double()
    x, y = torch.randn(3, 6, dtype=torch.float64), torch.tensor([0, 1, 2])

    def slipped():
        h = model[0](x)
        return F.cross_entropy(model[2](F.relu(h).detach() + h - h.detach()), y)

    report = gradcheck(slipped, dict(model.named_parameters()), coords_per_tensor=None)
    assert report.numeric_mode == "batched", report.fallback
    assert report.outcome == "failed"
    assert {r.name for r in report.failures} == {"0.weight", "0.bias"}
