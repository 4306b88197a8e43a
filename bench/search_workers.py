"""Two search workers against one on this machine (2 cores): trials per minute.

Runs the same one-stage `babysit search` (the default experiment, 5 epochs a trial, a space of
learning rates that all train) with --workers 1 and --workers 2, interleaved REPEATS times to
fight the noise of a shared machine. Throughput is measured over the trials themselves (first
trial start to last trial end, from the study's timestamps), so process start-up is left out
-- which holds because a worker warms up (loads the data, pays PyTorch's lazy imports) before
asking for its first trial. Before it did, each worker's first trial carried seconds of
start-up, the span did too, and this ratio read 1.17-1.39x.
Each worker runs torch on one thread (search.threads = 1), so the ratio measures what a second
process adds. Also printed: one worker given both cores as torch threads (what `babysit search
--workers 1` does by default) -- on a small model and a busy machine that is slower still.
Target: two workers complete >= 1.7x as many trials per minute as one. The overlap printed
says whether the two really ran side by side (~2x); if they did and each trial still took
about twice as long, the machine had no free core to give the second worker (a shared
machine's other load), not a limit of the search.

    PYTHONPATH=src python bench/search_workers.py [--trials 16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from babysit.config import load_config  # noqa: E402
from babysit.search import run_search  # noqa: E402


def trials_per_minute(workers: int, trials: int, epochs: int, seed: int, threads: int = 0) -> tuple:
    """(trials per minute, overlap, mean seconds of training per trial). Overlap is the summed
    trial time over the wall span: ~2 when two workers really run side by side."""
    config = load_config(overrides=[f"seed={seed}"])
    config["search"].update(stages=[{"trials": trials, "epochs": epochs}], pruner="none", threads=threads,
                            space={"optim.lr": {"low": 0.01, "high": 0.1, "log": True},
                                   "model.dropout": {"low": 0.0, "high": 0.5}})
    with tempfile.TemporaryDirectory() as tmp:
        result = run_search(config, Path(tmp) / "run", workers=workers, quiet=True)
    rows = [r for r in result.leaderboard if r["state"] == "complete"]
    span = max(r["finished"] for r in rows) - min(r["started"] for r in rows)
    busy = sum(r["finished"] - r["started"] for r in rows)
    return 60.0 * len(rows) / span, busy / span, sum(r["seconds"] for r in rows) / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} before starting; "
          f"{args.trials} trials x {args.epochs} epochs per search; {args.repeats} interleaved repeats")
    rates = {"1 worker": [], "2 workers": [], "1 worker, 2 threads": []}
    ratios, ratios_threads = [], []
    started = time.time()
    for rep in range(args.repeats):
        one, _, one_s = trials_per_minute(1, args.trials, args.epochs, seed=rep, threads=1)
        two, overlap, two_s = trials_per_minute(2, args.trials, args.epochs, seed=rep, threads=1)
        one_wide, _, _ = trials_per_minute(1, args.trials, args.epochs, seed=rep, threads=2)
        for key, value in zip(rates, (one, two, one_wide)):
            rates[key].append(value)
        ratios.append(two / one)
        ratios_threads.append(two / one_wide)
        print(f"  repeat {rep + 1}: 1 worker {one:6.1f} trials/min, 2 workers {two:6.1f} trials/min "
              f"(ratio {two / one:.2f}; the two overlapped {overlap:.2f}x, a trial trained "
              f"{two_s / one_s:.2f}x as long as alone); 1 worker with 2 threads {one_wide:6.1f} trials/min",
              flush=True)
    ratio = statistics.median(ratios)
    print("median trials/min: " + ", ".join(f"{k} {statistics.median(v):.1f}" for k, v in rates.items()))
    print(f"two workers / one worker: {ratio:.2f}x (target >= 1.7x: {'met' if ratio >= 1.7 else 'MISSED'}); "
          f"two workers / one worker with both cores as threads: {statistics.median(ratios_threads):.2f}x; "
          f"{time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
