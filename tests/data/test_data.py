import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from babysit.data import DataSplit, TestSplitLocked, load_data, split_and_standardize
from babysit.errors import UserError


def test_digits_is_the_embedded_default_with_image_shape():
    data = load_data("digits")
    assert isinstance(data, DataSplit)
    assert len(data.y_train) + len(data.y_val) + data.n_test == 1797
    assert data.input_shape == (1, 8, 8) and data.is_image
    assert data.num_classes == 10
    assert data.n_test == round(0.2 * 1797)  # data.test_fraction, drawn first
    assert len(data.y_val) == round(0.2 * (1797 - data.n_test))  # val_fraction of what remains
    assert data.test_source == "held out: data.test_fraction=0.2"


def _ids(tensor):
    return tensor.flatten().long().tolist()


@pytest.mark.parametrize("test_fraction, limit", [(0.2, 0), (0.3, 0), (0.2, 500), (0.0, 0)])
def test_the_three_splits_never_overlap_and_cover_the_data(test_fraction, limit):
    """Each example carries its index as its one feature: the splits' indices must be disjoint."""
    n = 1000
    x, y = torch.arange(n, dtype=torch.float32)[:, None], torch.arange(n) % 10
    data = split_and_standardize("ids", x, y, val_fraction=0.2, test_fraction=test_fraction,
                                 split_seed=7, standardize=False, limit=limit)
    with data.unlocked_test():
        test = set(_ids(data.x_test)) if data.n_test else set()
    train, val = set(_ids(data.x_train)), set(_ids(data.x_val))
    assert not (train & val) and not (train & test) and not (val & test)
    unlimited = split_and_standardize("ids", x, y, val_fraction=0.2, test_fraction=test_fraction,
                                      split_seed=7, standardize=False)
    with unlimited.unlocked_test():
        assert test == (set(_ids(unlimited.x_test)) if unlimited.n_test else set())
    assert len(test) == round(n * test_fraction)  # the same test split with or without a limit
    assert len(train) + len(val) == (limit or n - len(test))
    # the labels travelled with their examples
    assert all(int(i) % 10 == int(label) for i, label in zip(data.x_train.flatten(), data.y_train))


def test_mnist1d_keeps_its_official_test_split_apart():
    data = load_data("mnist1d", kwargs={"num_samples": 1000}, standardize=False)
    assert data.test_source == "MNIST-1D official test split"
    assert data.n_test == 200 and len(data.y_train) + len(data.y_val) == 800  # the package's 80/20
    seen = {tuple(r) for r in torch.cat([data.x_train, data.x_val]).tolist()}
    with data.unlocked_test():
        assert not any(tuple(r) in seen for r in data.x_test.tolist())


def test_the_test_split_is_locked_until_unlocked_and_moves_locked():
    data = load_data("digits")
    with pytest.raises(TestSplitLocked):
        data.x_test
    moved = data.to("cpu").subset(100)
    with pytest.raises(TestSplitLocked):
        moved.y_test
    with moved.unlocked_test():
        assert len(moved.y_test) == data.n_test == 359
    with pytest.raises(TestSplitLocked):  # locked again after the block
        moved.y_test


def test_the_test_digest_tells_test_splits_apart_and_leaves_them_locked():
    """A run's data fingerprint covers the held-out examples without reading them out."""
    a, b, c = load_data("digits", split_seed=3), load_data("digits", split_seed=3), load_data("digits", split_seed=4)
    assert a.test_digest() == b.test_digest() != c.test_digest()
    with pytest.raises(TestSplitLocked):  # hashing opened nothing
        a.x_test
    with a.unlocked_test():  # the digest is of the tensors the final evaluation reads
        import hashlib
        digest = hashlib.sha256()
        for name, t in (("x_test", a.x_test), ("y_test", a.y_test)):
            digest.update(f"{name}{t.numpy().shape}{t.numpy().dtype}".encode())
            digest.update(t.numpy().tobytes())
    assert a.test_digest() == digest.hexdigest()


def test_split_is_fixed_by_its_seed_and_disjoint():
    a, b = load_data("digits", split_seed=3), load_data("digits", split_seed=3)
    assert torch.equal(a.x_val, b.x_val) and torch.equal(a.y_train, b.y_train)
    c = load_data("digits", split_seed=4)
    assert not torch.equal(a.y_val, c.y_val)
    raw = load_data("digits", standardize=False)
    train_rows = {tuple(r) for r in raw.x_train.flatten(1).tolist()}
    val_rows = [tuple(r) for r in raw.x_val.flatten(1).tolist()]
    # Duplicated images exist in digits; almost all validation images must be unseen.
    assert sum(r in train_rows for r in val_rows) < 0.05 * len(val_rows)


