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

from babysit.watch import CODES
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
