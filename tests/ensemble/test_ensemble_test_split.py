"""The ensemble table on the test split: scored there once, at the end, after validation chose."""

import json

import pytest

from babysit import experiment
from babysit.ensemble import build_ensembles
from babysit.ensemble.members import seed_members
from babysit.ensemble.predict import ensemble_probabilities, members_curve
from babysit.stats import Accuracy, PairedDifference

KINDS = ("seeds", "checkpoints", "average")


def hits(models, x, y):
    return (ensemble_probabilities(models, x).argmax(dim=1) == y).tolist()


def test_rows_carry_test_accuracy_and_paired_gain_over_the_member_best_on_validation(tmp_path, small):
    config = small()
    experiment.train(config, tmp_path, quiet=True)
    rows = {r.kind: r for r in build_ensembles(config, tmp_path, k=3, kinds=KINDS, quiet=True)}
    data = experiment.load_split(config)
    assert data.n_test > 0  # digits hold out data.test_fraction
    for r in rows.values():
        assert r.test["n"] == r.test_best_member["n"] == r.test_gain["n"] == data.n_test
        assert r.test["low"] <= r.test["acc"] <= r.test["high"]
        assert r.test_gain["diff"] == pytest.approx(r.test["acc"] - r.test_best_member["acc"])
        assert r.test_gain["low"] <= r.test_gain["diff"] <= r.test_gain["high"]
    # By hand: the member best on validation is the baseline; the curve is the test split's.
    models = [m.model for m in seed_members(config, tmp_path, 3, quiet=True)]
    val_correct = [sum(hits([m], data.x_val, data.y_val)) for m in models]
    best = models[val_correct.index(max(val_correct))]
    with data.unlocked_test():
        x, y = data.x_test, data.y_test
        ensemble_hits, best_hits = hits(models, x, y), hits([best], x, y)
        curve, disagreement = members_curve(models, x, y)
    seeds = rows["seeds"]
    assert seeds.test == Accuracy.of(ensemble_hits).to_dict()
    assert seeds.test_best_member == Accuracy.of(best_hits).to_dict()
    assert seeds.test_gain == PairedDifference.of(ensemble_hits, best_hits).to_dict()
    assert seeds.curve_split == "test" and seeds.curve == curve and seeds.disagreement == disagreement
    assert seeds.curve[-1] == pytest.approx(seeds.test["acc"])
    # test.json has the same figures (the contract's entries), the table prints them.
    report = json.loads((tmp_path / "test.json").read_text())
    assert report["models"]["ensemble:seeds"]["diff"] == seeds.test_gain
    assert report["models"]["average"]["vs"] == "final"
    text = (tmp_path / "ensemble" / "table.txt").read_text()
    assert "test acc (95% CI)" in text and f"test: n = {data.n_test} examples" in text
    # every accuracy in it with its interval: the baselines too, and the members curve
    best = seeds.test_best_member
    assert "test best member (95% CI)" in text and f"{best['acc']:.4f} ({best['low']:.3f}-{best['high']:.3f})" in text
    points = ", ".join("{acc:.4f} ({low:.3f}-{high:.3f})".format(**Accuracy.from_rate(acc, data.n_test).to_dict())
                       for acc in seeds.curve)
    assert f"seeds: test accuracy of the first 1..3 members (95% CI), n = {data.n_test}: {points}" in text


def test_the_student_keeps_a_share_of_the_test_gain(tmp_path, small):
    config = small()
    rows = {r.kind: r for r in build_ensembles(config, tmp_path, k=2, kinds=("seeds", "distill"),
                                               quiet=True)}
    student, teacher = rows["distill"], rows["seeds"]
    assert student.test_best_member == teacher.test_best_member  # the same best member
    if teacher.test_gain["verdict"] == "gain":
        share = student.test_gain["diff"] / teacher.test_gain["diff"]
        assert f"keeps {share:.0%} of its test gain" in student.detail
    else:
        assert f"test gain was {teacher.test_gain['verdict']}: nothing to keep" in student.detail
