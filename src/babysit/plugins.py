"""Load a user's own model, dataset or loss given as ``package.module:function``."""

from __future__ import annotations

import importlib
from typing import Callable

from .errors import UserError


def is_reference(name: str) -> bool:
    return ":" in name


def load_callable(reference: str, what: str) -> Callable:
    """The callable named by ``package.module:function``, or a UserError saying why not."""
    module_name, _, attr = reference.partition(":")
    if not module_name or not attr:
        raise UserError(f"{what} {reference!r} must look like package.module:function")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or an error raised while importing the user's module
        raise UserError(f"cannot import module {module_name!r} for {what} {reference!r} "
                        f"({type(exc).__name__}: {exc}): check the name and that it is on PYTHONPATH") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UserError(f"module {module_name!r} has no attribute {attr!r} for {what} {reference!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UserError(f"{what} {reference!r} is not callable")
    return obj
