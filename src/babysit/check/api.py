"""Gradient checks: compare the analytic gradient with centered differences, the notes' way.

Three entry points share one engine:

* :func:`gradcheck` — any zero-argument function returning a scalar tensor, and the tensors
  to check it against (``dict(model.named_parameters())``, inputs, ...). The analytic side is
  whatever autograd computes through the function, custom ``autograd.Function``s included.
* :func:`gradcheck_model` — an ``nn.Module``, a loss and a batch: works on a float64 deep
  copy, checks 3 datapoints, the data loss and the regularization apart, after an optional
  burn-in, and leaves the user's model, data and random state untouched.
* :func:`gradcheck_numpy` — a hand-written gradient of a NumPy function, as in the course
  assignments.

What every check does (the notes' "Gradient checks" section, point by point): centered
differences with h = 1e-5 (or a sweep over 1e-3..1e-8 that keeps the best h); the symmetric
relative error and its bands; float64 by default, with a warning for float32; a warning with a
rescaling offer when gradients are tiny (<= 1e-10); kink tracking, so a coordinate whose
f(x+h) and f(x-h) took different winners in a relu/max/clamp/pooling/hinge is checked again
where it crosses nothing; ~10 coordinates of EVERY tensor (biases too) or all of them, rows
exactly 0 on both sides counted apart; the depth of the network and each tensor's layer; torch re-seeded before each
evaluation so dropout draws the same mask at f(x+h), f(x-h) and in the analytic pass (data
augmentation never runs: the check feeds tensors, not a data pipeline). The pass rule is in
:mod:`babysit.check.report`.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import math
import operator
import time
from collections import Counter
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .. import optim
from ..config import DEFAULTS, check_value, violation
from ..errors import UserError
from ..models.losses import step_loss
from ..train.step import take_steps
from .batched import CHUNK_SIZE, differences
from .numeric import Objective, group_positions, numpy_differences, select_coordinates, values_at
from .resolve import resolve_rows
from .zeros import exercising_coordinates, explain_zero_rows
from .report import (TINY_GRADIENT, GradcheckReport, GradRow, band_warnings, best_h, make_rows,
                     sweep_entry)

DEFAULT_H = 1e-5
_NAME, _INDEX = operator.attrgetter("name"), operator.attrgetter("index")  # of a Coordinate
SWEEP = (1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8)


def gradcheck(fn: Callable[[], torch.Tensor], wrt: Mapping[str, torch.Tensor], *, h: float = DEFAULT_H,
              sweep: bool | Sequence[float] = False, coords_per_tensor: int | None = 10, seed: int = 0,
              scale: float = 1.0, batched: bool = True, chunk_size: int = CHUNK_SIZE,
              progress: bool = False) -> GradcheckReport:
    """Check the gradient autograd computes for ``fn()`` against centered differences.

    Args:
        fn: zero-argument callable returning a scalar tensor (the objective).
        wrt: name -> leaf tensor the gradient is taken for; perturbed in place during the
            check and restored bit for bit afterwards. fn runs many times: side effects it
            has (BatchNorm running statistics) happen each time — gradcheck_model works on a copy.
        h: step of the centered difference (f(x+h) - f(x-h)) / 2h.
        sweep: True to try h = 1e-3 .. 1e-8 (or a sequence of steps) and report the best.
        coords_per_tensor: random coordinates checked in each tensor (None or 0: all).
        seed: picks the coordinates and seeds torch before every evaluation (dropout).
        scale: multiplies the objective; raise it when gradients are tiny.
        batched: evaluate many perturbations per forward pass (vmap); falls back to a loop.

    Returns a :class:`GradcheckReport`. Each row's relative error |a-n| / max(|a|,|n|) (0 when
    both are 0) gets a band: <= 1e-7 happy, <= 1e-4 ok, <= 1e-2 uneasy, else wrong.

    Verdict (``report.outcome``): "failed" when a coordinate's relative error is above 1e-4
    and |a-n| exceeds the round-off floor 16 eps max(|f(x+h)|, |f(x-h)|) / h of the numeric
    value. A coordinate whose f(x+h) and f(x-h) took different winners in a relu/max/clamp/
    pooling op (a kink crossed) is judged on a re-check that crosses nothing: a smaller step,
    or a one-sided difference on the clean side (:mod:`babysit.check.resolve`). Where nothing
    resolves it the check is "inconclusive" (never "failed" for that). Rows exactly 0 on both
    sides are counted apart (:mod:`babysit.check.zeros`). ``report.passed``: outcome "passed".
    Float32 tensors are checked as they are, with a warning.
    """
    return check_objectives({"": fn}, wrt, h=h, sweep=sweep, coords_per_tensor=coords_per_tensor,
                            seed=seed, scale=scale, batched=batched, chunk_size=chunk_size,
                            progress=progress)


def check_objectives(parts: Mapping[str, Callable[[], torch.Tensor]], wrt: Mapping[str, torch.Tensor], *,
                     h: float = DEFAULT_H, sweep: bool | Sequence[float] = False,
                     coords_per_tensor: int | None = 10, seed: int = 0, scale: float = 1.0,
                     batched: bool = True, chunk_size: int = CHUNK_SIZE, progress: bool = False,
                     extra_warnings: Sequence[str] = ()) -> GradcheckReport:
    """The engine: each part (row-name prefix -> objective) checked on the same coordinates."""
    with _gc_paused():
        return _check_objectives(parts, wrt, h=h, sweep=sweep, coords_per_tensor=coords_per_tensor,
                                 seed=seed, scale=scale, batched=batched, chunk_size=chunk_size,
                                 progress=progress, extra_warnings=extra_warnings)


def _check_objectives(parts, wrt, *, h, sweep, coords_per_tensor, seed, scale, batched, chunk_size,
                      progress, extra_warnings) -> GradcheckReport:
    started = time.perf_counter()
    wrt = _validate_wrt(wrt)
    steps = _steps(h, sweep)
    _check_options(coords_per_tensor, scale, chunk_size)
    shapes = {name: tuple(t.shape) for name, t in wrt.items()}
    coords = select_coordinates(shapes, coords_per_tensor, seed)
    rows_by_h: dict[float, list[GradRow]] = {s: [] for s in steps}
    eps = {name: float(torch.finfo(t.dtype).eps) for name, t in wrt.items()}
    kink_ops: Counter = Counter()
    not_exercised: dict[str, str] = {}
    depth, layers, fallback = None, {}, None
    with torch.random.fork_rng(devices=_cuda_devices(wrt.values())), _progress_bar(
            len(coords) * len(steps) * len(parts), progress) as bar:
        for prefix, fn in parts.items():
            objective = Objective(fn, wrt, seed=seed, scale=scale)
            f_x, at_x = objective.value()
            kink_ops.update(at_x.ops)
            analytic = objective.analytic()
            if objective.depth and not depth:  # the data loss's graph, not the regularization's
                depth, layers = objective.depth, objective.layers
            checked = coords + exercising_coordinates(coords, analytic, coords_per_tensor or 10, seed)
            analytic_values = values_at(analytic, checked)
            for step in steps:
                diffs, reason = differences(objective, checked, step, batched=batched,
                                            chunk_size=chunk_size, analytic=analytic, progress=bar)
                fallback = fallback or reason
                names = list(map(_NAME, checked))
                rows = make_rows([prefix + n for n in names] if prefix else names, list(map(_INDEX, checked)),
                                 analytic_values, diffs.f_plus, diffs.f_minus, diffs.step, diffs.kink,
                                 list(map(eps.__getitem__, names)))
                resolve_rows(objective, checked, rows, step, at_x, f_x, eps)
                not_exercised.update(explain_zero_rows(rows, checked, analytic, prefix))
                rows_by_h[step] += rows
    entries = [sweep_entry(s, rows_by_h[s]) for s in steps] if len(steps) > 1 else None
    chosen = best_h(entries) if entries else steps[0]
    rows = rows_by_h[chosen]
    warnings = list(extra_warnings) + _dtype_warnings(wrt) + tiny_gradient_warnings(rows, scale)
    warnings += band_warnings(rows, bool(kink_ops))
    return GradcheckReport(rows=rows, h=chosen, dtype=_dtype_name(wrt), sweep=entries,
                           warnings=warnings, kink_ops=dict(kink_ops),
                           numeric_mode="loop" if fallback else "batched", fallback=fallback,
                           seconds=time.perf_counter() - started, shapes=shapes,
                           not_exercised=not_exercised, depth=depth, layers=layers)


def gradcheck_model(model: nn.Module, loss_fn: Callable | None = None, x: torch.Tensor | None = None,
                    y: torch.Tensor | None = None, *, batch: Sequence[torch.Tensor] | None = None,
                    reg_fn: Callable[[nn.Module], torch.Tensor] | None = None, num_points: int = 3,
                    burn_in: int = 0, optimizer=None, dtype: torch.dtype | str = torch.float64,
                    reg_scale: float = 1.0, separate: bool = True, burn_in_batch_size: int = 64,
                    **options) -> GradcheckReport:
    """Check the gradients of ``loss_fn(model(x), y)`` (+ ``reg_fn(model)``) for every parameter.

    A PyTorch Lightning module needs no `loss_fn`: ``gradcheck_model(module, batch=(x, y))``
    checks the loss of its own ``training_step`` (:func:`babysit.models.step_loss`).

    The check runs on a deep copy of `model` converted to `dtype` (float64 by default) with
    copies of the data; the user's model, tensors and torch random state are left as they were.

    * `num_points`: the first few datapoints of (x, y) are checked (2-3: fewer kinks, faster).
    * `burn_in`: training steps on (x, y) before the check, so it runs in a "characteristic"
      phase and not at initialization. `optimizer`: an ``Optimizer`` (its class and settings
      are reused on the copy), a callable ``params -> Optimizer``, or None for the config's
      default update rule (``[optim]`` in :data:`babysit.config.DEFAULTS`). The steps are
      taken as every training takes them (:mod:`babysit.train.step`).
    * `reg_fn(model)`: the regularization term. With `separate` (default) the data loss and
      the regularization are checked apart, reg rows named ``reg:<param>``; otherwise their
      sum is checked. `reg_scale` multiplies the regularization strength, so that a wrong
      regularization gradient cannot hide behind the data gradient in the summed check.
    * `options`: those of :func:`gradcheck` (h, sweep, coords_per_tensor, seed, scale, ...).

    The copy keeps the model's train/eval mode: dropout stays on and draws the same mask in
    every evaluation because torch is re-seeded before each one.
    """
    dtype = _as_dtype(dtype)
    if not isinstance(model, nn.Module):
        raise UserError(f"gradcheck_model needs a torch.nn.Module, got {type(model).__name__}")
    if batch is not None:
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise UserError("batch must be a pair (x, y), as a DataLoader gives it")
        x, y = batch
    if x is None or y is None:
        raise UserError("gradcheck_model needs the data: x and y, or batch=(x, y)")
    model_loss = _model_loss(loss_fn)
    check_value("gradcheck.num_points", num_points)
    check_value("gradcheck.burn_in", burn_in)
    if len(x) != len(y) or len(x) == 0:
        raise UserError(f"x and y must hold the same, nonzero number of examples, got {len(x)} and {len(y)}")
    check_value("gradcheck.reg_scale", reg_scale)
    seed = options.get("seed", 0)
    with torch.random.fork_rng(devices=_cuda_devices(model.parameters())):
        copy_ = copy.deepcopy(model).to(dtype)
        device = next(copy_.parameters(), torch.zeros(())).device
        xs = x.detach().to(device=device, copy=True)
        xs = xs.to(dtype) if xs.is_floating_point() else xs
        ys = y.detach().to(device=device, copy=True)
        if burn_in:
            _burn_in(copy_, model_loss, reg_fn, xs, ys, burn_in, optimizer, burn_in_batch_size, seed)
        xb, yb = xs[:num_points], ys[:num_points]
        data_loss = lambda: model_loss(copy_, xb, yb)  # noqa: E731
        if reg_fn is None:
            parts = {"": data_loss}
        elif separate:
            parts = {"": data_loss, "reg:": lambda: reg_scale * reg_fn(copy_)}
        else:
            parts = {"": lambda: data_loss() + reg_scale * reg_fn(copy_)}
        wrt = {name: p for name, p in copy_.named_parameters() if p.requires_grad}
        if not wrt:
            raise UserError("the model has no parameters that require gradients: nothing to check")
        return check_objectives(parts, wrt, **options)


def gradcheck_numpy(f: Callable[[np.ndarray], float], x: np.ndarray, grad: np.ndarray, *,
                    h: float = DEFAULT_H, sweep: bool | Sequence[float] = False,
                    coords_per_tensor: int | None = 10, seed: int = 0, scale: float = 1.0,
                    name: str = "x") -> GradcheckReport:
    """Check a hand-written gradient: `grad` is your analytic df/dx of ``f(x) -> float`` at `x`.

    f is evaluated on a float64 copy of x (x itself is never modified). NumPy code has no ops
    to watch, so kinks cannot be tracked here: rows never carry ``kink=True``.
    """
    started = time.perf_counter()
    x = np.asarray(x, dtype=np.float64)
    grad = np.asarray(grad, dtype=np.float64)
    if x.shape != grad.shape:
        raise UserError(f"grad has shape {grad.shape} but x has {x.shape}: pass df/dx at x, shaped like x")
    steps = _steps(h, sweep)
    _check_options(coords_per_tensor, scale, 1)
    coords = select_coordinates({name: x.shape}, coords_per_tensor, seed)
    scaled = (lambda z: scale * float(f(z))) if scale != 1.0 else f  # noqa: E731
    if not math.isfinite(float(scaled(x.copy()))):
        raise UserError("f(x) is not finite at the check point: a gradient check needs a finite value")
    eps = float(np.finfo(np.float64).eps)
    rows_by_h = {}
    for step in steps:
        diffs = numpy_differences(scaled, x, coords, step)
        rows_by_h[step] = make_rows([name] * len(coords), [c.index for c in coords],
                                    [scale * float(grad[c.index]) for c in coords], diffs.f_plus,
                                    diffs.f_minus, diffs.step, diffs.kink, eps)
    entries = [sweep_entry(s, rows_by_h[s]) for s in steps] if len(steps) > 1 else None
    chosen = best_h(entries) if entries else steps[0]
    rows = rows_by_h[chosen]
    return GradcheckReport(rows=rows, h=chosen, dtype="float64", sweep=entries,
                           warnings=tiny_gradient_warnings(rows, scale), numeric_mode="numpy",
                           seconds=time.perf_counter() - started, shapes={name: x.shape})


def tiny_gradient_warnings(rows: list[GradRow], scale: float) -> list[str]:
    """Tensors whose checked gradients are all tiny but not all zero, with a scale that fixes it."""
    warnings = []
    analytic, numeric = (np.fromiter(map(operator.attrgetter(field), rows), np.float64, len(rows))
                         for field in ("analytic", "numeric"))
    magnitude = np.maximum(np.abs(analytic), np.abs(numeric))
    for name, positions in group_positions(list(map(operator.attrgetter("name"), rows))).items():
        largest = float(magnitude[positions].max())
        if 0.0 < largest <= TINY_GRADIENT:
            factor = scale * 10.0 ** math.ceil(-math.log10(largest))
            warnings.append(f"gradients of {name} are tiny (at most {largest:.1e}), where floating "
                            f"point noise takes over: rescale the objective, e.g. scale={factor:.0e} "
                            f"(gradcheck(..., scale={factor:.0e}) or --set gradcheck.scale={factor:.0e})")
    return warnings


def _model_loss(loss_fn: Callable | None) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]:
    """``(model, x, y) -> loss``: `loss_fn` on the model's scores, or without one the loss of
    the model's own training_step (a LightningModule's)."""
    if loss_fn is None:
        return step_loss
    return lambda model, x, y: loss_fn(model(x), y)


def _burn_in(model, model_loss, reg_fn, x, y, steps, optimizer, batch_size, seed) -> None:
    """A few training steps on the copy, so the check sees a 'characteristic' point."""
    def objective(xb, yb):
        loss = model_loss(model, xb, yb)
        return loss + reg_fn(model) if reg_fn is not None else loss

    taken, finite, losses = take_steps(model, _make_optimizer(optimizer, model), objective, x, y,
                                       steps=steps, batch_size=batch_size, seed=seed)
    if not finite:
        raise UserError(f"the loss became {losses[-1]} in burn-in step {taken}: lower the "
                        "learning rate or check without burn-in")
    model.zero_grad(set_to_none=True)


def _make_optimizer(optimizer, model: nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer is None:  # the update rule babysit trains with by default
        return optim.from_config(DEFAULTS["optim"], params)
    if isinstance(optimizer, torch.optim.Optimizer):
        return type(optimizer)(params, **optimizer.defaults)
    if callable(optimizer):
        return optimizer(params)
    raise UserError(f"optimizer must be a torch Optimizer, a callable params -> Optimizer or None, "
                    f"not {type(optimizer).__name__}")


def _validate_wrt(wrt) -> dict[str, torch.Tensor]:
    if not isinstance(wrt, Mapping) or not wrt:
        raise UserError("wrt must be a non-empty mapping name -> tensor, e.g. dict(model.named_parameters())")
    for name, t in wrt.items():
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise UserError(f"wrt[{name!r}] must be a floating-point tensor, got "
                            f"{getattr(t, 'dtype', type(t).__name__)}")
        if not t.is_leaf:
            raise UserError(f"wrt[{name!r}] is computed from other tensors: check the leaf it "
                            "comes from (a parameter or an input), not an intermediate result")
    return dict(wrt)


def _steps(h: float, sweep) -> list[float]:
    steps = list(SWEEP) if sweep is True else (list(sweep) if sweep else [h])
    for s in steps:
        check_value("gradcheck.h", s)
    return [float(s) for s in steps]


def _check_options(coords_per_tensor, scale, chunk_size) -> None:
    if coords_per_tensor is not None:
        check_value("gradcheck.coords_per_tensor", coords_per_tensor)
    check_value("gradcheck.scale", scale)
    if chunk_size < 1:
        raise UserError(violation("chunk_size", "a whole number >= 1", chunk_size, "perturbations per forward pass"))


def _as_dtype(dtype) -> torch.dtype:
    names = {"float64": torch.float64, "double": torch.float64, "float32": torch.float32,
             "float": torch.float32}
    if isinstance(dtype, str):
        if dtype not in names:
            raise UserError(f"dtype must be float64 or float32, not {dtype!r}")
        return names[dtype]
    if dtype not in (torch.float64, torch.float32):
        raise UserError(f"dtype must be torch.float64 or torch.float32, not {dtype}")
    return dtype


def _dtype_name(wrt: Mapping[str, torch.Tensor]) -> str:
    names = sorted({str(t.dtype).replace("torch.", "") for t in wrt.values()})
    return "/".join(names)


def _dtype_warnings(wrt: Mapping[str, torch.Tensor]) -> list[str]:
    low = [name for name, t in wrt.items() if t.dtype != torch.float64]
    if not low:
        return []
    return [f"{len(low)} tensors are not float64 ({', '.join(low[:3])}{'...' if len(low) > 3 else ''}): "
            "in single precision even a correct gradient can show relative errors near 1e-2, and "
            "differences below the round-off floor cannot fail; check in float64 (the default of "
            "gradcheck_model)"]


def _cuda_devices(tensors) -> list[int]:
    return sorted({t.device.index or 0 for t in tensors if t.device.type == "cuda"})


@contextlib.contextmanager
def _gc_paused():
    """No cyclic garbage collection while a check runs: it creates ~10 objects per coordinate,
    and each automatic collection would walk torch's whole object graph again (it showed up as
    a third of the time of a 7,510-coordinate check). Nothing here makes reference cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _progress_bar:
    """A tqdm bar on stderr (a no-op object when off)."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.bar = total, enabled, None

    def __enter__(self):
        if not self.enabled:
            return None
        from tqdm.auto import tqdm
        import sys

        self.bar = tqdm(total=self.total, desc="gradcheck", unit="coord", leave=False, file=sys.stderr,
                        disable=None)  # None: no bar where stderr is not a terminal (a log)
        return self.bar

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
        return False
