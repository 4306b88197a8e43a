"""Momentum and Nesterov momentum exactly as the notes write them.

``torch.optim.SGD`` keeps the learning rate outside the velocity (``v = mu*v + dx;
x -= lr*v``), which is a different trajectory as soon as the learning rate changes: a decayed
lr there also shrinks the velocity built up before. The notes put lr inside the velocity, so
an lr change only affects new gradients. Both rules update every parameter of a group with a
handful of multi-tensor (``torch._foreach_*``) kernels, like ``SGD(foreach=True)``.
"""

from __future__ import annotations

from typing import Callable

import torch


class Momentum(torch.optim.Optimizer):
    """Momentum update: ``v = mu*v - lr*dx;  x += v`` (v starts at zero).

    `mu` (0.5 - 0.99, typically 0.9) is the "friction" that damps the velocity; the notes
    suggest annealing it upwards (e.g. 0.5 -> 0.99) over the first epochs.
    """

    def __init__(self, params, lr: float = 0.01, mu: float = 0.9):
        super().__init__(params, {"lr": lr, "mu": mu})

    def _gather(self, group: dict) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """(params with a gradient, their gradients, their velocities), velocities made on first use."""
        params, grads, velocities = [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if "velocity" not in state:
                state["velocity"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            params.append(p)
            grads.append(p.grad)
            velocities.append(state["velocity"])
        return params, grads, velocities

    @torch.no_grad()
    def step(self, closure: Callable | None = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, v = self._gather(group)
            if not params:
                continue
            torch._foreach_mul_(v, group["mu"])  # v = mu * v
            torch._foreach_add_(v, grads, alpha=-group["lr"])  # v -= lr * dx
            torch._foreach_add_(params, v)  # x += v
        return loss


class Nesterov(Momentum):
    """Nesterov momentum, in either of the notes' two forms.

    ``form="rewritten"`` (default) is the form the notes recommend, in which the stored
    parameters *are* the lookahead point, so the ordinary gradient is all it needs::

        v_prev = v;  v = mu*v - lr*dx;  x += -mu*v_prev + (1 + mu)*v

    ``form="lookahead"`` keeps the parameters at x and evaluates the gradient at the
    lookahead point ``x + mu*v`` (so it needs a `closure` that recomputes the loss and its
    gradient; :func:`babysit.fit` passes one)::

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
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, v = self._gather(group)
            if not params:
                continue
            mu = group["mu"]
            torch._foreach_add_(params, v, alpha=-mu)  # x += -mu * v_prev
            torch._foreach_mul_(v, mu)  # v = mu * v - lr * dx
            torch._foreach_add_(v, grads, alpha=-group["lr"])
            torch._foreach_add_(params, v, alpha=1 + mu)  # x += (1 + mu) * v
        return loss

    def _lookahead_step(self, closure: Callable | None):
        if closure is None:
            raise RuntimeError("Nesterov(form='lookahead') needs a closure that recomputes the "
                               "loss and its gradient (the gradient is taken at x + mu*v)")
        shifts = []
        for group in self.param_groups:  # move every parameter to x + mu*v
            params = list(group["params"])
            v = [self.state[p].setdefault("velocity", torch.zeros_like(p)) for p in params]
            torch._foreach_add_(params, v, alpha=group["mu"])
            shifts.append((params, v, group["mu"]))
        with torch.enable_grad():
            loss = closure()
        for params, v, mu in shifts:  # back to x, before the update
            torch._foreach_add_(params, v, alpha=-mu)
        for group in self.param_groups:
            params, grads, v = self._gather(group)
            if not params:
                continue
            torch._foreach_mul_(v, group["mu"])
            torch._foreach_add_(v, grads, alpha=-group["lr"])
            torch._foreach_add_(params, v)
        return loss
