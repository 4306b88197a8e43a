"""The ensemble stage: build each kind of ensemble the notes name, measure it, write the table.

Kinds: ``seeds`` (same model, different initializations), ``top_trials`` (the best models of
a search), ``checkpoints`` (the last epochs of one run), ``average`` (the running average of
the parameters against the raw weights) and ``distill`` (one student trained on an
ensemble's soft targets).

Validation chooses: a top trial by its validation score, an ensemble's "best member" by its
validation accuracy, the teacher of the student. Every row is measured on the validation
split of `config`. Once every row is built, the final evaluation (:mod:`babysit.evaluation`)
scores them on the test split, when the data has one: each ensemble against its best member,
the student against its teacher's best member, the average against the raw weights, into
``test.json`` and the rows' ``test``, ``test_best_member`` and ``test_gain``; the members
curve and disagreement are then those of the test split.
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
    test_rows(stage, rows)
    for row in rows:
        stage.say(f"{row.kind}: {row.summary()}")
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
    """The final evaluation of the rows built: each on the test split (its baseline chosen on
    validation), into ``test.json`` and each row's ``test``, ``test_best_member`` and
    ``test_gain``; the members curves on the test split; the student's share of its teacher's
    gain, on test. Nothing here chooses: every choice was made before."""
    if not stage.data.n_test:
        return
    candidates = [stage.tested[row.kind] for row in rows if row.kind in stage.tested]
    if row_of_average := next((r for r in rows if r.kind == "average"), None):
        candidates.insert(0, stage.tested["final"])  # the raw weights the average is compared with
    results = evaluation.evaluate(stage.data, candidates, stage.device)
    evaluation.record(stage.run_dir, stage.data, results)
    for row in rows:
        entry = results.get("average" if row is row_of_average else f"ensemble:{row.kind}")
        if entry is None:
            continue
        row.test = {k: entry[k] for k in ("acc", "n", "low", "high")}
        row.test_gain = entry.get("diff")
        baseline = entry.get("baseline") or results.get(entry.get("vs") or "")  # "final" for the average
        row.test_best_member = {k: baseline[k] for k in ("acc", "n", "low", "high")} if baseline else None
        if "curve" in entry:  # the members curve and disagreement, on the test split
            row.curve = [point["acc"] for point in entry["curve"]]
            row.disagreement, row.curve_split = entry["disagreement"], "test"
    if stage.student_row is not None and stage.teacher is not None:
        stage.student_row.detail = stage.student_detail(kept_share(stage.student_row, stage.teacher[2]))


class _Stage:
    """One call of :func:`build_ensembles`: the data, the device and the teacher."""

    def __init__(self, config: dict, run_dir: RunDir, k: int, quiet: bool):
        self.config, self.run_dir, self.k, self.quiet = config, run_dir, k, quiet
        sources.check_k(k)
        self.device = resolve_device(config["device"])
        self.data = data = experiment.load_split(config)  # its test split locked until test_rows
        self.x_val, self.y_val = data.x_val.to(self.device), data.y_val.to(self.device)
        self.num_classes = data.num_classes
        # (kind, members, its row, its best member): what the distilled student learns from
        self.teacher: tuple[str, list[sources.Member], EnsembleRow, nn.Module] | None = None
        self.student_row: EnsembleRow | None = None
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
        return self._row("average", [averaged], [raw], cost, single,
                         f"epoch {int(ckpt['epoch'])}, decay {ckpt.get('average_decay', '?')} "
                         "vs its raw weights")

    def distill(self, explicit: bool) -> EnsembleRow:
        if self.teacher is None:
            self._teach_with_seeds()
        name, members, teacher_row, best_member = self.teacher
        section = self.config["ensemble"]
        temperature, alpha = section["temperature"], section["alpha"]
        self.say(f"distilling the {name} ensemble ({len(members)} members) into one student "
                 f"at T={temperature:g}, alpha={alpha:g}")
        student, _ = distill(self.config, [m.model for m in members],
                             RunDir(self.run_dir / "ensemble" / "distill"), temperature=temperature,
                             alpha=alpha, seed=self.config["seed"] + self.k, quiet=self.quiet)
        student.to(self.device).eval()
        cost, single = compare_cost([student], [members[0].model], self.x_val)
        row = self._row("distill", [student], [best_member], cost, single, "")
        self.tested["distill"] = evaluation.Candidate(
            "ensemble:distill", [student], vs="best member", baseline_models=[best_member],
            detail=f"student of the {name} ensemble")
        self.student_detail = lambda kept: (
            f"student of the {name} ensemble (val acc {teacher_row.val_acc:.4f}); {kept}; "
            f"T={temperature:g}, alpha={alpha:g}, {section['student_budget']:g}x train.epochs")
        row.detail = self.student_detail(kept_share(row, teacher_row))
        self.student_row = row
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
        # The best member is the one best on validation (the first on ties): chosen, not peeked at.
        member_hits = [int(self._hits([model]).sum()) for model in models]
        best = max(range(len(models)), key=lambda i: member_hits[i])
        cost, single = compare_cost(models, models[:1], self.x_val)
        row = self._row(kind, models, [models[best]], cost, single, detail)
        row.curve, row.disagreement = members_curve(models, self.x_val, self.y_val)  # test: at the end
        if self.teacher is None:
            self.teacher = (kind, members, row, models[best])
        self.tested[kind] = evaluation.Candidate(
            f"ensemble:{kind}", models, vs="best member", baseline_models=[models[best]],
            detail=f"{len(models)} members; best member {members[best].name} (on validation)",
            curve=True)  # the members curve and disagreement on the test split, in test.json
        return row

    def _row(self, kind: str, models: list[nn.Module], baseline: list[nn.Module], cost, single,
             detail: str) -> EnsembleRow:
        """A row comparing the prediction of `models` with the `baseline`'s on the same
        validation examples: accuracies with their Wilson intervals, the gain with its paired
        interval."""
        hits, baseline_hits = self._hits(models), self._hits(baseline)
        acc, best = Accuracy.of(hits.tolist()), Accuracy.of(baseline_hits.tolist())
        gain = PairedDifference.of(hits.tolist(), baseline_hits.tolist())
        (val_low, val_high), (gain_low, gain_high) = acc.interval, gain.interval
        row = EnsembleRow(kind, len(models), acc.value, best.value, gain.value, cost.seconds,
                          cost.memory_mb, time_ratio=cost.seconds / single.seconds,
                          memory_ratio=cost.memory_mb / single.memory_mb, detail=detail, n=acc.n,
                          val_low=val_low, val_high=val_high, gain_low=gain_low,
                          gain_high=gain_high, verdict=gain.verdict)
        return row

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


def kept_share(student: EnsembleRow, teacher: EnsembleRow) -> str:
    """How much of its teacher ensemble's gain the student keeps, on the test split when there
    is one (else validation); a share only of a gain that is one (its interval above 0)."""
    if student.test_gain and teacher.test_gain:
        split, gain, teacher_gain = "test", student.test_gain["diff"], teacher.test_gain
    else:
        split, gain = "validation", student.gain
        teacher_gain = {"diff": teacher.gain, "verdict": teacher.verdict or "not measured"}
    if teacher_gain["verdict"] != "gain":
        return f"the ensemble's {split} gain was {teacher_gain['verdict']}: nothing to keep"
    return f"keeps {gain / teacher_gain['diff']:.0%} of its {split} gain"
