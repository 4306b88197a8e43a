"""The run directory: the spine every stage writes into and the report reads from.

Layout (each stage owns its sub-folder; everything is plain files)::

    runs/<name>/
      config.toml                  the resolved experiment config
      metrics.jsonl                one JSON record per epoch, append-only
      checkpoints/epoch_007_val_0.9312.pt
      gradcheck/ preflight/ watch/ search/ trials/<id>/ ensemble/
      report.html

Every whole-file write goes through a temporary file in the same folder followed by
``os.replace``, so a crash or a kill never leaves half a file behind. JSON-lines files are
appended one complete line at a time and can be read while a run is in progress.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import torch

from .errors import UserError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` via a temp file and rename: readers see all of it or none."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _jsonable(value: Any) -> Any:
    """Make tensors, numpy scalars and non-finite floats safe for strict JSON."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return _jsonable(value.tolist())
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "nan", "inf", "-inf": JSON has no literal for them
    return value


def dumps(obj: Any, **kwargs) -> str:
    return json.dumps(_jsonable(obj), **kwargs)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, dumps(obj, indent=2) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one record as a single line; a reader never sees a partial line as a record."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = dumps(record) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """All complete records of a JSON-lines file; a torn last line (a crash mid-write) is skipped."""
    return list(iter_jsonl(path))


def iter_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    path = Path(path)
    if not path.exists():
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def checkpoint_name(epoch: int, val_score: float) -> str:
    """``epoch_007_val_0.9312.pt``: the epoch and the validation score, readable in a listing."""
    score = f"{val_score:.4f}" if math.isfinite(val_score) else "nan"
    return f"epoch_{epoch:03d}_val_{score}.pt"


def checkpoint_epoch(path: str | os.PathLike) -> int:
    """The epoch in a checkpoint's name (:func:`checkpoint_name`)."""
    return int(Path(path).name.split("_")[1])


def save_checkpoint(path: str | os.PathLike, payload: dict) -> Path:
    """Serialize `payload` (tensors, numbers, strings, dicts, lists) atomically."""
    import io

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint without unpickling arbitrary objects (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist: give the path of an epoch_*.pt file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt or foreign file
        raise UserError(f"cannot read checkpoint {path} ({type(exc).__name__}): "
                        "it is corrupt or not a babysit checkpoint") from None


def list_checkpoints(folder: str | os.PathLike) -> list[Path]:
    """Checkpoints in `folder`, in epoch order."""
    folder = Path(folder)
    return sorted(folder.glob("epoch_*_val_*.pt")) if folder.is_dir() else []


class RunDir:
    """A run directory on disk. Paths inside it are relative strings such as ``"watch/steps.jsonl"``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @classmethod
    def create(cls, root: str | os.PathLike = "runs", name: str = "default") -> "RunDir":
        """A fresh folder ``root/name``, or ``root/name-2``, ``-3``... when that one is taken."""
        root = Path(root)
        candidate, n = root / name, 1
        while candidate.exists() and any(candidate.iterdir()):
            n += 1
            candidate = root / f"{name}-{n}"
        candidate.mkdir(parents=True, exist_ok=True)
        return cls(candidate)

    def __truediv__(self, rel: str) -> Path:
        return self.path / rel

    def __fspath__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def write_json(self, rel: str, obj: Any) -> Path:
        return write_json(self.path / rel, obj)

    def read_json(self, rel: str, default: Any = None) -> Any:
        p = self.path / rel
        return read_json(p) if p.exists() else default

    def append(self, rel: str, record: dict) -> None:
        append_jsonl(self.path / rel, record)

    def records(self, rel: str) -> list[dict]:
        return read_jsonl(self.path / rel)

    def write_text(self, rel: str, text: str) -> Path:
        return atomic_write_text(self.path / rel, text)

    def savefig(self, fig, rel: str, **kwargs) -> Path:
        """Save a matplotlib figure atomically as PNG."""
        import io

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", **{"dpi": 100, "bbox_inches": "tight", **kwargs})
        return atomic_write_bytes(self.path / rel, buffer.getvalue())
