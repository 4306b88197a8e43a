"""A user model (``model.name = "tests.watch.slow_model:build"``) whose training steps take a
while, so that a test can interrupt `babysit train` in the middle of a run."""

import time

from torch import nn


class SlowMLP(nn.Sequential):
    def forward(self, x):
        if self.training:
            time.sleep(0.03)
        return super().forward(x)


def build(input_shape, num_classes):
    inputs = 1
    for n in input_shape:
        inputs *= n
    return SlowMLP(nn.Flatten(), nn.Linear(inputs, 16), nn.ReLU(), nn.Linear(16, num_classes))
