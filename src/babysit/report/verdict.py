"""The run's verdict: how it went, which model to use, what went wrong, what to try next.

One verdict per run directory, computed only from what the stages wrote (the same files the
report's sections read), so the page's first box and the last lines ``babysit run`` prints say
the same thing. Nothing here is fixed text about a run: every problem comes from a finding of a
stage (a failed check, a monitor diagnosis, a border alarm of the search's *final* stage, a
training that stopped or was still improving), ranked by severity:

    fail  the numbers cannot be trusted (the run failed, a check failed, the training broke)
    warn  the run works, but badly or not yet (a diagnosis, an alarm, still improving)

The headline is the test accuracy the final evaluation wrote (``test.json``) with its 95%
interval and n; without a test split it says so and shows the validation accuracy, named as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ..stats import wilson_interval
from .readers import RunFiles
from .sections import run_state

SEVERITY_RANK = {"fail": 0, "warn": 1}

# Which section of the page shows the evidence of each monitor diagnosis.
DIAGNOSIS_SECTION = {
    "nonfinite": "curves", "lr_too_high": "curves", "lr_too_low": "curves", "batch_too_small": "curves",
    "overfitting": "accuracy", "underfitting": "accuracy",
    "update_ratio_high": "ratios", "update_ratio_low": "ratios",
    "saturated_units": "histograms", "units_near_zero": "histograms", "dead_units": "histograms",
    "vanishing_gradients": "histograms", "exploding_gradients": "histograms",
}

# The notes' fix for each diagnosis, in a few words (the diagnosis's message says it at length).
NOTES_FIX = {
    "nonfinite": "find the NaN's source (inputs, a too-high learning rate, a log of 0) before anything else",
    "lr_too_high": "lower the learning rate (try 10x smaller)",
    "lr_too_low": "raise the learning rate (try 3-10x larger)",
    "batch_too_small": "use a larger batch (or a lower learning rate)",
    "overfitting": "regularize more (stronger L2, dropout), get more data, or stop at the best validation epoch",
    "underfitting": "use a bigger model (more units or layers) or regularize less",
    "update_ratio_high": "lower the learning rate (the update:weight ratio should be about 1e-3)",
    "update_ratio_low": "raise the learning rate (the update:weight ratio should be about 1e-3)",
    "saturated_units": "scale the initialization down (or use ReLU)",
    "units_near_zero": "scale the initialization up (Xavier/He)",
    "dead_units": "lower the learning rate, or use leaky ReLU / a smaller negative bias",
    "vanishing_gradients": "use ReLU and He initialization (or fewer layers)",
    "exploding_gradients": "scale the initialization down, or lower the learning rate",
}

# Still improving: the validation accuracy rose over each of the last STILL_RISING_EPOCHS epochs
# by STILL_RISING_GAIN in all (a training stopped on the way up; the notes: train longer).
STILL_RISING_EPOCHS = 2
STILL_RISING_GAIN = 0.01


@dataclass
class Finding:
    """One problem a stage found: its severity, what it is, the notes' fix, where the page shows it."""

    severity: str  # fail | warn
    title: str
    fix: str
    section: str
    specific: int = 0  # among equal severities, the more specific finding (a cause) comes first

    def line(self) -> str:
        return f"{self.title}" + (f" Fix: {self.fix}" if self.fix else "")


@dataclass
class Headline:
    """The figure a user quotes: an accuracy with its interval, n and the split it was measured on."""

    split: str  # "test" | "validation" | ""
    acc: float | None = None
    low: float | None = None
    high: float | None = None
    n: int | None = None
    source: str = ""
    model: str = ""  # the model's name in test.json (final, average, ensemble:...)

    def text(self) -> str:
        if self.acc is None:
            return "no accuracy recorded"
        text = f"{self.split} accuracy {100 * self.acc:.1f}%"
        if self.low is not None and self.high is not None:
            text += f" (95% CI {100 * self.low:.1f}–{100 * self.high:.1f}%"
            text += f", n={self.n})" if self.n else ")"
        elif self.n:
            text += f" (n={self.n})"
        return text


