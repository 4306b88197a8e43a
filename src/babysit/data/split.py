"""The data as training, validation and test tensors: fixed splits, standardized from training only.

Validation chooses (hyperparameters, the epoch, ensemble members); the test split is held out
and read once, by the final evaluation (:mod:`babysit.evaluation`). To make that a fact rather
than a promise, a :class:`DataSplit`'s test tensors raise :class:`TestSplitLocked` when read
outside ``with data.unlocked_test(): ...``: a choice that peeked at the test split would fail
loudly instead of quietly reporting an optimistic number.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from dataclasses import InitVar, dataclass, field
from typing import Iterator

import torch

from ..config import check_value
from ..errors import UserError


class TestSplitLocked(RuntimeError):
    """The test split was read before the final evaluation (a bug: only the final evaluation
    reads it, inside :meth:`DataSplit.unlocked_test`)."""

    __test__ = False  # not a pytest test class, despite the name


@dataclass
class DataSplit:
    """Training, validation and (held-out) test tensors of one data set.

    ``x`` keeps the example shape: ``(N, C, H, W)`` for images (so first-layer filters can be
    drawn), ``(N, D)`` for vectors. ``y`` holds class indices ``0..num_classes-1``. The test
    split is given as ``test=(x_test, y_test)`` and read as ``x_test``/``y_test`` only inside
    :meth:`unlocked_test`; ``n_test`` (its size) and ``test_source`` (where it came from) are
    free to read.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    num_classes: int
    class_names: list[str] = field(default_factory=list)
    mean: torch.Tensor | None = None  # the standardization applied, from the training split
    std: torch.Tensor | None = None
    test: InitVar[tuple[torch.Tensor, torch.Tensor] | None] = None
    test_source: str = ""  # "MNIST-1D official test split" | "held out: data.test_fraction=0.2"
    _test: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, init=False, repr=False,
                                                            compare=False)
    _unlocked: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self, test) -> None:
        if test is not None:
            x_test, y_test = test
            if len(x_test) != len(y_test):
                raise ValueError(f"test split: {len(x_test)} examples but {len(y_test)} labels")
            self._test = (x_test, y_test)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def is_image(self) -> bool:
        return self.x_train.dim() == 4

    # -- the test split, locked until the final evaluation -------------------------------------

    @property
    def n_test(self) -> int:
        return 0 if self._test is None else len(self._test[1])

    @property
    def x_test(self) -> torch.Tensor:
        return self._read_test()[0]

    @property
    def y_test(self) -> torch.Tensor:
        return self._read_test()[1]

    def _read_test(self) -> tuple[torch.Tensor, torch.Tensor]:
        if not self._unlocked:
            raise TestSplitLocked(f"the test split of {self.name} was read before the final "
                                  "evaluation: validation chooses, the test split only reports")
        if self._test is None:
            raise UserError(f"{self.name} has no test split (data.test_fraction = 0): set "
                            "data.test_fraction, e.g. 0.2, to hold one out")
        return self._test

    def test_digest(self) -> str:
        """SHA-256 of the test tensors, for a run's data fingerprint. The tensors themselves stay
        locked: a hash tells which examples were held out and lets no one choose by them."""
        digest = hashlib.sha256()
        for name, tensor in zip(("x_test", "y_test"), self._test or ()):
            array = tensor.detach().cpu().contiguous().numpy()
            digest.update(f"{name}{array.shape}{array.dtype}".encode())
            digest.update(array.tobytes())
        return digest.hexdigest()

    @contextlib.contextmanager
    def unlocked_test(self) -> Iterator["DataSplit"]:
        """The test tensors readable inside the block: for the final evaluation only."""
        self._unlocked += 1
        try:
            yield self
        finally:
            self._unlocked -= 1

    # -- copies --------------------------------------------------------------------------------

    def _with(self, x_train, y_train, x_val, y_val, test) -> "DataSplit":
        return DataSplit(self.name, x_train, y_train, x_val, y_val, self.num_classes,
                         self.class_names, self.mean, self.std, test=test,
                         test_source=self.test_source)

    def to(self, device: torch.device | str) -> "DataSplit":
        """The same splits on `device` (the test split moves too, still locked)."""
        test = None if self._test is None else tuple(t.to(device) for t in self._test)
        return self._with(self.x_train.to(device), self.y_train.to(device), self.x_val.to(device),
                          self.y_val.to(device), test)

    def subset(self, n_train: int, n_val: int | None = None) -> "DataSplit":
        n_val = len(self.y_val) if n_val is None else n_val
        return self._with(self.x_train[:n_train], self.y_train[:n_train], self.x_val[:n_val],
                          self.y_val[:n_val], self._test)

    def summary(self) -> str:
        shape = "x".join(map(str, self.input_shape))
        test = f" / {self.n_test} test ({self.test_source})" if self.n_test else " / no test split"
        return (f"{self.name}: {len(self.y_train)} train / {len(self.y_val)} val{test}, "
                f"inputs {shape}, {self.num_classes} classes")


# The largest class count taken: ImageNet-21k has 21,841 classes. A count far above is a mistake
# (a label column of IDs, a num_classes typo), refused before the class names or the last
# layer are allocated for it.
MAX_CLASSES = 100_000
MIN_EXAMPLES = 10  # a training and a validation split, each with a few examples


