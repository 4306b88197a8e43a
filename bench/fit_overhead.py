"""fit() against a bare hand-written PyTorch loop: same model, data, optimizer, seed.

Both train the default MLP on digits with minibatches, read the loss once per step and
evaluate on the validation split after each epoch. Repetitions alternate between the two so
machine noise hits both alike. Each run is timed in CPU seconds of this process (torch on one
thread), which other processes on a shared machine do not inflate as they do wall time; the
printed ratio is the median of the paired ratios (each fit run against the bare run next to
it). Target: <= 1.05.

    python bench/fit_overhead.py [--reps 15] [--epochs 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from babysit.data import load_data
from babysit.models import build_model, l2_penalty, softmax_loss
from babysit.train import ProgressBar, evaluate, fit


def make(seed: int, data):
    torch.manual_seed(seed)
    model = build_model("mlp", data.input_shape, data.num_classes, depth=2, width=128)
    return model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)


def bare_loop(data, epochs: int, batch_size: int, reg: float) -> float:
    model, opt = make(0, data)
    generator = torch.Generator().manual_seed(0)
    x, y = data.x_train, data.y_train
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(y), generator=generator)
        total = 0.0
        for i in range(0, len(y), batch_size):
            idx = order[i:i + batch_size]
            scores = model(x[idx])
            loss = softmax_loss(scores, y[idx]) + l2_penalty(model, reg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        evaluate(model, softmax_loss, data.x_val, data.y_val)
    return total


def with_fit(data, epochs: int, batch_size: int, reg: float, progress: bool) -> None:
    model, opt = make(0, data)
    callbacks = [ProgressBar(file=open("/dev/null", "w"))] if progress else []
    fit(model, data, optimizer=opt, loss_fn=softmax_loss, epochs=epochs, batch_size=batch_size,
        reg=reg, seed=0, callbacks=callbacks)


def timed(fn) -> float:
    """CPU seconds `fn` took in this process (one torch thread: the work, not the neighbours)."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_data("digits")
    kw = dict(epochs=args.epochs, batch_size=64, reg=1e-4)
    runs = {"bare": [], "fit": [], "fit+progress": []}
    bare_loop(data, **kw)  # warm-up
    for _ in range(args.reps):
        runs["bare"].append(timed(lambda: bare_loop(data, **kw)))
        runs["fit"].append(timed(lambda: with_fit(data, progress=False, **kw)))
        runs["fit+progress"].append(timed(lambda: with_fit(data, progress=True, **kw)))
    print(f"default MLP on digits, {args.epochs} epochs, batch 64, {args.reps} alternating runs "
          "(CPU time; ratio: median of the paired ratios)")
    for name, times in runs.items():
        paired = statistics.median(t / b for t, b in zip(times, runs["bare"]))
        print(f"  {name:<13} {statistics.median(times) * 1000:8.1f} ms   ratio {paired:.3f}")
    ratio = statistics.median(f / b for f, b in zip(runs["fit"], runs["bare"]))
    print(f"fit / bare loop: {ratio:.3f}  (target <= 1.05: {'met' if ratio <= 1.05 else 'MISSED'})")


if __name__ == "__main__":
    main()
