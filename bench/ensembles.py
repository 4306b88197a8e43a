"""Benchmark: do the notes' ensembles pay on MNIST-1D? Test accuracy, validation for every choice.

Three disjoint groups (seeds b..b+4 for b = 0, 10, 20; the student and its twin from b+5).
Per group it trains the experiment into a fresh run directory, calls
``babysit.ensemble.build_ensembles`` with K=5 (seed members, the run's last checkpoints, the
parameter average, the distilled student), trains the student's twin (its seed and epochs) on
the hard labels alone, and reads every figure on the official 1,000 MNIST-1D test examples.
Validation (carved from the 4,000 training examples) picks the best member and the teacher;
the test split only reports.

Targets (medians over the 3 groups):
  * the 5-seed ensemble >= +1.0 point over its best member, the paired 95% interval above 0
    (in at least 2 of the 3 groups, so its median lower bound is above 0);
  * the distilled student keeps >= half of that gain: (student - best member) / (ensemble -
    best member), on test; a group whose ensemble did not gain has no share to keep and counts
    below any share;
  * the parameter average not worse than the raw weights: its median test difference >= 0 and
    no group where it is a loss (paired interval below 0); measured on the run and on the 5
    seed members pooled.

The experiment: the default config (MNIST-1D, its official 1,000 test examples as the test
split, validation carved from the 4,000 training examples, the 1-D convnet), with --set changes.

Usage: python bench/ensembles.py [--set key=value ...] [--groups N]
The figures are measured, not asserted: read them. Every accuracy is printed with its n and
95% interval (Wilson; paired differences: Newcombe).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

from babysit import experiment  # noqa: E402
from babysit.config import load_config  # noqa: E402
from babysit.data import DataSplit  # noqa: E402
from babysit.ensemble import build_ensembles  # noqa: E402
from babysit.ensemble.members import average_from_checkpoint, load_member  # noqa: E402
from babysit.ensemble.predict import member_probabilities  # noqa: E402
from babysit.rundir import RunDir  # noqa: E402
from babysit.stats import Accuracy, PairedDifference  # noqa: E402
from babysit.train import latest_checkpoint  # noqa: E402

K = 5
BASES = (0, 10, 20)  # members b..b+4, student and twin b+5: no seed shared between groups
# The bench measures accuracies; the monitor's records would only cost time here.
QUIET = ["watch.enabled=false"]


def test_hits(model: torch.nn.Module, data: DataSplit) -> list[bool]:
    """Per test example, is `model` right? (A final figure: every choice is made by now.)"""
    with data.unlocked_test():
        return (member_probabilities(model, data.x_test).argmax(1) == data.y_test).tolist()


def one_group(base: int, overrides: list[str], root: Path) -> dict:
    config = load_config(overrides=[*overrides, f"seed={base}"])
    data = experiment.load_split(config)
    run_dir = RunDir(root / f"group{base}")
    experiment.train(config, run_dir, quiet=True)
    rows = {r.kind: r for r in build_ensembles(config, run_dir, k=K, quiet=True,
                                               kinds=("seeds", "checkpoints", "average", "distill"))}
    # The parameter average of each seed member against its raw weights, pooled over the 5.
    averaged_hits, raw_hits = [], []
    for seed in range(base, base + K):
        raw, averaged, _ = average_from_checkpoint(
            latest_checkpoint(run_dir / "ensemble" / "seeds" / str(seed) / "checkpoints"), config)
        averaged_hits += test_hits(averaged, data)
        raw_hits += test_hits(raw, data)
    # The student's twin: the student's seed, config and epochs, trained on the hard labels
    # alone -- what the student's longer training would give without its teachers.
    student_epochs = max(1, round(config["ensemble"]["student_budget"] * config["train"]["epochs"]))
    twin_config = load_config(overrides=[*overrides, f"seed={base + K}", "train.checkpoints=true",
                                         f"train.epochs={student_epochs}"])
    twin_dir = RunDir(root / f"twin{base}")
    experiment.train(twin_config, twin_dir, quiet=True)
    twin = load_member(latest_checkpoint(twin_dir / "checkpoints"), "twin", config).model
    student = load_member(latest_checkpoint(run_dir / "ensemble" / "distill" / "checkpoints"),
                          "student", config).model
    seeds = rows["seeds"]
    return {"rows": rows,
            "average_members": PairedDifference.of(averaged_hits, raw_hits),
            "twin": Accuracy.of(test_hits(twin, data)),
            "student_over_twin": PairedDifference.of(test_hits(student, data), test_hits(twin, data)),
            "curve": seeds.curve, "disagreement": seeds.disagreement}


def accuracy_text(figure: dict) -> str:
    return f"{figure['acc']:.4f} (n={figure['n']}, {figure['low']:.3f}-{figure['high']:.3f})"


def gain_text(figure: dict) -> str:
    return (f"{100 * figure['diff']:+.2f} pt (n={figure['n']}, {100 * figure['low']:+.2f} to "
            f"{100 * figure['high']:+.2f}, {figure['verdict']})")


def kept_share(group: dict) -> float:
    """The student's share of the ensemble's test gain; NaN when the ensemble did not gain."""
    seeds, student = group["rows"]["seeds"].test_gain, group["rows"]["distill"].test_gain
    return student["diff"] / seeds["diff"] if seeds["verdict"] == "gain" else float("nan")


def print_group(base: int, g: dict) -> None:
    rows = g["rows"]
    seeds, distilled, average, ckpts = rows["seeds"], rows["distill"], rows["average"], rows["checkpoints"]
    share = kept_share(g)
    print(f"group {base} (members seeds {base}..{base + K - 1}, student and twin seed {base + K}):")
    print(f"  5-seed ensemble   test {accuracy_text(seeds.test)}; best member (by val) "
          f"{accuracy_text(seeds.test_best_member)}; gain {gain_text(seeds.test_gain)}")
    print(f"    members curve (test, first 1..{K}): {' '.join(f'{a:.3f}' for a in g['curve'])}; "
          f"pairwise disagreement {g['disagreement']:.1%}; val gain {100 * seeds.gain:+.2f} pt "
          f"(n={seeds.n}, {seeds.verdict})")
    print(f"  distilled student test {accuracy_text(distilled.test)}; over the best member "
          f"{gain_text(distilled.test_gain)}; "
          + (f"keeps {share:.0%} of the ensemble's gain" if share == share else "no ensemble gain to keep"))
    print(f"    hard-label twin test {accuracy_text(g['twin'].to_dict())}; student over twin "
          f"{gain_text(g['student_over_twin'].to_dict())}")
    print(f"  parameter average (the run) {accuracy_text(average.test)} vs raw "
          f"{accuracy_text(average.test_best_member)}: {gain_text(average.test_gain)}")
    print(f"    over the 5 seed members pooled: {gain_text(g['average_members'].to_dict())}")
    print(f"  last {K} checkpoints ensemble {accuracy_text(ckpts.test)}: {gain_text(ckpts.test_gain)}")
    print(f"  evaluation cost of the 5-seed ensemble over one member: x{seeds.time_ratio:.1f} time, "
          f"x{seeds.memory_ratio:.1f} memory", flush=True)


def median_sorting_nan_low(values: list[float]) -> float:
    """The median where NaN (no share to keep) sorts below every number."""
    ordered = sorted(values, key=lambda v: (v == v, v if v == v else 0.0))
    return ordered[len(ordered) // 2]


def summarize(groups: list[dict]) -> list[tuple[str, str, str, bool]]:
    def med(get) -> float:
        return statistics.median(get(g) for g in groups)

    def pt(get) -> str:
        return f"{100 * med(get):+.2f} pt"

    gain = med(lambda g: g["rows"]["seeds"].test_gain["diff"])
    gain_low = med(lambda g: g["rows"]["seeds"].test_gain["low"])
    kept = median_sorting_nan_low([kept_share(g) for g in groups])
    avg = med(lambda g: g["rows"]["average"].test_gain["diff"])
    avg_losses = sum(g["rows"]["average"].test_gain["verdict"] == "loss" for g in groups)
    avg_members = med(lambda g: g["average_members"].value)
    avg_members_losses = sum(g["average_members"].verdict == "loss" for g in groups)
    print(f"medians over {len(groups)} groups (test, n={groups[0]['rows']['seeds'].test['n']} each):")
    print(f"  5-seed ensemble test acc {med(lambda g: g['rows']['seeds'].test['acc']):.4f}, its best member "
          f"{med(lambda g: g['rows']['seeds'].test_best_member['acc']):.4f}, student "
          f"{med(lambda g: g['rows']['distill'].test['acc']):.4f}, twin {med(lambda g: g['twin'].value):.4f}")
    curve = [statistics.median(g["curve"][m] for g in groups) for m in range(K)]
    print(f"  members curve (test, first 1..{K}): {' '.join(f'{a:.4f}' for a in curve)}; pairwise "
          f"disagreement {med(lambda g: g['disagreement']):.1%}")
    student_gain = med(lambda g: g["rows"]["distill"].test_gain["diff"])
    print(f"  student over its hard-label twin {pt(lambda g: g['student_over_twin'].value)}; "
          f"student over the best member {100 * student_gain:+.2f} pt, "
          + (f"{student_gain / gain:.0%} of the median ensemble gain (the ratio of medians)"
             if gain > 0 else "no median ensemble gain"))
    shares = ", ".join(f"{s:.0%}" if s == s else "no gain" for s in (kept_share(g) for g in groups))
    return [
        ("5-seed ensemble gain over its best member", f"{100 * gain:+.2f} pt (low {100 * gain_low:+.2f})",
         ">= +1.00 pt, low > 0", gain >= 0.01 - 1e-9 and gain_low > 0),
        ("distilled student's share of that gain", (f"{kept:.0%}" if kept == kept else "no gain")
         + f" ({shares})", ">= 50%", kept == kept and kept >= 0.5),
        ("parameter average minus raw weights (the run)", f"{100 * avg:+.2f} pt ({avg_losses} losses)",
         ">= 0, no loss", avg >= 0 and avg_losses == 0),
        ("parameter average minus raw (5 members pooled)",
         f"{100 * avg_members:+.2f} pt ({avg_members_losses} losses)", ">= 0, no loss",
         avg_members >= 0 and avg_members_losses == 0),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--groups", type=int, default=len(BASES), help="how many of the 3 groups to run")
    args = parser.parse_args()
    # One intra-op thread: on a shared machine two threads spin-wait on each other.
    torch.set_num_threads(1)
    overrides = [*QUIET, *args.overrides]
    config = load_config(overrides=overrides)
    data = experiment.load_split(config)
    print(f"experiment: {config['data']['dataset']} ({len(data.y_train)} train / {len(data.y_val)} val / "
          f"{data.n_test} test: {data.test_source}), {config['model']['name']} depth "
          f"{config['model']['depth']} width {config['model']['width']}, {config['optim']['name']} lr "
          f"{config['optim']['lr']} {config['optim']['schedule']}, batch {config['train']['batch_size']}, "
          f"{config['train']['epochs']} epochs; K={K}; ema_decay {config['ensemble']['ema_decay']}, "
          f"T={config['ensemble']['temperature']}, alpha={config['ensemble']['alpha']}, "
          f"shift {config['ensemble']['shift']}, student "
          f"{config['ensemble']['student_budget']:g}x the epochs; "
          f"overrides {args.overrides or 'none'}", flush=True)
    groups = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for base in BASES[:args.groups]:
            groups.append(one_group(base, overrides, Path(tmp)))
            print_group(base, groups[-1])
    checks = summarize(groups)
    for name, value, target, ok in checks:
        print(f"  {name:<48} {value:>28}   target {target:<20} {'met' if ok else 'MISSED'}")
    print(f"({time.perf_counter() - started:.0f}s on a shared 2-core machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
