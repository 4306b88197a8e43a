"""Coordinates per second: babysit.gradcheck against torch.autograd.gradcheck (slow mode).

The issue's setting: a 2-layer ReLU MLP 64-100-10, 3 datapoints, float64, softmax loss, ALL
7,510 parameters checked. torch.autograd.gradcheck(fast_mode=False) perturbs one input entry
at a time (2 forward passes per coordinate); babysit evaluates a stack of perturbed copies per
forward pass (vmap) and also tracks kinks. Repetitions are interleaved (torch, babysit, torch,
babysit, ...) so load on a shared machine hits both alike; the ratio of the median rates is
printed, by wall clock and by this process's CPU time (steadier when other jobs share the
cores). Target: >= 20x.

    PYTHONPATH=src python bench/gradcheck_speed.py [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn
from torch.func import functional_call

from babysit.check import gradcheck_model


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads for both sides (default 1: steadier on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, x, y = make_problem()
    run_babysit(model, x, y)  # warm-up: first vmap call, imports
    torch_label, ours = "torch.autograd.gradcheck (slow mode)", "babysit gradcheck_model"
    rates = {torch_label: [], ours: []}
    cpu_rates = {torch_label: [], ours: []}
    for _ in range(args.repeats):
        for label, runner in ((torch_label, run_torch), (ours, run_babysit)):
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
    ratio = statistics.median(rates[ours]) / statistics.median(rates[torch_label])
    cpu_ratio = statistics.median(cpu_rates[ours]) / statistics.median(cpu_rates[torch_label])
    print(f"speed ratio babysit / torch slow mode: {ratio:.1f}x wall-clock, {cpu_ratio:.1f}x CPU time "
          f"(target >= 20x)")


if __name__ == "__main__":
    main()
