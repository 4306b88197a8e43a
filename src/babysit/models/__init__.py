"""The model zoo (built from a name and hyperparameters), losses and regularization."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import UserError
from ..plugins import call_user, is_reference, load_callable
from .convnet import convnet
from .convnet1d import convnet1d
from .layers import ACTIVATIONS, Maxout
from .losses import LOSSES, chance_loss, check_loss, make_loss, softmax_loss, step_loss, svm_loss
from .mlp import mlp
from .regularization import l2_penalty, regularized_parameters

MODELS = ("mlp", "convnet")


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int, *, depth: int = 2,
                width: int = 128, activation: str = "relu", dropout: float = 0.0,
                init_scale: float = 1.0, kwargs: dict | None = None) -> nn.Module:
    """A freshly initialized model from the ``[model]`` config section.

    A ``package.module:function`` is called as ``function(input_shape, num_classes, **kwargs)``.
    `init_scale` multiplies every initial weight (a knob the sanity checks use: too large
    weights give a loss far above chance).
    """
    if kwargs and name in MODELS:
        raise UserError(f"model.kwargs {kwargs} given, but model {name!r} takes none: set its "
                        "depth, width, activation and dropout instead (kwargs are for "
                        "package.module:function models)")
    if name == "mlp":
        model = mlp(input_shape, num_classes, depth=depth, width=width,
                    activation_name=activation, dropout=dropout)
    elif name == "convnet":  # images (C, H, W) get 2-D convolutions, vectors (D,) 1-D ones
        build = convnet if len(input_shape) == 3 else convnet1d
        model = build(input_shape, num_classes, depth=depth, width=width,
                      activation_name=activation, dropout=dropout)
    elif is_reference(name):
        model = call_user(name, "model", load_callable(name, "model"), input_shape, num_classes,
                          **(kwargs or {}))
        if not isinstance(model, nn.Module):
            raise UserError(f"model {name!r} returned a {type(model).__name__}: return a torch.nn.Module")
    else:
        raise UserError(f"unknown model {name!r}: use one of {', '.join(MODELS)} or package.module:function")
    if init_scale != 1.0:
        with torch.no_grad():
            for p in regularized_parameters(model):
                p.mul_(init_scale)
    return model


def from_config(model_config: dict, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return build_model(model_config["name"], input_shape, num_classes,
                       **{k: v for k, v in model_config.items() if k != "name"})


__all__ = ["build_model", "from_config", "mlp", "convnet", "convnet1d", "Maxout", "make_loss",
           "softmax_loss", "svm_loss", "step_loss", "chance_loss", "check_loss", "l2_penalty",
           "regularized_parameters", "MODELS", "LOSSES", "ACTIVATIONS"]
