"""Data sets by name: ``digits`` (the embedded default), ``mnist1d``, ``cifar10``, ``mnist``,
or a user's ``package.module:function`` returning ``(x, y)`` or ``(x, y, num_classes)``."""

from __future__ import annotations

import torch

from ..errors import UserError
from ..plugins import is_reference, load_callable
from . import builtin, files
from .split import DataSplit, split_and_standardize, validate

DATASETS = ("digits", "mnist1d", "cifar10", "mnist")


def load_data(dataset: str = "digits", *, path: str = "", val_fraction: float = 0.2,
              split_seed: int = 0, standardize: bool = True, limit: int = 0,
              kwargs: dict | None = None) -> DataSplit:
    """Load a data set and split it into training and validation parts (see ``[data]`` in the config)."""
    kwargs = kwargs or {}
    class_names = None
    if dataset == "digits":
        x, y, c = builtin.digits()
    elif dataset == "mnist1d":
        x, y, c = builtin.mnist1d(**kwargs)
    elif dataset == "cifar10":
        x, y, c = files.cifar10(path)
        class_names = files.CIFAR10_CLASSES
    elif dataset == "mnist":
        x, y, c = files.mnist(path)
    elif is_reference(dataset):
        x, y, c = _from_plugin(dataset, kwargs)
    else:
        raise UserError(f"unknown data set {dataset!r}: use one of {', '.join(DATASETS)} "
                        "or package.module:function")
    return split_and_standardize(dataset, torch.as_tensor(x), torch.as_tensor(y), val_fraction=val_fraction,
                                 split_seed=split_seed, standardize=standardize, num_classes=c,
                                 class_names=class_names, limit=limit)


def from_config(data_config: dict) -> DataSplit:
    return load_data(**data_config)


def _from_plugin(reference: str, kwargs: dict):
    result = load_callable(reference, "data set")(**kwargs)
    if not isinstance(result, tuple) or len(result) not in (2, 3):
        raise UserError(f"data set {reference!r} must return (x, y) or (x, y, num_classes)")
    x, y = torch.as_tensor(result[0]), torch.as_tensor(result[1])
    if x.dim() not in (2, 4):
        raise UserError(f"data set {reference!r}: inputs must be (N, D) vectors or (N, C, H, W) "
                        f"images, got shape {tuple(x.shape)}")
    return x, y, (result[2] if len(result) == 3 else None)


__all__ = ["DataSplit", "load_data", "from_config", "split_and_standardize", "validate", "DATASETS"]
