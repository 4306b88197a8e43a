"""Data sets by name: ``digits`` (the embedded default), ``mnist1d``, ``cifar10``, ``mnist``,
or a user's ``package.module:function`` returning ``(x, y)`` or ``(x, y, num_classes)``.

Each is split into training, validation and test parts (:mod:`babysit.data.split`): MNIST-1D
keeps its official test split, every other data set holds out ``data.test_fraction``."""

from __future__ import annotations

import torch

from ..config import DEFAULTS
from ..errors import UserError
from ..plugins import call_user, is_reference, load_callable
from . import builtin, files
from .split import DataSplit, TestSplitLocked, split_and_standardize, validate

DATASETS = ("digits", "mnist1d", "cifar10", "mnist")


def load_data(dataset: str = "digits", *, path: str = "",
              val_fraction: float = DEFAULTS["data"]["val_fraction"],
              test_fraction: float = DEFAULTS["data"]["test_fraction"], split_seed: int = 0, standardize: bool = True,
              limit: int = 0, kwargs: dict | None = None) -> DataSplit:
    """Load a data set and split it into training, validation and test parts (see ``[data]``
    in the config)."""
    kwargs = kwargs or {}
    class_names, test, test_source = None, None, ""
    if kwargs and dataset in DATASETS and dataset != "mnist1d":
        raise UserError(f"data.kwargs {kwargs} given, but data set {dataset!r} takes none: remove "
                        "[data.kwargs] (it is for mnist1d and package.module:function data sets)")
    if dataset == "mnist1d":
        x, y, c, test = call_user("mnist1d", "data set", builtin.mnist1d, **kwargs)
        test_source = "MNIST-1D official test split"
    elif dataset == "digits":
        x, y, c = builtin.digits()
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
    return split_and_standardize(dataset, x, y, val_fraction=val_fraction,
                                 test_fraction=test_fraction, split_seed=split_seed,
                                 standardize=standardize, num_classes=c, class_names=class_names,
                                 limit=limit, test=test, test_source=test_source)


def from_config(data_config: dict) -> DataSplit:
    return load_data(**data_config)


def _from_plugin(reference: str, kwargs: dict):
    result = call_user(reference, "data set", load_callable(reference, "data set"), **kwargs)
    if not isinstance(result, (tuple, list)) or len(result) not in (2, 3):
        raise UserError(f"data set {reference!r} returned a {type(result).__name__}: return (x, y) "
                        "or (x, y, num_classes)")
    x, y = as_tensor(result[0], f"data set {reference!r}: x"), as_tensor(result[1], f"data set {reference!r}: y")
    if x.dim() not in (2, 4):
        raise UserError(f"data set {reference!r}: inputs must be (N, D) vectors or (N, C, H, W) "
                        f"images, got shape {tuple(x.shape)}")
    return x, y, (result[2] if len(result) == 3 else None)


def as_tensor(value, what: str) -> torch.Tensor:
    """`value` (a tensor, an array, nested lists of numbers) as a tensor, else one line."""
    try:
        tensor = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        raise UserError(f"{what} must be a tensor or array of numbers, not {type(value).__name__}") from None
    if tensor.is_complex() or not (tensor.is_floating_point() or tensor.dtype in INTEGER_TYPES):
        raise UserError(f"{what} must hold real numbers, not {tensor.dtype}")
    return tensor


INTEGER_TYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.bool)


__all__ = ["DataSplit", "TestSplitLocked", "load_data", "from_config", "split_and_standardize", "validate", "DATASETS"]
