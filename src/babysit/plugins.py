"""Load a user's own model, dataset or loss given as ``package.module:function``."""

from __future__ import annotations

import importlib
import traceback
from typing import Any, Callable

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
            raise UserError(f"module {module_name!r} has no attribute {attr!r} for {what} {reference!r}: "
                            "check the function's name")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UserError(f"{what} {reference!r} is not callable: name a function")
    return obj


def call_user(reference: str, what: str, function: Callable, *args, **kwargs) -> Any:
    """Call a user's `function`; an exception it raises becomes one line naming where in their code.

    The user's own bug is theirs to fix, so the line says what it raised and at which line of
    their file, instead of a traceback through babysit's frames.
    """
    try:
        return function(*args, **kwargs)
    except TypeError as exc:
        if exc.__traceback__ is not None and exc.__traceback__.tb_next is None:  # the call itself
            raise UserError(f"{what} {reference!r} cannot be called this way ({exc}): "
                            "check its arguments (and the config's kwargs)") from None
        raise UserError(f"{what} {reference!r} raised {describe_error(exc)}: fix it there") from None
    except UserError:
        raise
    except Exception as exc:  # anything the user's code raises
        raise UserError(f"{what} {reference!r} raised {describe_error(exc)}: fix it there") from None


def describe_error(exc: BaseException) -> str:
    """``ValueError: boom (at mymod.py:12)``: the exception and the last frame it came from."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    message = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {message}{where}" if message else f"{type(exc).__name__}{where}"


# The config keys whose value may name a user's code as ``package.module:function``.
CODE_KEYS = ("data.dataset", "model.name", "loss.name")

TRUST_FLAG = "--trust-run-dir"


def code_references(config: dict) -> dict[str, str]:
    """``{"model.name": "pkg.mod:fn", ...}``: every key of `config` that names code to import."""
    found = {}
    for key in CODE_KEYS:
        section, _, name = key.partition(".")
        value = config.get(section, {}).get(name) if isinstance(config.get(section), dict) else None
        if isinstance(value, str) and is_reference(value):
            found[key] = value
    return found


def refuse_code_from(config: dict, source: str, *, trusted: dict | None = None,
                     fix: str = f"add {TRUST_FLAG} if you wrote this run directory yourself") -> dict:
    """`config`, read from `source` (a file in a run directory), if it names no code to import.

    Anyone who can write to a run directory — a shared disk, trial folders written by other
    machines, a copied checkpoint — could otherwise make babysit import and call any function
    (``data.dataset = "os:system"``). So a config read from there may name a user's own
    ``package.module:function`` only where the `trusted` config (the one the user passed on
    the command line or from Python) names the same one under the same key.
    """
    allowed = code_references(trusted) if trusted is not None else {}
    foreign = {k: v for k, v in code_references(config).items() if allowed.get(k) != v}
    if foreign:
        key, value = next(iter(foreign.items()))
        raise UserError(f"{source} names code to import ({key} = {value!r}) and babysit never imports "
                        f"code named by a file in a run directory: {fix}")
    return config
