"""The update rules' paths on two 2-D surfaces: the notes' illustration, computed by the rules.

Each path is made by the real optimizer (``make_optimizer``) stepping a 2-vector in float64 on
a surface given as a torch function, so the picture shows what the code does.

- ``valley``: a long, narrow valley ``f = x**2/20 + y**2`` (curvature 40x steeper across than
  along): plain SGD zig-zags across and crawls along; momentum builds speed along the floor.
- ``saddle``: ``f = x**2 - y**2`` from a point almost on the ridge: the gradient across is tiny,
  so SGD lingers at the saddle while the per-parameter rules (Adagrad, RMSprop, Adam) escape
  at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .rules import FIRST_ORDER, make_optimizer


@dataclass(frozen=True)
class Surface:
    name: str
    title: str
    f: Callable[[torch.Tensor], torch.Tensor]  # a 2-vector -> its height
    start: tuple[float, float]
    box: tuple[float, float, float, float]  # xmin, xmax, ymin, ymax: the picture, and where a path ends
    lr: dict  # per rule: a learning rate that shows its character on this surface
    steps: int = 120


SURFACES = (
    Surface("valley", "a long valley  f = x²/20 + y²", lambda p: p[0] ** 2 / 20 + p[1] ** 2,
            start=(-4.5, 1.6), box=(-5.0, 1.5, -2.0, 2.0),
            lr={"sgd": 0.9, "momentum": 0.1, "nesterov": 0.1, "adagrad": 0.5,
                "rmsprop": 0.1, "adam": 0.3}),
    Surface("saddle", "a saddle point  f = x² − y²", lambda p: p[0] ** 2 - p[1] ** 2,
            start=(-1.5, 1e-3), box=(-1.6, 1.6, -1.6, 1.6),
            lr={"sgd": 0.05, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.1,
                "rmsprop": 0.02, "adam": 0.05}),
)


def trajectory(rule: str, surface: Surface, steps: int | None = None, lr: float | None = None) -> np.ndarray:
    """Positions (steps+1, 2) of `rule` on `surface`, ending early when it leaves the box."""
    point = torch.tensor(surface.start, dtype=torch.float64, requires_grad=True)
    optimizer = make_optimizer(rule, [point], lr=surface.lr[rule] if lr is None else lr)
    xmin, xmax, ymin, ymax = surface.box
    path = [point.detach().numpy().copy()]
    for _ in range(surface.steps if steps is None else steps):
        optimizer.zero_grad()
        surface.f(point).backward()
        optimizer.step()
        path.append(point.detach().numpy().copy())
        x, y = path[-1]
        if not (xmin <= x <= xmax and ymin <= y <= ymax):  # off the picture (the saddle falls forever)
            break
    return np.array(path)


def all_paths(rules: tuple[str, ...] = FIRST_ORDER) -> dict[str, dict[str, np.ndarray]]:
    """{surface name: {rule: path}} for every surface and first-order rule."""
    return {s.name: {rule: trajectory(rule, s) for rule in rules} for s in SURFACES}
