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
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import torch

from .errors import UserError


def _current_umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


# mkstemp makes its file 0600; a run directory is shared with the team, so the files it holds
# get the mode any new file would get (0644 under the usual umask 022).
FILE_MODE = 0o666 & ~_current_umask()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` via a temp file and rename: readers see all of it or none."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
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
    # errors="replace": a line of binary garbage decodes to something json refuses, and is
    # skipped like any other line that is not a record (an array, a number, a torn write).
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.endswith("\n"):
                break
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                yield record


def checkpoint_name(epoch: int, val_score: float) -> str:
    """``epoch_007_val_0.9312.pt``: the epoch and the validation score, readable in a listing."""
    score = f"{val_score:.4f}" if math.isfinite(val_score) else "nan"
    return f"epoch_{epoch:03d}_val_{score}.pt"


CHECKPOINT_NAME = re.compile(r"epoch_(\d+)_val_([-+\w.]+)\.pt")


def checkpoint_epoch(path: str | os.PathLike) -> int:
    """The epoch in a checkpoint's name (:func:`checkpoint_name`)."""
    found = CHECKPOINT_NAME.fullmatch(Path(path).name)
    if found is None:
        raise UserError(f"{path} is not named like a checkpoint (epoch_007_val_0.9312.pt): "
                        "rename or remove it")
    return int(found.group(1))


def save_checkpoint(path: str | os.PathLike, payload: dict) -> Path:
    """Serialize `payload` (tensors, numbers, strings, dicts, lists) atomically."""
    import io

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu",
                    keys: tuple[str, ...] = ()) -> dict:
    """Load a checkpoint without unpickling arbitrary objects (``weights_only=True``).

    It must be a dict holding `keys`: anything else (a bare tensor, another program's file) is
    a UserError naming the file, not a KeyError later.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist: give the path of an epoch_*.pt file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt or foreign file
        raise UserError(f"cannot read checkpoint {path} ({type(exc).__name__}): "
                        "it is corrupt or not a babysit checkpoint; remove it") from None
    missing = [k for k in keys if k not in payload] if isinstance(payload, dict) else list(keys)
    if not isinstance(payload, dict) or missing:
        what = f"lacks {', '.join(missing)}" if isinstance(payload, dict) else f"holds a {type(payload).__name__}"
        raise UserError(f"checkpoint {path} {what}, not what babysit writes: remove it, or give "
                        "a run directory babysit wrote")
    return payload


def list_checkpoints(folder: str | os.PathLike) -> list[Path]:
    """Checkpoints in `folder`, in epoch order; files not named like one are not checkpoints."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if CHECKPOINT_NAME.fullmatch(p.name) and p.is_file()]
    return sorted(found, key=lambda p: (checkpoint_epoch(p), p.name))


RESUMABLE = ("train", "search")  # the verbs with --resume


def _make_folder(path: Path, what: str) -> Path:
    """Make `path` (and its parents), or a UserError saying why it cannot be a run directory."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
    except (FileExistsError, NotADirectoryError):  # a file in the way: path or a folder above it
        raise UserError(f"{what} {path} cannot be made: it or a folder above it is a file; "
                        "give a folder path") from None
    except OSError as exc:
        raise UserError(f"{what} {path} cannot be made ({exc.strerror}): give a folder you "
                        "can write to") from None
    return path


class RunDir:
    """A run directory on disk. Paths inside it are relative strings such as ``"watch/steps.jsonl"``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    made: Path | None = None  # the top-most folder create() or fresh() made (None: it existed)

    @classmethod
    def create(cls, root: str | os.PathLike = "runs", name: str = "default") -> "RunDir":
        """A fresh folder ``root/name``, or ``root/name-2``, ``-3``... when that one is taken."""
        root = Path(root)
        candidate, n = root / name, 1
        while candidate.is_dir() and any(candidate.iterdir()) or candidate.is_file():
            n += 1
            candidate = root / f"{name}-{n}"
        return cls._made(candidate, "the run directory")

    @classmethod
    def _made(cls, path: Path, what: str) -> "RunDir":
        top = None
        for folder in (path, *path.parents):
            if folder.exists():
                break
            top = folder
        run_dir = cls(_make_folder(path, what))
        run_dir.made = top
        return run_dir

    def discard_unless_used(self) -> None:
        """Undo a fresh run directory that bad input stopped before it held any result: the
        folders this process made go, and an empty folder it was given is left empty."""
        if self.holds_results():
            return
        if self.made is not None:
            shutil.rmtree(self.made, ignore_errors=True)
            return
        for child in self.path.iterdir():
            shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)

    def holds_results(self) -> bool:
        """A metrics line, a checkpoint, a search record or a trial: something worth keeping."""
        return ((self.path / "metrics.jsonl").is_file() or any(self.path.rglob("*.pt"))
                or any(p.name != ".lock" for p in (self.path / "search").glob("*"))  # not the master's lock
                or (self.path / "trials").exists())

    @classmethod
    def fresh(cls, path: str | os.PathLike, verb: str = "train") -> "RunDir":
        """The folder `path` for a new run: it must be new or empty, so two runs never mix."""
        path = Path(path)
        if path.is_dir() and any(path.iterdir()):
            way = f"continue it with babysit {verb} --resume {path}, or " if verb in RESUMABLE else ""
            raise UserError(f"--run-dir {path} is not empty: {way}give a new folder (or delete it), "
                            "so two runs' files do not mix")
        return cls._made(path, "--run-dir")

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
