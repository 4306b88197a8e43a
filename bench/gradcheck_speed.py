"""Coordinates per second: babysit.gradcheck against torch.autograd.gradcheck (slow mode).

The issue's setting: a 2-layer ReLU MLP 64-100-10, 3 datapoints, float64, softmax loss, ALL
7,510 parameters checked. torch.autograd.gradcheck(fast_mode=False) perturbs one input entry
at a time (2 forward passes per coordinate); babysit evaluates a stack of perturbed copies per
forward pass (vmap) and also tracks kinks. Repetitions are interleaved (torch, babysit, torch,
babysit, ...) so load on a shared machine hits both alike; the ratio of the median rates is
printed. Target: >= 20x.

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


def run_torch(model, x, y) -> tuple[float, int]:
    names = [n for n, _ in model.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for _, p in model.named_parameters())

    def loss(*ps):
        return nn.functional.cross_entropy(functional_call(model, dict(zip(names, ps)), (x,)), y)

    started = time.perf_counter()
    ok = torch.autograd.gradcheck(loss, params, eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=False)
    seconds = time.perf_counter() - started
    assert ok
    return seconds, sum(p.numel() for p in params)


def run_babysit(model, x, y) -> tuple[float, int]:
    started = time.perf_counter()
    report = gradcheck_model(model, nn.functional.cross_entropy, x, y, num_points=3,
                             coords_per_tensor=None)
    seconds = time.perf_counter() - started
    assert report.passed, report.summary
    assert report.numeric_mode == "batched", report.fallback
    return seconds, len(report.rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads for both sides (default 1: steadier on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, x, y = make_problem()
    run_babysit(model, x, y)  # warm-up: first vmap call, imports
    rates = {"torch.autograd.gradcheck (slow mode)": [], "babysit gradcheck_model": []}
    for _ in range(args.repeats):
        for label, runner in (("torch.autograd.gradcheck (slow mode)", run_torch),
                              ("babysit gradcheck_model", run_babysit)):
            seconds, coords = runner(model, x, y)
            rates[label].append(coords / seconds)
            print(f"  {label:<38} {coords} coordinates in {seconds:7.3f} s = {coords / seconds:10.0f} coords/s",
                  flush=True)
    medians = {k: statistics.median(v) for k, v in rates.items()}
    ratio = medians["babysit gradcheck_model"] / medians["torch.autograd.gradcheck (slow mode)"]
    print(f"MLP 64-100-10, 3 datapoints, float64, all 7510 parameters, {args.threads} thread(s), "
          f"{args.repeats} interleaved repeats")
    for label, rate in medians.items():
        print(f"  median {label:<38} {rate:10.0f} coords/s")
    print(f"speed ratio babysit / torch slow mode: {ratio:.1f}x (target >= 20x)")


if __name__ == "__main__":
    main()
