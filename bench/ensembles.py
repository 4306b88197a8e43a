"""Benchmark: do the notes' ensembles pay on the default experiment?

For 3 base seeds (members never shared between repetitions: seeds b..b+4 for b = 0, 5, 10)
it trains the default experiment into a fresh run directory and calls
``babysit.ensemble.build_ensembles`` with K=5, then prints, per repetition and as the median:

  * the 5-seed ensemble's validation accuracy over its best member   (target: >= +1.0 point)
  * the parameter average against the raw weights of the same run    (target: >= 0)
    (also over all 5 seed members, from their metrics.jsonl: val_acc_avg - val_acc at the end)
  * the distilled student's share of the ensemble's gain             (target: >= 50%)
    (a repetition whose ensemble did not gain has no share to keep: it counts below any share)
  * evaluation cost of the ensemble over one member (time, memory)

and, to tell a target out of reach from a recipe that misses it, the ensemble of all 15 seed
members pooled: if even 15 members do not beat the best member of 5, the members share their
validation errors and no way of averaging these 5 can reach the first target.

Usage: python bench/ensembles.py [--set key=value ...]   (e.g. --set model.width=32)
The figures are measured, not asserted: read them.
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
from babysit.ensemble import build_ensembles  # noqa: E402
from babysit.ensemble.members import load_member  # noqa: E402
from babysit.ensemble.predict import accuracy, member_probabilities  # noqa: E402
from babysit.rundir import RunDir, read_jsonl  # noqa: E402
from babysit.train import latest_checkpoint  # noqa: E402

K = 5
BASES = (0, 5, 10)


def one_repetition(base: int, overrides: list[str], root: Path) -> dict:
    config = load_config(overrides=[*overrides, f"seed={base}"])
    run_dir = RunDir(root / f"base{base}")
    experiment.train(config, run_dir, quiet=True)
    rows = {r.kind: r for r in build_ensembles(config, run_dir, k=K, quiet=True,
                                               kinds=("seeds", "checkpoints", "average", "distill"))}
    members_avg_minus_raw, member_accs, member_probs = [], [], []
    x_val = experiment.load_split(config).x_val
    for seed in range(base, base + K):
        folder = run_dir / "ensemble" / "seeds" / str(seed)
        last = read_jsonl(folder / "metrics.jsonl")[-1]
        members_avg_minus_raw.append(last["val_acc_avg"] - last["val_acc"])
        member_accs.append(last["val_acc"])
        member = load_member(latest_checkpoint(folder / "checkpoints"), f"seed {seed}", config)
        member_probs.append(member_probabilities(member.model, x_val))
    seeds, distilled = rows["seeds"], rows["distill"]
    # The student's twin: the same seed and config trained on the hard labels alone.
    twin = load_config(overrides=[*overrides, f"seed={base + K}", "train.checkpoints=false"])
    _, twin_state = experiment.train(twin, None, quiet=True)
    return {
        "ensemble_acc": seeds.val_acc, "best_member_acc": seeds.best_member_acc, "gain": seeds.gain,
        "gain_over_mean_member": seeds.val_acc - statistics.mean(member_accs),
        "checkpoints_gain": rows["checkpoints"].gain,
        "average_gain": rows["average"].gain,
        "average_gain_members": statistics.mean(members_avg_minus_raw),
        "student_acc": distilled.val_acc, "student_gain": distilled.gain,
        "student_over_twin": distilled.val_acc - twin_state.history[-1]["val_acc"],
        "kept": (distilled.gain / seeds.gain) if seeds.gain > 0 else float("nan"),
        "time_ratio": seeds.time_ratio, "memory_ratio": seeds.memory_ratio,
        "member_probs": member_probs,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    # One intra-op thread: on a shared machine two threads spin-wait on each other and a
    # 0.2 ms forward pass can take 100 ms, which would drown the cost ratios in noise.
    torch.set_num_threads(1)
    config = load_config(overrides=args.overrides)
    print(f"experiment: {config['data']['dataset']}, {config['model']['name']} depth "
          f"{config['model']['depth']} width {config['model']['width']}, {config['optim']['name']} "
          f"lr {config['optim']['lr']}, {config['train']['epochs']} epochs; K={K}; "
          f"ema_decay {config['ensemble']['ema_decay']}, T={config['ensemble']['temperature']}, "
          f"alpha={config['ensemble']['alpha']}; overrides {args.overrides or 'none'}")
    results = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for base in BASES:
            r = one_repetition(base, args.overrides, Path(tmp))
            results.append(r)
            share = f"keeps {r['kept']:.0%}" if r["kept"] == r["kept"] else "no gain to keep"
            print(f"base seed {base:>2}: ensemble {r['ensemble_acc']:.4f} vs best member "
                  f"{r['best_member_acc']:.4f} ({100 * r['gain']:+.2f} pt; over the mean member "
                  f"{100 * r['gain_over_mean_member']:+.2f} pt) | checkpoints "
                  f"{100 * r['checkpoints_gain']:+.2f} pt | average-raw {100 * r['average_gain']:+.2f} pt "
                  f"(5 members: {100 * r['average_gain_members']:+.2f} pt) | student "
                  f"{r['student_acc']:.4f}, {share}, over its hard-label twin "
                  f"{100 * r['student_over_twin']:+.2f} pt | cost x{r['time_ratio']:.1f} time, "
                  f"x{r['memory_ratio']:.1f} memory", flush=True)
    probs = [p for r in results for p in r.pop("member_probs")]
    kept = [r.pop("kept") for r in results]
    med = {key: statistics.median(r[key] for r in results) for key in results[0]}
    # A repetition whose ensemble did not gain (NaN) has no share: it sorts below every share,
    # so the median is a share only when most repetitions gained.
    ordered = sorted(kept, key=lambda k: (k == k, k if k == k else 0.0))
    med["kept"] = ordered[len(ordered) // 2]
    has_share = med["kept"] == med["kept"]
    print(f"median over {len(BASES)} base seeds ({time.perf_counter() - started:.0f}s):")
    checks = [
        ("5-member ensemble gain over its best member", f"{100 * med['gain']:+.2f} pt", ">= +1.00 pt",
         med["gain"] >= 0.01 - 1e-9),
        ("parameter average minus raw weights (the run)", f"{100 * med['average_gain']:+.2f} pt", ">= 0",
         med["average_gain"] >= 0),
        ("parameter average minus raw (mean of 5 members)", f"{100 * med['average_gain_members']:+.2f} pt",
         ">= 0", med["average_gain_members"] >= 0),
        ("distilled student's share of the ensemble gain",
         f"{med['kept']:.0%}" if has_share else "no gain", ">= 50%", has_share and med["kept"] >= 0.5),
    ]
    for name, value, target, ok in checks:
        print(f"  {name:<50} {value:>10}   target {target:<11} {'met' if ok else 'MISSED'}")
    ratio = f"{med['student_gain'] / med['gain']:.0%}" if med["gain"] > 0 else "n/a: no median gain"
    print(f"  {'student gain over the best member':<50} {100 * med['student_gain']:+.2f} pt   "
          f"(median; the ratio of medians is {ratio})")
    print(f"  {'student over its twin trained on hard labels':<50} "
          f"{100 * med['student_over_twin']:+.2f} pt   (same seed and config; for reference)")
    print(f"  {'5-member ensemble gain over its mean member':<50} "
          f"{100 * med['gain_over_mean_member']:+.2f} pt   (for reference)")
    print(f"  {'ensemble evaluation cost over one member':<50} x{med['time_ratio']:.1f} time, "
          f"x{med['memory_ratio']:.1f} memory")
    print(f"  {'student share per repetition':<50} "
          f"{', '.join(f'{k:.0%}' if k == k else 'no gain' for k in kept)}"
          + ("   (no gain: the ensemble did not beat its best member, there was nothing to keep)"
             if any(k != k for k in kept) else ""))
    y_val = experiment.load_split(config).y_val
    wrong = torch.stack([p.argmax(1) != y_val for p in probs]).float().mean(0)
    pooled = accuracy(sum(probs) / len(probs), y_val)
    accs = [accuracy(p, y_val) for p in probs]
    print(f"all {len(probs)} seed members pooled (the ceiling of averaging more seeds): ensemble "
          f"{pooled:.4f}; members {min(accs):.4f}..{max(accs):.4f}, mean {statistics.mean(accs):.4f}, "
          f"median best of {K} {med['best_member_acc']:.4f}")
    print(f"  validation examples missed by at least half of the {len(probs)} members: "
          f"{int((wrong >= 0.5).sum())} of {len(y_val)} ({int((wrong == 1).sum())} by all of them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
