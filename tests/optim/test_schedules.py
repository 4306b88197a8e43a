"""Learning-rate and momentum schedules: their values, and their effect inside fit()."""

import math

import pytest

from babysit import experiment
from babysit.config import load_config
from babysit.optim import SCHEDULES, from_config, learning_rate, momentum_ramp
from babysit.train.schedules import (IterationLRSchedule, LRSchedule, MomentumSchedule,
                                     PlateauSchedule, schedule_callbacks)
from babysit.train import TrainState
from tests.digits import DIGITS


def test_schedule_names_are_exported():
    assert SCHEDULES == ("constant", "step", "exponential", "inverse_time", "plateau")


def test_step_decay_values():
    # x0.5 every 5 epochs, the notes' example
    assert [learning_rate("step", 0.1, t, factor=0.5, step_every=5) for t in (0, 4, 5, 9, 10, 20)] == \
        pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.00625])
    assert learning_rate("step", 1.0, 40, factor=0.1, step_every=20) == pytest.approx(0.01)


def test_exponential_and_inverse_time_values():
    assert learning_rate("exponential", 0.2, 3, k=0.5) == pytest.approx(0.2 * math.exp(-1.5))
    assert learning_rate("inverse_time", 0.2, 3, k=0.5) == pytest.approx(0.2 / 2.5)
    assert learning_rate("constant", 0.2, 99) == 0.2


def test_momentum_ramp_values():
    assert [momentum_ramp(0.5, 0.99, t, 4) for t in (0, 1, 2, 4, 10)] == \
        pytest.approx([0.5, 0.6225, 0.745, 0.99, 0.99])


def test_plateau_halves_after_patience_epochs_without_improvement():
    class Opt:
        param_groups = [{"lr": 0.1}]

    state = TrainState(model=None, optimizer=Opt(), loss_fn=None, data=None, epochs=9, batch_size=1)
    plateau = PlateauSchedule(factor=0.5, patience=2)
    lrs = []
    for val in (1.0, 0.8, 0.9, 0.85, 0.7, 0.7, 0.71, 0.69):
        state.logs = {"val_loss": val}
        plateau.on_epoch_end(state)
        lrs.append(Opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025])


def test_config_picks_the_callbacks():
    cfg = load_config(None, DIGITS)["optim"]
    assert schedule_callbacks(cfg) == []
    cfg.update(schedule="step", mu_epochs=3.0)
    kinds = [type(c) for c in schedule_callbacks(cfg)]
    assert kinds == [LRSchedule, MomentumSchedule]
    cfg.update(schedule="exponential", schedule_unit="iteration")
    assert type(schedule_callbacks(cfg)[0]) is IterationLRSchedule
    cfg.update(schedule="plateau")
    assert type(schedule_callbacks(cfg)[0]) is PlateauSchedule


def test_from_config_ignores_schedule_keys():
    import torch
    cfg = load_config(None, [*DIGITS, "optim.name=momentum", "optim.schedule=step", "optim.mu_epochs=2"])["optim"]
    opt = from_config(cfg, [torch.zeros(3, requires_grad=True)])
    assert opt.param_groups[0]["lr"] == cfg["lr"] and opt.param_groups[0]["mu"] == cfg["mu"]


def _train(*overrides):
    cfg = load_config(None, [*DIGITS, "train.epochs=5", "model.width=16", "data.limit=300", "train.batch_size=100",
                             "train.checkpoints=false", *overrides])
    return experiment.train(cfg, None, quiet=True)


def test_step_schedule_in_epochs_inside_training():
    exp, state = _train("optim.name=momentum", "optim.lr=0.08", "optim.schedule=step",
                        "optim.step_every=2", "optim.factor=0.5")
    assert [h["lr"] for h in state.history] == pytest.approx([0.08, 0.08, 0.04, 0.04, 0.02])


def test_exponential_schedule_in_iterations_and_momentum_ramp():
    exp, state = _train("optim.name=nesterov", "optim.lr=0.05", "optim.schedule=exponential",
                        "optim.k=0.01", "optim.schedule_unit=iteration", "optim.mu=0.99",
                        "optim.mu_start=0.5", "optim.mu_epochs=4")
    steps = state.steps_per_epoch
    # the lr is set before each step from the steps already taken: the last epoch's was t = 5*steps - 1
    assert state.history[-1]["lr"] == pytest.approx(0.05 * math.exp(-0.01 * (5 * steps - 1)))
    assert state.history[0]["lr"] == pytest.approx(0.05 * math.exp(-0.01 * (steps - 1)))
    assert exp.optimizer.param_groups[0]["mu"] == pytest.approx(0.99)


def test_momentum_ramp_per_epoch_inside_training():
    seen = []

    from babysit.train import Callback

    class Spy(Callback):
        def on_batch_begin(self, state):
            if state.batch == 0:
                seen.append(state.optimizer.param_groups[0]["mu"])

    cfg = load_config(None, [*DIGITS, "train.epochs=4", "model.width=16", "data.limit=200", "optim.name=momentum",
                             "optim.mu=0.9", "optim.mu_start=0.5", "optim.mu_epochs=2",
                             "train.checkpoints=false"])
    experiment.train(cfg, None, quiet=True, callbacks=[Spy()])
    assert seen == pytest.approx([0.5, 0.7, 0.9, 0.9])


def test_a_resumed_run_continues_the_schedule_exactly(tmp_path):
    """The schedule's a0 and the velocity live in the optimizer state: resume == never stopped."""
    overrides = ["model.width=16", "data.limit=300", "train.batch_size=100", "optim.name=nesterov",
                 "optim.lr=0.08", "optim.schedule=step", "optim.step_every=1", "optim.mu_epochs=3"]
    whole = load_config(None, [*DIGITS, *overrides, "train.epochs=4"])
    _, straight = experiment.train(whole, tmp_path / "straight", quiet=True)
    experiment.train(load_config(None, [*DIGITS, *overrides, "train.epochs=2"]), tmp_path / "cut", quiet=True)
    _, resumed = experiment.train(whole, tmp_path / "cut", quiet=True, resume=True)
    assert [h["epoch"] for h in resumed.history] == [3, 4]
    for a, b in zip(straight.history[2:], resumed.history):
        assert a["lr"] == pytest.approx(b["lr"]) and a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-6)
