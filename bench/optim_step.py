"""Step time of babysit's momentum and Nesterov against torch.optim.SGD(momentum=0.9, foreach=True).

torch's own Nesterov is timed too, for reference (the target is against plain momentum).

An MLP with about 2.4M parameters gets fixed random gradients; each optimizer's ``step()`` is
timed in rounds that interleave the three optimizers (so machine noise hits all of them
alike), and the median per-step time of each is compared. Target: ratio <= 1.2.

    PYTHONPATH=src python bench/optim_step.py [--rounds 30] [--steps 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from babysit.optim import Momentum, Nesterov


def model_and_grads(seed: int = 0) -> tuple[nn.Module, list[torch.Tensor]]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                          nn.Linear(1024, 256), nn.ReLU(), nn.Linear(256, 10))
    grads = [torch.randn_like(p) * 1e-3 for p in model.parameters()]
    return model, grads


def time_steps(optimizer: torch.optim.Optimizer, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--steps", type=int, default=10, help="steps per timing")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: least noise)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    contenders = {
        "torch SGD(momentum=0.9, foreach)": lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.9, foreach=True),
        "babysit Momentum": lambda ps: Momentum(ps, lr=1e-3, mu=0.9),
        "babysit Nesterov": lambda ps: Nesterov(ps, lr=1e-3, mu=0.9),
        "(torch SGD(nesterov=True, foreach))": lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.9,
                                                                          nesterov=True, foreach=True),
    }
    optimizers = {}
    n_params = 0
    for name, make in contenders.items():
        model, grads = model_and_grads()
        for p, g in zip(model.parameters(), grads):
            p.grad = g
        optimizers[name] = make(list(model.parameters()))
        n_params = sum(p.numel() for p in model.parameters())
        time_steps(optimizers[name], 3)  # warm up: state allocation, first-call overheads
    times: dict[str, list[float]] = {name: [] for name in optimizers}
    for r in range(args.rounds):
        order = list(optimizers) if r % 2 == 0 else list(reversed(optimizers))  # alternate who goes first
        for name in order:
            times[name].append(time_steps(optimizers[name], args.steps))

    base = statistics.median(times["torch SGD(momentum=0.9, foreach)"])
    print(f"model: {n_params:,} parameters; {args.rounds} interleaved rounds of {args.steps} steps, "
          f"{args.threads} thread(s)")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:38s} median {med * 1e3:8.3f} ms/step   ratio {med / base:5.2f}x")
    worst = max(statistics.median(times[n]) for n in ("babysit Momentum", "babysit Nesterov")) / base
    print(f"worst ratio vs torch: {worst:.2f}x (target <= 1.2x): {'OK' if worst <= 1.2 else 'MISSED'}")


if __name__ == "__main__":
    main()
