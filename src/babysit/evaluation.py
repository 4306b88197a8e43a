"""The final evaluation: the held-out test split, read once, at the end, on what validation chose.

Validation has chosen everything by now (hyperparameters, the epoch, ensemble members); the
test split reports. It is read here and nowhere else: a :class:`~babysit.data.DataSplit`'s test
tensors raise until :meth:`~babysit.data.DataSplit.unlocked_test` opens them, which only this
module does. Every figure carries its n and 95% Wilson interval (:class:`babysit.stats.Accuracy`),
and a model compared with another on the same test examples gets the paired interval
(:class:`babysit.stats.PairedDifference`): "gain", "loss" or "within noise".

What it writes, ``RUN_DIR/test.json`` (atomically)::

    {"n": 1000, "source": "MNIST-1D official test split", "headline": "final",
     "models": {"final":   {"acc", "n", "low", "high", "file"},
                "average": {..., "vs": "final", "diff": {"diff", "low", "high", "verdict", ...}},
                "ensemble:seeds": {..., "vs": "best member", "baseline": {...}, "diff": {...},
                                   "curve": [{"acc", "n", "low", "high"} of members 1..K]}}}

``babysit train`` writes ``final`` and ``average``; ``babysit ensemble`` adds one
``ensemble:<kind>`` entry per ensemble (keeping the others).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from .data import DataSplit
from .rundir import RunDir
from .stats import Accuracy, PairedDifference

TEST_FILE = "test.json"


@dataclass
class Candidate:
    """A model (or an ensemble of several) to score on the test split, and what it is compared with.

    `baseline` names another entry of the same evaluation (``"final"``), or is given as
    `baseline_models` with the name `vs` (an ensemble's best member, chosen on validation).
    """

    name: str  # "final", "average", "ensemble:seeds"
    models: Sequence[nn.Module]
    vs: str | None = None
    baseline_models: Sequence[nn.Module] | None = None
    file: str | None = None  # the checkpoint it was read from, relative to the run directory
    detail: str = ""
    curve: bool = False  # also the accuracy of the first 1..K members together (the notes'
    #                      "more members, diminishing gains"), as ``curve`` in its entry


@torch.no_grad()
def probabilities(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """softmax(f(x)) of one model, in eval mode, batch by batch."""
    was_training = model.training
    model.to(x.device).eval()
    p = torch.cat([torch.softmax(model(x[i:i + batch_size]), dim=1)
                   for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return p


def test_hits(models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor) -> list[bool]:
    """Per test example: is the most probable class of the models' averaged softmax the label?
    (One model: its argmax. The ensemble rule is that of :mod:`babysit.ensemble.predict`.)"""
    return curve_hits(models, x, y)[-1]


def curve_hits(models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor) -> list[list[bool]]:
    """The hits of the first m members together, for m = 1..K (one softmax pass per member)."""
    total, out = None, []
    for model in models:
        p = probabilities(model, x)
        total = p if total is None else total + p
        out.append((total.argmax(dim=1) == y).cpu().tolist())
    return out


@torch.no_grad()
def disagreement(models: Sequence[nn.Module], x: torch.Tensor) -> float:
    """The share of examples on which two members predict different classes, averaged over the
    K(K-1)/2 pairs (members that agree everywhere have nothing to add to each other)."""
    predicted = [probabilities(model, x).argmax(dim=1) for model in models]
    pairs = [(i, j) for i in range(len(models)) for j in range(i + 1, len(models))]
    return (sum((predicted[i] != predicted[j]).float().mean().item() for i, j in pairs) / len(pairs)
            if pairs else 0.0)


def evaluate(data: DataSplit, candidates: Sequence[Candidate],
             device: str | torch.device = "cpu") -> dict[str, dict]:
    """Each candidate's test accuracy (and its paired difference with its baseline), by name.

    The only place the test split is read."""
    if not data.n_test:
        return {}
    results: dict[str, dict] = {}
    hits: dict[str, list[bool]] = {}
    with data.unlocked_test():
        x, y = data.x_test.to(device), data.y_test.to(device)
        for c in candidates:
            prefixes = curve_hits(c.models, x, y)
            hits[c.name] = prefixes[-1]
            entry = Accuracy.of(hits[c.name]).to_dict()
            if c.curve and len(prefixes) > 1:
                entry["curve"] = [Accuracy.of(h).to_dict() for h in prefixes]
                entry["disagreement"] = disagreement(c.models, x)
            if c.file:
                entry["file"] = c.file
            if c.detail:
                entry["detail"] = c.detail
            baseline = (test_hits(c.baseline_models, x, y) if c.baseline_models is not None
                        else hits.get(c.vs) if c.vs else None)
            if baseline is not None:
                entry["vs"] = c.vs
                if c.baseline_models is not None:
                    entry["baseline"] = Accuracy.of(baseline).to_dict()
                entry["diff"] = PairedDifference.of(hits[c.name], baseline).to_dict()
            results[c.name] = entry
    return results


def record(run_dir: RunDir | str | Path, data: DataSplit, results: dict[str, dict], *,
           fresh: bool = False) -> dict | None:
    """Write `results` into ``RUN_DIR/test.json``: merged with the entries there, or replacing
    them when `fresh` (a new training makes the old figures stale). None when no test split."""
    if not data.n_test:
        return None
    run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    old = None if fresh else run_dir.read_json(TEST_FILE, default=None)
    models = {}
    same_split = isinstance(old, dict) and (old.get("n"), old.get("source")) == (data.n_test, data.test_source)
    if same_split and isinstance(old.get("models"), dict):  # else the old figures are of other data
        models.update(old["models"])
    models.update(results)
    report = {"n": data.n_test, "source": data.test_source,
              "headline": "final" if "final" in models else next(iter(models), None),
              "models": models}
    run_dir.write_json(TEST_FILE, report)
    return report


def read(run_dir: RunDir | str | Path) -> dict | None:
    """``test.json`` of a run, or None when no test split was evaluated there."""
    run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    report = run_dir.read_json(TEST_FILE, default=None)
    return report if isinstance(report, dict) and isinstance(report.get("models"), dict) else None


def evaluate_training(config: dict, run_dir: RunDir | str | Path, model: nn.Module,
                      averaged_state: dict | None = None, checkpoint: Path | None = None,
                      data: DataSplit | None = None) -> dict | None:
    """The end of a training: the final model and (when kept) its parameter average on the test
    split; writes a fresh ``test.json`` and returns it (None when the data has no test split)."""
    from .experiment import load_split, new_model  # the config's own data and model

    data = data if data is not None else load_split(config)
    if not data.n_test:
        return None
    run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    device = next(model.parameters()).device
    file = str(Path(checkpoint).relative_to(run_dir.path)) if checkpoint is not None else None
    candidates = [Candidate("final", [model], file=file, detail="the weights training ended with")]
    if averaged_state is not None:
        averaged = new_model(config, data).to(device)
        averaged.load_state_dict(averaged_state)
        candidates.append(Candidate("average", [averaged], vs="final", file=file,
                                    detail="the running average of the parameters"))
    return record(run_dir, data, evaluate(data, candidates, device), fresh=True)


def describe(entry: dict) -> str:
    """One test figure as a user reads it: ``0.9410 (n=1000, 95% CI 0.9250-0.9537)``, plus
    its difference with its baseline when it has one."""
    text = f"{entry['acc']:.4f} (n={entry['n']}, 95% CI {entry['low']:.4f}-{entry['high']:.4f})"
    diff = entry.get("diff")
    if isinstance(diff, dict):
        text += (f", {100 * diff['diff']:+.2f} pt vs {entry.get('vs')} (paired 95% CI "
                 f"{100 * diff['low']:+.2f} to {100 * diff['high']:+.2f}): {diff['verdict']}")
    return text


def summary_lines(report: dict | None, names: Sequence[str] | None = None) -> list[str]:
    """The lines a verb ends with: each model's test accuracy with n and interval."""
    if not report:
        return ["test: no test split evaluated (data.test_fraction = 0)"]
    lines = [f"test split: {report['n']} examples ({report['source']}), evaluated once, at the end"]
    for name, entry in report["models"].items():
        if names is None or name in names:
            lines.append(f"test acc {name}: {describe(entry)}")
    return lines
