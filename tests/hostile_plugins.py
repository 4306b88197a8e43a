"""A user's own data sets, models and losses that go wrong in every way a hostile-input test
can name them by (``tests.hostile_plugins:NAME``): each must end in one clear line, not a traceback."""

import torch
from torch import nn


def _xy(n=60, classes=3, dim=4):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, dim, generator=g), torch.arange(n) % classes


# --- data sets -------------------------------------------------------------------------------
def data_raises():
    raise ValueError("cannot find my files")


def data_strings():
    return "x", "y"


def data_vector():
    return torch.zeros(10)


def data_float():
    return 1.5


def data_nested_strings():
    return [["a", "b"]], ["c"]


def data_one_example():
    x, y = _xy(1)
    return x, y


def data_two_examples():
    x, y = _xy(2)
    return x, y


def data_single_class():
    x, _ = _xy()
    return x, torch.zeros(len(x), dtype=torch.long)


def data_float_labels():
    x, y = _xy()
    return x, y.float() + 0.5


def data_huge_classes():
    x, y = _xy()
    return x, y, 10**9


def data_classes_text():
    x, y = _xy()
    return x, y, "three"


def data_nan():
    x, y = _xy()
    x[0, 0] = float("nan")
    return x, y


def data_mismatch():
    x, y = _xy()
    return x, y[:-3]


def data_3d():
    return torch.zeros(10, 3, 3), torch.zeros(10, dtype=torch.long)


def data_2d_labels():
    x, y = _xy()
    return x, y[:, None]


def data_negative_labels():
    x, y = _xy()
    return x, y - 1


def data_label_out_of_range():
    x, y = _xy()
    return x, y, 2


def data_empty():
    return torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)


def data_ok(**kwargs):
    return _xy()


# --- models ----------------------------------------------------------------------------------
def model_raises(input_shape, num_classes):
    raise RuntimeError("my model is broken")


def model_not_module(input_shape, num_classes):
    return "a model"


class _Returns(nn.Module):
    def __init__(self, make):
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.make = make

    def forward(self, x):
        return self.make(x)


def model_gives_strings(input_shape, num_classes):
    return _Returns(lambda x: "scores")


def model_gives_vector(input_shape, num_classes):
    return _Returns(lambda x: torch.zeros(len(x)))


def model_gives_float(input_shape, num_classes):
    return _Returns(lambda x: 1.5)


def model_forward_raises(input_shape, num_classes):
    def boom(x):
        raise ValueError("forward fails")
    return _Returns(boom)


def model_no_parameters(input_shape, num_classes):
    return nn.Flatten()


# --- losses ----------------------------------------------------------------------------------
def loss_raises(scores, targets):
    raise ValueError("my loss is broken")


def loss_string(scores, targets):
    return "loss"


def loss_vector(scores, targets):
    return scores.sum(dim=1)


def loss_float(scores, targets):
    return 1.5


def loss_nan(scores, targets):
    return scores.sum() * float("nan")


not_callable = 3
