"""Data sets that need no network: scikit-learn's bundled digits and MNIST-1D generated offline."""

from __future__ import annotations

import numpy as np


def digits() -> tuple[np.ndarray, np.ndarray, int]:
    """The 1,797 handwritten 8x8 digits bundled with scikit-learn, as (N, 1, 8, 8) images in 0..16."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.float32)[:, None, :, :]
    return x, bunch.target.astype(np.int64), 10


def mnist1d(num_samples: int = 5000, seed: int = 42) -> tuple[np.ndarray, np.ndarray, int, tuple]:
    """MNIST-1D (Greydanus 2020): 40-sample 1-D signals of 10 digit templates, generated offline.

    ``make_dataset`` builds the data from templates in the package; nothing is downloaded.
    Returns ``(x, y, 10, (x_test, y_test))``: the package's own split (4,000 training and
    1,000 test examples at the default size) is kept, so the published test accuracies
    (Greydanus' table) compare with babysit's; validation is carved from the training part.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed = num_samples, seed
    data = make_dataset(args)
    x, y = data["x"].astype(np.float32), data["y"].astype(np.int64)
    test = (data["x_test"].astype(np.float32), data["y_test"].astype(np.int64))
    return x, y, 10, test
