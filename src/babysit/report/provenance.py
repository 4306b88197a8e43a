"""What reproducing a run needs beyond its config: the code's version, the data, the model.

* the code version: babysit's version and, when it runs from a git checkout, the commit
  (``+dirty`` when files differ from it);
* a fingerprint of the data: SHA-256 over the split's arrays as trained on (bytes, shapes and
  dtypes), so a changed download, split or standardization shows as a different hash;
* the architecture: every module by its qualified name (the name the gradient check, the
  monitor and this page use for a layer), its type, and the parameter count.

The data and the model are rebuilt from the run's ``config.toml`` only when it names built-in
data sets and models: a run directory is not trusted to name code to import.
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from pathlib import Path

from .. import __version__
from ..plugins import code_references


def code_version() -> str:
    """``0.1.0`` or ``0.1.0 (git 1a2b3c4d5e6f, +dirty)`` when babysit runs from a checkout."""
    source = Path(__file__).resolve().parents[3]
    if not (source / ".git").exists():
        return __version__
    try:
        commit = subprocess.run(["git", "-C", str(source), "rev-parse", "--short=12", "HEAD"],
                                capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    if not commit:
        return __version__
    return f"{__version__} (git {commit}{', +dirty' if dirty else ''})"


def rebuildable(config: dict) -> str:
    """'' when the data and model can be rebuilt safely from `config`, else why not."""
    references = code_references(config)
    if references:
        return "the config names code (" + ", ".join(references) + "): not imported from a run directory"
    return ""


@functools.lru_cache(maxsize=4)
def _described(frozen: str) -> dict:
    from ..experiment import load_split, new_model

    config = json.loads(frozen)
    data = load_split(config)
    digest = hashlib.sha256()
    arrays = {"x_train": data.x_train, "y_train": data.y_train, "x_val": data.x_val, "y_val": data.y_val}
    for name, tensor in arrays.items():
        array = tensor.detach().cpu().contiguous().numpy()
        digest.update(f"{name}{array.shape}{array.dtype}".encode())
        digest.update(array.tobytes())
    shapes = [f"{k} {tuple(v.shape)}" for k, v in arrays.items()]
    if data.n_test:  # hashed inside the split, which keeps its test tensors locked to us
        digest.update(data.test_digest().encode())
        shapes += [f"x_test {(data.n_test, *data.input_shape)}", f"y_test {(data.n_test,)}"]
    model = new_model(config, data)
    modules = [{"name": name, "type": type(m).__name__,
                "parameters": sum(p.numel() for p in m.parameters(recurse=False)),
                "detail": m.extra_repr()}
               for name, m in model.named_modules() if name]
    return {"fingerprint": "sha256:" + digest.hexdigest()[:16],
            "shapes": ", ".join(shapes),
            "parameters": sum(p.numel() for p in model.parameters()),
            "n_val": len(data.y_val),
            "modules": modules}


def describe_experiment(config: dict) -> dict:
    """{"fingerprint", "shapes", "parameters", "n_val", "modules"} of `config`'s data and model, or
    {"error": why not}."""
    why = rebuildable(config)
    if why:
        return {"error": why}
    from ..config import default_config, merge, validate_config

    try:
        resolved = validate_config(merge(default_config(), config))
        resolved["device"] = "cpu"  # the description, not the training: never wake a GPU for it
        return _described(json.dumps(resolved, sort_keys=True, default=str))
    except Exception as exc:  # a missing data file: the page says so and goes on
        return {"error": f"could not rebuild the data and model ({type(exc).__name__}: {exc})"}
