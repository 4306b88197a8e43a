"""The data as training and validation tensors, one fixed split, standardized from training only."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..config import check_value
from ..errors import UserError


@dataclass
class DataSplit:
    """Training and validation tensors of one data set.

    ``x`` keeps the example shape: ``(N, C, H, W)`` for images (so first-layer filters can be
    drawn), ``(N, D)`` for vectors. ``y`` holds class indices ``0..num_classes-1``.
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

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def is_image(self) -> bool:
        return self.x_train.dim() == 4

    def to(self, device: torch.device | str) -> "DataSplit":
        moved = {k: getattr(self, k).to(device) for k in ("x_train", "y_train", "x_val", "y_val")}
        return DataSplit(self.name, **moved, num_classes=self.num_classes,
                         class_names=self.class_names, mean=self.mean, std=self.std)

    def subset(self, n_train: int, n_val: int | None = None) -> "DataSplit":
        n_val = len(self.y_val) if n_val is None else n_val
        return DataSplit(self.name, self.x_train[:n_train], self.y_train[:n_train],
                         self.x_val[:n_val], self.y_val[:n_val], self.num_classes,
                         self.class_names, self.mean, self.std)

    def summary(self) -> str:
        shape = "x".join(map(str, self.input_shape))
        return (f"{self.name}: {len(self.y_train)} train / {len(self.y_val)} val, "
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
                          class_names: list[str] | None = None, limit: int = 0) -> DataSplit:
    """One fixed validation split by `split_seed`; mean/std from the training part only.

    Images are standardized per channel (one mean and std per channel, so filters keep their
    look); vectors per feature.
    """
    x = torch.as_tensor(x).float()
    y = torch.as_tensor(y)
    num_classes = validate(x, y, name, num_classes)
    y = y.long()
    check_value("data.val_fraction", val_fraction)
    check_value("data.limit", limit)
    generator = torch.Generator().manual_seed(split_seed)
    order = torch.randperm(len(y), generator=generator)
    if limit:
        order = order[:limit]
    if len(order) < MIN_EXAMPLES:
        raise UserError(f"{name}: {len(order)} examples are too few to train and validate on: give "
                        f"at least {MIN_EXAMPLES}" + (" (raise data.limit)" if limit else ""))
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
    return DataSplit(name, x_train.contiguous(), y[train_idx], x_val.contiguous(), y[val_idx],
                     num_classes, class_names or [str(i) for i in range(num_classes)],
                     mean, std)
