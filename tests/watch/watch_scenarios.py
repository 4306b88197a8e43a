"""Small real trainings on the digits data, healthy and broken in each way the notes describe.

Each scenario returns the monitor's history and diagnoses; the tests share them (module-scoped
fixtures) and the calibration of :class:`babysit.watch.Thresholds` was done on these runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from babysit import build_model, fit, load_data
from babysit.watch import MonitorCallback


@dataclass
class Run:
    name: str
    history: object
    diagnoses: list
    state: object
    run_dir: object

    @property
    def codes(self) -> set[str]:
        return {d.code for d in self.diagnoses}


def digits(n_train: int | None = None):
    # No test split: the thresholds were calibrated on these runs with all 1,438 training
    # examples (the diagnoses read training dynamics; a test split plays no part in them).
    data = load_data("digits", test_fraction=0)
    return data if n_train is None else data.subset(n_train)


def train(name, run_dir, *, data=None, depth=2, width=64, activation="relu", init_scale=1.0,
          optimizer="nesterov", lr=0.05, epochs=6, batch_size=64, reg=1e-4, seed=0, prepare=None,
          **options) -> Run:
    torch.manual_seed(seed)
    data = data or digits()
    model = build_model("mlp", data.input_shape, data.num_classes, depth=depth, width=width,
                        activation=activation, init_scale=init_scale)
    if prepare is not None:
        prepare(model)
    params = model.parameters()
    opt = {"sgd": lambda: torch.optim.SGD(params, lr=lr),
           "nesterov": lambda: torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True),
           "adam": lambda: torch.optim.Adam(params, lr=lr)}[optimizer]()
    callback = MonitorCallback(run_dir, **options)
    state = fit(model, data, optimizer=opt, epochs=epochs, batch_size=batch_size, reg=reg,
                callbacks=[callback], seed=seed, max_loss=1e4)
    return Run(name, callback.monitor.history, callback.monitor.diagnoses(), state, run_dir)


def with_nan_input(data):
    x = data.x_train.clone()
    x[200].view(-1)[10] = math.nan
    return type(data)(data.name, x, data.y_train, data.x_val, data.y_val, data.num_classes)


def dead_first_layer(model):
    with torch.no_grad():
        model[1].bias.fill_(-10.0)


SCENARIOS = {
    "healthy": dict(),
    "lr_too_high": dict(optimizer="nesterov", lr=3.0),
    "lr_explodes": dict(optimizer="nesterov", lr=20.0, epochs=2),  # stopped within the first epoch
    "lr_too_low": dict(optimizer="sgd", lr=3e-3),
    "batch_too_small": dict(data="small", batch_size=1, optimizer="sgd", lr=0.01, epochs=3),
    "nonfinite": dict(data="nan"),
    "overfitting": dict(data="few", width=256, reg=0.0, optimizer="adam", lr=1e-3, batch_size=10, epochs=30),
    "underfitting": dict(width=2, activation="leaky_relu", optimizer="adam", lr=1e-2, epochs=10),
    "update_ratio_high": dict(optimizer="sgd", lr=0.5),
    "update_ratio_low": dict(optimizer="adam", lr=1e-6),
    "saturated_units": dict(activation="tanh", init_scale=10.0, optimizer="sgd", lr=0.01),
    "units_near_zero": dict(activation="tanh", init_scale=0.05, optimizer="sgd", lr=0.01),
    "dead_units": dict(prepare=dead_first_layer),
    "vanishing_gradients": dict(depth=8, activation="sigmoid", optimizer="sgd", lr=0.1),
    "exploding_gradients": dict(depth=8, init_scale=6.0, optimizer="sgd", lr=1e-6),
}


def run_scenario(name: str, run_dir) -> Run:
    kwargs = dict(SCENARIOS[name])
    which = kwargs.pop("data", None)
    data = {None: None, "small": lambda: digits(300), "nan": lambda: with_nan_input(digits()),
            "few": lambda: digits(30)}[which]
    return train(name, run_dir, data=data() if data else None, **kwargs)
