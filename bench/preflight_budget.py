"""The whole preflight of the default experiment against its budget of 30 s on 2 cores.

Runs ``babysit preflight`` end to end (a fresh process: imports, data, all six checks, the
report files) with torch limited to 2 threads (``--threads``), a few times, and prints the
median wall time, the time of each check, and the ratio to the budget. Target: ratio <= 1.0.
(The checks themselves run with ``preflight.threads`` = 1 unless ``--set preflight.threads=0``
is passed through ``--extra``.)

    python bench/preflight_budget.py [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_S = 30.0


def one_run(folder: Path, threads: int, extra: list[str]) -> tuple[float, dict]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    src = Path(__file__).resolve().parents[1] / "src"
    env["PYTHONPATH"] = f"{src}{os.pathsep}{env.get('PYTHONPATH', '')}"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "babysit.cli", "preflight", "-q", "--run-dir",
                           str(folder), *extra], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"preflight failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    return seconds, json.loads((folder / "preflight" / "report.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--extra", nargs="*", default=[], metavar="ARG",
                        help="more arguments for babysit preflight, e.g. --set preflight.threads=0")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads (on a loaded machine 1 thread is fairer: with more, "
                             "OpenMP workers wait on each other)")
    args = parser.parse_args()
    walls, per_check = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            seconds, report = one_run(Path(tmp) / f"run{rep}", args.threads, args.extra)
            walls.append(seconds)
            for name, check in report["checks"].items():
                per_check.setdefault(name, []).append(check["seconds"])
    for name, times in per_check.items():
        print(f"  {name:<20} {statistics.median(times):6.2f} s")
    wall = statistics.median(walls)
    print(f"babysit preflight (default experiment, {args.threads} threads): median {wall:.1f} s over "
          f"{args.reps} runs (all: {', '.join(f'{w:.1f}' for w in walls)})")
    print(f"ratio to the {BUDGET_S:.0f} s budget: {wall / BUDGET_S:.2f} (target <= 1.00)")


if __name__ == "__main__":
    main()