def validate(x: torch.Tensor, y: torch.Tensor, source: str, num_classes: int | None = None) -> int:
    """Check examples and labels agree and are usable; returns the number of classes."""
    if y.dim() != 1:
        raise UserError(f"{source}: labels must be a 1-D vector of class indices, got shape {tuple(y.shape)}")
    if x.dim() == 0 or x.shape[0] != y.shape[0]:
        raise UserError(f"{source}: {x.shape[0] if x.dim() else 0} examples but {y.shape[0]} labels; "
                        "give one label per example")
    if x.shape[0] == 0:
        raise UserError(f"{source}: the data set is empty")
    if x.shape[0] < MIN_EXAMPLES:
        raise UserError(f"{source}: {x.shape[0]} examples are too few to train and validate on: give "
                        f"at least {MIN_EXAMPLES}")
    if y.is_floating_point() and not (torch.isfinite(y).all() and (y == y.round()).all()):
        example = next(float(v) for v in y if not (math.isfinite(v) and float(v).is_integer()))
        raise UserError(f"{source}: labels must be class indices 0..C-1, not fractions like {example}: "
                        "give whole numbers (an integer tensor)")
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).sum())
        raise UserError(f"{source}: {bad} input values are NaN or infinite; clean or impute them first")
    if y.min() < 0:
        raise UserError(f"{source}: label {int(y.min())} is negative; labels must be 0..C-1")
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or not 2 <= num_classes <= MAX_CLASSES:
            raise UserError(f"{source}: num_classes takes a whole number from 2 to {MAX_CLASSES}, "
                            f"not {num_classes!r}: return (x, y) to count the classes from the labels")
    found = int(y.max()) + 1
    if num_classes is None and found > MAX_CLASSES:
        raise UserError(f"{source}: label {found - 1} means {found} classes, more than {MAX_CLASSES}: "
                        "labels must be class indices 0..C-1")
    if num_classes is not None and found > num_classes:
        raise UserError(f"{source}: label {found - 1} is out of range for {num_classes} classes; "
                        f"labels must be 0..{num_classes - 1}")
    if torch.unique(y).numel() < 2:
        raise UserError(f"{source}: every label is {int(y[0])}: a classifier needs examples of at "
                        "least 2 classes")
    return num_classes or found


def split_and_standardize(name: str, x: torch.Tensor, y: torch.Tensor, *, val_fraction: float,
                          split_seed: int, standardize: bool, num_classes: int | None = None,
                          class_names: list[str] | None = None, limit: int = 0,
                          test_fraction: float = 0.2,
                          test: tuple[torch.Tensor, torch.Tensor] | None = None,
                          test_source: str = "") -> DataSplit:
    """Fixed test and validation splits by `split_seed`; mean/std from the training part only.

    The test split is `test` when the data set has one of its own (MNIST-1D's official test
    examples); otherwise a share `test_fraction` of the examples, drawn first. Validation is
    then a share `val_fraction` of what remains, the rest is the training split. `limit` keeps
    only that many of the remaining examples (drawn at random by `split_seed`) to train and
    validate on: the test split is the same with or without it, so figures compare. Images are standardized per channel (one mean and
    std per channel, so filters keep their look); vectors per feature; all three splits with
    the training split's statistics.
    """
    x = torch.as_tensor(x).float()
    y = torch.as_tensor(y)
    num_classes = validate(x, y, name, num_classes)
    y = y.long()
    check_value("data.val_fraction", val_fraction)
    check_value("data.test_fraction", test_fraction)
    check_value("data.limit", limit)
    generator = torch.Generator().manual_seed(split_seed)
    order = torch.randperm(len(y), generator=generator)
    if test is not None:
        x_test, y_test = torch.as_tensor(test[0]).float(), torch.as_tensor(test[1])
        validate(x_test, y_test, f"{name} (test split)", num_classes)
        y_test = y_test.long()
        source = test_source or f"{name}'s own test split"
    elif test_fraction > 0:
        n_test = max(1, int(round(len(order) * test_fraction)))
        x_test, y_test = x[order[:n_test]], y[order[:n_test]]
        order = order[n_test:]
        source = f"held out: data.test_fraction={test_fraction:g}"
    else:
        x_test = y_test = None
        source = ""
    if limit:  # fewer examples to train and validate on; the test split stays as it is
        order = order[:limit]
    if len(order) < MIN_EXAMPLES:
        raise UserError(f"{name}: {len(order)} examples are too few to train and validate on: give "
                        f"at least {MIN_EXAMPLES}" + (" (raise data.limit)" if limit else "")
                        + (" (or lower data.test_fraction)" if test is None and test_fraction else ""))
    n_val = max(1, int(round(len(order) * val_fraction)))
    if n_val >= len(order):
        raise UserError(f"{name}: too few examples ({len(order)}) for a validation split")
    val_idx, train_idx = order[:n_val], order[n_val:]
    x_train, x_val = x[train_idx], x[val_idx]
    mean = std = None
    if standardize:
        dims = [0, 2, 3] if x.dim() == 4 else [0]
        mean = x_train.mean(dim=dims, keepdim=True)
        std = x_train.std(dim=dims, keepdim=True).clamp_min(1e-6)
        x_train, x_val = (x_train - mean) / std, (x_val - mean) / std
        if x_test is not None:
            x_test = (x_test - mean) / std
    return DataSplit(name, x_train.contiguous(), y[train_idx], x_val.contiguous(), y[val_idx],
                     num_classes, class_names or [str(i) for i in range(num_classes)],
                     mean, std, test=None if x_test is None else (x_test.contiguous(), y_test),
                     test_source=source)
