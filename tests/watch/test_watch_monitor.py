"""The Monitor in a user's own loop: the two-line contract, its records and what it measures."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from torch import nn

import babysit
from babysit import Monitor, build_model, fit, load_data
from babysit.errors import UserError
from babysit.watch import load_history
from babysit.watch.histograms import histogram


@pytest.fixture(scope="module")
def digits():
    return load_data("digits")


def user_loop(model, optimizer, data, mon, epochs=2, batch_size=64, tensor_loss=True):
    """A hand-written PyTorch loop with the monitor's two lines added."""
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        for i in range(0, len(data.y_train), batch_size):
            xb, yb = data.x_train[i:i + batch_size], data.y_train[i:i + batch_size]
            loss = loss_fn(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            mon.step(loss if tensor_loss else loss.item())
        with torch.no_grad():
            model.eval()
            val_scores = model(data.x_val)
            model.train()
        mon.epoch(train_acc=0.5, val_acc=(val_scores.argmax(1) == data.y_val).float().mean(),
                  val_loss=loss_fn(val_scores, data.y_val), lr=optimizer.param_groups[0]["lr"])


@pytest.fixture(scope="module")
def convnet_run(digits, tmp_path_factory):
    torch.manual_seed(0)
    run_dir = tmp_path_factory.mktemp("convnet")
    model = build_model("convnet", digits.input_shape, digits.num_classes, depth=2, width=8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    mon = babysit.Monitor(model, optimizer, run_dir=run_dir, ratio_every=3, hist_every=5, flush_every=7,
                          flush_seconds=0)
    user_loop(model, optimizer, digits, mon)
    found = mon.diagnoses()
    mon.close()
    return run_dir, mon, found


def test_contract_records_every_step_and_epoch(convnet_run, digits):
    run_dir, mon, found = convnet_run
    steps_per_epoch = -(-len(digits.y_train) // 64)
    history = load_history(run_dir)
    assert [r["step"] for r in history.steps] == list(range(1, 2 * steps_per_epoch + 1))
    assert [r["step"] for r in history.ratios] == list(range(1, 2 * steps_per_epoch + 1, 3))  # 1, 4, 7, ...
    assert [e["epoch"] for e in history.epochs] == [1, 2]
    assert {"train_acc", "val_acc", "val_loss", "lr", "dead"} <= set(history.epochs[-1])
    assert np.load(run_dir / "watch" / "first_layer.npy").shape == (8, 1, 3, 3)  # conv filters
    assert [layer["kind"] for layer in history.meta["layers"]] == ["relu", "relu"]
    # every 5th step sampled: steps 1, 6, 11, ... for each activation layer
    sampled = sorted({r["step"] for r in history.activations})
    assert sampled == list(range(1, 2 * steps_per_epoch + 1, 5))
    assert {r["step"] for r in history.gradients} == set(sampled)
    assert all(isinstance(d, babysit.Diagnosis) for d in found)
    assert json.loads((run_dir / "watch" / "diagnoses.json").read_text()) == [d.to_dict() for d in mon.close()]


def test_steps_and_epochs_read_back_in_batches_keep_their_own_epoch(convnet_run, digits):
    """Epoch ends no longer force a read: records written late still say which epoch they are in."""
    run_dir, _, _ = convnet_run
    steps_per_epoch = -(-len(digits.y_train) // 64)
    history = load_history(run_dir)
    assert [r["epoch"] for r in history.steps] == [1] * steps_per_epoch + [2] * steps_per_epoch
    assert [(e["epoch"], e["step"]) for e in history.epochs] == [(1, steps_per_epoch), (2, 2 * steps_per_epoch)]
    relu_layers = {layer["name"] for layer in history.meta["layers"]}
    assert all(set(e["dead"]) == relu_layers and all(0 <= f <= 1 for f in e["dead"].values())
               for e in history.epochs)


def test_close_unhooks_the_optimizer_and_the_model(convnet_run, digits):
    """After close, steps that would have been sampled (ratios and histograms) leave nothing."""
    _, mon, _ = convnet_run
    for i in range(15):
        loss = nn.functional.cross_entropy(mon.model(digits.x_train[:32]), digits.y_train[:32])
        mon.optimizer.zero_grad()
        loss.backward()
        mon.optimizer.step()
    assert not mon.updates.pending and not mon.activations.pending
    assert not mon.gradients.pending


def test_records_are_readable_while_training(digits, tmp_path):
    torch.manual_seed(0)
    model = build_model("mlp", digits.input_shape, digits.num_classes, depth=1, width=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    mon = Monitor(model, optimizer, run_dir=tmp_path, ratio_every=1, flush_every=10, flush_seconds=0)
    loss_fn = nn.CrossEntropyLoss()
    for i in range(25):
        loss = loss_fn(model(digits.x_train[i * 32:(i + 1) * 32]), digits.y_train[i * 32:(i + 1) * 32])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        mon.step(loss)
    # no epoch has ended and the monitor is open: two batches of 10 steps reach the disk
    steps_file = tmp_path / "watch" / "steps.jsonl"
    lines = steps_file.read_text().splitlines()
    assert len(lines) == 20 and json.loads(lines[-1])["step"] == 20
    assert len(load_history(tmp_path).ratios) == 20
    mon.close()
    assert len(load_history(tmp_path).steps) == 25


def test_a_fast_loop_batches_more_steps(digits, tmp_path, monkeypatch):
    """Within `flush_seconds` of the last batch, `flush_every` steps wait for more (up to 20
    batches' worth); once the time has passed, the next multiple of `flush_every` writes."""
    clock = [100.0]
    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])
    model = build_model("mlp", digits.input_shape, digits.num_classes, depth=1, width=8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    mon = Monitor(model, optimizer, run_dir=tmp_path, flush_every=5, flush_seconds=1.0, ratio_every=1, hist_every=0)
    written = []
    for i in range(130):
        loss = nn.functional.cross_entropy(model(digits.x_train[:16]), digits.y_train[:16])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        clock[0] += 0.001 if i < 112 else 0.5  # fast, then slow
        mon.step(loss)
        written.append(len(load_history(tmp_path).steps))
    mon.close()
    assert written[98] == 0 and written[99] == 100  # 20 batches of 5 waited, then were forced
    assert written[111] == 100  # 12 more steps in 12 ms: they wait
    assert written[114] == 115  # a second has passed at a multiple of 5 steps
    assert written[119] == 120
    assert len(load_history(tmp_path).ratios) == 130


def test_update_ratio_is_the_change_the_step_made(digits):
    """For plain SGD the update is -lr * grad: the recorded ratio must be lr ||g|| / ||w||."""
    torch.manual_seed(0)
    model = build_model("mlp", digits.input_shape, digits.num_classes, depth=1, width=16)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.3)
    mon = Monitor(model, optimizer, run_dir=None, ratio_every=1, hist_every=0)
    expected = []
    for i in range(12):
        loss = nn.functional.cross_entropy(model(digits.x_train[i * 50:(i + 1) * 50]), digits.y_train[i * 50:(i + 1) * 50])
        optimizer.zero_grad()
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters()]
        optimizer.step()
        mon.step(loss)
        weight_norms = [p.norm().item() for p in model.parameters()]
        expected.append([0.3 * g.norm().item() / w for g, w in zip(grads, weight_norms)])
    mon.close()
    got = [r["ratios"] for r in mon.history.ratios]
    assert len(got) == 12
    for row, want in zip(got, expected):
        assert row == pytest.approx(want, rel=1e-4)


@pytest.mark.parametrize("dtype, every", [(torch.float32, 1), (torch.float32, 3), (torch.float64, 1),
                                          (torch.bfloat16, 1)])
def test_update_ratio_exact_for_any_dtype_interval_and_moved_storage(digits, dtype, every):
    """Every `every`-th step records ||w_after - w_before|| / ||w_after|| in any dtype, also
    after the parameters' storage was replaced midway (p.data = ...)."""
    torch.manual_seed(0)
    model = build_model("mlp", digits.input_shape, digits.num_classes, depth=1, width=16).to(dtype)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.5)
    mon = Monitor(model, optimizer, run_dir=None, hist_every=0, ratio_every=every)
    expected = {}
    for i in range(14):
        if i == 7:
            for p in model.parameters():
                p.data = p.data.clone()  # new storage, same values
        x = digits.x_train[i * 40:(i + 1) * 40].to(dtype)
        loss = nn.functional.cross_entropy(model(x).float(), digits.y_train[i * 40:(i + 1) * 40])
        optimizer.zero_grad()
        loss.backward()
        before = [p.detach().double().clone() for p in model.parameters()]
        optimizer.step()
        mon.step(loss)
        if i % every == 0:  # steps 1, 1 + every, ...
            weight_norms = [p.detach().double().norm().item() for p in model.parameters()]
            expected[i + 1] = [(p.detach().double() - b).norm().item() / w
                               for p, b, w in zip(model.parameters(), before, weight_norms)]
    mon.close()
    got = {r["step"]: r["ratios"] for r in mon.history.ratios}
    assert sorted(got) == sorted(expected)
    for step, want in expected.items():
        assert got[step] == pytest.approx(want, rel=1e-2 if dtype == torch.bfloat16 else 1e-4), step  # bf16 norms: 8-bit mantissa


@pytest.mark.parametrize("cast", [torch.float64, torch.bfloat16])
def test_update_ratio_survives_a_cast_midway(digits, cast):
    """Casting the model mid-training (new storage of another dtype) changes nothing: each
    measured step copies the weights just before it."""
    torch.manual_seed(0)
    model = build_model("mlp", digits.input_shape, digits.num_classes, depth=1, width=16)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
    mon = Monitor(model, optimizer, run_dir=None, ratio_every=1, hist_every=0)
    for i in range(6):
        if i == 3:
            model.to(cast)
        dtype = next(model.parameters()).dtype
        x = digits.x_train[i * 40:(i + 1) * 40].to(dtype)
        loss = nn.functional.cross_entropy(model(x).float(), digits.y_train[i * 40:(i + 1) * 40])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        mon.step(loss)
    mon.close()
    rows = {r["step"]: r["ratios"] for r in mon.history.ratios}
    assert sorted(rows) == [1, 2, 3, 4, 5, 6]
    assert all(0 < ratio < float("inf") for row in rows.values() for ratio in row)


def test_monitoring_does_not_change_training(digits, tmp_path):
    def train(watched):
        torch.manual_seed(0)
        model = build_model("mlp", digits.input_shape, digits.num_classes, depth=2, width=32, activation="tanh")
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
        callbacks = [babysit.MonitorCallback(tmp_path, hist_every=3)] if watched else []
        fit(model, digits.subset(400), optimizer=optimizer, epochs=2, callbacks=callbacks, seed=1)
        return [p.detach().clone() for p in model.parameters()]
    for a, b in zip(train(False), train(True)):
        assert torch.equal(a, b)


def test_histogram_ranges_suit_the_layer():
    x = torch.linspace(-3, 3, 601)
    counts, low, high = histogram(torch.tanh(x), "tanh", 10)
    assert (low, high) == (-1.0, 1.0) and counts.sum() == 601
    counts, low, high = histogram(torch.sigmoid(x), "sigmoid", 10)
    assert (low, high) == (0.0, 1.0)
    counts, low, high = histogram(torch.relu(x), "relu", 10)
    assert (low, high.item()) == (0.0, 3.0) and counts.sum() == 601
    counts, low, high = histogram(x * 1e-6, "gradient", 10)
    assert high.item() == pytest.approx(3e-6) and low.item() == pytest.approx(-3e-6)
    assert counts.sum() == 601 and (counts - counts.flip(0)).abs().max() <= 1  # symmetric bins


def test_float_losses_and_no_run_dir(digits):
    torch.manual_seed(0)
    model = build_model("mlp", digits.input_shape, digits.num_classes, depth=1, width=16)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    mon = Monitor(model, optimizer, run_dir=None)
    user_loop(model, optimizer, digits.subset(256), mon, epochs=1, tensor_loss=False)
    mon.close()
    assert len(mon.history.steps) == 4 and all(isinstance(r["loss"], float) for r in mon.history.steps)


def test_bad_options_name_the_fix(digits):
    model = nn.Linear(3, 2)
    with pytest.raises(UserError, match="hist_every"):
        Monitor(model, torch.optim.SGD(model.parameters(), lr=0.1), run_dir=None, hist_every=-1)
    with pytest.raises(UserError, match="unknown Monitor threshold.*ratio_high"):
        Monitor(model, torch.optim.SGD(model.parameters(), lr=0.1), run_dir=None, thresholds={"ratio_hi": 1.0})
    with pytest.raises(UserError, match="flush_seconds"):
        Monitor(model, torch.optim.SGD(model.parameters(), lr=0.1), run_dir=None, flush_seconds=-1)
    frozen = nn.Linear(3, 2).requires_grad_(False)
    with pytest.raises(UserError, match="no trainable parameters"):
        Monitor(frozen, torch.optim.SGD(frozen.parameters(), lr=0.1), run_dir=None)


def test_no_host_reads_between_batch_reads(digits, monkeypatch):
    """The instruments leave everything on the device: no .item()/.tolist()/bool() per step."""
    torch.manual_seed(0)
    model = build_model("convnet", digits.input_shape, digits.num_classes, depth=1, width=4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    mon = Monitor(model, optimizer, run_dir=None, ratio_every=1, hist_every=2, flush_every=1000)
    reads = []
    for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, _name=name):
            reads.append(_name)
            return _original(self, *args)
        monkeypatch.setattr(torch.Tensor, name, counted)
    for i in range(6):  # sampled steps (1, 3, 5) included
        loss = nn.functional.cross_entropy(model(digits.x_train[i * 32:(i + 1) * 32]), digits.y_train[i * 32:(i + 1) * 32])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        mon.step(loss)
    assert reads == []
    mon.flush()  # the batch read: one transfer per kind (scalars per dtype, vectors)
    assert set(reads) == {"tolist"} and len(reads) <= 4
    monkeypatch.undo()
    mon.close()
    assert len(mon.history.activations) == 3 and len(mon.history.ratios) == 6


def test_record_lines_are_the_json_of_the_record():
    """Plain records are the json module's lines; NaN/Inf take babysit's "nan"/"inf" form as
    in every other record, and every line reads back as its record."""
    from babysit.rundir import dumps
    from babysit.watch.records import _line, _step_lines

    records = [{"step": 3, "epoch": 1, "loss": 0.123456789}, {"step": 4, "epoch": 1, "loss": float("nan")},
               {"step": 4, "ratios": [1.0, float("inf"), 0.5]}, {"odd key": 1.5, "n": True}]
    for record in records:
        assert _line(record) == dumps(record) + "\n" and _line(record).count("\n") == 1
    assert json.loads(_line(records[0])) == records[0]
    assert json.loads(_line(records[1]))["loss"] == "nan"
    steps = [{"step": 5, "epoch": 2, "loss": 1e-300}, *records[:2], {"step": 6, "epoch": 2, "loss": 3.0}]
    for batch in (steps[:1], steps[2:3], steps[:1] + steps[3:], steps):  # one json call, or line by line
        assert _step_lines(batch) == "".join(map(_line, batch))


def test_files_exist_from_the_start(digits, tmp_path):
    """Readers find every stream (empty) and the diagnoses ([]) as soon as the monitor exists."""
    model = build_model("mlp", digits.input_shape, digits.num_classes, depth=1, width=8)
    mon = Monitor(model, torch.optim.SGD(model.parameters(), lr=0.1), run_dir=tmp_path)
    watch = tmp_path / "watch"
    for stream in ("steps", "ratios", "grad_norms", "activations", "gradients", "epochs"):
        assert (watch / f"{stream}.jsonl").read_text() == ""
    assert json.loads((watch / "diagnoses.json").read_text()) == []
    assert json.loads((watch / "meta.json").read_text())["first_layer"] == "1.weight"  # after the Flatten
    mon.close()


def test_a_document_is_replaced_when_its_object_changed_in_place(tmp_path):
    """Documents are compared with what was written last, not re-encoded, so the monitor's meta
    (one dict, changed in place) must still reach its file; an unchanged one leaves it alone."""
    from babysit.watch.records import History, Recorder

    history = History(meta={"layers": [], "first_layer": None})
    recorder = Recorder(tmp_path, history)
    recorder.write_meta()
    meta = tmp_path / "watch/meta.json"
    written = meta.stat().st_mtime_ns
    recorder.write_meta()
    assert meta.stat().st_mtime_ns == written  # nothing to replace
    history.meta["layers"].append({"name": "1", "kind": "relu"})
    history.meta["first_layer"] = "0.weight"
    recorder.write_meta()
    assert json.loads(meta.read_text()) == {"layers": [{"name": "1", "kind": "relu"}], "first_layer": "0.weight"}
    history.meta["nan"] = float("nan")  # never equal to itself: compared as bytes
    recorder.write_meta()
    recorder.write_meta()
    assert json.loads(meta.read_text())["nan"] == "nan"


def test_first_layer_of_an_mlp_on_images_is_saved_as_images(digits, tmp_path):
    """A fully connected first layer on image inputs: each row of W saved as the (C, H, W)
    image the sampled steps saw, and drawn as tiles; no temp file is left either way."""
    from babysit.watch import first_layer, load_history
    from babysit.watch.plots import draw_all

    model = build_model("mlp", digits.input_shape, digits.num_classes, depth=1, width=8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    mon = Monitor(model, optimizer, run_dir=tmp_path, hist_every=1)
    loss = nn.functional.cross_entropy(model(digits.x_train[:32]), digits.y_train[:32])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    mon.step(loss)
    mon.close()
    weight = np.load(tmp_path / "watch" / "first_layer.npy")
    assert weight.shape == (8, 1, 8, 8)
    assert np.array_equal(weight.reshape(8, 64), model[1].weight.detach().numpy())
    assert first_layer.as_pictures(weight, None)[0] == "tiles"
    assert not list((tmp_path / "watch").glob(".*.tmp"))
    draw_all(tmp_path, load_history(tmp_path))
    assert (tmp_path / "watch" / "plots" / "first_layer.png").exists()
    other = tmp_path / "no-first-layer"
    Monitor(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), torch.optim.SGD(model.parameters(), lr=0.1),
            run_dir=other, first_layer=False).close()
    assert not list((other / "watch").glob(".*"))


@pytest.mark.parametrize("array", [np.arange(12, dtype=np.float32).reshape(3, 4),
                                   np.linspace(-1, 1, 2 * 3 * 5 * 5).reshape(2, 3, 5, 5),
                                   np.ones((4, 1, 8, 8), dtype=np.float32)[:, :, ::2],  # not contiguous
                                   np.zeros((0, 7), dtype=np.float32)])
def test_first_layer_bytes_are_the_npy_format(array):
    """The .npy bytes the monitor writes at close: np.load reads back the very array."""
    import io

    from babysit.watch.first_layer import npy_bytes

    data = npy_bytes(array)
    loaded = np.load(io.BytesIO(data), allow_pickle=False)
    assert loaded.dtype == array.dtype and loaded.shape == array.shape
    assert np.array_equal(loaded, array)
    assert (10 + int.from_bytes(data[8:10], "little")) % 64 == 0


@pytest.mark.parametrize("flush_every", [3, 1000])
def test_a_weight_turned_nan_is_found_in_the_ratios(digits, tmp_path, flush_every):
    """A NaN that reaches the weights without going through the loss (here written into
    them) shows in the update ratios: the nonfinite rule names the step, whether the batches
    were diagnosed as they came or all at once, and a diagnosis of the records on disk agrees."""
    from babysit.watch import diagnose

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    mon = Monitor(model, optimizer, run_dir=tmp_path, ratio_every=1, hist_every=0, first_layer=False,
                  flush_every=flush_every,
                  flush_seconds=0)
    for step in range(1, 13):
        loss = nn.functional.cross_entropy(model(digits.x_train[:32]), digits.y_train[:32])
        optimizer.zero_grad()
        loss.backward()
        if step == 8:
            with torch.no_grad():
                model[3].weight[0, 0] = float("nan")
        optimizer.step()
        mon.step(loss.item() if step < 8 else 1.0)  # the loss read before the NaN: finite throughout
        if step % 3 == 0:
            assert all(d.code != "nonfinite" for d in mon.diagnoses()) == (step < 8)
    found = next(d for d in mon.close() if d.code == "nonfinite")
    assert found.evidence == {"weights_step": 8, "first_step": 8}
    again = next(d for d in diagnose(load_history(tmp_path)) if d.code == "nonfinite")
    assert again.evidence == found.evidence


def test_epochs_read_back_in_one_batch_keep_their_steps_apart(digits, tmp_path):
    """A loop of short epochs is read back when `flush_seconds` have passed, not at every
    epoch end: the steps of three epochs reach the disk in one batch, each in its own epoch,
    with the unit statistics of each epoch's window."""
    torch.manual_seed(0)
    model = build_model("mlp", digits.input_shape, digits.num_classes, depth=1, width=16)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    mon = Monitor(model, optimizer, run_dir=tmp_path, ratio_every=2, hist_every=3, flush_seconds=3600)
    data = digits.subset(256)
    user_loop(model, optimizer, data, mon, epochs=3)
    assert (tmp_path / "watch" / "steps.jsonl").read_text() == ""  # nothing due yet
    mon.flush()
    history = load_history(tmp_path)
    assert [r["epoch"] for r in history.steps] == [1] * 4 + [2] * 4 + [3] * 4
    assert [(e["epoch"], e["step"]) for e in history.epochs] == [(1, 4), (2, 8), (3, 12)]
    assert [sorted(e["dead"]) for e in history.epochs] == [["2"]] * 3  # each epoch had a sampled step
    assert [r["step"] for r in history.ratios] == [1, 3, 5, 7, 9, 11]
    mon.close()


def test_read_back_returns_each_group_in_its_own_order_across_dtypes_and_shapes():
    """The probes leave 0-d and 1-d tensors of several dtypes; read_back stacks the 0-d ones per
    dtype and joins everything in one transfer, so each group's values must come back in the
    group's own order, exactly (float32 values stay exact as floats)."""
    from babysit.watch.records import read_back

    third = torch.tensor(1 / 3, dtype=torch.float32)
    groups = [[torch.tensor(1.5), torch.tensor([2.0, 3.0]), torch.tensor(0.25, dtype=torch.float64)],
              [], [torch.tensor([7.0], dtype=torch.float64), third, torch.tensor(-1.0)]]
    assert read_back(groups) == [[1.5, 2.0, 3.0, 0.25], [], [7.0, float(third), -1.0]]
