"""Each diagnosis fires on a real run broken in its way, and a healthy run gets none.

The runs are small MLPs on the digits data (see watch_scenarios.py). Besides the code a scenario is
about, some codes are real consequences of the same breakage (a far-too-high learning rate
kills ReLUs; dead first-layer units leave it without gradient) — those are listed as allowed.
Every other code must stay quiet.
"""

from __future__ import annotations

import json
import math

import pytest

from babysit.stats import Accuracy
from babysit.watch import CODES, Diagnosis
from .watch_scenarios import SCENARIOS, run_scenario

# scenario -> codes that may also fire because the same breakage causes them
ALSO = {
    "lr_too_high": {"dead_units", "nonfinite", "exploding_gradients", "update_ratio_high"},
    "lr_too_low": {"update_ratio_low", "underfitting"},
    "nonfinite": set(),
    "dead_units": {"update_ratio_low", "vanishing_gradients", "underfitting"},
    "vanishing_gradients": {"update_ratio_low", "update_ratio_high", "underfitting"},
    "exploding_gradients": {"update_ratio_low"},
    "update_ratio_low": {"lr_too_low"},
    "update_ratio_high": {"lr_too_high"},
    "units_near_zero": {"update_ratio_low", "vanishing_gradients"},
}

_cache: dict = {}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    def get(name):
        if name not in _cache:
            _cache[name] = run_scenario(name, tmp_path_factory.mktemp(name))
        return _cache[name]
    return get


def test_every_code_has_a_scenario():
    assert set(CODES) <= set(SCENARIOS)


def test_healthy_run_gets_no_diagnosis(runs):
    run = runs("healthy")
    assert run.history.epochs[-1]["val_acc"] > 0.9
    assert run.diagnoses == []


@pytest.mark.parametrize("code", CODES)
def test_code_fires_where_it_should_and_nothing_unrelated(runs, code):
    run = runs(code)
    assert code in run.codes, f"{code} did not fire; got {sorted(run.codes)}"
    unexpected = run.codes - {code} - ALSO.get(code, set())
    assert not unexpected, f"{code} run also fired {sorted(unexpected)}"


@pytest.mark.parametrize("code", ["lr_too_high", "overfitting", "dead_units", "saturated_units"])
def test_diagnosis_names_a_fix_and_shows_numbers(runs, code):
    found = next(d for d in runs(code).diagnoses if d.code == code)
    assert found.severity in ("error", "warning", "info")
    assert isinstance(found.evidence, dict) and found.evidence
    assert all(isinstance(v, (int, float)) for v in found.evidence.values())
    fixes = {"lr_too_high": "Lower it", "overfitting": "Regularize more", "dead_units": "leaky ReLU",
             "saturated_units": "smaller scale"}
    assert fixes[code] in found.message


def test_the_accuracies_a_diagnosis_quotes_carry_their_interval_and_n(runs):
    run = runs("overfitting")
    found = next(d for d in run.diagnoses if d.code == "overfitting")
    n = run.history.meta["accuracy_n"]
    assert n["val_acc"] > 0 and n["train_acc"] > 0  # the monitor was told what they are scored on
    last = run.history.epochs[-1]
    for name in ("train_acc", "val_acc"):
        quoted = Accuracy.from_rate(last[name], n[name]).brief()  # "97.3% (96.1-98.1, n=359)"
        assert quoted in found.message


