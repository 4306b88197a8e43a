"""Diagnoses: what the records say is wrong, each with a stable code, the notes' fix and evidence.

Every rule reads the :class:`~babysit.watch.records.History` (the monitor's records, live or
loaded from a run directory) and returns a :class:`Diagnosis` or nothing. The thresholds are
in :class:`Thresholds`; they were calibrated on real runs of small networks on the digits
data, broken in each way and trained healthily (see ``tests/watch``).

The codes (stable identifiers; the messages are prose and may change) and what each means
are in :data:`MEANINGS`, in the order diagnoses of one severity are listed.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..stats import brief
from .curves import CurveShape, LossNumbers, measure, median
from .records import History

MEANINGS = {
    "nonfinite": "NaN/Inf in the loss, the weights or the gradients",
    "lr_too_high": "the loss explodes, climbs back up, or drops fast and stalls high",
    "lr_too_low": "the loss falls slowly along a nearly straight line",
    "batch_too_small": "the loss wiggles a lot around its trend",
    "overfitting": "training accuracy far above validation, and the gap widens",
    "underfitting": "validation tracks training, both low, and the loss has flattened",
    "update_ratio_high": "a weight tensor's ||dw||/||w|| far above ~1e-3",
    "update_ratio_low": "a weight tensor's ||dw||/||w|| far below ~1e-3",
    "saturated_units": "tanh/sigmoid outputs stuck near their bounds",
    "units_near_zero": "tanh outputs all near zero (weights too small: the signal dies away)",
    "dead_units": "ReLU units that never activate",
    "vanishing_gradients": "the gradient shrinks on its way back to the first layers",
    "exploding_gradients": "the gradient grows on its way back, or over time",
}
CODES = tuple(MEANINGS)
SEVERITIES = ("error", "warning", "info")


@dataclass
class Diagnosis:
    code: str
    severity: str  # error (training is broken) | warning (it works, badly) | info
    message: str  # what is wrong and the fix the notes suggest
    evidence: dict = field(default_factory=dict)  # the numbers behind it

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"[{self.severity}] {self.code}: {self.message}"


@dataclass
class Thresholds:
    """Where each rule fires. Ratios are ||dw||/||w|| per step; fractions are shares of units."""

    target_ratio: float = 1e-3  # the notes' rule of thumb for the update:weight ratio
    ratio_high: float = 1e-2  # median ratio of a weight tensor above this (10x the target) ...
    ratio_low: float = 1e-4  # ... or below this (a tenth of it), over the last epoch
    explode_factor: float = 3.0  # the loss rose to this many times its start
    relapse: float = 0.25  # the trend climbed back up by this share of the progress made
    stall_level: float = 0.4  # stalled at more than this share of the starting loss ...
    stall_ratio: float = 1e-2  # ... with steps this large (median weight ratio)
    slow_progress: float = 0.5  # lr_too_low: less than this share of the starting loss removed
    straight_bend: float = 0.5  # ... and the second half dropped at least this share of the first
    noise: float = 0.15  # spread of the loss around its trend, as a share of the starting loss
    gap: float = 0.1  # train - val accuracy
    gap_growth: float = 0.03  # the gap grew by this much since its smallest, or ...
    memorized: float = 0.99  # ... training accuracy (eval mode) reached this: nothing left to fit
    low_accuracy: float = 0.8  # underfitting: training accuracy below this ...
    tracking_gap: float = 0.1  # ... validation within this of it ...
    flat: float = 0.15  # ... the last third of training lowered the loss by less than this share
    min_progress: float = 0.1  # ... after it had learned something (this share of the start removed)
    saturated: float = 0.4  # share of a layer's tanh/sigmoid outputs within 1% of a bound
    near_zero: float = 0.6  # share of a layer's tanh outputs within 0.1 of 0 (healthy: < 0.1)
    dead: float = 0.4  # share of a layer's ReLU units never active in an epoch's sampled batches
    vanishing: float = 1e-2  # RMS gradient of the first weights / of the last weights
    exploding: float = 1e2  # RMS gradient into the first activation layer / into the last one,
    #                         or growth of the gradient norm since training began
    min_epochs: int = 2  # curve, accuracy and update-ratio rules wait for this many epochs


# -- reading the history -----------------------------------------------------------------------


def memo(fn):
    """Compute once per state of the history (several rules read the same curve and ratios)."""
    @functools.wraps(fn)
    def cached(history: History):
        key = (fn.__name__, len(history.steps), len(history.ratios), len(history.grad_norms), len(history.epochs))
        store = history.__dict__.setdefault("_memo", {})
        if key not in store:
            store.clear() if len(store) > 32 else None
            store[key] = fn(history)
        return store[key]
    return cached


@memo
def loss_numbers(history: History) -> LossNumbers:
    """The loss curve measured once per diagnosis: its shape (with a trend over about an
    epoch's steps), the explosion check's numbers, where the first NaN/Inf loss is."""
    per_epoch = history.meta.get("steps_per_epoch") or (history.epochs[0]["step"] if history.epochs else 20)
    losses = np.array([r["loss"] for r in history.steps], dtype=float)
    return measure(losses, window=max(int(per_epoch), 5))


def curve(history: History) -> CurveShape | None:
    return loss_numbers(history).shape


def recent_samples(records: list[dict], history: History) -> list[dict]:
    """Records of the last finished epoch (all of them before the first epoch ends); for a
    stream sampled every `ratio_every` or `hist_every` steps that skipped it, those of the
    latest epoch that has any."""
    if not records or len(history.epochs) <= 1:
        return records
    last = records[-1]["step"]
    since = max((r["step"] for r in history.epochs[:-1] if r["step"] < last), default=-1)
    return [r for r in records if r["step"] > since]


@memo
def weight_ratios(history: History) -> dict[str, float]:
    """Median update:weight ratio per weight tensor over the last epoch that has sampled steps
    (moving tensors only)."""
    rows = recent_samples(history.ratios, history)
    if not rows:
        return {}
    names = history.param_names
    out = {}
    for i in history.weight_indices:
        values = np.array([r["ratios"][i] for r in rows], dtype=float)
        values = values[np.isfinite(values)]
        if len(values) and values.max() > 0:  # a tensor that never moved is frozen, not slow
            out[names[i]] = float(median(values))
    return out


def first_to_last(pairs) -> float | None:
    """Median of first / last over `(first, last)` pairs where both are finite and last > 0."""
    ratios = [a / b for a, b in pairs if b > 0 and math.isfinite(a) and math.isfinite(b)]
    return float(median(ratios)) if ratios else None


def gradient_depth_ratio(history: History) -> tuple[float, dict] | None:
    """Median over recent samples of RMS grad (first weight) / RMS grad (last weight)."""
    weights, names = history.weight_indices, history.param_names
    if len(weights) < 2:
        return None
    first, last = weights[0], weights[-1]
    ratio = first_to_last((r["rms"][first], r["rms"][last]) for r in recent_samples(history.grad_norms, history))
    return None if ratio is None else (ratio, {"first": names[first], "last": names[last]})


# -- the rules -----------------------------------------------------------------------------------


def first_nonfinite(records: list[dict], field_name: str) -> int | None:
    """The step of the first record whose `field_name` is not finite (ratios: NaN; an inf ratio
    is a zero weight that moved)."""
    if not records:
        return None
    values = np.array([r[field_name] for r in records], dtype=float)
    bad = np.isnan(values) if field_name == "ratios" else ~np.isfinite(values)
    bad = bad.reshape(len(records), -1).any(axis=1)
    return records[int(bad.argmax())]["step"] if bad.any() else None


def nonfinite(h: History, t: Thresholds) -> Diagnosis | None:
    where = {}
    first_loss = loss_numbers(h).first_nonfinite  # found by the loss curve's one pass
    if first_loss >= 0:
        where["loss_step"] = h.steps[first_loss]["step"]
    for key, records, field_name in (("weights_step", h.ratios, "ratios"),
                                     ("gradients_step", h.grad_norms, "rms")):
        step = first_nonfinite(records, field_name)
        if step is not None:
            where[key] = step
    if not where:
        return None
    first = min(where.values())
    parts = ", ".join(k.replace("_step", "") for k in where)
    return Diagnosis("nonfinite", "error",
                     f"NaN/Inf appeared in the {parts} (first at step {first}): training cannot "
                     "recover. Lower the learning rate (a diverging loss is the usual cause), check "
                     "the inputs and the loss for NaN/log(0)/division by zero, and restart from the "
                     "last good checkpoint.", {**where, "first_step": first})


def lr_too_high(h: History, t: Thresholds) -> Diagnosis | None:
    # Exploded: the loss rose to `explode_factor` times its start, checked from the 2nd step
    # on, so a run that blows up within a few steps and is stopped is caught too.
    start, peak = loss_numbers(h).early, loss_numbers(h).top  # NaN before 2 finite losses
    if start > 0 and peak > t.explode_factor * start:
        return Diagnosis("lr_too_high", "error",
                         f"The loss exploded (peaked at {peak:.3g}, {peak / start:.0f}x its start "
                         f"{start:.3g}): the learning rate is far too high. Lower it (try 10x "
                         "smaller), and check the initialization scale.", {"start_loss": start, "peak_loss": peak})
    c = curve(h)
    if c is None:
        return None
    ratios = weight_ratios(h)
    median_ratio = float(median(list(ratios.values()))) if ratios else float("nan")
    evidence = {"start_loss": c.start, "end_loss": c.end, "best_loss": c.best, "peak_loss": c.peak,
                "median_update_ratio": median_ratio}
    made = c.start - c.best  # the progress made: a flat, noisy loss has made none to lose
    if made > t.min_progress * c.start and c.end - c.best > t.relapse * made:
        how = (f"climbed back up (from a best of {c.best:.3g} to {c.end:.3g}, losing "
               f"{(c.end - c.best) / made:.0%} of the progress)")
    elif (c.early_drop > 0.3 and c.end > t.stall_level * c.start and c.late_drop < t.flat * c.end
          and median_ratio > t.stall_ratio):
        how = (f"dropped fast, then stalled at {c.end:.3g} ({c.end / c.start:.0%} of the start) "
               f"with large steps (update:weight ratio {median_ratio:.1e})")
    else:
        return None
    return Diagnosis("lr_too_high", "warning",
                     f"The loss {how}: the learning rate is too high. Lower it (try 3-10x smaller), "
                     "or anneal it (step decay or halve it when validation stops improving).", evidence)


def lr_too_low(h: History, t: Thresholds) -> Diagnosis | None:
    c = curve(h)
    if c is None or len(h.epochs) < t.min_epochs:
        return None
    if not (0 < c.progress < t.slow_progress and c.bend > t.straight_bend):
        return None
    return Diagnosis("lr_too_low", "warning",
                     f"The loss falls slowly along a nearly straight line ({c.progress:.0%} of the "
                     f"starting loss removed in {len(h.epochs)} epochs; the second half dropped "
                     f"{c.bend:.2f}x as much as the first): the learning rate is too low. Raise it "
                     "(try 3-10x larger).",
                     {"start_loss": c.start, "end_loss": c.end, "progress": c.progress, "bend": c.bend})


def batch_too_small(h: History, t: Thresholds) -> Diagnosis | None:
    c = curve(h)
    if c is None or len(h.epochs) < 1 or c.noise <= t.noise:
        return None
    return Diagnosis("batch_too_small", "warning",
                     f"The loss is very noisy around its trend (it wiggles by {c.noise:.0%} of the "
                     "starting loss late in training): the batch is too small for a stable gradient. "
                     "Use a larger batch (and, if needed, a smaller learning rate).",
                     {"relative_noise": c.noise, "threshold": t.noise})


def accuracy(h: History, record: dict, name: str) -> str:
    """An epoch's accuracy as the messages quote it: with its 95% interval and n when the
    monitor was told the n (``97.3% (96.1-98.1, n=359)``), else the bare value."""
    n = h.meta.get("accuracy_n", {}).get(name)
    return brief(record[name], n) if isinstance(n, int) and n > 0 else f"{record[name]:.3f}"


def overfitting(h: History, t: Thresholds) -> Diagnosis | None:
    rows = [r for r in h.epochs if "train_acc" in r and "val_acc" in r]
    if len(rows) < t.min_epochs:
        return None
    gaps = [r["train_acc"] - r["val_acc"] for r in rows]
    # The training accuracy is measured in eval mode on training examples, so a small data set
    # memorized within the first epoch shows its gap from the start: it need not grow then.
    memorized = rows[-1]["train_acc"] >= t.memorized
    if gaps[-1] < t.gap or (gaps[-1] - min(gaps) < t.gap_growth and not memorized):
        return None
    last = rows[-1]
    return Diagnosis("overfitting", "warning",
                     f"Training accuracy {accuracy(h, last, 'train_acc')} is far above validation "
                     f"{accuracy(h, last, 'val_acc')} (gap {100 * gaps[-1]:.1f} pt, up from "
                     f"{100 * min(gaps):.1f}): the model "
                     "is overfitting. Regularize more (stronger L2, dropout), get more data, or stop "
                     "at the best validation epoch.",
                     {"train_acc": last["train_acc"], "val_acc": last["val_acc"], "gap": gaps[-1],
                      "smallest_gap": min(gaps)})


def underfitting(h: History, t: Thresholds) -> Diagnosis | None:
    rows = [r for r in h.epochs if "train_acc" in r and "val_acc" in r]
    c = curve(h)
    if len(rows) < t.min_epochs or c is None:
        return None
    last = rows[-1]
    gap = last["train_acc"] - last["val_acc"]
    ratios = weight_ratios(h)
    median_ratio = float(median(list(ratios.values()))) if ratios else 0.0
    late_share = c.late_drop / c.end if c.end > 0 else float("inf")
    if not (last["train_acc"] < t.low_accuracy and abs(gap) < t.tracking_gap and late_share < t.flat
            and c.progress > t.min_progress and c.bend < t.straight_bend and median_ratio < t.stall_ratio):
        return None
    return Diagnosis("underfitting", "warning",
                     f"Validation accuracy {accuracy(h, last, 'val_acc')} tracks training "
                     f"{accuracy(h, last, 'train_acc')}, "
                     "both are low and the loss has flattened: the model lacks capacity. Make it "
                     "bigger (more units or layers), and regularize less.",
                     {"train_acc": last["train_acc"], "val_acc": last["val_acc"], "gap": gap,
                      "late_drop_share": late_share})


def update_ratios(h: History, t: Thresholds) -> list[Diagnosis]:
    # The first epoch is a transient (large gradients at the start): judge the steady state.
    if len(h.epochs) < t.min_epochs:
        return []
    # The ~1e-3 rule of thumb is for many small minibatch steps; a full-batch method (L-BFGS,
    # Newton: one step per epoch) takes few large ones by design.
    if h.epochs[-1]["step"] - h.epochs[-2]["step"] <= 1:
        return []
    ratios = weight_ratios(h)
    out = []
    for code, beyond, judged in (("update_ratio_high", lambda v: v > t.ratio_high,
                                  "far above the ~{:g} the notes aim for: the steps are too large. Lower "
                                  "the learning rate."),
                                 ("update_ratio_low", lambda v: v < t.ratio_low,
                                  "far below the ~{:g} the notes aim for: these weights barely move. Raise "
                                  "the learning rate (or check the gradient reaches them).")):
        found = {k: v for k, v in ratios.items() if beyond(v)}
        if found:
            out.append(Diagnosis(code, "warning", f"Update:weight ratio ||dw||/||w|| is {_listing(found)}, "
                                 + judged.format(t.target_ratio), {**found, "target": t.target_ratio}))
    return out


def latest(h: History, key: str) -> dict:
    """The latest epoch's per-layer numbers under `key` (epochs without a sampled step have none)."""
    for record in reversed(h.epochs):
        if record.get(key):
            return record[key]
    return {}


# Rules on the share of a layer's units in a bad state, all of one shape:
# code -> (the epochs' record key, the Thresholds field, what is wrong and the fix)
UNIT_SHARES = {
    "saturated_units": ("saturated", "saturated",
                        "tanh/sigmoid outputs sit at their bounds ({} within 1% of +-1 or 0/1), where "
                        "their gradient is nearly zero: the weights are too large. Initialize with a "
                        "smaller scale (Xavier/He: std sqrt(1/n) or sqrt(2/n)), standardize the inputs, "
                        "or lower the learning rate."),
    "units_near_zero": ("near_zero", "near_zero",
                        "tanh outputs all sit near zero ({} within 0.1 of 0), where the units act "
                        "linearly and the signal shrinks layer by layer: the weights are too small. "
                        "Initialize with a larger scale (Xavier: std sqrt(1/n)) and standardize the inputs."),
    "dead_units": ("dead", "dead",
                   "ReLU units never activated in the sampled batches of an epoch ({} of the layer): "
                   "they get no gradient and will not recover. Lower the learning rate, initialize "
                   "biases at 0 or slightly positive (He init for the weights), or use leaky ReLU."),
}


def unit_shares(h: History, t: Thresholds) -> list[Diagnosis]:
    """Layers whose share of units in a bad state (the latest epoch's) is above its threshold."""
    out = []
    for code, (key, threshold, message) in UNIT_SHARES.items():
        layers = {k: v for k, v in latest(h, key).items() if v > getattr(t, threshold)}
        if layers:
            out.append(Diagnosis(code, "warning", message.format(_listing(layers, "{:.0%}")), layers))
    return out


def vanishing_gradients(h: History, t: Thresholds) -> Diagnosis | None:
    found = gradient_depth_ratio(h)
    if found is None or not found[0] < t.vanishing:
        return None
    ratio, names = found
    return Diagnosis("vanishing_gradients", "warning",
                     f"The gradient vanishes on its way back: the first weights ({names['first']}) "
                     f"get {ratio:.1e}x the RMS gradient of the last ({names['last']}), so the early "
                     "layers barely learn. Use ReLU instead of sigmoid/tanh, a proper initialization "
                     "(He/Xavier), or a shallower network.",
                     {"first_to_last_rms": ratio})


def exploding_gradients(h: History, t: Thresholds) -> Diagnosis | None:
    backward = backward_growth(h)
    growth = gradient_growth(h)
    evidence = {"backward_growth": backward if backward is not None else float("nan"),
                "growth_over_time": growth if growth is not None else float("nan")}
    if backward is not None and backward > t.exploding:
        why = (f"the gradient reaching the first activation layer is {backward:.1e}x the one "
               "reaching the last (it grows on its way back)")
    elif growth is not None and growth > t.exploding:
        why = f"the gradient norm grew {growth:.1e}x since training began"
    else:
        return None
    return Diagnosis("exploding_gradients", "warning",
                     f"The gradient explodes: {why}. Initialize with a smaller scale (He/Xavier), "
                     "lower the learning rate, or clip the gradient norm.", evidence)


def backward_growth(h: History) -> float | None:
    """Median over recent samples of RMS d(loss)/d(output) at the first activation layer / last."""
    layers = [layer["name"] for layer in h.meta.get("layers", [])]
    by_step: dict[int, dict[str, float]] = {}
    for r in recent_samples(h.gradients, h):
        by_step.setdefault(r["step"], {})[r["layer"]] = r["rms"]
    return first_to_last((v[layers[0]], v[layers[-1]]) for v in by_step.values()
                         if len(layers) > 1 and layers[0] in v and layers[-1] in v)


def gradient_growth(h: History) -> float | None:
    """Largest total RMS gradient lately / median over the first samples."""
    rows = [r for r in h.grad_norms if all(math.isfinite(x) for x in r["rms"])]
    if len(rows) < 6:
        return None
    totals = np.array([math.sqrt(sum(x * x for x in r["rms"])) for r in rows])
    base = float(median(totals[:3]))
    return float(median(totals[-3:]) / base) if base > 0 else None


def _listing(values: dict, fmt: str = "{:.1e}") -> str:
    items = sorted(values.items(), key=lambda kv: -kv[1])
    shown = ", ".join(f"{fmt.format(v)} for {k}" for k, v in items[:4])
    return shown + (f" and {len(items) - 4} more" if len(items) > 4 else "")


RULES = (nonfinite, lr_too_high, lr_too_low, batch_too_small, overfitting, underfitting,
         update_ratios, unit_shares, vanishing_gradients, exploding_gradients)


# A learning rate far too high (and the NaN it leads to) also kills units and stops weights
# moving; those consequences must not read as independent problems whose fixes ("raise the
# learning rate", "make the model bigger") contradict the cause's. cause -> codes it explains:
# dropped, or (REWORDED) kept with the cause named, when their own fix agrees with the cause's.
CONSEQUENCES = {"lr_too_low", "underfitting", "update_ratio_low", "units_near_zero", "dead_units", "saturated_units"}
EXPLAINED = {"nonfinite": CONSEQUENCES, "lr_too_high": CONSEQUENCES}
REWORDED = {"dead_units", "saturated_units"}


def reconcile(found: list[Diagnosis]) -> list[Diagnosis]:
    """`found` less the diagnoses a cause in it explains (see EXPLAINED)."""
    cause = next((c for c in EXPLAINED if any(d.code == c for d in found)), None)
    if cause is None:
        return found
    kept = []
    for d in found:
        if d.code in EXPLAINED[cause] and d.code in REWORDED:
            d = Diagnosis(d.code, d.severity, f"Most likely a consequence of {cause} (fix that first): "
                          + d.message, d.evidence)
        elif d.code in EXPLAINED[cause]:
            continue
        kept.append(d)
    return kept


def diagnose(history: History, thresholds: Thresholds | None = None) -> list[Diagnosis]:
    """Every rule over `history`, less what a cause explains (:func:`reconcile`); errors first,
    then warnings, each in the order of CODES."""
    thresholds = thresholds or Thresholds()
    found: list[Diagnosis] = []
    for rule in RULES:
        result = rule(history, thresholds)
        if isinstance(result, Diagnosis):
            found.append(result)
        elif result:
            found.extend(result)
    return sorted(reconcile(found), key=lambda d: (SEVERITIES.index(d.severity), CODES.index(d.code)))