@dataclass
class Verdict:
    status: str  # ok | warn | fail | info (nothing to judge yet)
    headline: Headline
    test_note: str  # the test split's source, or "no test split evaluated"
    model_file: str  # the file to use, relative to the run directory ("" when none)
    problems: list[Finding] = field(default_factory=list)
    within_noise: list[str] = field(default_factory=list)
    next_step: str = ""

    def section_status(self, section: str) -> str | None:
        """The worst severity of the problems shown in `section`, None when it has none."""
        found = [p.severity for p in self.problems if p.section == section]
        return min(found, key=SEVERITY_RANK.get) if found else None

    def lines(self) -> list[str]:
        """The verdict as plain terminal lines (the same content as the page's first box)."""
        word = {"ok": "healthy", "warn": "usable, with problems", "fail": "not trustworthy",
                "info": "incomplete"}[self.status]
        out = [f"verdict: {word}. {self.headline.text()}" + (f" [{self.test_note}]" if self.test_note else "")]
        if self.model_file:
            out.append(f"  use: {self.model_file}" if self.status != "fail"
                       else f"  use: none until the problems below are fixed (best checkpoint: {self.model_file})")
        for i, p in enumerate(self.problems, 1):
            out.append(f"  problem {i} ({p.severity}): {p.line()}")
        if not self.problems:
            out.append("  problems: none found by the checks, the search or the monitor")
        for note in self.within_noise:
            out.append(f"  within noise: {note}")
        if self.next_step:
            out.append(f"  next: {self.next_step}")
        # Plain ASCII dashes: a log file or a terminal without UTF-8 reads them too.
        return [line.replace("–", "-").replace("−", "-").replace("→", "->") for line in out]


# --------------------------------------------------------------------------------------------

def compute_verdict(run: RunFiles) -> Verdict:
    """The verdict of the run directory `run`, from the files its stages wrote."""
    status, info = run_state(run)
    metrics = run.metrics()
    records = [r for r in metrics.data or [] if isinstance(r, dict)] if metrics.ok else []
    headline, test_note, model_file = _headline(run, records)
    problems = (_run_problems(status, info) + _check_problems(run) + _training_problems(run, records)
                + _search_problems(run))
    if any(p.section == "curves" and p.title.startswith("The final training stopped") for p in problems):
        problems = [p for p in problems if not p.title.startswith("The run stopped: final training stopped")]
    problems.sort(key=lambda p: (SEVERITY_RANK[p.severity], -p.specific))
    noise = _within_noise(run)
    if problems:
        state = problems[0].severity
    else:
        state = "ok" if records or headline.acc is not None else "info"
    return Verdict(state, headline, test_note, model_file, problems, noise, _next_step(problems, records))


# -- the headline ------------------------------------------------------------------------------

def _headline(run: RunFiles, records: list[dict]) -> tuple[Headline, str, str]:
    test = run.json("test.json")
    if test.ok and isinstance(test.data, dict) and isinstance(test.data.get("models"), dict):
        models = test.data["models"]
        name = test.data.get("headline") if test.data.get("headline") in models else next(iter(models), None)
        model = models.get(name) if name else None
        if isinstance(model, dict) and _is_number(model.get("acc")):
            head = Headline("test", float(model["acc"]), _number(model.get("low")), _number(model.get("high")),
                            _int(model.get("n", test.data.get("n"))), str(test.data.get("source", "")), name)
            return head, f"test split: {head.source}" if head.source else "test split", str(model.get("file", ""))
    note = "no test split evaluated" + (f" (test.json unreadable: {test.error})" if test.error else "")
    best = _best_checkpoint(run)
    val = [r for r in records if _is_number(r.get("val_acc"))]
    if not val:
        return Headline(""), note, best
    chosen = max(val, key=lambda r: r["val_acc"])
    acc, n = float(chosen["val_acc"]), _validation_size(run)
    if not n:
        return Headline("validation", acc), note, best
    low, high = wilson_interval(round(acc * n), n)
    return Headline("validation", acc, low, high, n), note, best


def _validation_size(run: RunFiles) -> int | None:
    """The validation split's size, from the run's data as rebuilt (and cached) for the page."""
    from .reproduce import described

    n = described(run).get("n_val")
    return n if isinstance(n, int) and n > 0 else None


