"""The ensemble stage: build each kind of ensemble the notes name, measure it, write the table.

Kinds: ``seeds`` (same model, different initializations), ``top_trials`` (the best models of
a search), ``checkpoints`` (the last epochs of one run), ``average`` (the running average of
the parameters against the raw weights) and ``distill`` (one student trained on an
ensemble's soft targets). Every row is measured on the validation split of `config`, which
also picks each ensemble's best member; once every row is built, the ensembles (and their best
members) are scored on the test split by :mod:`babysit.evaluation` (``test.json``, and the
rows' ``test`` and ``test_gain``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from .. import evaluation, experiment
from ..errors import UserError
from ..rundir import RunDir
from ..train import resolve_device
from . import members as sources
from .distill import distill
from ..stats import Accuracy, PairedDifference
from .predict import compare_cost, ensemble_probabilities, members_curve
from .table import EnsembleRow, format_table, write_table

KINDS = ("seeds", "top_trials", "checkpoints", "average", "distill")
ALIASES = {"top": "top_trials", "trials": "top_trials", "seed": "seeds",
           "checkpoint": "checkpoints", "ema": "average"}


def normalize_kinds(kinds: Sequence[str]) -> list[str]:
    """Known kind names in the order given; distillation last (it needs a teacher)."""
    out = []
    for kind in kinds:
        name = ALIASES.get(kind, kind)
        if name not in KINDS:
            raise UserError(f"unknown ensemble kind {kind!r}: use one of seeds, top, checkpoints, "
                            "average, distill")
        if name not in out:
            out.append(name)
    return sorted(out, key=lambda name: name == "distill")


def build_ensembles(config: dict, run_dir: RunDir | str | Path, *, k: int = 5,
                    kinds: Sequence[str] = KINDS, quiet: bool = False) -> list[EnsembleRow]:
    """Build the ensembles in `kinds` whose inputs `run_dir` has; write and return the table.

    With the default `kinds`, a kind whose input is missing is skipped (no ``trials/``: no
    top-trials ensemble; checkpoints without averaged weights: no average row). Asked for
    explicitly, a missing input is a :class:`UserError`. The student of ``distill`` learns
    from the first ensemble built in this call (the seed copies when none was: trained, or
    reused from ``ensemble/seeds/``).
    """
    run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    if not run_dir.path.is_dir():
        raise UserError(f"run directory {run_dir.path} does not exist: give a folder that "
                        "babysit train or babysit search wrote")
    explicit = tuple(kinds) != KINDS
    kinds = normalize_kinds(kinds)
    check_members_exist(run_dir, kinds, k, explicit)  # before any seed copy is trained
    stage = _Stage(config, run_dir, k, quiet)
    rows: list[EnsembleRow] = []
    for kind in kinds:
        row = getattr(stage, kind)(explicit)
        if row is not None:
            rows.append(row)
            stage.say(f"{kind}: val acc {row.val_acc:.4f} (n={row.n}, 95% CI {row.val_low:.4f}-{row.val_high:.4f}), "
                      f"best member {row.best_member_acc:.4f}, gain {100 * row.gain:+.2f} pt "
                      f"({100 * row.gain_low:+.2f} to {100 * row.gain_high:+.2f}): {row.verdict}")
    test_rows(stage, rows)
    write_table(run_dir, rows)
    if rows:
        from .plots import plot_members_curve, plot_table
        plot_table(run_dir, rows)
        plot_members_curve(run_dir, rows)
    if not quiet:
        print(format_table(rows), end="")
    return rows


def check_members_exist(run_dir: RunDir, kinds: list[str], k: int, explicit: bool) -> None:
    """Refuse now a `k` larger than the trials or checkpoints on disk, not after minutes of
    training seed copies. Without explicit kinds, a kind with no input at all is skipped later."""
    sources.check_k(k)
    if "top_trials" in kinds and (explicit or sources.trial_folders(run_dir)):
        sources.available_top_trials(run_dir, k)
    if "checkpoints" in kinds and (explicit or sources.list_checkpoints(run_dir / "checkpoints")):
        sources.available_checkpoints(run_dir, k)


def test_rows(stage: "_Stage", rows: list[EnsembleRow]) -> None:
    """The final evaluation of the rows built: each ensemble and its best member (chosen on
    validation) on the test split, into ``test.json`` and each row's ``test``/``test_gain``."""
    candidates = [stage.tested[row.kind] for row in rows if row.kind in stage.tested]
    if row_of_average := next((r for r in rows if r.kind == "average"), None):
        candidates.insert(0, stage.tested["final"])  # the raw weights the average is compared with
    results = evaluation.evaluate(stage.data, candidates, stage.device)
    evaluation.record(stage.run_dir, stage.data, results)
    for row in rows:
        entry = results.get("average" if row is row_of_average else f"ensemble:{row.kind}")
        if entry is not None:
            row.test = {k: entry[k] for k in ("acc", "n", "low", "high")}
            row.test_gain = entry.get("diff")


