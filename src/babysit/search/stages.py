"""Coarse to fine: a search in stages, each on ranges narrowed around the last one's best.

The notes' recipe: first train many settings on wide ranges for at most an epoch (many of them
never learn or explode, and one epoch shows it); then search narrower ranges around the best
for about 5 epochs; finally train a few settings fully. In the config::

    [search]
    stages = [{trials = 24, epochs = 1}, {trials = 10, epochs = 5}, {trials = 3, epochs = 0}]
    top_k = 5       # narrow around the best 5 trials of the previous stage
    margin = 0.5    # ...their span, widened by half of it on each side
    carry = true    # and first continue those best settings, longer

``epochs = 0`` means the experiment's ``train.epochs`` (full training). A fraction below 1
(``epochs = 0.5``) is the notes' "1 epoch or less": each trial stops after that share of one
epoch's optimizer steps and is judged on the full validation split. A setting carried from
such a stage starts the next one afresh (its checkpoint holds part of an epoch, not an epoch).

Narrowing, per numeric hyperparameter, on its own scale (log10 for log ranges): with the
top_k values spanning [a, b], the next range is [a - m, b + m] with m = margin * max(b - a,
10% of the current width), clipped to the stage-1 range (or to a range the border alarm
widened). Categorical hyperparameters keep the choices that appear among the top_k.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..config import check_value, violation
from ..errors import UserError
from .space import Param, Space

MIN_SPAN = 0.1  # fraction of the current width: the narrowed range never collapses to a point


@dataclass
class StageSpec:
    """What one stage searches. Stored on the stage's study, so every worker reads the same."""

    index: int  # from 1
    trials: int
    epochs: int | float  # a float below 1: that share of one epoch's steps
    space: dict  # Space.to_dict()
    sampler: str
    pruner: str
    study: str
    grid_points: int = 4
    carried: list = field(default_factory=list)  # trial ids continued from the previous stage

    def to_dict(self) -> dict:
        return asdict(self)


def parse_stages(config: dict) -> list[dict]:
    """``search.stages`` checked: a list of {trials >= 1, epochs >= 0 (0: train.epochs; a
    fraction in (0, 1): that share of an epoch)}."""
    stages = config["search"]["stages"]
    example = "write e.g. stages = [{trials = 24, epochs = 1}, {trials = 10, epochs = 5}]"
    if not isinstance(stages, list) or not stages:
        raise UserError(f"search.stages must be a non-empty list of tables: {example}")
    parsed = []
    for i, stage in enumerate(stages, 1):
        if not isinstance(stage, dict):
            raise UserError(f"search.stages[{i}] must be a table like {{trials = 24, epochs = 1}}: {example}")
        unknown = set(stage) - {"trials", "epochs"}
        if unknown:
            raise UserError(f"search.stages[{i}] has unknown key(s) {', '.join(sorted(unknown))}: "
                            "a stage takes trials and epochs")
        trials, epochs = stage.get("trials"), stage.get("epochs", 0)
        if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
            raise UserError(violation(f"search.stages[{i}].trials", "a whole number >= 1", trials,
                                      "trials in the stage"))
        if not (is_fraction(epochs) or isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 0):
            raise UserError(violation(f"search.stages[{i}].epochs", "a whole number >= 0 or a fraction "
                                      "of an epoch in (0, 1)", epochs, "0: train.epochs; 0.5: half an epoch"))
        parsed.append({"trials": trials, "epochs": epochs or config["train"]["epochs"]})
    for key in ("top_k", "grid_points", "border", "margin", "grace_period", "idle_timeout"):
        check_value(f"search.{key}", config["search"][key])
    return parsed


def is_fraction(epochs) -> bool:
    """A stage of part of one epoch (``epochs = 0.5``)."""
    return isinstance(epochs, float) and 0 < epochs < 1


def narrow(space: Space, top: list[dict], *, limits: Space, margin: float = 0.5) -> Space:
    """The next stage's space: each range around the values of the `top` trials (best first,
    each with ``params``), clipped to `limits`. See the module docstring for the rule."""
    params = []
    for p in space:
        values = [r["params"][p.key] for r in top if p.key in r.get("params", {})]
        if not values:
            params.append(p)
        elif not p.numeric:
            kept = tuple(c for c in p.choices if c in values)
            params.append(Param(p.key, choices=kept or p.choices))
        else:
            params.append(_narrow_range(p, values, limits[p.key], margin))
    return Space(params)


def _narrow_range(p: Param, values: list, limit: Param, margin: float) -> Param:
    scaled = [p.scale(v) for v in values]
    a, b = min(scaled), max(scaled)
    width = p.scale(p.high) - p.scale(p.low)
    m = margin * max(b - a, MIN_SPAN * width)
    low = max(p.unscale(a - m), limit.low)
    high = min(p.unscale(b + m), limit.high)
    narrowed = p.with_range(low, high)
    if narrowed.low >= narrowed.high and p.int and limit.high > limit.low:
        # An integer range collapsed to one value: keep a neighbour so the stage can compare.
        narrowed = p.with_range(narrowed.low, min(narrowed.low + 1, limit.high)) \
            if narrowed.low < limit.high else p.with_range(narrowed.low - 1, narrowed.low)
    return narrowed


def widen_limits(limits: Space, alarms: list[dict]) -> Space:
    """`limits` with every alarmed edge moved to the alarm's proposal (auto_widen)."""
    params = []
    for p in limits:
        proposals = [a["proposed"] for a in alarms if a["key"] == p.key and a.get("proposed")]
        low = min([p.low] + [lo for lo, _ in proposals]) if p.numeric else None
        high = max([p.high] + [hi for _, hi in proposals]) if p.numeric else None
        params.append(p.with_range(low, high) if p.numeric and proposals else p)
    return Space(params)


def extend_to_edges(space: Space, limits: Space, alarms: list[dict], margin: float) -> Space:
    """After auto-widening: let an alarmed range reach `margin` of its width past the old edge,
    so the next stage looks beyond it rather than only up to it."""
    params = []
    for p in space:
        alarm = next((a for a in alarms if a["key"] == p.key and a.get("proposed")), None)
        if alarm is None or not p.numeric:
            params.append(p)
            continue
        lo, hi = p.scale(p.low), p.scale(p.high)
        reach = margin * (hi - lo)
        limit = limits[p.key]
        if alarm["edge"] == "high":
            params.append(p.with_range(p.low, min(p.unscale(hi + reach), limit.high)))
        else:
            params.append(p.with_range(max(p.unscale(lo - reach), limit.low), p.high))
    return Space(params)
