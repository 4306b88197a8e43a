"""Coarse-to-fine against plain random search, grid search and Optuna's default TPE.

For the default experiment (digits MLP) and an MNIST-1D MLP, each strategy runs as a real
`babysit search` (worker processes, journal storage) with the same space (lr and reg log-
uniform, dropout, update rule):

- random: TRIALS trials of EPOCHS epochs (the baseline budget B = TRIALS * EPOCHS epochs)
- grid:   the same budget on a grid (for comparison; Bergstra & Bengio: random beats grid)
- tpe:    the same budget with Optuna's default TPE sampler
- c2f:    babysit's coarse-to-fine stages (wide 1-epoch trials, narrowed 5-epoch ones, then
          full training of the best, continuing from their checkpoints), with its median pruner

Epochs are counted as trained (a continued trial counts only its new epochs). Along each
search, trials sorted by completion give the best validation accuracy reached against the
epochs spent. Target: coarse-to-fine reaches random search's final accuracy within 1/3 of
random search's epochs (median over 3 seeds). Prints the figures measured in this run.

    PYTHONPATH=src python bench/search_strategies.py [--seeds 3] [--workers 2]

24 searches in all (2 experiments x 3 seeds x 4 strategies), each spending 37-120 epochs: about
5 minutes on a quiet 2-core machine (318 s measured), 16 minutes at load 9.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from babysit.config import load_config  # noqa: E402
from babysit.search import run_search  # noqa: E402

TRIALS, EPOCHS = 12, 10
C2F_STAGES = [{"trials": 16, "epochs": 1}, {"trials": 4, "epochs": 5}, {"trials": 1, "epochs": EPOCHS}]
EXPERIMENTS = {
    "digits MLP (default)": [],
    "MNIST-1D MLP": ["data.dataset=mnist1d", "model.width=128", "model.depth=2"],
}


def strategy_config(overrides: list[str], strategy: str, seed: int) -> dict:
    config = load_config(overrides=overrides + [f"seed={seed}", f"train.epochs={EPOCHS}"])
    search = config["search"]
    if strategy == "c2f":
        search.update(stages=C2F_STAGES)
    else:
        search.update(stages=[{"trials": TRIALS, "epochs": EPOCHS}], pruner="none", carry=False,
                      sampler={"random": "random", "grid": "grid", "tpe": "tpe"}[strategy])
    if strategy == "grid":  # 3 values on each numeric axis (log spaced for lr, reg): 54 points
        search["grid_points"] = 3
    return config


def curve(leaderboard: list[dict]) -> list[tuple[int, float]]:
    """(epochs spent so far, best val accuracy so far) after each trial, in completion order."""
    rows = sorted((r for r in leaderboard if r["finished"] is not None), key=lambda r: r["finished"])
    spent, best, points = 0, 0.0, []
    for r in rows:
        spent += r["epochs_trained"]
        if isinstance(r["val_acc"], float):
            best = max(best, r["val_acc"])
        points.append((spent, best))
    return points


def epochs_to_reach(points, target: float) -> float:
    return next((spent for spent, best in points if best >= target - 1e-9), float("inf"))


def run(strategy: str, overrides: list[str], seed: int, workers: int) -> list[tuple[int, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        result = run_search(strategy_config(overrides, strategy, seed), Path(tmp) / "run",
                            workers=workers, quiet=True)
        return curve(result.leaderboard)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    started = time.time()
    print(f"budget: random/grid/tpe {TRIALS} trials x {EPOCHS} epochs = {TRIALS * EPOCHS} epochs; "
          f"c2f stages {C2F_STAGES}; {args.seeds} seeds, {args.workers} workers")
    verdicts = []
    for name, overrides in EXPERIMENTS.items():
        finals = {s: [] for s in ("random", "grid", "tpe", "c2f")}
        spent = {s: [] for s in finals}
        ratios = []
        for seed in range(args.seeds):  # strategies interleaved within each seed
            curves = {s: run(s, overrides, seed, args.workers) for s in finals}
            for s, points in curves.items():
                finals[s].append(points[-1][1])
                spent[s].append(points[-1][0])
            target_epochs = curves["random"][-1][0]
            reach = epochs_to_reach(curves["c2f"], curves["random"][-1][1])
            ratios.append(reach / target_epochs)
            print(f"  [{name}] seed {seed}: random {curves['random'][-1][1]:.4f} in {target_epochs} ep; "
                  f"c2f reaches it after {reach} ep (ratio {reach / target_epochs:.2f}), "
                  f"c2f final {curves['c2f'][-1][1]:.4f} in {curves['c2f'][-1][0]} ep; "
                  f"grid {curves['grid'][-1][1]:.4f}; tpe {curves['tpe'][-1][1]:.4f}", flush=True)
        print(f"\n{name}: median over {args.seeds} seeds")
        print(f"  {'strategy':<8} {'best val acc':>12} {'epochs':>7}")
        for s in finals:
            print(f"  {s:<8} {statistics.median(finals[s]):>12.4f} {statistics.median(spent[s]):>7.0f}")
        ratio = statistics.median(ratios)
        ok = ratio <= 1 / 3
        verdicts.append(ok)
        print(f"  coarse-to-fine epochs to reach random search's final accuracy / random's epochs: "
              f"{ratio:.3f} (target <= 0.333: {'met' if ok else 'MISSED'})\n")
    print(f"total {time.time() - started:.0f} s; targets met: {sum(verdicts)}/{len(verdicts)}")


if __name__ == "__main__":
    main()
