"""``preflight()``: run the sanity checks on a pipeline and gather their verdicts."""

from __future__ import annotations

import contextlib
import random
import sys
import time
from typing import Callable

import numpy as np
import torch

from ..errors import UserError
from ..train import cpu_threads
from .determinism import check_deterministic
from .gradients import check_gradcheck
from .initial_loss import check_initial_loss
from .inputs import check_input_dependence
from .overfit import check_overfit_tiny
from .pipeline import Options, Pipeline
from .regularization import check_reg_increases_loss
from .report import CheckResult, PreflightReport

# The checks in the order they run (cheap ones first). The names are stable identifiers.
CHECKS: dict[str, Callable[[Pipeline], CheckResult]] = {
    "initial_loss": check_initial_loss,
    "reg_increases_loss": check_reg_increases_loss,
    "deterministic": check_deterministic,
    "gradcheck": check_gradcheck,
    "overfit_tiny": check_overfit_tiny,
    "input_dependence": check_input_dependence,
}


def preflight(make_model, loss=None, data=None, *, num_classes: int, **options) -> PreflightReport:
    """Run the sanity checks that come before learning; return a :class:`PreflightReport`.

    `make_model()` returns a freshly initialized ``nn.Module`` (it is called once per check,
    under the same seed); `loss` is ``"softmax"``, ``"svm"``, a callable ``(scores, targets)
    -> scalar``, or None for the model's own ``training_step`` (a PyTorch Lightning module;
    its loss at chance is taken to be cross-entropy's -ln(1/C)); `data` is a pair ``(x, y)`` of tensors from the training set. Options (see
    :class:`~babysit.sanity.pipeline.Options`): ``reg`` (L2 strength, default 1e-4) or ``reg_fn``
    (the regularization term as a callable of the model), ``optimizer`` (a name with ``lr``, or
    a callable taking the parameters), ``seed``, ``device``, ``skip`` (check names), the
    thresholds, and ``quiet=False`` for a progress bar.

    Checks: ``initial_loss``, ``reg_increases_loss``, ``deterministic``, ``gradcheck``,
    ``overfit_tiny``, ``input_dependence``. ``report.passed`` is true when all of them pass;
    ``print(report)`` shows the table.
    """
    opts = Options.from_kwargs(options)
    unknown = sorted(set(opts.skip) - set(CHECKS))
    if unknown:
        raise UserError(f"cannot skip unknown check(s) {', '.join(unknown)}: "
                        f"the checks are {', '.join(CHECKS)}")
    pipeline = Pipeline.build(make_model, loss, data, num_classes, opts)
    names = [name for name in CHECKS if name not in opts.skip]
    started = time.perf_counter()
    results: dict[str, CheckResult] = {}
    # Checks reseed; the caller's random streams go on as before, and its thread count too.
    with _random_state_kept(pipeline.device), cpu_threads(opts.threads):
        pipeline.measure(pipeline.fresh_model(), *pipeline.sample(2))  # shapes right, before any check
        for name in _progress(names, opts.quiet):
            t0 = time.perf_counter()
            result = CHECKS[name](pipeline)
            result.values["seconds"] = round(time.perf_counter() - t0, 3)
            results[name] = result
    return PreflightReport(results, seconds=time.perf_counter() - started)


@contextlib.contextmanager
def _random_state_kept(device: torch.device):
    python_state, numpy_state = random.getstate(), np.random.get_state()
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


def _progress(names: list[str], quiet: bool):
    if quiet:
        yield from names
        return
    from tqdm import tqdm

    with tqdm(names, desc="preflight", unit="check", file=sys.stderr, leave=False,
              disable=None) as bar:  # None: no bar where stderr is not a terminal (a log)
        for name in bar:
            bar.set_postfix_str(name)
            yield name
