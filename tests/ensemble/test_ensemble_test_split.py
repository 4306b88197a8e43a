"""The ensemble table on a test split: measured there once, after validation chose everything."""

import dataclasses

import pytest
import torch

from babysit import experiment
from babysit.data import DataSplit
from babysit.ensemble import build_ensembles
from babysit.ensemble.members import seed_members
from babysit.ensemble.predict import ensemble_probabilities
from babysit.stats import Accuracy, PairedDifference

KINDS = ("seeds", "checkpoints", "average")


def with_test(data: DataSplit, y_test: torch.Tensor | None = None) -> DataSplit:
    """`data` with the second half of its validation split held out as a test split (real
    digits no model trained or chose on); `y_test` replaces its labels."""
    half = len(data.y_val) // 2
    x_test, labels = data.x_val[half:], data.y_val[half:] if y_test is None else y_test
    fields = {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}
    fields.update(x_val=data.x_val[:half], y_val=data.y_val[:half])
    if "x_test" in fields:  # DataSplit with a test split of its own
        fields.update(x_test=x_test, y_test=labels)
        return DataSplit(**fields)
    split = DataSplit(**fields)
    split.x_test, split.y_test = x_test, labels
    return split


@pytest.fixture
def split_with_test(monkeypatch, small):
    """Every load of the small config's data gives its split with a held-out test part."""
    real = experiment.load_split(small())
    labels = {"y": None}

    def load_split(config):
        return with_test(real, labels["y"])

    monkeypatch.setattr(experiment, "load_split", load_split)
    return real, labels


def hits(models, x, y):
    return (ensemble_probabilities(models, x).argmax(dim=1) == y).tolist()


def test_rows_carry_test_accuracy_and_paired_gain_over_the_member_best_on_validation(
        tmp_path, small, split_with_test):
    config = small()
    experiment.train(config, tmp_path, quiet=True)
    rows = {r.kind: r for r in build_ensembles(config, tmp_path, k=3, kinds=KINDS, quiet=True)}
    data = experiment.load_split(config)
    n_test = len(data.y_test)
    for r in rows.values():
        assert r.test["n"] == r.test_best_member["n"] == r.test_gain["n"] == n_test
        assert r.test["low"] <= r.test["acc"] <= r.test["high"]
        assert r.test_gain["diff"] == pytest.approx(r.test["acc"] - r.test_best_member["acc"])
        assert r.test_gain["low"] <= r.test_gain["diff"] <= r.test_gain["high"]
        assert r.test_gain["verdict"] in ("gain", "loss", "within noise")
    # Recomputed by hand: the members' test accuracy, the baseline the member best on validation.
    models = [m.model for m in seed_members(config, tmp_path, 3, quiet=True)]
    val_correct = [sum(hits([m], data.x_val, data.y_val)) for m in models]
    best = models[val_correct.index(max(val_correct))]
    seeds = rows["seeds"]
    assert seeds.test == Accuracy.of(hits(models, data.x_test, data.y_test)).to_dict()
    assert seeds.test_best_member == Accuracy.of(hits([best], data.x_test, data.y_test)).to_dict()
    assert seeds.test_gain == PairedDifference.of(hits(models, data.x_test, data.y_test),
                                                  hits([best], data.x_test, data.y_test)).to_dict()
    assert seeds.curve_split == "test" and seeds.curve[-1] == pytest.approx(seeds.test["acc"])
    text = (tmp_path / "ensemble" / "table.txt").read_text()
    assert "test acc (95% CI)" in text and f"test: n = {n_test} examples" in text


def test_the_test_labels_choose_nothing(tmp_path, small, split_with_test):
    """Scrambled test labels change the test figures and nothing that validation decides."""
    config = small()
    experiment.train(config, tmp_path, quiet=True)
    honest = build_ensembles(config, tmp_path, k=3, kinds=KINDS, quiet=True)
    real, labels = split_with_test
    n_test = len(real.y_val) - len(real.y_val) // 2
    labels["y"] = torch.randint(0, real.num_classes, (n_test,), generator=torch.Generator().manual_seed(1))
    scrambled = build_ensembles(config, tmp_path, k=3, kinds=KINDS, quiet=True)
    chosen = ("kind", "members", "val_acc", "best_member_acc", "gain", "gain_low", "gain_high", "verdict")
    for a, b in zip(honest, scrambled):
        assert [getattr(a, f) for f in chosen] == [getattr(b, f) for f in chosen]
    assert [r.test for r in honest] != [r.test for r in scrambled]


def test_without_a_test_split_the_rows_say_so(tmp_path, small):
    if "x_test" in {f.name for f in dataclasses.fields(DataSplit)}:
        pytest.skip("every DataSplit has a test split now")
    config = small()
    experiment.train(config, tmp_path, quiet=True)
    rows = build_ensembles(config, tmp_path, k=2, kinds=KINDS, quiet=True)
    assert all(r.test is None and r.test_gain is None for r in rows)
    assert rows[0].curve_split == "validation"
    assert "test acc" not in (tmp_path / "ensemble" / "table.txt").read_text()
