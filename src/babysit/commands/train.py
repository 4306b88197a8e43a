"""``babysit train``: train one experiment into a run directory."""

from __future__ import annotations

import argparse
import contextlib

from .. import evaluation, experiment
from ..stats import Accuracy
from ..train import latest_checkpoint
from .common import (add_experiment_args, add_run_dir_args, add_trust_arg, config_from_args,
                     discarded_on_user_error, resumed_config, run_dir_from_args)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train an experiment (the built-in default without a config)",
        description="Train the experiment in CONFIG (or the built-in default: an MLP on "
                    "scikit-learn's handwritten digits) and write its run directory: config.toml, "
                    "metrics.jsonl and one checkpoint per epoch named with its validation accuracy.",
        epilog="examples:\n  babysit train\n  babysit train exp.toml --set optim.lr=0.01 --set epochs=20\n"
               "  babysit train --resume runs/default",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_experiment_args(parser)
    add_run_dir_args(parser)
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="continue an interrupted run from its latest checkpoint")
    add_trust_arg(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.resume:
        run_dir, config = resumed_config(args.resume, args.overrides, "train", trust=args.trust_run_dir)
    else:
        config = config_from_args(args)
        run_dir = run_dir_from_args(args, config)
    print(f"run directory: {run_dir.path}", flush=True)
    with contextlib.nullcontext() if args.resume else discarded_on_user_error(run_dir):
        exp, state = experiment.train(config, run_dir, quiet=args.quiet, resume=bool(args.resume))
    print(exp.data.summary())
    report = None
    if state.history:
        n_val = len(exp.data.y_val)
        best = max(state.history, key=lambda r: r["val_acc"])
        print(f"best val acc {val_accuracy(best['val_acc'], n_val)} at epoch {best['epoch']}; "
              f"final {val_accuracy(state.history[-1]['val_acc'], n_val)}")
    trained = bool(state.history) or (args.resume and latest_checkpoint(run_dir / "checkpoints"))
    if trained:  # (a resumed run that had finished: its last checkpoint's weights)
        # The test split, read once, now that training has chosen nothing more.
        checkpoint = latest_checkpoint(run_dir / "checkpoints") if config["train"]["checkpoints"] else None
        report = evaluation.evaluate_training(config, run_dir, exp.model,
                                              state.checkpoint_extra.get("average"), checkpoint,
                                              data=exp.data)
    if state.stop_reason:
        print(f"training stopped early: {state.stop_reason}")
    diagnoses = run_dir.read_json("watch/diagnoses.json")
    if diagnoses is not None:  # the monitor watched this run ([watch] enabled)
        for d in diagnoses:
            print(f"{d['severity']:>7}  {d['code']}: {d['message']}")
        print(f"monitor: {len(diagnoses) or 'no'} problem{'s' * (len(diagnoses) != 1)} found; "
              f"plots: babysit plots {run_dir.path}")
    if trained:
        for line in evaluation.summary_lines(report):
            print(line)
    print(f"run directory: {run_dir.path}")
    return 1 if state.stop_reason and "loss" in state.stop_reason else 0


def val_accuracy(acc: float, n: int) -> str:
    """A validation accuracy as the user reads it: with its n and 95% Wilson interval."""
    return str(Accuracy.from_rate(acc, n))