def _best_checkpoint(run: RunFiles) -> str:
    """The checkpoint with the highest validation accuracy in its name (what training chose)."""
    best, best_acc = "", -1.0
    for p in run.checkpoints():
        try:
            acc = float(p.stem.rsplit("_val_", 1)[1])
        except (IndexError, ValueError):
            continue
        if acc > best_acc:
            best, best_acc = str(Path(p).relative_to(run.path)), acc
    return best


# -- problems, by where they were found ------------------------------------------------------

def _run_problems(status: str, info: dict) -> list[Finding]:
    if status == "failed":
        return [Finding("fail", f"The run stopped: {info.get('reason', 'a stage failed')}.",
                        "see the stage that failed below; rerun once it is fixed", "overview")]
    if status == "interrupted":
        return [Finding("fail", "The run was interrupted before it finished: what is shown is partial.",
                        "rerun it (or resume the training) to the end", "overview")]
    return []


def _check_problems(run: RunFiles) -> list[Finding]:
    found = []
    grad = run.gradcheck()
    if grad.ok and isinstance(grad.data, dict):
        outcome = grad.data.get("outcome") or ("passed" if grad.data.get("passed") else "failed")
        if outcome == "failed":
            found.append(Finding("fail", "The gradient check failed: the analytic gradient disagrees with "
                                 "the numerical one.", "fix the backward pass (or the loss) before trusting "
                                 "any training", "gradcheck", specific=3))
        elif outcome == "inconclusive":
            found.append(Finding("warn", "The gradient check was inconclusive on some coordinates (kinks).",
                                 "check those tensors with a smaller step or in float64", "gradcheck"))
    pre = run.preflight()
    if pre.ok and isinstance(pre.data, dict):
        checks = pre.data.get("checks") or {}
        failed = [k for k, v in checks.items() if isinstance(v, dict) and v.get("passed") is False]
        for name in failed:
            message = checks[name].get("message") or ""
            found.append(Finding("fail", f"Sanity check {name} failed" + (f": {message}" if message else "."),
                                 "fix the pipeline before searching or training", "preflight", specific=3))
    return found


def _training_problems(run: RunFiles, records: list[dict]) -> list[Finding]:
    found = []
    if records and records[-1].get("stopped"):
        found.append(Finding("fail", f"The final training stopped early: {records[-1]['stopped']}.",
                             "see the diagnoses below for the cause", "curves"))
    diagnoses = run.diagnoses()
    listed = diagnoses.data if diagnoses.ok and isinstance(diagnoses.data, list) else []
    items = [d for d in listed if isinstance(d, dict)]
    for d in items:
        severity = {"error": "fail", "warning": "warn"}.get(str(d.get("severity", "")).lower())
        if severity is None:
            continue  # info: a remark, not a problem
        code = str(d.get("code", "?"))
        found.append(Finding(severity, f"{code}: {d.get('message', '')}",
                             str(d.get("fix") or NOTES_FIX.get(code, "")),
                             DIAGNOSIS_SECTION.get(code, "diagnoses"), specific=2))
    if not diagnoses.ok and (gap := _overfit_gap(records)) is not None:
        found.append(Finding("warn", f"overfitting: training accuracy is {100 * gap:.0f} points above validation "
                             "and the gap widened.", NOTES_FIX["overfitting"], "accuracy", specific=1))
    if not any(p.severity == "fail" for p in found) and (rise := _still_rising(records, _validation_size(run))) is not None:
        found.append(Finding("warn", f"Still improving at the end: validation accuracy rose {100 * rise:.1f} "
                             f"points over the last {STILL_RISING_EPOCHS} epochs.",
                             "train longer (more epochs) before judging the model", "curves"))
    return found


