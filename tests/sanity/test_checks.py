"""Each check against a healthy model (passes everything) and a model or pipeline broken in
exactly the way that check exists to catch (fails exactly that check)."""

import math

import pytest
import torch

import babysit
from babysit.models import l2_penalty

from . import preflight_models as M

CHECK_NAMES = ["initial_loss", "reg_increases_loss", "deterministic", "gradcheck",
               "overfit_tiny", "input_dependence"]


def run(make_model, data, loss="softmax", **options):
    # 5 entries of every parameter tensor: still every tensor checked, at half the default cost.
    options.setdefault("gradcheck_options", {"coords_per_tensor": 5})
    return babysit.preflight(make_model, loss, data, num_classes=10, **options)


def test_healthy_mlp_passes_every_check(digits):
    report = run(M.healthy, digits)
    assert report.passed, str(report)
    assert list(report.checks) == CHECK_NAMES
    initial = report.checks["initial_loss"]
    assert initial.chance == pytest.approx(math.log(10))
    assert abs(initial.loss - math.log(10)) < 0.1 * math.log(10)
    overfit = report.checks["overfit_tiny"]
    assert overfit.examples == 20 and overfit.train_acc == 1.0
    assert overfit.final_loss <= overfit.target_loss and 1 <= overfit.steps < overfit.max_steps
    assert report.checks["input_dependence"].real_acc > 0.8
    losses = report.checks["reg_increases_loss"].losses
    assert losses == sorted(losses) and len(set(losses)) == len(losses)


def test_healthy_svm_with_dropout_passes_and_reproduces_its_masks(digits):
    report = run(lambda: M.healthy(dropout=0.3), digits, loss="svm")
    assert report.passed, str(report)
    assert report.checks["initial_loss"].chance == 9.0
    determinism = report.checks["deterministic"]
    assert determinism.has_dropout and determinism.random_in_training
    assert determinism.loss_first == determinism.loss_second


def _shuffled_labels(digits):
    x, y = digits
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(1))
    return x, y[perm]


BROKEN = {
    # name: (make_model, data transform, options, the one check that must fail, words in its message)
    "weights initialized 8x too large": (M.weights_too_large, None, {}, "initial_loss", "too large"),
    "regularization with the wrong sign": (M.healthy, None, {"reg_fn": lambda m: -l2_penalty(m, 1e-3)},
                                           "reg_increases_loss", "wrong sign"),
    "a two-unit bottleneck": (M.Bottleneck, None, {"overfit_steps": 200}, "overfit_tiny", "capacity"),
    "scores squashed by tanh": (M.SquashedScores, None, {"overfit_steps": 200}, "overfit_tiny",
                                "capacity"),
    "a ReLU whose backward ignores its mask": (M.BadBackward, None, {}, "gradcheck", "backward"),
    "labels shuffled apart from their inputs": (M.healthy, _shuffled_labels, {}, "input_dependence",
                                                "labels"),
    "dropout from a private generator": (M.unseeded_dropout, None, {}, "deterministic", "seed"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_pipeline_fails_exactly_its_check(digits, case):
    make_model, transform, options, check, words = BROKEN[case]
    data = transform(digits) if transform else digits
    report = run(make_model, data, **options)
    assert report.failed == [check], str(report)
    assert not report.passed
    assert words in report.checks[check].message


def test_zero_learning_rate_fails_overfit_tiny_and_says_so(digits):
    report = run(M.healthy, digits, lr=0.0, overfit_steps=100, skip=["gradcheck", "deterministic"])
    overfit = report.checks["overfit_tiny"]
    assert not overfit.passed
    assert overfit.final_loss == pytest.approx(overfit.initial_loss)
    assert "learning rate is zero" in overfit.message
    # A model that cannot learn cannot learn from its inputs either; the message says what to fix first.
    assert not report.checks["input_dependence"].passed
    assert "fix that first" in report.checks["input_dependence"].message


def test_a_model_that_replaces_its_input_fails_input_dependence(digits):
    report = run(M.IgnoresInput, digits, overfit_steps=100, skip=["gradcheck"])
    dependence = report.checks["input_dependence"]
    assert not dependence.passed
    assert dependence.real_acc == dependence.zeroed_acc
    assert "does not use its input" in dependence.message
    assert report.checks["initial_loss"].passed and report.checks["deterministic"].passed


def test_a_regularization_term_of_zero_regularizes_nothing(digits):
    only = ["reg_increases_loss"]
    report = run(M.healthy, digits, reg_fn=lambda m: torch.zeros(()),
                 skip=[c for c in CHECK_NAMES if c not in only])
    assert list(report.checks) == only and not report.passed
    assert "regularizes nothing" in report.checks["reg_increases_loss"].message


def test_reg_zero_is_probed_at_a_small_strength(digits):
    report = run(M.healthy, digits, reg=0.0, skip=[c for c in CHECK_NAMES if c != "reg_increases_loss"])
    check = report.checks["reg_increases_loss"]
    assert check.passed and "probe strength" in check.regularization


def test_without_regularization_the_gradient_check_checks_the_data_loss(digits):
    report = run(M.healthy, digits, reg=0.0, skip=[c for c in CHECK_NAMES if c != "gradcheck"])
    check = report.checks["gradcheck"]
    assert check.passed and check.entries > 0


def test_a_callable_loss_is_compared_with_its_value_at_equal_scores(digits):
    def mean_squared_error(scores, targets):
        return ((scores - torch.nn.functional.one_hot(targets, 10).float()) ** 2).mean()

    report = run(M.healthy, digits, loss=mean_squared_error,
                 skip=[c for c in CHECK_NAMES if c != "initial_loss"])
    check = report.checks["initial_loss"]
    assert check.chance == pytest.approx(0.1)  # one 1 among ten zeros, squared, averaged
    assert "equal scores" in check.summary


def test_data_sorted_by_class_still_gives_mixed_subsets(digits):
    x, y = digits
    order = torch.argsort(y, stable=True)
    report = run(M.healthy, (x[order], y[order]), skip=["gradcheck", "deterministic"])
    assert report.passed, str(report)
    dependence = report.checks["input_dependence"]
    # Held out and trained on the same mix of classes: the first 512 of sorted data would hold
    # four classes, and the held-out quarter only one that was barely trained on.
    assert dependence.real_acc > 0.8 and 0.02 < dependence.zeroed_acc < 0.3
