"""The monitor as the default companion of training, and `babysit plots` on its run directory."""

from __future__ import annotations

import importlib.util
import json

import pytest

from babysit import experiment
from babysit.cli import main
from babysit.config import load_config
from tests.digits import DIGITS


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("companion")
    config = load_config(overrides=[*DIGITS, "epochs=2", "model.name=convnet", "model.width=8",
                                    "data.limit=600", "train.checkpoints=false"])
    experiment.train(config, run_dir, quiet=True)
    return run_dir


def test_training_is_watched_by_default(trained):
    watch = trained / "watch"
    for name in ("meta.json", "steps.jsonl", "ratios.jsonl", "activations.jsonl", "gradients.jsonl",
                 "grad_norms.jsonl", "epochs.jsonl", "diagnoses.json", "first_layer.npy"):
        assert (watch / name).is_file(), name
    epochs = [json.loads(line) for line in (watch / "epochs.jsonl").read_text().splitlines()]
    metrics = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    assert [e["val_acc"] for e in epochs] == [m["val_acc"] for m in metrics]


def test_watch_can_be_switched_off(tmp_path):
    config = load_config(overrides=[*DIGITS, "epochs=1", "data.limit=200", "watch.enabled=false",
                                    "train.checkpoints=false"])
    experiment.train(config, tmp_path, quiet=True)
    assert not (tmp_path / "watch").exists()


def test_plots_verb_draws_pngs_and_prints_diagnoses(trained, capsys):
    assert main(["plots", str(trained)]) == 0
    out = capsys.readouterr().out
    plots = trained / "watch" / "plots"
    names = {p.name for p in plots.glob("*.png")}
    assert {"loss.png", "accuracy.png", "update_ratios.png", "activations.png", "gradients.png",
            "gradient_norms.png", "first_layer.png"} <= names
    assert all((plots / n).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for n in names)
    diagnoses = json.loads((trained / "watch" / "diagnoses.json").read_text())
    assert all(d["code"] in out for d in diagnoses)
    assert "plots in" in out


def test_plots_verb_on_a_folder_without_records(tmp_path, capsys):
    assert main(["plots", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("babysit: error:") and "watch/meta.json" in err


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="tensorboard extra not installed")
def test_tensorboard_export(tmp_path):
    config = load_config(overrides=[*DIGITS, "epochs=1", "data.limit=300", "watch.tensorboard=true",
                                    "train.checkpoints=false"])
    experiment.train(config, tmp_path, quiet=True)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "watch" / "tensorboard")).Reload()
    tags = events.Tags()
    assert len(events.Scalars("loss")) == 4  # 240 training examples, batches of 64
    assert "epoch/val_acc" in tags["scalars"] and any(t.startswith("update_ratio_log10/") for t in tags["scalars"])
    assert any(t.startswith("activations/") for t in tags["histograms"])


def test_resumed_training_continues_the_records(tmp_path):
    overrides = [*DIGITS, "data.limit=300", "train.checkpoints=true", "model.width=16"]
    experiment.train(load_config(overrides=overrides + ["epochs=2"]), tmp_path, quiet=True)
    # the run "died" during epoch 3: records past the epoch-2 checkpoint must be dropped
    with open(tmp_path / "watch" / "steps.jsonl", "a") as f:
        f.write('{"step": 9, "epoch": 2, "loss": 1.0}\n')
    experiment.train(load_config(overrides=overrides + ["epochs=3"]), tmp_path, quiet=True, resume=True)
    steps = [json.loads(line)["step"] for line in (tmp_path / "watch" / "steps.jsonl").read_text().splitlines()]
    epochs = [json.loads(line)["epoch"] for line in (tmp_path / "watch" / "epochs.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 13)) and epochs == [1, 2, 3]
    # a fresh run into the same folder starts the records over
    experiment.train(load_config(overrides=overrides + ["epochs=1"]), tmp_path, quiet=True)
    steps = [json.loads(line)["step"] for line in (tmp_path / "watch" / "steps.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