def _overfit_gap(records: list[dict]) -> float | None:
    """Without the monitor: train - val accuracy above 10 points at the end and widening."""
    pairs = [(r["train_acc"], r["val_acc"]) for r in records
             if _is_number(r.get("train_acc")) and _is_number(r.get("val_acc"))]
    if len(pairs) < 3:
        return None
    gaps = [t - v for t, v in pairs]
    return gaps[-1] if gaps[-1] > 0.10 and gaps[-1] > gaps[len(gaps) // 2] else None


def _still_rising(records: list[dict], n: int | None = None) -> float | None:
    """The validation accuracy's rise over the last epochs, when it rose each epoch by enough in
    all: STILL_RISING_GAIN, and more than the half-width of the last accuracy's 95% interval on
    the `n` validation examples (a smaller rise may be noise, not learning)."""
    val = [r["val_acc"] for r in records if _is_number(r.get("val_acc"))]
    if len(val) <= STILL_RISING_EPOCHS:
        return None
    tail = val[-STILL_RISING_EPOCHS - 1:]
    rise = tail[-1] - tail[0]
    noise = 0.0
    if n:
        low, high = wilson_interval(round(tail[-1] * n), n)
        noise = (high - low) / 2
    rising = all(b > a for a, b in zip(tail, tail[1:]))
    return rise if rising and rise >= max(STILL_RISING_GAIN, noise) else None


def current_alarms(run: RunFiles) -> tuple[list[dict], list[dict]]:
    """(alarms of the search's final stage, alarms of earlier stages).

    An alarm says the best trial *of its stage* sat at the edge of a range; a later stage searches
    a moved or widened range, so only the final stage's alarms describe the result.
    """
    alarms = run.search_alarms()
    rows = [a for a in alarms.data if isinstance(a, dict)] if alarms.ok and isinstance(alarms.data, list) else []
    stages = run.search_stages()
    indices = [s.get("index") for s in stages.data if isinstance(s, dict) and isinstance(s.get("index"), int)] \
        if stages.ok and isinstance(stages.data, list) else []
    indices += [a["stage"] for a in rows if isinstance(a.get("stage"), int)]
    final = max(indices, default=None)
    current = [a for a in rows if a.get("stage") in (final, None)]
    return current, [a for a in rows if a not in current]


def _search_problems(run: RunFiles) -> list[Finding]:
    current, _ = current_alarms(run)
    return [Finding("warn", f"Search border alarm: {a.get('message') or a.get('key', '?')}",
                    "widen that range and search again (the best may lie outside it)", "search")
            for a in current]


# -- within noise, next step ---------------------------------------------------------------

def _within_noise(run: RunFiles) -> list[str]:
    notes = []
    test = run.json("test.json")
    if test.ok and isinstance(test.data, dict) and isinstance(test.data.get("models"), dict):
        for name, model in test.data["models"].items():
            diff = model.get("diff") if isinstance(model, dict) else None
            if isinstance(diff, dict) and diff.get("verdict") == "within noise":
                notes.append(f"{name} against {model.get('vs', '?')} on the test split: "
                             f"{points(diff.get('diff'), diff.get('low'), diff.get('high'))}")
    if notes:
        return notes
    table = run.ensemble_table()
    for row in table.data if table.ok and isinstance(table.data, list) else []:
        if isinstance(row, dict) and row.get("verdict") == "within noise":
            notes.append(f"ensemble {row.get('kind', '?')} against its best member (validation): "
                         f"{points(row.get('gain'), row.get('gain_low'), row.get('gain_high'))}")
    return notes


def _next_step(problems: list[Finding], records: list[dict]) -> str:
    if problems:
        return problems[0].fix or "fix the first problem above and rerun"
    if not records:
        return "train a model: babysit run"
    return ("nothing flagged: to do better, try a larger model or more data, and compare on validation "
            "(differences inside their interval are noise)")


# -- small helpers ---------------------------------------------------------------------------

def points(diff, low=None, high=None) -> str:
    """A difference of accuracies in percentage points with its interval: '+0.3 pt (−1.2 to +1.8)'."""
    if not _is_number(diff):
        return "—"
    text = f"{100 * float(diff):+.1f} pt"
    if _is_number(low) and _is_number(high):
        text += f" ({100 * float(low):+.1f} to {100 * float(high):+.1f})"
    return text


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(value) -> float | None:
    return float(value) if _is_number(value) else None


def _int(value) -> int | None:
    return int(value) if _is_number(value) else None
