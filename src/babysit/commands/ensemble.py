"""``babysit ensemble``: build the notes' ensembles from a run directory and print the table."""

from __future__ import annotations

import argparse

from ..config import load_config
from ..errors import UserError
from ..rundir import RunDir
from .common import add_trust_arg, run_dir_config

KIND_CHOICES = ("seeds", "top", "checkpoints", "average", "distill")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "ensemble", help="ensembles of a run: seeds, top trials, checkpoints, average, distillation",
        description=(
            "Build the notes' model ensembles from RUN_DIR and compare each with its best single\n"
            "member. Predictions average the members' class probabilities.\n\n"
            "kinds:\n"
            "  seeds        K copies of the config trained from seeds seed..seed+K-1\n"
            "               (into RUN_DIR/ensemble/seeds/<seed>/; reused when already trained)\n"
            "  top          the K best trials of a search in RUN_DIR/trials/ (no retraining)\n"
            "  checkpoints  the last K per-epoch checkpoints in RUN_DIR/checkpoints/\n"
            "  average      the running average of the parameters kept during training\n"
            "               (ensemble.ema_decay) against the raw weights of the last checkpoint\n"
            "  distill      one student trained on an ensemble's soft targets at temperature T\n"
            "               (ensemble.temperature, ensemble.alpha), at the cost of one model\n\n"
            "The table (validation accuracy, gain over the best member, evaluation time and peak\n"
            "memory, and both against one model) is printed and written to\n"
            "RUN_DIR/ensemble/table.json and table.txt, with a plot in RUN_DIR/ensemble/plots/."),
        epilog="examples:\n"
               "  babysit ensemble runs/default                    every kind whose input exists\n"
               "  babysit ensemble runs/default --kind checkpoints --kind average\n"
               "  babysit ensemble runs/search --kind top -k 3     the 3 best trials of a search\n"
               "  babysit ensemble runs/default --kind distill --set temperature=3\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by babysit train or search")
    parser.add_argument("--kind", action="append", choices=KIND_CHOICES, metavar="KIND",
                        help="which ensemble to build (repeatable): seeds | top | checkpoints | "
                             "average | distill (default: every kind whose input RUN_DIR has)")
    parser.add_argument("-k", type=int, default=None, metavar="K",
                        help="members per ensemble (default: ensemble.k of the config, 5)")
    parser.add_argument("--config", metavar="CONFIG",
                        help="the configuration to train seed copies and students from "
                             "(default: RUN_DIR/config.toml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set ensemble.temperature=3 (repeatable)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    add_trust_arg(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..ensemble import KINDS, build_ensembles

    run_dir = RunDir(args.run_dir)
    if not run_dir.path.is_dir():
        raise UserError(f"run directory {run_dir.path} does not exist: give a folder that "
                        "babysit train or babysit search wrote")
    if args.config is not None:
        config = load_config(args.config, args.overrides)
    elif run_dir.path.joinpath("config.toml").is_file():
        config = run_dir_config(run_dir, args.overrides, args.trust_run_dir,
                                fix="pass the config you trust with --config, or add --trust-run-dir "
                                    "if you wrote this run directory yourself")
    else:
        raise UserError(f"{run_dir.path} has no config.toml: pass the experiment with --config CONFIG")
    k = args.k if args.k is not None else config["ensemble"]["k"]
    kinds = args.kind or KINDS
    rows = build_ensembles(config, run_dir, k=k, kinds=kinds, quiet=args.quiet)
    if args.quiet:
        from ..ensemble import format_table
        print(format_table(rows), end="")
    print(f"table written to {run_dir / 'ensemble' / 'table.txt'}")
    from ..evaluation import read, summary_lines

    built = {"average" if r.kind == "average" else f"ensemble:{r.kind}" for r in rows}
    for line in summary_lines(read(run_dir), names=sorted(built | {"final"})):
        print(line)
    return 0
