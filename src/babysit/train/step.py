"""One optimizer step, taken the way the optimizer needs it — for every training in babysit.

:func:`babysit.fit`, the preflight's short trainings, the gradient check's burn-in and a search
worker's warm-up all step through :func:`take_step`, so how an optimizer is driven is decided
in one place, :meth:`Stepping.of`, from the optimizer's own attributes (never its name):

* ``full_batch`` (L-BFGS, Newton): the whole training set is one batch. Their curvature
  estimates are differences or derivatives of gradients, which minibatch noise swamps.
* a closure, ``optimizer.step(closure)``, for every full-batch method, any
  ``torch.optim.LBFGS`` and an optimizer with ``needs_closure`` (Nesterov in its lookahead
  form takes the gradient at ``x + mu*v``, not where the parameters are): the rule re-evaluates
  the objective as often as it needs.
* ``create_graph`` (Newton): the closure's backward keeps the graph, for second derivatives.
* anything else: backward, then ``optimizer.step()`` — what a hand-written loop does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from ..errors import UserError

# The objective of the current batch: () -> (scores or None, loss), the loss still on its graph.
Evaluate = Callable[[], tuple[torch.Tensor | None, torch.Tensor]]


@dataclass(frozen=True)
class Stepping:
    """How an optimizer takes its steps (see the module docstring)."""

    full_batch: bool = False
    closure: bool = False
    create_graph: bool = False

    @classmethod
    def of(cls, optimizer: torch.optim.Optimizer) -> "Stepping":
        """Read from the optimizer's attributes. A plain ``torch.optim.LBFGS`` is refused on
        minibatches unless it carries ``force_minibatch = True``."""
        full_batch = bool(getattr(optimizer, "full_batch", False))
        lbfgs = isinstance(optimizer, torch.optim.LBFGS)
        if lbfgs and not full_batch and not getattr(optimizer, "force_minibatch", False):
            raise UserError("L-BFGS is a full-batch method and will not run on minibatches: build "
                            "it with babysit.make_optimizer('lbfgs', ...) (training then takes "
                            "the whole training set as one batch), or set "
                            "optim.force_minibatch = true to force minibatches")
        closure = full_batch or lbfgs or bool(getattr(optimizer, "needs_closure", False))
        return cls(full_batch, closure, bool(getattr(optimizer, "create_graph", False)))


def take_step(optimizer: torch.optim.Optimizer, stepping: Stepping, evaluate: Evaluate,
              observe: Callable[[torch.Tensor, torch.Tensor], None] | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """One step on the objective `evaluate` gives; returns the (scores, loss) it was taken from.

    `observe(scores, loss)` runs after the backward pass and before the step, with the gradient
    at the current parameters in ``.grad`` (the callbacks' ``after_backward``). With a closure
    and an observer that costs one evaluation more than the rule itself asks for; without an
    observer the rule's own first evaluation is the one returned.
    """
    if stepping.closure and observe is None:
        return _closure_step(optimizer, stepping, evaluate)
    optimizer.zero_grad(set_to_none=True)
    scores, loss = evaluate()
    loss.backward()
    if observe is not None:
        observe(scores, loss)
    if stepping.closure:
        _closure_step(optimizer, stepping, evaluate)
    else:
        optimizer.step()
    return scores, loss


def _closure_step(optimizer, stepping: Stepping, evaluate: Evaluate) -> tuple[torch.Tensor, torch.Tensor]:
    """``optimizer.step(closure)``; returns the (scores, loss) of the closure's first call (for
    L-BFGS and Newton the point the step started from; for lookahead Nesterov x + mu*v)."""
    first: list[tuple[torch.Tensor, torch.Tensor]] = []

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        scores, loss = evaluate()
        loss.backward(create_graph=stepping.create_graph)
        if not first:
            first.append((scores, loss))
        return loss

    optimizer.step(closure)
    if not first:
        raise RuntimeError(f"{type(optimizer).__name__}.step(closure) never called the closure")
    return first[0]


def take_steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               objective: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor,
               y: torch.Tensor, *, steps: int, batch_size: int | None = None, seed: int = 0,
               done: Callable[[int], bool] | None = None) -> tuple[int, bool, list[float]]:
    """At most `steps` steps minimizing ``objective(xb, yb)``: the short trainings of the checks.

    The batch is all of (x, y) for a full-batch optimizer or without `batch_size`; otherwise
    `batch_size` examples from shuffled passes over (x, y), as :func:`babysit.fit` takes them
    (seeded by `seed`, so two models trained with the same seed see the same batches; a pass
    that has fewer than `batch_size` examples left starts over). Stops after a step where
    ``done(step)`` is true, or where the loss is not finite. Returns (steps taken, whether
    the loss stayed finite, the loss of every step).
    """
    stepping = Stepping.of(optimizer)
    whole = stepping.full_batch or batch_size is None or batch_size >= len(y)
    generator = torch.Generator().manual_seed(seed)
    order, start = torch.empty(0, dtype=torch.long), 0
    model.train()
    losses: list[float] = []
    for step in range(1, steps + 1):
        if whole:
            xb, yb = x, y
        else:
            if start + batch_size > len(order):
                order, start = torch.randperm(len(y), generator=generator).to(x.device), 0
            idx = order[start:start + batch_size]
            start += batch_size
            xb, yb = x[idx], y[idx]
        _, loss = take_step(optimizer, stepping, lambda: (None, objective(xb, yb)))
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]):
            return step, False, losses
        if done is not None and done(step):
            return step, True, losses
    return steps, True, losses
