"""The MNIST-1D paper's setting for bench/ensembles.py, named by ``--set`` references.

Greydanus (2020), "Scaling down deep learning": 4,000 training / 1,000 test examples, and a
small CNN (three 25-channel Conv1d layers, ReLU, a linear classifier) trained with Adam 1e-2
and batches of 100. The bench uses these until the default experiment is this convnet.

* ``mnist1d_paper:official_train`` -- the 4,000 official training examples only, so that
  babysit carves its validation split from them and the official test split stays unseen;
* :func:`official_test` -- the official 1,000 test examples, standardized with the training
  split's statistics (what ``DataSplit.x_test`` holds once the test split is babysit's own);
* ``mnist1d_paper:paper_cnn`` -- the paper's CNN.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn


@functools.lru_cache(maxsize=1)
def _dataset() -> dict:
    from mnist1d.data import get_dataset_args, make_dataset

    return make_dataset(get_dataset_args())  # 5,000 examples, seed 42: the paper's data


def official_train() -> tuple[np.ndarray, np.ndarray, int]:
    data = _dataset()
    return data["x"].astype(np.float32), data["y"].astype(np.int64), 10


def official_test(split) -> tuple[torch.Tensor, torch.Tensor]:
    """The official test examples, standardized as `split` (a DataSplit) standardized its own."""
    data = _dataset()
    x = torch.as_tensor(data["x_test"], dtype=torch.float32)
    if split.mean is not None:
        x = (x - split.mean) / split.std
    return x, torch.as_tensor(data["y_test"], dtype=torch.int64)


class PaperCNN(nn.Module):
    """Conv1d(1->25, k5, s2) -> Conv1d(25->25, k3, s2) -> Conv1d(25->25, k3, s2), ReLU after each,
    then Linear(25*5 -> classes): the paper's ConvBase for 40-sample signals."""

    def __init__(self, length: int, num_classes: int, channels: int = 25):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(1, channels, 5, stride=2, padding=1), nn.ReLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten())
        with torch.no_grad():
            width = self.features(torch.zeros(1, 1, length)).shape[1]
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x.reshape(len(x), 1, -1)))


def paper_cnn(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return PaperCNN(int(np.prod(input_shape)), num_classes)
