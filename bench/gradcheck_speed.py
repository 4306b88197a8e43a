"""Coordinates per second: babysit's entry points against torch.autograd.gradcheck (slow mode).

The issue's setting: a 2-layer ReLU MLP 64-100-10, 3 datapoints, float64, softmax loss, ALL
7,510 parameters checked. torch.autograd.gradcheck(fast_mode=False) perturbs one input entry
at a time (2 forward passes per coordinate); babysit evaluates a stack of perturbed copies per
forward pass (vmap) and also tracks kinks. Two babysit entry points are measured:
``gradcheck_model`` (the module) and ``gradcheck(lambda: f(*params.values()), params,
coords_per_tensor=None)`` (the same network as a plain function of plain tensors).
Repetitions are interleaved (torch, model, function, torch, ...) so load on a shared machine
hits all alike; the ratio of the median rates is printed for each entry point, by wall clock
and by this process's CPU time (steadier when other jobs share the cores), with whether the
target (>= 20x on both entry points, by both clocks) is met. The first call in a fresh
process (imports done, vmap not yet warm) is timed apart, in a subprocess per entry point.
The load average is printed before and after: on a shared machine the absolute rates move
with other users' jobs, the side-by-side ratios much less.

    PYTHONPATH=src python bench/gradcheck_speed.py [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import torch
from torch import nn
from torch.func import functional_call

from babysit.check import gradcheck, gradcheck_model


def make_problem(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 100), nn.ReLU(), nn.Linear(100, 10)).double()
    x = torch.randn(3, 64, dtype=torch.float64)
    y = torch.tensor([1, 4, 7])
    return model, x, y


def timed(fn):
    """(wall seconds, CPU seconds of this process, result) — CPU time shrugs off other users' load."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def run_torch(model, x, y) -> tuple[float, float, int]:
    names = [n for n, _ in model.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for _, p in model.named_parameters())

    def loss(*ps):
        return nn.functional.cross_entropy(functional_call(model, dict(zip(names, ps)), (x,)), y)

    wall, cpu, ok = timed(lambda: torch.autograd.gradcheck(loss, params, eps=1e-6, atol=1e-5,
                                                           rtol=1e-3, fast_mode=False))
    assert ok
    return wall, cpu, sum(p.numel() for p in params)


def run_babysit(model, x, y) -> tuple[float, float, int]:
    wall, cpu, report = timed(lambda: gradcheck_model(model, nn.functional.cross_entropy, x, y,
                                                      num_points=3, coords_per_tensor=None))
    assert report.passed, report.summary
    assert report.numeric_mode == "batched", report.fallback
    return wall, cpu, len(report.rows)


def run_function(model, x, y) -> tuple[float, float, int]:
    """The same network as a plain function of plain tensors, through babysit.gradcheck."""
    params = {name: p.detach().clone() for name, p in model.named_parameters()}

    def f(w1, b1, w2, b2):
        return nn.functional.cross_entropy(torch.relu(x @ w1.t() + b1) @ w2.t() + b2, y)

    wall, cpu, report = timed(lambda: gradcheck(lambda: f(*params.values()), params,
                                                coords_per_tensor=None))
    assert report.passed, report.summary
    assert report.numeric_mode == "batched", report.fallback
    return wall, cpu, len(report.rows)


TARGET = 20.0  # issue 19: >= 20x torch slow mode on both entry points

RUNNERS = {"torch.autograd.gradcheck (slow mode)": run_torch, "babysit gradcheck_model": run_babysit,
           "babysit gradcheck(lambda: f(...))": run_function}


def first_call(label: str, threads: int) -> float:
    """Wall seconds of the first call of `label` in a fresh process (imports done beforehand)."""
    code = (f"import torch, sys; sys.path.insert(0, {str(__file__.rsplit('/', 1)[0])!r}); "
            f"torch.set_num_threads({threads}); import gradcheck_speed as b; "
            f"m, x, y = b.make_problem(); print(b.RUNNERS[{label!r}](m, x, y)[0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads for all sides (default 1: steadier on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average at the start: {_load()} on {os.cpu_count()} cores (the machine may be shared: "
          "absolute rates move with other jobs, the side-by-side ratios much less)", flush=True)
    firsts = {label: first_call(label, args.threads) for label in RUNNERS if label.startswith("babysit")}
    model, x, y = make_problem()
    run_babysit(model, x, y)  # warm-up: first vmap call
    run_function(model, x, y)
    rates = {label: [] for label in RUNNERS}
    cpu_rates = {label: [] for label in RUNNERS}
    for _ in range(args.repeats):
        for label, runner in RUNNERS.items():
            wall, cpu, coords = runner(model, x, y)
            rates[label].append(coords / wall)
            cpu_rates[label].append(coords / cpu)
            print(f"  {label:<38} {coords} coordinates in {wall:7.3f} s wall, {cpu:7.3f} s CPU "
                  f"= {coords / wall:8.0f} coords/s", flush=True)
    print(f"MLP 64-100-10, 3 datapoints, float64, all 7510 parameters, {args.threads} thread(s), "
          f"{args.repeats} interleaved repeats")
    for label in rates:
        print(f"  median {label:<38} {statistics.median(rates[label]):9.0f} coords/s wall, "
              f"{statistics.median(cpu_rates[label]):9.0f} coords/s CPU")
    reference = "torch.autograd.gradcheck (slow mode)"
    met = True
    for label in firsts:
        ratio = statistics.median(rates[label]) / statistics.median(rates[reference])
        cpu_ratio = statistics.median(cpu_rates[label]) / statistics.median(cpu_rates[reference])
        met = met and min(ratio, cpu_ratio) >= TARGET
        print(f"speed ratio {label} / torch slow mode: {ratio:.1f}x wall-clock, {cpu_ratio:.1f}x CPU "
              f"time (target >= {TARGET:.0f}x: {'met' if min(ratio, cpu_ratio) >= TARGET else 'NOT met'})")
    print(f"target >= {TARGET:.0f}x on both entry points, both clocks: {'met' if met else 'NOT met'}")
    for label, seconds in firsts.items():
        print(f"first call in a fresh process, {label}: {seconds:.2f} s wall (vmap warm-up; not in "
              f"the ratios)")
    print(f"load average at the end: {_load()}")


def _load() -> str:
    return ", ".join(f"{v:.1f}" for v in os.getloadavg())


if __name__ == "__main__":
    main()
