"""`StepClock`: what the monitor does on every training step, kept to the least.

Two calls a step reach the monitor: the optimizer's post-step hook and ``mon.step(loss)``.
Both run right after the training step, whose forward and backward passes have evicted the
caches, so each attribute a call reads costs a cache miss: a Python method of ten lines
costs ~1-2 us there, about 0.3% of a small MLP's step. The clock keeps the per-step state
(the step count, the epoch, the losses not yet read back) and handles the plain step by
itself; whatever is not plain is left to the monitor's Python:

* ``clock.step(loss)``: keeps ``(steps, epoch, loss)`` (after ``steps += 1`` when
  `counts_steps`: without an optimizer hook the losses count the steps) until ``take()``
  returns them as ``(records, lines)``: the ``{"step", "epoch", "loss"}`` records, and
  their steps.jsonl lines where every loss is a finite float (the compiled clock writes
  them from its numbers; None here and otherwise); `pending` counts them. A loss that is
  not a float goes through ``on_loss(loss)``, which returns what to keep. Every `flush_every` losses it calls
  ``on_batch()``. The compiled clock keeps plain numbers, not a tuple per step: with cold
  caches making objects is most of what a record costs; it makes the records at ``take()``.
* ``clock(optimizer, args, kwargs)``, the post-step hook: ``steps += 1``; on a plain step
  (``steps < next_special``) that is all, unless the update ratios' compiled path is given
  (`ratios` is ``[plan, row steps]``, see :class:`~babysit.watch.updates.UpdateRatios`):
  then it runs the plan for the next row and appends the step to the row steps. Anything
  else — a sampled step, no room for the row, a tensor that did not change (frozen, or its
  storage replaced) — goes to ``on_step(steps, unchanged)``: `unchanged` tells that the
  plan ran for this step and found such a tensor. (The monitor sets `next_special` to the
  coming step where the update ratios need Python every step.)

The compiled clock (``_kernels.StepClock``) does this without a Python frame; this class is
its twin where the kernels are not compiled (then `ratios` is always None) and its
specification (``tests/watch/test_watch_kernels.py`` checks that the two agree).
"""

from __future__ import annotations

try:
    from ._kernels import StepClock as CompiledClock, planned_step_norms
except ImportError:  # not compiled here
    CompiledClock = planned_step_norms = None

NEVER = 1 << 62  # next_special when no step needs the monitor's Python


class StepClock:
    def __init__(self):
        self.steps, self.epoch, self.next_special = 0, 1, NEVER
        self.flush_every, self.counts_steps = 50, True
        self._losses: list = []
        self.ratios = self.on_loss = self.on_batch = self.on_step = None

    def step(self, loss) -> None:
        if type(loss) is not float:
            loss = self.on_loss(loss)
        if self.counts_steps:
            self.steps += 1
        self._losses.append((self.steps, self.epoch, loss))
        if self.flush_every > 0 and len(self._losses) % self.flush_every == 0:
            self.on_batch()

    @property
    def pending(self) -> int:
        return len(self._losses)

    def take(self) -> tuple[list[dict], str | None]:
        taken, self._losses = self._losses, []
        return [{"step": s, "epoch": e, "loss": v} for s, e, v in taken], None

    def __call__(self, optimizer, args, kwargs) -> None:
        step = self.steps = self.steps + 1
        unchanged = False
        if step < self.next_special:
            if self.ratios is None:
                return
            plan, rows = self.ratios
            try:
                unchanged = planned_step_norms(plan, len(rows)) > 0
            except ValueError:  # no room for the row: the monitor makes it
                pass
            else:
                if not unchanged:
                    rows.append(step)
                    return
        self.on_step(step, unchanged)


def new_clock():
    """The compiled clock where the kernels are built, else the Python one."""
    return CompiledClock() if CompiledClock is not None else StepClock()