def test_standardization_uses_training_statistics_only():
    data = load_data("digits")
    channel_mean = data.x_train.mean(dim=(0, 2, 3))
    assert torch.allclose(channel_mean, torch.zeros(1), atol=1e-4)
    assert torch.allclose(data.x_train.std(dim=(0, 2, 3)), torch.ones(1), atol=1e-3)
    raw = load_data("digits", standardize=False)
    # validation and test are not re-centred on their own: the training statistics apply
    assert torch.allclose(data.x_val, (raw.x_val - data.mean) / data.std, atol=1e-5)
    with data.unlocked_test(), raw.unlocked_test():
        assert torch.allclose(data.x_test, (raw.x_test - data.mean) / data.std, atol=1e-5)
        assert not torch.allclose(data.x_test.mean(), torch.zeros(()), atol=1e-3)
    assert torch.allclose(data.mean.flatten(), raw.x_train.mean(dim=(0, 2, 3)))


def test_mnist1d_generated_offline():
    data = load_data("mnist1d", kwargs={"num_samples": 600})
    assert data.input_shape == (40,) and not data.is_image
    assert len(data.y_train) + len(data.y_val) == 480 and data.n_test == 120
    assert set(data.y_train.tolist()) == set(range(10))


def write_cifar_batch(path, n, seed=0, labels=None):
    rng = np.random.default_rng(seed)
    batch = {b"batch_label": b"training batch", b"labels": labels if labels is not None else
             rng.integers(0, 10, n).tolist(), b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             b"filenames": [f"img{i}.png".encode() for i in range(n)]}
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)


def test_cifar10_python_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i in (1, 2):
        write_cifar_batch(folder / f"data_batch_{i}", 30, seed=i)
    data = load_data("cifar10", path=str(tmp_path), val_fraction=0.2)
    assert data.input_shape == (3, 32, 32)
    assert len(data.y_train) + len(data.y_val) + data.n_test == 60
    assert data.class_names[0] == "airplane"


def test_cifar10_refuses_pickles_that_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "data_batch_1", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": [0]}, f)
    with pytest.raises(UserError, match="not a CIFAR-10 python batch"):
        load_data("cifar10", path=str(tmp_path))


def test_cifar10_bad_input(tmp_path):
    with pytest.raises(UserError, match="set data.path"):
        load_data("cifar10")
    with pytest.raises(UserError, match="no CIFAR-10 batches"):
        load_data("cifar10", path=str(tmp_path))
    (tmp_path / "data_batch_1").write_bytes(b"\x80\x02garbage")
    with pytest.raises(UserError, match="not a CIFAR-10 python batch"):
        load_data("cifar10", path=str(tmp_path))
    write_cifar_batch(tmp_path / "data_batch_1", 10, labels=[12] * 10)
    with pytest.raises(UserError, match="out of range for 10 classes"):
        load_data("cifar10", path=str(tmp_path))


def write_idx(path, array, gz=False):
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_files(tmp_path, gz):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", rng.integers(0, 256, (50, 28, 28)), gz)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", np.arange(50) % 10, gz)
    data = load_data("mnist", path=str(tmp_path))
    assert data.input_shape == (1, 28, 28)
    assert len(data.y_train) + len(data.y_val) + data.n_test == 50


def test_mnist_bad_input(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_data("mnist", path=str(tmp_path))
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((5, 28, 28)))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4))
    with pytest.raises(UserError, match="5 images but 4 labels"):
        load_data("mnist", path=str(tmp_path))
    raw = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw[:-100])
    with pytest.raises(UserError, match="truncated or corrupt"):
        load_data("mnist", path=str(tmp_path))
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x12\x34\x56\x78")
    with pytest.raises(UserError, match="bad magic"):
        load_data("mnist", path=str(tmp_path))


def test_unknown_dataset_and_plugins(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="unknown data set 'cifar100'"):
        load_data("cifar100")
    with pytest.raises(UserError, match="cannot import module"):
        load_data("no_such_module_xyz:make")
    (tmp_path / "mydata.py").write_text(
        "import torch\n"
        "def make(n=40):\n    return torch.randn(n, 5), torch.arange(n) % 3\n"
        "def with_nan():\n    x = torch.randn(10, 2); x[0, 0] = float('nan'); return x, torch.zeros(10).long()\n"
        "def mismatched():\n    return torch.randn(10, 2), torch.zeros(9).long()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    data = load_data("mydata:make", kwargs={"n": 30})
    assert data.num_classes == 3 and data.input_shape == (5,)
    with pytest.raises(UserError, match="NaN or infinite"):
        load_data("mydata:with_nan")
    with pytest.raises(UserError, match="10 examples but 9 labels"):
        load_data("mydata:mismatched")
    with pytest.raises(UserError, match="no attribute"):
        load_data("mydata:missing")
