"""How long the main job takes: ``babysit run --quick`` (budget 60 s) and ``babysit run`` (300 s).

Runs each as a user would (a fresh process, the built-in default experiment, a fresh run
directory) and prints the wall time, its ratio to the budget, and the time of every stage from
run.json. The budgets hold for 2 free cores; on a busy machine the ratio says by how much the
machine, not babysit, is late — compare the stage times with an idle run.

    python bench/workflow_budget.py            # both
    python bench/workflow_budget.py --quick    # only --quick
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

BUDGETS = {"--quick": 60.0, "default": 300.0}


def run(mode: str) -> tuple[float, float, dict, int]:
    with tempfile.TemporaryDirectory(prefix="babysit-bench-") as tmp:
        run_dir = Path(tmp) / "run"
        args = [sys.executable, "-m", "babysit.cli", "run", "--quiet", "--run-dir", str(run_dir)]
        if mode != "default":
            args.append(mode)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, text=True, env=os.environ.copy())
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        info = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
        if proc.returncode:
            print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
        return seconds, cpu, info, proc.returncode


def main() -> int:
    modes = ["--quick"] if "--quick" in sys.argv[1:] else ["--quick", "default"]
    print(f"babysit run budget on {os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f})")
    worst = 0.0
    for mode in modes:
        seconds, cpu, info, code = run(mode)
        ratio = seconds / BUDGETS[mode]
        worst = max(worst, ratio)
        stages = ", ".join(f"{s['name']} {s.get('seconds') or 0:.1f}s ({s['status']})" for s in info.get("stages", []))
        print(f"babysit run {mode:>8}: {seconds:6.1f} s of {BUDGETS[mode]:.0f} s budget -> ratio {ratio:.2f}"
              f"{'' if code == 0 else f'  (exit code {code})'}; CPU time {cpu:.0f} s "
              f"(CPU/2 cores = {cpu / 2 / BUDGETS[mode]:.2f} of the budget)\n    {stages}")
    print(f"worst ratio to budget: {worst:.2f} ({'within' if worst <= 1 else 'OVER'} budget)")
    return 0 if worst <= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
