"""Stage outputs in the documented run-directory formats, for stages this branch may lack.

The report reads files, not modules. Where a stage's module is installed, the tests use what
it really wrote (``babysit run`` ran it); where it is not, these writers fill in its files in the
format the run-directory conventions document, so every section of the page is exercised.
Each writer leaves existing files alone.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from babysit.rundir import RunDir  # noqa: E402


def _plot(rd: RunDir, rel: str, title: str, draw) -> None:
    if (rd / rel).exists():
        return
    fig, ax = plt.subplots(figsize=(4, 3))
    draw(ax)
    ax.set_title(title)
    rd.savefig(fig, rel)
    plt.close(fig)


def _json(rd: RunDir, rel: str, obj) -> None:
    if not (rd / rel).exists():
        rd.write_json(rel, obj)


def fill_missing_stages(path: Path) -> list[str]:
    """Write the documented files of every stage whose files are absent; returns what was written."""
    rd = RunDir(path)
    before = {p for p in path.rglob("*") if p.is_file()}
    _json(rd, "gradcheck/report.json", {
        "passed": True, "summary": "40 coordinates of 4 tensors: 38 happy, 2 crossed a kink; passed",
        "rows": [{"name": n, "index": [i], "analytic": a, "numeric": a * (1 + r), "rel_error": r,
                  "kink": k, "verdict": v}
                 for n, i, a, r, k, v in [("net.0.weight", 3, 0.0123, 2e-9, False, "happy"),
                                          ("net.0.bias", 1, -0.0044, 3e-9, False, "happy"),
                                          ("net.2.weight", 7, 0.0871, 4e-6, True, "kink"),
                                          ("net.2.bias", 0, 0.0312, 1e-9, False, "happy")]],
        "sweep": [{"h": h, "max_rel_error": e} for h, e in [(1e-3, 2e-6), (1e-5, 3e-9), (1e-7, 5e-8)]],
        "warnings": []})
    _json(rd, "preflight/report.json", {"passed": True, "checks": {
        "initial_loss": {"passed": True, "message": "2.31 at init against 2.303 at chance", "loss": 2.31,
                         "chance": 2.303},
        "reg_increases_loss": {"passed": True, "message": "the loss rises with reg", "losses": [2.3, 2.5, 4.1]},
        "overfit_tiny": {"passed": True, "message": "20 examples fitted in 120 steps", "steps": 120}}})
    _json(rd, "search/leaderboard.json", [
        {"rank": 1, "trial": "s2-007", "stage": 2, "params": {"optim.lr": 0.043, "loss.reg": 2e-6},
         "val_acc": 0.972, "epochs": 5, "state": "complete"},
        {"rank": 2, "trial": "s1-003", "stage": 1, "params": {"optim.lr": 0.11, "loss.reg": 1e-4},
         "val_acc": 0.951, "epochs": 1, "state": "complete"}])
    _json(rd, "search/alarms.json", [
        {"stage": 1, "key": "loss.reg", "edge": "low", "best": 2e-6,
         "message": "loss.reg: the best trial (2e-06) is at the lower edge of [1e-06, 0.1] "
                    "(3 of the top 5 in the outer 10%, log scale): widen it to [1e-08, 0.1]"}])
    space = {"optim.lr": {"low": 1e-6, "high": 1.0, "log": True, "int": False},
             "optim.name": {"choices": ["nesterov", "adam"]}}
    _json(rd, "search/stages.json", [
        {"index": 1, "status": "done", "spec": {"trials": 24, "epochs": 1, "sampler": "random", "space": space},
         "counts": {"complete": 20, "pruned": 2, "diverged": 2, "failed": 0},
         "best": {"trial": "s1-003", "val_acc": 0.951}}])
    _plot(rd, "search/plots/stage1_lr.png", "val acc against lr",
          lambda ax: (ax.scatter([1e-4, 1e-3, 1e-2, 0.1], [0.3, 0.7, 0.95, 0.9]), ax.set_xscale("log")))
    _json(rd, "watch/diagnoses.json", [
        {"code": "update_ratio_low", "severity": "warning",
         "message": "net.0.weight updates at 2e-5 of its norm (target 1e-3): raise the learning rate",
         "evidence": {"ratio": 2e-5, "target": 1e-3}}])
    _plot(rd, "watch/plots/update_ratios.png", "update:weight ratio",
          lambda ax: (ax.semilogy([1, 2, 3], [1e-3, 8e-4, 9e-4]), ax.axhline(1e-3, ls="--")))
    _plot(rd, "watch/plots/activations.png", "activations", lambda ax: ax.hist([0.1, 0.5, 0.7, 0.2, 0.9]))
    _plot(rd, "watch/plots/first_layer.png", "filters", lambda ax: ax.imshow([[0, 1], [1, 0]]))
    _json(rd, "ensemble/table.json", [
        {"kind": "checkpoints", "members": "epoch_002, epoch_003", "val_acc": 0.962, "best_member_acc": 0.958,
         "gain": 0.004, "eval_seconds": 0.01, "eval_memory_mb": 0.5}])
    after = {p for p in path.rglob("*") if p.is_file()}
    return sorted(str(p.relative_to(path)) for p in after - before)


def plant_test_json(path: Path, n: int = 360) -> dict:
    """A ``test.json`` in the shared contract's format (what branch ``splits`` writes), its
    figures made with babysit.stats from planted hits: the final model right on 331 of n, the
    averaged weights on 3 more (within noise), the checkpoint ensemble on 14 more (a gain)."""
    from babysit.rundir import list_checkpoints
    from babysit.stats import Accuracy, PairedDifference

    final = [i < 331 for i in range(n)]
    average = [i < 334 for i in range(n)]
    ensemble = [i < 345 for i in range(n)]

    def model(hits, **extra):
        acc = Accuracy.of(hits)
        low, high = acc.interval
        return {"acc": acc.value, "n": n, "low": low, "high": high, **extra}

    last = list_checkpoints(Path(path) / "checkpoints")[-1].relative_to(path)
    doc = {"n": n, "source": "held out: data.test_fraction=0.2", "headline": "final",
           "models": {"final": model(final, file=str(last)),
                      "average": model(average, file=str(last), vs="final",
                                       diff=PairedDifference.of(average, final).to_dict()),
                      "ensemble:checkpoints": model(ensemble, file="ensemble/", vs="best member",
                                                    diff=PairedDifference.of(ensemble, final).to_dict())}}
    RunDir(path).write_json("test.json", doc)
    return doc
