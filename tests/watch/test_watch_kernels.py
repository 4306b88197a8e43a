"""The compiled kernels give what their NumPy and PyTorch counterparts give.

`babysit.watch._kernels` is optional at install time: where it was not built these tests
skip, except in CI (BABYSIT_REQUIRE_KERNELS=1), where they fail.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from babysit.watch import gradients, histograms, updates

from .conftest import need_kernels
from babysit.watch.histograms import FIXED_RANGES, NOT_ON_HOST, histogram, host_summary



@pytest.fixture(scope="module")
def digits():
    from babysit import load_data
    return load_data("digits")


@pytest.fixture(scope="module")
def compiled():
    need_kernels()
    from babysit.watch import _kernels
    return _kernels


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_step_norms_is_the_numpy_computation(compiled, dtype):
    rng = np.random.default_rng(0)
    views = [rng.standard_normal(n).astype(dtype) for n in (700, 1, 33, 4096)]
    before = np.concatenate(views) + rng.standard_normal(4830).astype(dtype) * 1e-3
    before[700] = views[1][0]  # the one-value tensor did not move
    expected_updates = [np.sum((before[o:o + v.size].astype(np.float64) - v) ** 2)
                        for o, v in zip(np.cumsum([0, 700, 1, 33]), views)]
    out = np.full((3, 8), -1.0)
    unchanged = compiled.step_norms(views, before, out, 1)
    assert unchanged == 1
    assert out[1, :4] == pytest.approx(expected_updates, rel=1e-5)
    assert out[1, 4:] == pytest.approx([np.sum(v.astype(np.float64) ** 2) for v in views], rel=1e-5)
    assert np.array_equal(before, np.concatenate(views))  # the snapshot now holds the weights
    assert (out[0] == -1).all() and (out[2] == -1).all()  # other rows untouched


def test_a_planned_step_is_the_same_step(compiled):
    """The hot path's kernel takes the buffers' addresses from a plan made once: same numbers."""
    rng = np.random.default_rng(4)
    views = [rng.standard_normal(n).astype(np.float32) for n in (300, 7)]
    before = np.concatenate(views) + np.float32(0.01)
    twin = before.copy()
    rows, twin_rows = np.zeros((2, 4)), np.zeros((2, 4))
    plan = np.array([2, 4, before.ctypes.data, rows.ctypes.data, 2, views[0].ctypes.data, 300,
                     views[1].ctypes.data, 7], dtype=np.int64).tobytes()
    assert compiled.planned_step_norms(plan, 1) == compiled.step_norms(views, twin, twin_rows, 1) == 0
    assert np.array_equal(rows, twin_rows) and np.array_equal(before, twin)
    with pytest.raises(ValueError):
        compiled.planned_step_norms(plan, 2)  # no such row
    with pytest.raises(ValueError):
        compiled.planned_step_norms(plan[:-8], 0)  # not a whole plan


def test_step_norms_refuses_what_does_not_fit(compiled):
    views = [np.zeros(4, np.float32)]
    with pytest.raises(ValueError):
        compiled.step_norms(views, np.zeros(4, np.float64), np.empty((1, 2)), 0)  # dtypes differ
    with pytest.raises(ValueError):
        compiled.step_norms(views, np.zeros(4, np.float32), np.empty((1, 2)), 1)  # no such row
    with pytest.raises(ValueError):
        compiled.step_norms(views, np.zeros(3, np.float32), np.empty((1, 2)), 0)  # too small
    with pytest.raises(TypeError):
        compiled.step_norms(tuple(views), np.zeros(4, np.float32), np.empty((1, 2)), 0)


def test_square_sums_is_the_numpy_computation(compiled):
    rng = np.random.default_rng(1)
    buffers = [rng.standard_normal(n).astype(dtype) for n, dtype in ((1000, np.float32), (7, np.float64), (1, np.float32))]
    out = np.full(4, -1.0)
    compiled.square_sums(buffers[:2] + [None] + buffers[2:], out)
    assert out == pytest.approx([np.sum(b.astype(np.float64) ** 2) for b in buffers[:2]] + [0.0]
                                + [float(buffers[2][0]) ** 2], rel=1e-6)
    with pytest.raises(ValueError):
        compiled.square_sums([np.ones(3, np.float16)], np.empty(1))
    with pytest.raises(ValueError):
        compiled.square_sums([np.ones(3, np.float32)], np.empty(2))


def _cases():
    g = torch.Generator().manual_seed(0)
    mlp = torch.randn(64, 128, generator=g)
    conv = torch.randn(64, 16, 8, 8, generator=g)
    conv[:, 3] = -1.0  # channel 3 never fires
    with_nan = mlp.clone()
    with_nan[5, 7] = float("nan")
    return [("relu", mlp.relu()), ("relu", conv.relu()), ("relu6", conv.clamp(0, 6)), ("relu", torch.zeros(8, 4)),
            ("tanh", (mlp * 3).tanh()), ("sigmoid", (conv * 4).sigmoid()), ("gradient", mlp * 1e-4),
            ("gradient", conv), ("gradient", with_nan), ("leaky_relu", torch.nn.functional.leaky_relu(mlp)),
            ("relu", mlp.relu().double())]


@pytest.mark.parametrize("kind, x", _cases(), ids=lambda v: v if isinstance(v, str) else "x".join(map(str, v.shape)))
def test_host_summary_is_what_the_pytorch_ops_give(compiled, kind, x):
    bins = 40
    edge = 0.98 * (FIXED_RANGES[kind][1] - FIXED_RANGES[kind][0]) / 2 if kind in FIXED_RANGES else -1.0
    units = np.zeros(x.shape[1], dtype=bool)
    counts, low, high, (saturated, positives, squares) = host_summary(x.numpy(), kind, bins, edge, units)
    want_counts, want_low, want_high = histogram(x, kind, bins)
    assert len(counts) == bins
    # the same bins up to values on a bin's edge (float rounding of x / scale may differ)
    assert np.abs(np.array(counts) - want_counts.numpy()).sum() <= 2
    if torch.isnan(x).any():
        assert np.isnan(high) and np.isnan(squares) and sum(counts) == 0
        return
    assert float(low) == pytest.approx(float(want_low), rel=1e-6)
    assert float(high) == pytest.approx(float(want_high), rel=1e-6)
    assert squares == pytest.approx(float((x.double() ** 2).sum()), rel=1e-5)
    if kind in FIXED_RANGES or kind in histograms.NONNEGATIVE:  # symmetric ranges do not count them
        assert positives == float((x > 0).sum())
    if kind in FIXED_RANGES:
        center = sum(FIXED_RANGES[kind]) / 2
        assert saturated == float(((x - center).abs() >= edge).sum())
    fired = (x.sum(dim=[d for d in range(x.dim()) if d != 1]) > 0) if kind in ("relu", "relu6") else None
    if fired is not None:
        assert np.array_equal(units, fired.numpy())


def test_units_are_or_ed_over_samples(compiled):
    """A channel that fires in one sample stays counted as having fired in the window."""
    units = np.zeros(3, dtype=bool)
    first = torch.zeros(4, 3, 2)
    first[1, 0, 1] = 1.0
    second = torch.zeros(4, 3, 2)
    second[3, 2, 0] = 2.0
    host_summary(first.numpy(), "relu", 10, -1.0, units)
    host_summary(second.numpy(), "relu", 10, -1.0, units)
    assert units.tolist() == [True, False, True]


def test_what_the_kernel_cannot_take_goes_to_the_pytorch_ops(compiled, monkeypatch):
    """Not contiguous, float16, empty: an error of NOT_ON_HOST, so the caller falls back (a
    tensor on another device or in bfloat16 fails earlier, in .numpy()). So does everything
    when the kernel is not compiled."""
    for values in (np.ones((4, 6), np.float32)[:, ::2], np.ones((4, 3), np.float16), np.ones((0, 3), np.float32)):
        with pytest.raises(NOT_ON_HOST):
            host_summary(values, "relu", 10)
    with pytest.raises(NOT_ON_HOST):
        torch.ones(2, dtype=torch.bfloat16).numpy()
    monkeypatch.setattr(histograms, "summarize", None)
    with pytest.raises(NOT_ON_HOST):
        host_summary(np.ones((4, 3), np.float32), "relu", 10)


@pytest.mark.parametrize("layer", [torch.nn.ReLU, torch.nn.Tanh])
def test_the_monitor_records_the_same_without_the_kernel(compiled, digits, layer, monkeypatch):
    """The sampled steps' records (histograms, saturation, dead units) from the kernel and from
    the PyTorch ops agree."""
    from babysit import Monitor

    def run():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), layer(), torch.nn.Linear(32, 10))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        mon = Monitor(model, optimizer, run_dir=None, hist_every=2, first_layer=False)
        for i in range(6):
            loss = torch.nn.functional.cross_entropy(model(digits.x_train[i * 32:(i + 1) * 32]),
                                                     digits.y_train[i * 32:(i + 1) * 32])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            mon.step(loss)
        mon.epoch(train_acc=0.5)
        mon.close()
        return mon.history

    with_kernel = run()
    monkeypatch.setattr(histograms, "summarize", None)
    monkeypatch.setattr(gradients, "square_sums", None)
    monkeypatch.setattr(updates, "planned_step_norms", None)
    without = run()
    assert len(with_kernel.activations) == len(without.activations) == 3
    assert len(with_kernel.gradients) == len(without.gradients) == 3
    for got, want in zip(with_kernel.activations + with_kernel.gradients, without.activations + without.gradients):
        assert set(got) == set(want)
        for key, value in want.items():
            if key == "counts":
                assert np.abs(np.array(got[key]) - np.array(value)).sum() <= 2
            else:
                assert got[key] == (pytest.approx(value, rel=1e-5) if isinstance(value, float) else value)
    assert with_kernel.epochs[0].get("dead") == pytest.approx(without.epochs[0].get("dead"))
    assert [r["step"] for r in with_kernel.grad_norms] == [r["step"] for r in without.grad_norms] == [1, 3, 5]
    for got, want in zip(with_kernel.grad_norms, without.grad_norms):
        assert got["rms"] == pytest.approx(want["rms"], rel=1e-5)
    assert [r["step"] for r in with_kernel.ratios] == [r["step"] for r in without.ratios] == list(range(1, 7))
    # the fallback re-measures ||w|| every 10th step, the kernel every step: equal at step 1
    assert with_kernel.ratios[0]["ratios"] == pytest.approx(without.ratios[0]["ratios"], rel=1e-5)


def test_ratio_lines_are_json_within_half_a_unit_of_the_sixth_digit(compiled):
    import json

    rng = np.random.default_rng(2)
    values = np.concatenate([10 ** rng.uniform(-12, 12, 4000), -10 ** rng.uniform(-8, 8, 1000),
                             [0.0, 1.0, 0.5, 1e-5, 9.999995e-6, 999999.5, 1e6, 123456.0, 1e-300, 1.7e308]])
    rows = values.reshape(-1, 5)
    text = compiled.ratio_lines(list(range(3, 3 + len(rows))), rows)
    lines = text.splitlines()
    assert len(lines) == len(rows) and text.endswith("\n")
    for line, row in zip(lines, rows):
        record = json.loads(line)
        assert list(record) == ["step", "ratios"]
        assert record["ratios"] == pytest.approx(row.tolist(), rel=5.000001e-6)
    assert lines[0].startswith('{"step": 3, "ratios": [')
    assert compiled.ratio_lines([1, 2], np.array([[1.0, 2.0], [np.inf, 0.0]])) is None  # babysit's own form
    assert compiled.ratio_lines([], np.empty((0, 3))) == ""
    with pytest.raises(ValueError):
        compiled.ratio_lines([1], np.ones((2, 3)))


def test_json_lines_are_what_the_json_module_writes(compiled):
    import json
    import random

    from babysit.rundir import dumps

    rng = random.Random(3)
    records = [{"step": 26, "layer": "conv.2", "kind": "relu", "counts": [rng.randint(0, 300) for _ in range(40)],
                "low": 0.0, "high": 3.6177642345428467, "zero_fraction": 0.4921875},
               {"epoch": 3, "step": 69, "val_acc": 0.9554317548746518, "dead": {"2": 0.0, "4": 0.0078125},
                "saturated": {}, "none": None, "flag": True, "empty": [], "negative": -5, "rms": [1e-300, 2.5e-7]},
               {"v": [rng.randint(-10**18, 10**18) for _ in range(100)] + [0, -1, 2**63 - 1, -2**63]}]
    assert compiled.json_lines(records) == "".join(dumps(r) + "\n" for r in records)
    floats = [rng.random() * 10 ** rng.uniform(-20, 20) for _ in range(5000)] + [0.1, 3.0, 1e22, 5e-324]
    assert json.loads(compiled.json_lines([{"v": floats}]))["v"] == floats  # exact, if not always repr's text
    for odd in ({"x": float("nan")}, {"x": "\u00e9"}, {"x": 'q"'}, {1: 2}, {"x": (1,)}, {"x": 10**20}, {"x": np.int64(3)}):
        assert compiled.json_lines([records[0], odd]) is None, odd  # the json module writes those


def test_the_clock_writes_the_steps_lines_that_read_back_as_its_records(compiled):
    import json

    rng = np.random.default_rng(5)
    losses = [(i, 1 + i // 23, float(np.float32(v))) for i, v in enumerate(rng.uniform(0, 3, 300), start=1)]
    losses += [(301, 14, 0.1), (302, 14, 2.0), (303, 14, 1e-300)]
    clock = compiled.StepClock()
    clock.flush_every = 0
    for step, epoch, loss in losses:
        clock.epoch = epoch
        clock.step(loss)
    records, text = clock.take()
    assert records == [{"step": s, "epoch": e, "loss": v} for s, e, v in losses]
    lines = text.splitlines()
    assert [json.loads(line) for line in lines] == records
    assert lines[-2] == '{"step": 302, "epoch": 14, "loss": 2.0}'
    assert clock.take() == ([], "")
    clock.on_loss = float
    for odd in (float("nan"), 1):  # a NaN, a loss kept as an object: the Python formats write those
        clock.step(0.5)
        clock.step(odd)
        records, text = clock.take()
        assert text is None and [r["loss"] for r in records][0] == 0.5 and len(records) == 2


def drive(clock, plan_rows):
    """One sequence of losses and optimizer steps through `clock`: what it kept, what it
    left to Python, and the row steps of its plan's path."""
    calls = []
    clock.on_loss = lambda loss: ("kept", loss.item()) if isinstance(loss, torch.Tensor) else float(loss)
    clock.on_batch = lambda: calls.append(("batch", clock.pending))
    clock.on_step = lambda step, unchanged: calls.append(("step", step, unchanged))
    clock.flush_every = 3
    clock.counts_steps = False
    clock.steps, clock.epoch = 10, 2
    plan, rows, weights = plan_rows
    clock.ratios = [plan, rows]
    for i in range(6):
        if i == 4:
            clock.next_special = 15  # steps 15 and later: Python's
        if i != 2:
            weights += 0.5  # step 13 leaves the weights as they were: unchanged, Python's
        clock(None, (), {})
        clock.step([0.25, torch.tensor(1.5), 3][i % 3])
        if i == 3:
            clock.epoch = 3
    clock.counts_steps = True
    clock.step(2.0)
    return clock.take()[0], clock.take()[0], calls, list(rows), clock.steps