def test_diagnoses_json_matches_and_is_rewritten(runs):
    run = runs("overfitting")
    on_disk = json.loads((run.run_dir / "watch" / "diagnoses.json").read_text())
    assert [d["code"] for d in on_disk] == [d.code for d in run.diagnoses]
    assert all(set(d) == {"code", "severity", "message", "evidence"} for d in on_disk)
    epochs = [json.loads(line) for line in (run.run_dir / "watch" / "epochs.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == list(range(1, 31))


def test_a_loss_that_blows_up_at_once_is_lr_too_high(runs):
    run = runs("lr_explodes")
    assert run.state.stop_reason and len(run.history.epochs) == 1
    found = next(d for d in run.diagnoses if d.code == "lr_too_high")
    assert found.severity == "error" and found.evidence["peak_loss"] > 100 * found.evidence["start_loss"]
    assert run.codes <= {"lr_too_high", "nonfinite", "dead_units", "exploding_gradients"}


def test_nan_is_caught_within_the_step(runs):
    run = runs("nonfinite")
    found = next(d for d in run.diagnoses if d.code == "nonfinite")
    assert found.severity == "error"
    assert found.evidence["first_step"] == run.history.steps[-1]["step"]
    assert not math.isfinite(run.history.steps[-1]["loss"])


def test_the_gradient_rules_read_the_latest_epoch_that_was_sampled():
    """Histograms every 50 steps skip some epochs of a small dataset (25 steps each here): the
    gradient rules then judge the latest epoch that has samples, not nothing."""
    from babysit.watch.diagnoses import Thresholds, vanishing_gradients
    from babysit.watch.records import History

    history = History(meta={"params": [{"name": "0.weight", "shape": [8, 4]}, {"name": "2.weight", "shape": [2, 8]}]})
    history.epochs = [{"epoch": e, "step": 25 * e} for e in (1, 2, 3, 4)]
    history.grad_norms = [{"step": 1, "rms": [1.0, 1.0]}, {"step": 51, "rms": [1e-5, 1.0]}]  # none in epoch 4
    found = vanishing_gradients(history, Thresholds())
    assert found is not None and found.evidence["first_to_last_rms"] == pytest.approx(1e-5)
    history.grad_norms.append({"step": 101, "rms": [1.0, 1.0]})  # the epoch in progress sampled: it counts
    assert vanishing_gradients(history, Thresholds()) is None


def test_a_flat_loss_that_never_made_progress_did_not_climb_back_up():
    """A loss that wiggles around where it started has no progress to lose: lr_too_high's
    "climbed back up" needs real progress first (seen next to update_ratio_low at lr 1e-6)."""
    from babysit.watch.diagnoses import Thresholds, lr_too_high
    from babysit.watch.records import History

    def history(losses):
        h = History(meta={"steps_per_epoch": 20})
        h.steps = [{"step": i + 1, "epoch": i // 20 + 1, "loss": v} for i, v in enumerate(losses)]
        h.epochs = [{"epoch": e, "step": 20 * e} for e in range(1, len(losses) // 20 + 1)]
        return h

    flat = [2.30 + 0.002 * math.sin(i) - 0.0001 * min(i, 40) + 0.00003 * max(i - 50, 0) for i in range(120)]
    assert lr_too_high(history(flat), Thresholds()) is None
    relapse = [2.3 - 1.5 * min(i, 40) / 40 + 1.0 * max(i - 60, 0) / 60 for i in range(120)]  # down to 0.8, back to 1.8
    found = lr_too_high(history(relapse), Thresholds())
    assert found is not None and "climbed back up" in found.message


def diagnosis(code):
    return Diagnosis(code, "warning", f"{code} message", {"x": 1.0})


# (cause, consequence, what becomes of the consequence): a cause explains what it leads to
PAIRS = [(cause, consequence, "reworded" if consequence in ("dead_units", "saturated_units") else "dropped")
         for cause in ("lr_too_high", "nonfinite")
         for consequence in ("lr_too_low", "underfitting", "update_ratio_low", "units_near_zero", "dead_units",
                             "saturated_units")]


@pytest.mark.parametrize("cause, consequence, fate", PAIRS)
def test_a_cause_explains_its_consequences(cause, consequence, fate):
    found = diagnose_pair(cause, consequence)
    assert found[0].code == cause and found[0].message == f"{cause} message"
    if fate == "dropped":
        assert [d.code for d in found] == [cause]
    else:
        assert [d.code for d in found] == [cause, consequence]
        assert found[1].message == f"Most likely a consequence of {cause} (fix that first): {consequence} message"


@pytest.mark.parametrize("code", ["lr_too_low", "underfitting", "update_ratio_low", "dead_units", "overfitting"])
def test_without_a_cause_nothing_is_dropped_or_reworded(code):
    from babysit.watch.diagnoses import reconcile

    found = reconcile([diagnosis(code), diagnosis("batch_too_small")])
    assert [(d.code, d.message) for d in found] == [(code, f"{code} message"), ("batch_too_small", "batch_too_small message")]


def diagnose_pair(cause, consequence):
    from babysit.watch.diagnoses import reconcile

    return reconcile([diagnosis(cause), diagnosis(consequence)])


def test_a_far_too_high_learning_rate_does_not_also_ask_for_a_higher_one(runs):
    """Digits MLP at lr 3.0 (nesterov): its dead units and stalled weights are the too-high
    rate's doing, not problems whose fixes (raise the rate, a bigger model) contradict it."""
    run = runs("lr_too_high")
    assert "lr_too_high" in run.codes
    assert not run.codes & {"underfitting", "update_ratio_low", "lr_too_low"}
    for d in run.diagnoses:
        assert "Raise" not in d.message and "bigger" not in d.message, d
    for d in run.diagnoses:
        if d.code == "dead_units":
            assert d.message.startswith("Most likely a consequence of lr_too_high")


def test_tanh_units_near_zero_are_told_apart_from_healthy_and_saturated_ones(runs):
    found = next(d for d in runs("units_near_zero").diagnoses if d.code == "units_near_zero")
    assert all(v > 0.6 for v in found.evidence.values()) and "larger scale" in found.message
    assert "units_near_zero" not in runs("saturated_units").codes
