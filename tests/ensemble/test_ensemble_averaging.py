import pytest
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from babysit import experiment
from babysit.data import load_data
from babysit.train.averaging import ParameterAverage, ema_multi_avg_fn
from babysit.ensemble.members import average_from_checkpoint
from babysit.ensemble.predict import accuracy, ensemble_probabilities
from babysit.rundir import RunDir, list_checkpoints, load_checkpoint, read_jsonl
from babysit.train import fit


def test_running_average_follows_the_formula_with_warmup():
    decay = 0.9
    model = nn.Linear(3, 2)
    average = AveragedModel(model, multi_avg_fn=ema_multi_avg_fn(decay), use_buffers=True)
    expected = None
    for t in range(30):
        with torch.no_grad():
            model.weight.add_(torch.randn_like(model.weight))
        average.update_parameters(model)
        w = model.weight.detach().clone()
        if expected is None:  # the first update copies the weights
            expected = w
        else:
            d = min(decay, (1 + (t)) / (10 + (t)))  # t updates averaged before this one
            expected = d * expected + (1 - d) * w
    assert torch.allclose(average.module.weight, expected, atol=1e-6)


def test_integer_buffers_are_copied_not_averaged():
    model = nn.BatchNorm1d(4)
    average = AveragedModel(model, multi_avg_fn=ema_multi_avg_fn(0.9), use_buffers=True)
    for _ in range(5):
        model(torch.randn(8, 4))
        average.update_parameters(model)
    assert average.module.num_batches_tracked.item() == model.num_batches_tracked.item() == 5


def bn_model(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(),
                         nn.Linear(32, num_classes))


def test_batchnorm_statistics_are_reestimated_under_the_averaged_weights():
    data = load_data("digits").subset(400, 200)
    torch.manual_seed(0)
    model = bn_model(data.input_shape, 10)
    averaging = ParameterAverage(0.9)
    state = fit(model, data, optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                epochs=3, batch_size=50, callbacks=[averaging])
    averaged = averaging.averaged_model(data.x_train, batch_size=len(data.x_train))
    # By hand: the statistics of the BatchNorm's inputs under the averaged first layer.
    with torch.no_grad():
        h = averaged[1](averaged[0](data.x_train))
    bn = averaged[2]
    assert torch.allclose(bn.running_mean, h.mean(0), atol=1e-5)
    assert torch.allclose(bn.running_var, h.var(0, unbiased=True), atol=1e-4)
    # The running average of the buffers (what a stale copy would use) is not that.
    assert not torch.allclose(averaging.average.module[2].running_mean, h.mean(0), atol=1e-3)
    # What was logged and put in the checkpoint extras is this re-estimated model.
    saved = state.checkpoint_extra["average"]
    reestimated = averaging.averaged_model(data.x_train, batch_size=state.batch_size)
    assert torch.allclose(saved["2.running_mean"], reestimated[2].running_mean)
    probs = ensemble_probabilities([reestimated], data.x_val)
    assert abs(accuracy(probs, data.y_val) - state.history[-1]["val_acc_avg"]) < 1e-9


def test_training_keeps_the_average_by_default_and_saves_it(tmp_path, small):
    config = small()
    exp, state = experiment.train(config, RunDir(tmp_path), quiet=True)
    records = read_jsonl(tmp_path / "metrics.jsonl")
    assert all("val_acc_avg" in r and "val_loss_avg" in r for r in records)
    last = list_checkpoints(tmp_path / "checkpoints")[-1]
    raw, averaged, ckpt = average_from_checkpoint(last)
    assert ckpt["average_decay"] == config["ensemble"]["ema_decay"]
    # Reloaded after training, the averaged weights give exactly the logged accuracy.
    x_val, y_val = exp.data.x_val, exp.data.y_val
    assert accuracy(ensemble_probabilities([averaged], x_val), y_val) == records[-1]["val_acc_avg"]
    assert accuracy(ensemble_probabilities([raw], x_val), y_val) == records[-1]["val_acc"]
    assert not torch.equal(raw[1].weight, averaged[1].weight)


def test_ema_decay_zero_disables_the_average(tmp_path, small):
    experiment.train(small("ensemble.ema_decay=0"), RunDir(tmp_path), quiet=True)
    assert "val_acc_avg" not in read_jsonl(tmp_path / "metrics.jsonl")[-1]
    assert "average" not in load_checkpoint(list_checkpoints(tmp_path / "checkpoints")[-1])


def test_a_resumed_run_goes_on_with_its_average(tmp_path, small):
    config = small("train.epochs=2")
    experiment.train(small("train.epochs=1"), RunDir(tmp_path / "cut"), quiet=True)
    # The first run stopped after epoch 1 (as if killed); resume it to epoch 2.
    (tmp_path / "cut" / "config.toml").write_text((tmp_path / "cut" / "config.toml").read_text()
                                                   .replace("epochs = 1", "epochs = 2"))
    experiment.train(config, RunDir(tmp_path / "cut"), quiet=True, resume=True)
    experiment.train(config, RunDir(tmp_path / "whole"), quiet=True)
    cut, whole = (read_jsonl(tmp_path / name / "metrics.jsonl") for name in ("cut", "whole"))
    assert [r["val_acc_avg"] for r in cut] == [r["val_acc_avg"] for r in whole]
    assert cut[-1]["val_loss_avg"] == pytest.approx(whole[-1]["val_loss_avg"], rel=1e-6)


def test_running_average_matches_torchs_averaged_model_step_by_step():
    from babysit.train.averaging import RunningAverage

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    ours = RunningAverage(model, 0.9)
    reference = AveragedModel(model, multi_avg_fn=ema_multi_avg_fn(0.9), use_buffers=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(15):
        loss = model(torch.randn(8, 4)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ours.update(model)
        reference.update_parameters(model)
    for (name, a), b in zip(ours.module.state_dict().items(), reference.module.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-7, rtol=0), name
