"""``babysit search``: hyperparameter search, coarse to fine, on local worker processes."""

from __future__ import annotations

import argparse
import contextlib

from ..config import default_config, set_key
from ..errors import UserError
from .common import (add_experiment_args, add_run_dir_args, add_trust_arg, check_workers, config_from_args,
                     discarded_on_user_error, resumed_config, run_dir_from_args)

QUICK_STAGES = [{"trials": 8, "epochs": 1}, {"trials": 4, "epochs": 3}, {"trials": 2, "epochs": 6}]

EXAMPLES = """\
examples:
  babysit search                          the default experiment and its default space
  babysit search exp.toml --workers 4     four worker processes
  babysit search --quick                  a small 3-stage search (8x1, 4x3, 2x6 epochs)
  babysit search --sampler tpe            Bayesian optimization instead of random search
  babysit search --resume runs/default    continue an interrupted search
  babysit search exp.toml --storage postgresql://postgres@db:5432/test --study exp1
      and on other machines:  babysit worker exp.toml --storage postgresql://... --study exp1
  babysit search space.toml --objective mytrain:objective
      your own function objective(params, epochs, run_dir, report) (module on PYTHONPATH);
      [search.space] then names its params; resume with --resume RUN_DIR --objective mytrain:objective

the space, in the config (keys are config keys; lr and reg are log-uniform by default):
  [search.space]
  lr = {low = 1e-6, high = 1, log = true}
  dropout = {low = 0, high = 0.6}
  depth = {low = 1, high = 4}
  optim = {choices = ["nesterov", "adam"]}

  [search]
  stages = [{trials = 24, epochs = 1}, {trials = 10, epochs = 5}, {trials = 3, epochs = 0}]

writes into the run directory: search/stages.json, leaderboard.json/.txt, alarms.json,
plots/*.png, study.journal, and trials/<id>/ (epoch_003_val_0.8731.pt, metrics.jsonl, config.toml).
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "search", help="search hyperparameters: random, coarse to fine, on N worker processes",
        description="Search the hyperparameters declared in [search.space] as the notes advise: "
                    "random search on log scales, in stages from wide ranges and one epoch to "
                    "narrow ranges and full training, with worker processes that checkpoint every "
                    "epoch, pruning of diverging and lagging trials, and an alarm when the best "
                    "value sits at the border of its range.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_experiment_args(parser)
    add_run_dir_args(parser)
    parser.add_argument("--workers", type=int, metavar="N",
                        help="local worker processes (default: search.workers, or one per CPU core)")
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="continue the interrupted search in RUN_DIR")
    parser.add_argument("--storage", metavar="URL",
                        help="study storage: postgresql://user@host:port/db for workers on several "
                             "machines (default: a journal file in RUN_DIR/search)")
    parser.add_argument("--study", metavar="NAME", help="study name (default: the experiment's name)")
    parser.add_argument("--sampler", choices=["random", "tpe", "gp", "grid"],
                        help="random (default), tpe or gp (Bayesian), grid (for comparison)")
    parser.add_argument("--objective", metavar="MODULE:FUNCTION",
                        help="search your own training function objective(params, epochs, run_dir, report) "
                             "instead of the config's experiment; [search.space] names its params")
    parser.add_argument("--quick", action="store_true",
                        help="a small search to try things out: stages 8x1, 4x3, 2x6 epochs")
    add_trust_arg(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..search import run_search
    from ..search.objective import Objective
    from ..search.results import leaderboard_table

    check_workers(args.workers)
    if args.objective:
        Objective.load(args.objective)  # importable here, or one line now (not in every worker)
    if args.resume:
        run_dir, config = resumed_config(args.resume, args.overrides, "search", trust=args.trust_run_dir)
    else:
        config = config_from_args(args)
        if args.quick:
            config["search"]["stages"] = [dict(s) for s in QUICK_STAGES]
        # Kept in the run's config.toml, so that --resume finds the same study.
        for key, value in (("search.sampler", args.sampler), ("search.study", args.study),
                           ("search.storage", args.storage)):
            if value:
                set_key(config, key, value)
        if args.objective and config["search"]["space"] == default_config()["search"]["space"]:
            raise UserError("--objective needs a CONFIG whose [search.space] names your objective's "
                            "parameters, e.g. lr = {low = 1e-6, high = 1, log = true}")
        run_dir = run_dir_from_args(args, config, search=True, objective=bool(args.objective))
    with contextlib.nullcontext() if args.resume else discarded_on_user_error(run_dir):
        result = run_search(config, run_dir, workers=args.workers, resume=bool(args.resume),
                            quiet=args.quiet, storage=args.storage, objective=args.objective)
    print(leaderboard_table(result.leaderboard, limit=10), end="")
    if result.best_value is not None:
        from ..search.results import best_accuracy  # with its n and interval

        print(f"best val acc {best_accuracy(result.leaderboard, result.best_value)} with "
              + ", ".join(f"{k}={v}" for k, v in result.best_params.items()))
    for alarm in result.alarms:
        print(f"border alarm (stage {alarm['stage']}): {alarm['message']}")
    print(f"run directory: {run_dir.path}  (search/leaderboard.txt, search/plots/)")
    return 0
