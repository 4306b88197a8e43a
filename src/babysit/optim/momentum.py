"""Momentum and Nesterov momentum exactly as the notes write them.

``torch.optim.SGD`` keeps the learning rate outside the velocity (``v = mu*v + dx;
x -= lr*v``), which is a different trajectory as soon as the learning rate changes: a decayed
lr there also shrinks the velocity built up before. The notes put lr inside the velocity, so
an lr change only affects new gradients.

How the velocity is stored (for speed, not a different rule): ``v = -s * e``, where ``e`` is
a weighted average of the past gradients and ``s`` a scalar per parameter. The notes'
recursion ``v = mu*v - lr*dx`` then becomes::

    s' = mu*s + lr
    e' = e + (lr/s') * (dx - e)          (one torch._foreach_lerp_)

which is exact algebra (``-s'e' = -mu*s*e - lr*dx``) and holds for any lr and mu at every
step, schedules included. Momentum's step is then two multi-tensor kernels, Nesterov's three
(torch's own SGD momentum needs three), each touching every parameter once.
"""

from __future__ import annotations

from typing import Callable

import torch


def _evaluate(closure: Callable | None):
    """The loss from `closure` (with gradients on), or None: torch's optimizer convention."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


class Momentum(torch.optim.Optimizer):
    """Momentum update: ``v = mu*v - lr*dx;  x += v`` (v starts at zero).

    `mu` (0.5 - 0.99, typically 0.9) is the "friction" that damps the velocity; the notes
    suggest annealing it upwards (e.g. 0.5 -> 0.99) over the first epochs.
    """

    def __init__(self, params, lr: float = 0.01, mu: float = 0.9):
        super().__init__(params, {"lr": lr, "mu": mu})

    def velocity(self, p: torch.Tensor) -> torch.Tensor:
        """The notes' v for parameter `p` (zeros before its first step)."""
        state = self.state.get(p, {})
        if "grad_average" not in state:
            return torch.zeros_like(p)
        return -state["scale"] * state["grad_average"]

    def _buckets(self, group: dict) -> list[tuple[float, list, list, list]]:
        """Parameters with a gradient, bucketed by their scale s (normally all share one):
        [(s, params, grads, gradient averages)]; state is created on first use (s = 0, e = 0)."""
        buckets: dict[float, tuple[list, list, list]] = {}
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if "grad_average" not in state:
                state["grad_average"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["scale"] = 0.0
            bucket = buckets.setdefault(state["scale"], ([], [], []))
            bucket[0].append(p)
            bucket[1].append(p.grad)
            bucket[2].append(state["grad_average"])
        return [(s, *lists) for s, lists in buckets.items()]

    def _update_velocity(self, group: dict, s: float, params: list, grads: list, averages: list) -> float:
        """``v = mu*v - lr*dx`` in the (s, e) form; returns the new s."""
        new_s = group["mu"] * s + group["lr"]
        if new_s > 0:
            torch._foreach_lerp_(averages, grads, group["lr"] / new_s)
        for p in params:
            self.state[p]["scale"] = new_s
        return new_s

    @torch.no_grad()
    def step(self, closure: Callable | None = None):
        loss = _evaluate(closure)
        for group in self.param_groups:
            for s, params, grads, averages in self._buckets(group):
                s = self._update_velocity(group, s, params, grads, averages)
                torch._foreach_add_(params, averages, alpha=-s)  # x += v
        return loss


class Nesterov(Momentum):
    """Nesterov momentum, in either of the notes' two forms.

    ``form="rewritten"`` (default) is the form the notes recommend, in which the stored
    parameters *are* the lookahead point, so the ordinary gradient is all it needs::

        v_prev = v;  v = mu*v - lr*dx;  x += -mu*v_prev + (1 + mu)*v

    (computed as the equal ``x += mu*v - lr*dx`` with the new v). ``form="lookahead"`` keeps
    the parameters at x and evaluates the gradient at the lookahead point ``x + mu*v`` (so it
    needs a `closure` that recomputes the loss and its gradient; :func:`babysit.fit` passes
    one)::

        x_ahead = x + mu*v;  v = mu*v - lr*dx(x_ahead);  x += v

    Both give the same sequence of lookahead points; they differ in which point the
    parameters hold between steps (and the lookahead form costs a second gradient).
    """

    FORMS = ("rewritten", "lookahead")

    def __init__(self, params, lr: float = 0.01, mu: float = 0.9, form: str = "rewritten"):
        if form not in self.FORMS:
            raise ValueError(f"Nesterov form must be one of {self.FORMS}, not {form!r}")
        super().__init__(params, lr=lr, mu=mu)
        self.form = form
        # fit() calls step(closure) for optimizers that need the gradient somewhere else.
        self.needs_closure = form == "lookahead"

    @torch.no_grad()
    def step(self, closure: Callable | None = None):
        if self.form == "lookahead":
            return self._lookahead_step(closure)
        loss = _evaluate(closure)
        for group in self.param_groups:
            for s, params, grads, averages in self._buckets(group):
                s = self._update_velocity(group, s, params, grads, averages)
                torch._foreach_add_(params, averages, alpha=-group["mu"] * s)  # x += mu*v
                torch._foreach_add_(params, grads, alpha=-group["lr"])  # x -= lr*dx
        return loss

    def _lookahead_step(self, closure: Callable | None):
        if closure is None:
            raise RuntimeError("Nesterov(form='lookahead') needs a closure that recomputes the "
                               "loss and its gradient (the gradient is taken at x + mu*v)")
        self._shift_by_mu_v(+1.0)  # every parameter to x + mu*v
        with torch.enable_grad():
            loss = closure()
        self._shift_by_mu_v(-1.0)  # back to x, before the update
        for group in self.param_groups:
            for s, params, grads, averages in self._buckets(group):
                s = self._update_velocity(group, s, params, grads, averages)
                torch._foreach_add_(params, averages, alpha=-s)  # x += v
        return loss

    @torch.no_grad()
    def _shift_by_mu_v(self, sign: float) -> None:
        """``x += sign * mu * v`` for every parameter that has a velocity."""
        for group in self.param_groups:
            buckets: dict[float, tuple[list, list]] = {}
            for p in group["params"]:
                state = self.state.get(p, {})
                if "grad_average" in state:
                    bucket = buckets.setdefault(state["scale"], ([], []))
                    bucket[0].append(p)
                    bucket[1].append(state["grad_average"])
            for scale, (params, averages) in buckets.items():  # v = -scale * e
                torch._foreach_add_(params, averages, alpha=-sign * group["mu"] * scale)
