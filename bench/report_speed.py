"""How long writing ``report.html`` takes, against drawing one matplotlib figure, side by side.

Times on this shared machine swing by 2x from minute to minute, so the page's time is printed
as a ratio to a reference measured in the same rounds: drawing one ordinary matplotlib figure
(two labelled lines of 100 points, a legend, a title) and saving it as SVG, the unit of
work the page repeats a dozen times. Each round, in turn: the reference, the page written cold
(its cache ``RUN_DIR/.report-cache`` removed first: every figure drawn, the data loaded and
hashed, as on a run's first page), the page written warm (figures and fingerprint from the
cache, as on every later ``babysit report`` or live reload). Imports are paid before the first
round (a warm-up write), so neither side is charged for them.

Also printed: the run's own stage times from ``run.json`` (the report stage wrote the first
page inside ``babysit run``) and the page's size.

Usage: ``python bench/report_speed.py [RUN_DIR] [--rounds N]``. Without RUN_DIR a fresh
``babysit run --quick --set data.dataset=digits`` is made in a temporary folder (about a
minute). The run directory is copied first: the benchmark never touches the one given.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from babysit.report.cache import FOLDER  # noqa: E402
from babysit.report.html import write_report  # noqa: E402


def reference_figure() -> float:
    """Seconds to draw and save one ordinary figure as SVG (the unit the ratios count in)."""
    start = time.perf_counter()
    x = np.arange(100)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(x, np.exp(-x / 30), label="train")
    ax.plot(x, np.exp(-x / 40) + 0.05, "--", label="validation")
    ax.set(xlabel="epoch", ylabel="loss", title="a reference figure")
    ax.legend(frameon=False)
    fig.savefig(io.BytesIO(), format="svg", bbox_inches="tight")
    plt.close(fig)
    return time.perf_counter() - start


def page(run_dir: Path, out: Path, cold: bool) -> float:
    if cold:
        shutil.rmtree(run_dir / FOLDER, ignore_errors=True)
    start = time.perf_counter()
    write_report(run_dir, out)
    return time.perf_counter() - start


def quick_run(where: Path) -> Path:
    run_dir = where / "quick"
    command = [sys.executable, "-c", "from babysit.cli import main; main()", "run", "--quick", "--quiet",
               "--set", "data.dataset=digits", "--run-dir", str(run_dir)]
    print("making a run:", " ".join(command[3:]), flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return run_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", help="a finished run directory (default: a fresh quick run)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="babysit-bench-report-") as tmp:
        tmp = Path(tmp)
        source = Path(args.run_dir) if args.run_dir else quick_run(tmp)
        run_dir = tmp / "copy"
        shutil.copytree(source, run_dir, ignore=shutil.ignore_patterns(FOLDER, "report.html"))
        out = tmp / "report.html"
        page(run_dir, out, cold=True)  # warm-up: imports, font caches
        times: dict[str, list[float]] = {"reference figure": [], "page, cold": [], "page, warm": []}
        for _ in range(args.rounds):
            times["reference figure"].append(reference_figure())
            times["page, cold"].append(page(run_dir, out, cold=True))
            times["page, warm"].append(page(run_dir, out, cold=False))
        info = json.loads((source / "run.json").read_text()) if (source / "run.json").is_file() else {}
        size = out.stat().st_size
    print(f"run: {source}" + (" (copied; removed after)" if args.run_dir else " (temporary)"))
    for stage in info.get("stages", []):
        print(f"  stage {stage.get('name', '?'):<10} {stage.get('seconds') or 0:7.2f} s")
    if info.get("seconds") is not None:
        print(f"  whole run  {info['seconds']:7.2f} s")
    print(f"page size: {size / 1024:.0f} KB")
    reference = statistics.median(times["reference figure"])
    print(f"median of {args.rounds} rounds (this machine is shared: read the ratios, not the seconds):")
    for name, values in times.items():
        print(f"  {name:<17} {statistics.median(values):6.2f} s  = {statistics.median(values) / reference:6.1f} "
              "reference figures")
    cold, warm = statistics.median(times["page, cold"]), statistics.median(times["page, warm"])
    print(f"warm / cold: {warm / cold:.2f}")


if __name__ == "__main__":
    main()
