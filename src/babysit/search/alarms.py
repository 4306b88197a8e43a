"""The border alarm: the best setting sits at an edge of its range, so the range is too narrow.

If the best learning rate of a search over [1e-6, 1] is 0.8, better ones may well lie above 1:
the search has not bracketed the optimum. For every numeric hyperparameter, after each stage:
position the best trial in its range on the range's own scale,

    u = (scale(best) - scale(low)) / (scale(high) - scale(low)),   scale = log10 for log ranges,

and alarm when ``u <= border`` (lower edge) or ``u >= 1 - border`` (upper edge). The proposed
range moves that edge outwards by half the range's width (on the same scale), stopping at
natural limits (no negative dropout or momentum at or beyond 1).
"""

from __future__ import annotations

from .space import Param, Space

# Natural limits of well-known keys' values: (lowest, highest) allowed.
NATURAL_LIMITS = {"dropout": (0.0, 0.95), "mu": (0.0, 0.999), "val_fraction": (0.01, 0.9)}


def position(param: Param, value: float) -> float:
    """Where `value` lies in the range, 0 at low and 1 at high, on the param's scale."""
    lo, hi = param.scale(param.low), param.scale(param.high)
    return (param.scale(value) - lo) / (hi - lo) if hi > lo else 0.5


def limits(param: Param) -> tuple[float, float]:
    """How far a range may be widened: log ranges stay positive, ranges from >= 0 stay >= 0."""
    lowest, highest = NATURAL_LIMITS.get(param.key.rsplit(".", 1)[-1], (float("-inf"), float("inf")))
    if param.low >= 0:
        lowest = max(lowest, 1 if param.int and param.low >= 1 else 0.0)
    return lowest, highest


def widened(param: Param, edge: str, widen: float = 0.5) -> Param:
    """`param` with `edge` moved outwards by `widen` times its width on its own scale."""
    lo, hi = param.scale(param.low), param.scale(param.high)
    step = widen * (hi - lo)
    lowest, highest = limits(param)
    if edge == "low":
        new_low = param.unscale(lo - step)
        return param.with_range(max(new_low, lowest) if not param.log else new_low, param.high)
    new_high = min(param.unscale(hi + step), highest)
    return param.with_range(param.low, max(new_high, param.high))


def border_alarms(space: Space, ranked: list[dict], *, border: float = 0.1, top_k: int = 5,
                  stage: int | None = None) -> list[dict]:
    """Alarms for `space` given trial records best first (each with ``params``).

    Returns one dict per alarm: key, edge (``low``/``high``), best value, its position, how
    many of the top_k share that edge, the range and the proposed wider range, and a message.
    """
    alarms = []
    top = [r for r in ranked if r.get("params")][:top_k]
    if not top:
        return alarms
    for param in space.numeric():
        if param.key not in top[0]["params"]:
            continue
        best = top[0]["params"][param.key]
        u = position(param, best)
        edge = "low" if u <= border else "high" if u >= 1 - border else None
        if edge is None:
            continue
        near = sum(1 for r in top if param.key in r["params"]
                   and _on_edge(position(param, r["params"][param.key]), edge, border))
        proposal = widened(param, edge)
        can_widen = (proposal.low, proposal.high) != (param.low, param.high)
        side = "lower" if edge == "low" else "upper"
        advice = (f"widen it to [{proposal.low:g}, {proposal.high:g}]" if can_widen
                  else "that edge is a natural limit, so the best value may simply be there")
        alarms.append({
            "stage": stage, "key": param.key, "edge": edge, "best": best, "position": round(u, 4),
            "top_k_on_edge": near, "top_k": len(top), "range": [param.low, param.high],
            "log": param.log, "proposed": [proposal.low, proposal.high] if can_widen else None,
            "message": f"{param.key}: the best trial ({best:.4g}) is at the {side} edge of "
                       f"[{param.low:g}, {param.high:g}] ({near} of the top {len(top)} in the outer "
                       f"{border:.0%}{', log scale' if param.log else ''}): {advice}"})
    return alarms


def _on_edge(u: float, edge: str, border: float) -> bool:
    return u <= border if edge == "low" else u >= 1 - border
