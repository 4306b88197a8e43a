"""How much the training monitor slows training down, against the bare loop.

Trains the digits convnet and an MLP with a hand-written PyTorch loop, three ways, with the
repetitions interleaved (bare, loss only, default, bare, ...) so that load from other processes
hits all of them alike, and prints the ratio of median times to the bare loop:

* loss only: ``Monitor(ratio_every=0, hist_every=0, first_layer=False)`` and
  ``mon.step(loss)`` (with the epochs' accuracies and the diagnoses) — target <= 1.01x
* default: loss and accuracy, update:weight ratios every step, histograms every 10 steps,
  per-epoch diagnoses and records on disk — target <= 1.05x

Both monitored loops call ``mon.epoch(...)`` with the validation accuracy the bare loop also
computes; the timing includes ``mon.close()`` (waiting for the records to reach the disk).
Every run starts from a collected heap, so no run is charged for collecting an earlier one's
garbage (a full collection walks all of PyTorch's objects: ~0.2 s here), and a second bare
run in every repetition ("bare again") prints the noise floor of the ratios.

Two clocks: wall time, and CPU time of the process (all threads, the monitor's writer thread
included). On a quiet machine they agree for this single-threaded loop; on a shared one the
wall clock mostly measures the neighbours, so the verdict uses CPU time and both are printed.
A third figure, "inside the monitor", adds up the CPU time spent in the monitor's own calls
and hooks (step, epoch, close, the optimizer step hooks, the sampled forward/backward hooks)
over the same runs: it does not see side effects (cache, allocator, GC), but it is far less
noisy than a difference of two whole-run times on a busy machine.
Run: ``python bench/monitor_overhead.py [--epochs 5] [--reps 9] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from babysit import Monitor, build_model, load_data  # noqa: E402

VARIANTS = ("bare", "bare again", "loss only", "default")  # "bare again": the noise floor
INSIDE: dict[str, float] = {"cpu": 0.0}


def attribute_monitor_time() -> None:
    """Wrap the monitor's entry points so the CPU time spent inside them is added up."""
    from babysit.watch import activations, gradients, monitor

    def timed(fn):
        def wrapper(*args, **kwargs):
            started = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                INSIDE["cpu"] += time.process_time() - started
        return wrapper
    for cls, names in ((monitor.Monitor, ("step", "epoch", "close", "_before_step", "_after_step")),
                       (activations.ActivationProbe, ("summarize",)),
                       (gradients.GradientProbe, ("watch_output",))):
        for name in names:
            setattr(cls, name, timed(getattr(cls, name)))
TARGETS = {"loss only": 1.01, "default": 1.05}


def train_once(model_name: str, variant: str, data, epochs: int, batch_size: int,
               run_dir: str) -> tuple[float, float]:
    torch.manual_seed(0)
    kwargs = dict(depth=2, width=16) if model_name == "convnet" else dict(depth=2, width=128)
    model = build_model(model_name, data.input_shape, data.num_classes, **kwargs)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    mon = None
    if variant == "loss only":
        mon = Monitor(model, optimizer, run_dir=run_dir, ratio_every=0, hist_every=0, first_layer=False)
    elif variant == "default":
        mon = Monitor(model, optimizer, run_dir=run_dir)
    loss_fn = nn.CrossEntropyLoss()
    x, y = data.x_train, data.y_train
    generator = torch.Generator().manual_seed(0)
    gc.collect()  # a clean heap: collecting an earlier run's garbage is not this run's cost
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), batch_size):
            idx = order[start:start + batch_size]
            loss = loss_fn(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_value = loss.item()  # what every loop reads: the one host sync per step
            if mon is not None:
                mon.step(loss_value)
        with torch.no_grad():
            model.eval()
            val_acc = (model(data.x_val).argmax(1) == data.y_val).float().mean().item()
            model.train()
        if mon is not None:
            mon.epoch(val_acc=val_acc)
    if mon is not None:
        mon.close()
    return time.perf_counter() - started, time.process_time() - cpu_started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: least noise)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    attribute_monitor_time()
    data = load_data("digits")
    failed = False
    for model_name in ("convnet", "mlp"):
        wall: dict[str, list[float]] = {v: [] for v in VARIANTS}
        cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
        inside: dict[str, float] = {v: 0.0 for v in VARIANTS}
        with tempfile.TemporaryDirectory() as tmp:
            train_once(model_name, "default", data, 1, args.batch_size, f"{tmp}/warmup")  # warm up
            for rep in range(args.reps):
                order = VARIANTS if rep % 2 == 0 else VARIANTS[::-1]
                for variant in order:
                    before = INSIDE["cpu"]
                    w, c = train_once(model_name, variant, data, args.epochs, args.batch_size,
                                      f"{tmp}/{variant}-{rep}")
                    inside[variant] += INSIDE["cpu"] - before
                    wall[variant].append(w)
                    cpu[variant].append(c)
        steps = args.epochs * -(-len(data.y_train) // args.batch_size)
        bare_cpu = statistics.median(cpu["bare"])
        print(f"{model_name}: bare loop {bare_cpu / steps * 1e3:.2f} ms/step CPU, "
              f"{statistics.median(wall['bare']) / steps * 1e3:.2f} ms/step wall "
              f"({steps} steps, median of {args.reps} interleaved runs)")
        for variant in VARIANTS[1:]:
            # median of the per-repetition ratios: each pairs runs made moments apart
            cpu_ratio = statistics.median(c / b for c, b in zip(cpu[variant], cpu["bare"]))
            wall_ratio = statistics.median(w / b for w, b in zip(wall[variant], wall["bare"]))
            if variant == "bare again":
                print(f"  bare loop against itself (the noise floor): {cpu_ratio:.3f}x CPU, {wall_ratio:.3f}x wall")
                continue
            ok = cpu_ratio <= TARGETS[variant]
            failed |= not ok
            own = inside[variant] / args.reps
            print(f"  {variant:>9}: {cpu_ratio:.3f}x CPU, {wall_ratio:.3f}x wall; inside the monitor "
                  f"{own / steps * 1e6:.0f} us/step = {1 + own / bare_cpu:.3f}x  "
                  f"(target <= {TARGETS[variant]:.2f}x)  {'ok' if ok else 'MISSED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