class _Stage:
    """One call of :func:`build_ensembles`: the validation data, the device and the teacher."""

    def __init__(self, config: dict, run_dir: RunDir, k: int, quiet: bool):
        self.config, self.run_dir, self.k, self.quiet = config, run_dir, k, quiet
        sources.check_k(k)
        self.device = resolve_device(config["device"])
        data = experiment.load_split(config)
        self.data = data  # its test split stays locked until test_rows
        self.x_val, self.y_val = data.x_val.to(self.device), data.y_val.to(self.device)
        self.num_classes = data.num_classes
        # (kind, members, its row, its best member's hits): what the distilled student learns from
        self.teacher: tuple[str, list[sources.Member], EnsembleRow, torch.Tensor] | None = None
        self.teacher_best: nn.Module | None = None  # the teacher's best member (on validation)
        # What each row puts to the test split at the end: by row kind ("final": raw weights)
        self.tested: dict[str, evaluation.Candidate] = {}

    def say(self, message: str) -> None:
        if not self.quiet:
            print(f"ensemble: {message}", file=sys.stderr, flush=True)

    # -- the kinds -------------------------------------------------------------------------

    def seeds(self, explicit: bool) -> EnsembleRow:
        self.say(f"training {self.k} copies of {self.config['name']} with seeds "
                 f"{self.config['seed']}..{self.config['seed'] + self.k - 1} (reused when trained)")
        members = sources.seed_members(self.config, self.run_dir, self.k, quiet=self.quiet)
        first = self.config["seed"]
        return self._ensemble_row("seeds", members, f"seeds {first}..{first + self.k - 1}")

    def top_trials(self, explicit: bool) -> EnsembleRow | None:
        if not explicit and not sources.trial_folders(self.run_dir):
            self.say(f"no trials in {self.run_dir / 'trials'}: skipping the top-trials ensemble")
            return None
        members = sources.top_trial_members(self.run_dir, self.k, self.config)
        return self._ensemble_row("top_trials", members, ", ".join(m.name for m in members))

    def checkpoints(self, explicit: bool) -> EnsembleRow:
        members = sources.checkpoint_members(self.run_dir, self.k, self.config)
        return self._ensemble_row("checkpoints", members, ", ".join(m.name for m in members))

    def average(self, explicit: bool) -> EnsembleRow | None:
        path = sources.last_averaged_checkpoint(self.run_dir)
        if path is None:
            if explicit:
                raise UserError(f"{self.run_dir / 'checkpoints'} has no checkpoint with averaged "
                                "weights: train into it with ensemble.ema_decay > 0 (the default)")
            self.say("the run's checkpoints hold no averaged weights: skipping the average row")
            return None
        raw, averaged, ckpt = sources.average_from_checkpoint(path, self.config)
        raw, averaged = raw.to(self.device), averaged.to(self.device)
        cost, single = compare_cost([averaged], [raw], self.x_val)
        file = str(path.relative_to(self.run_dir.path)) if path.is_relative_to(self.run_dir.path) else str(path)
        self.tested["final"] = evaluation.Candidate("final", [raw], file=file,
                                                    detail="the weights training ended with")
        self.tested["average"] = evaluation.Candidate("average", [averaged], vs="final", file=file,
                                                      detail="the running average of the parameters")
        return self._row("average", 1, self._hits([averaged]), self._hits([raw]), cost, single,
                         f"epoch {int(ckpt['epoch'])}, decay {ckpt.get('average_decay', '?')} "
                         "vs its raw weights")

    def distill(self, explicit: bool) -> EnsembleRow:
        if self.teacher is None:
            self._teach_with_seeds()
        name, members, teacher_row, best_hits = self.teacher
        section = self.config["ensemble"]
        temperature, alpha = section["temperature"], section["alpha"]
        self.say(f"distilling the {name} ensemble ({len(members)} members) into one student "
                 f"at T={temperature:g}, alpha={alpha:g}")
        student, _ = distill(self.config, [m.model for m in members],
                             RunDir(self.run_dir / "ensemble" / "distill"), temperature=temperature,
                             alpha=alpha, seed=self.config["seed"] + self.k, quiet=self.quiet)
        student.to(self.device).eval()
        cost, single = compare_cost([student], [members[0].model], self.x_val)
        row = self._row("distill", 1, self._hits([student]), best_hits, cost, single, "")
        self.tested["distill"] = evaluation.Candidate(
            "ensemble:distill", [student], vs="best member", baseline_models=[self.teacher_best],
            detail=f"student of the {name} ensemble")
        kept = (f"keeps {row.gain / teacher_row.gain:.0%} of its gain" if teacher_row.verdict == "gain"
                else f"the ensemble's gain was {teacher_row.verdict or 'not measured'}: nothing to keep")
        row.detail = (f"student of the {name} ensemble (val acc {teacher_row.val_acc:.4f}); "
                      f"{kept}; T={temperature:g}, alpha={alpha:g}")
        return row

    # -- shared measurements ---------------------------------------------------------------

    def _teach_with_seeds(self) -> None:
        members = sources.seed_members(self.config, self.run_dir, self.k, quiet=self.quiet)
        self._ensemble_row("seeds", members, "")  # sets the teacher; not a row of its own here

    def _ensemble_row(self, kind: str, members: list[sources.Member], detail: str) -> EnsembleRow:
        for m in members:
            m.model.to(self.device).eval()
        sources.check_compatible(members, self.x_val[:2])
        self._check_classes(members)
        detail = detail + self._data_warning(members)
        models = [m.model for m in members]
        member_hits = [self._hits([m]) for m in models]
        best = max(range(len(models)), key=lambda i: int(member_hits[i].sum()))  # validation picks
        best_hits = member_hits[best]
        cost, single = compare_cost(models, models[:1], self.x_val)
        row = self._row(kind, len(members), self._hits(models), best_hits, cost, single, detail)
        row.curve, row.disagreement = members_curve(models, self.x_val, self.y_val)
        if self.teacher is None:
            self.teacher = (kind, members, row, best_hits)
            self.teacher_best = models[best]
        self.tested[kind] = evaluation.Candidate(
            f"ensemble:{kind}", models, vs="best member", baseline_models=[models[best]],
            detail=f"{len(models)} members; best member {members[best].name} (on validation)")
        return row

    def _row(self, kind: str, members: int, hits: torch.Tensor, baseline_hits: torch.Tensor,
             cost, single, detail: str) -> EnsembleRow:
        """A row comparing `hits` (per validation example) with the baseline's on the same
        examples: accuracies with their Wilson intervals, the gain with its paired interval."""
        acc, baseline = Accuracy.of(hits.tolist()), Accuracy.of(baseline_hits.tolist())
        gain = PairedDifference.of(hits.tolist(), baseline_hits.tolist())
        (val_low, val_high), (gain_low, gain_high) = acc.interval, gain.interval
        return EnsembleRow(kind, members, acc.value, baseline.value, gain.value, cost.seconds, cost.memory_mb,
                           time_ratio=cost.seconds / single.seconds,
                           memory_ratio=cost.memory_mb / single.memory_mb, detail=detail, n=acc.n,
                           val_low=val_low, val_high=val_high, gain_low=gain_low, gain_high=gain_high,
                           verdict=gain.verdict)

    def _data_warning(self, members: list[sources.Member]) -> str:
        """Members trained under other [data] settings may have seen this validation split."""
        odd = [m.name for m in members if m.config.get("data") != self.config["data"]]
        if not odd:
            return ""
        self.say(f"warning: {', '.join(odd)} trained with other [data] settings than the config "
                 "evaluated here; their validation examples may differ, so read the gain with care")
        return f" (other data settings: {', '.join(odd)})"

    def _check_classes(self, members: list[sources.Member]) -> None:
        with torch.no_grad():
            classes = members[0].model(self.x_val[:1]).shape[1]
        if classes != self.num_classes:
            raise UserError(f"the members give {classes} class scores but the validation data has "
                            f"{self.num_classes} classes: evaluate them with the config they were "
                            "trained with (--config)")

    def _hits(self, models: list[nn.Module]) -> torch.Tensor:
        """Per validation example: does the (ensemble's) most probable class match the label?"""
        return (ensemble_probabilities(models, self.x_val).argmax(dim=1) == self.y_val).cpu()
