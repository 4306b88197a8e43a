"""How long the main job takes: ``babysit run --quick`` (budget 60 s) and ``babysit run`` (180 s).

Runs each as a user would (a fresh process, the built-in default experiment — MNIST-1D with
the 1-D convnet —, a fresh run directory) and prints the wall time, its ratio to the budget,
the CPU time of the run and its workers, the time of every stage from run.json, and the test
accuracy the run reached (its test.json: the final model on MNIST-1D's official 1,000 test
examples; issue 16 asks >= 94% of the default). The budgets hold for 2 free cores; on a busy
machine the wall ratio says by how much the machine, not babysit, is late: the CPU time over
2 cores is then the better estimate of an idle run (the search's 2 workers use both cores,
the other stages one).

    python bench/workflow_budget.py            # both
    python bench/workflow_budget.py --quick    # only --quick
    python bench/workflow_budget.py --default --set seed=1   # only the default, another seed
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGETS = {"--quick": 60.0, "default": 180.0}
EXTRA: list[str] = []  # more arguments of babysit run (--set key=value)


def run(mode: str) -> tuple[float, float, dict, int]:
    with tempfile.TemporaryDirectory(prefix="babysit-bench-") as tmp:
        run_dir = Path(tmp) / "run"
        args = [sys.executable, "-m", "babysit.cli", "run", "--quiet", "--run-dir", str(run_dir)]
        if mode != "default":
            args.append(mode)
        args += EXTRA
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, text=True, env=os.environ.copy())
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        info = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
        test = run_dir / "test.json"
        info["_test"] = json.loads(test.read_text()) if test.exists() else None
        if proc.returncode:
            print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
        return seconds, cpu, info, proc.returncode


def test_line(test: dict | None) -> str:
    """The final model's test accuracy (n, 95% interval) and the best other entry of test.json."""
    if not test or not isinstance(test.get("models"), dict) or "final" not in test["models"]:
        return "    test: no test.json (no test split evaluated)"
    models = test["models"]
    shown = lambda m: f"{m['acc']:.4f} (n={m['n']}, 95% CI {m['low']:.4f}-{m['high']:.4f})"  # noqa: E731
    others = "; ".join(f"{name} {shown(m)}" for name, m in models.items() if name != "final")
    return f"    test ({test.get('source', '?')}): final model {shown(models['final'])}" + \
        (f"\n    also: {others}" if others else "")


def main() -> int:
    argv = sys.argv[1:]
    modes = ["--quick"] if "--quick" in argv else ["default"] if "--default" in argv else ["--quick", "default"]
    global EXTRA
    EXTRA = [a for a in argv if a not in ("--quick", "--default")]  # e.g. --set seed=1
    print(f"babysit run budget on {os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f})")
    worst = 0.0
    for mode in modes:
        seconds, cpu, info, code = run(mode)
        ratio = seconds / BUDGETS[mode]
        worst = max(worst, ratio)
        stages = ", ".join(f"{s['name']} {s.get('seconds') or 0:.1f}s ({s['status']})" for s in info.get("stages", []))
        print(f"babysit run {mode:>8}: {seconds:6.1f} s of {BUDGETS[mode]:.0f} s budget -> ratio {ratio:.2f}"
              f"{'' if code == 0 else f'  (exit code {code})'}; CPU time {cpu:.0f} s "
              f"(CPU/2 cores = {cpu / 2 / BUDGETS[mode]:.2f} of the budget)\n    {stages}\n"
              f"{test_line(info.get('_test'))}")
    print(f"worst ratio to budget: {worst:.2f} ({'within' if worst <= 1 else 'OVER'} budget)")
    return 0 if worst <= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
