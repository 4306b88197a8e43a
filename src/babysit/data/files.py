"""Loaders for user files in the standard formats: CIFAR-10 python batches and MNIST IDX files.

The CIFAR-10 batches are pickles. Unpickling runs code named inside the file, so we never use
a plain ``pickle.load``: :class:`_ArraysOnly` refuses every global except the few numpy needs
to rebuild an array, which makes a malicious batch fail instead of execute.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

from ..errors import UserError

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]
CIFAR10_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


class _ArraysOnly(pickle.Unpickler):
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
               ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = _ArraysOnly(f, encoding="bytes").load()
        data = np.asarray(batch[b"data"] if b"data" in batch else batch["data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"] if b"labels" in batch else batch["labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"{path} is not a CIFAR-10 python batch ({type(exc).__name__}: {exc}); "
                        "use the files from cifar-10-python.tar.gz") from None
    if data.ndim != 2 or data.shape[1] != 3072:
        raise UserError(f"{path}: CIFAR-10 rows must hold 3072 bytes (3x32x32), got shape {data.shape}")
    if len(labels) != len(data):
        raise UserError(f"{path}: {len(data)} images but {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32), labels


def cifar10(path: str | Path) -> tuple[np.ndarray, np.ndarray, int]:
    """CIFAR-10 from the folder of python batches (``data_batch_1`` ... ``data_batch_5``)."""
    folder = _folder(path, "cifar10")
    if (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    present = [folder / n for n in CIFAR10_BATCHES if (folder / n).is_file()]
    if not present:
        raise UserError(f"no CIFAR-10 batches (data_batch_1 ... data_batch_5) in {folder}: "
                        "set data.path to the extracted cifar-10-batches-py folder")
    parts = [_read_cifar_batch(p) for p in present]
    x = np.concatenate([p[0] for p in parts]).astype(np.float32) / 255.0
    y = np.concatenate([p[1] for p in parts])
    return x, y, 10


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc}): the file is corrupt") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise UserError(f"{path} is not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserError(f"{path} is truncated: the header is incomplete")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise UserError(f"{path} is truncated or corrupt: the header promises {expected} bytes "
                        f"of data, the file has {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise UserError(f"MNIST file {stem} (or {stem}.gz) not found in {folder}: "
                    "set data.path to the folder holding the IDX files")


def mnist(path: str | Path) -> tuple[np.ndarray, np.ndarray, int]:
    """MNIST from ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte`` (gzipped or not)."""
    folder = _folder(path, "mnist")
    images = _read_idx(_find(folder, "train-images-idx3-ubyte"))
    labels = _read_idx(_find(folder, "train-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1:
        raise UserError(f"MNIST files in {folder} have the wrong shapes: images {images.shape}, "
                        f"labels {labels.shape}; expected (N, 28, 28) and (N,)")
    if len(images) != len(labels):
        raise UserError(f"MNIST files in {folder}: {len(images)} images but {len(labels)} labels")
    return images[:, None].astype(np.float32) / 255.0, labels.astype(np.int64), 10


def _folder(path: str | Path, dataset: str) -> Path:
    if not path:
        raise UserError(f"data set {dataset!r} reads local files: set data.path to their folder")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise UserError(f"data.path {folder} is not a folder: give the folder holding the {dataset} files")
    return folder