def test_the_compiled_step_clock_is_its_python_twin(compiled):
    from babysit.watch.clock import StepClock

    results = []
    for clock in (compiled.StepClock(), StepClock()):
        weights = np.zeros(4, dtype=np.float32)
        ratios = updates.UpdateRatios([torch.from_numpy(weights)])
        ratios.before_step()
        results.append(drive(clock, (ratios.compiled_path()[0], [], weights)))
    assert results[0] == results[1]
    taken, after, calls, rows, steps = results[0]
    assert taken == [{"step": s, "epoch": e, "loss": v}
                     for s, e, v in [(11, 2, 0.25), (12, 2, ("kept", 1.5)), (13, 2, 3.0), (14, 2, 0.25),
                                     (15, 3, ("kept", 1.5)), (16, 3, 3.0), (17, 3, 2.0)]]
    assert after == [] and steps == 17
    assert calls == [("step", 13, True), ("batch", 3), ("step", 15, False), ("step", 16, False), ("batch", 6)]
    assert rows == [11, 12, 14]


def test_the_compiled_loss_curve_is_its_numpy_twin(compiled):
    """The loss-curve numbers the rules read, from the kernel's one pass and from NumPy: equal
    counts and positions, numbers equal to rounding (a running sum against NumPy's sums),
    on decaying, noisy, flat and short curves, with NaN/Inf among them."""
    from babysit.watch import curves

    rng = np.random.default_rng(0)
    cases = []
    for n in (0, 1, 2, 3, 9, 10, 11, 40, 230, 1001):
        decay = 2.3 * np.exp(-np.arange(n) / max(n / 4, 1)) + rng.normal(0, 0.1, n)
        cases += [(decay, 23), (decay, 4), (np.full(n, 0.7), 50), (-decay, 7)]
        if n:
            broken = decay.copy()
            broken[rng.integers(0, n, size=3)] = [np.nan, np.inf, -np.inf]
            cases.append((broken, 23))
    for values, window in cases:
        got, want = compiled.loss_curve(values, window), curves.loss_curve(values, window)
        assert got[:2] == want[:2]
        assert (got[4] is None) == (want[4] is None)
        assert list(got[2:4]) + list(got[4] or ()) == pytest.approx(list(want[2:4]) + list(want[4] or ()),
                                                                    rel=1e-9, abs=1e-12, nan_ok=True)
    first_bad = np.array([1.0, 2.0, np.nan, 3.0, np.inf])
    assert compiled.loss_curve(first_bad, 5)[:2] == (3, 2)
    with pytest.raises(ValueError):
        compiled.loss_curve(np.ones(12, dtype=np.float32), 5)


def test_a_plain_step_without_update_ratios_stays_in_the_clock(compiled):
    """Without the ratios' compiled path, a step before `next_special` needs no Python (the
    monitor sets `next_special` to the coming step where ratios need Python every step)."""
    from babysit.watch.clock import StepClock

    for clock in (compiled.StepClock(), StepClock()):
        calls = []
        clock.on_step = lambda step, unchanged: calls.append(step)
        clock.next_special = 3
        for _ in range(4):
            clock(None, (), {})
        assert calls == [3, 4] and clock.steps == 4
