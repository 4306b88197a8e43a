"""``babysit gradcheck``: check the experiment's gradients against centered differences."""

from __future__ import annotations

import argparse
import textwrap

from ..config import DEFAULTS, set_key
from .common import add_experiment_args, config_from_args, writable_folder


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "gradcheck", help="compare analytic gradients with numeric ones (before training)",
        description=textwrap.fill("Check the experiment's model, loss and L2 term the way the course notes say: "
                    "centered differences (f(x+h) - f(x-h)) / 2h in float64 on a copy of the model, "
                    "3 datapoints of the training split, ~10 coordinates of EVERY parameter tensor "
                    "(biases too), data loss and regularization checked apart, dropout given the "
                    "same seed in every evaluation, and kinks (relu, max, hinge, pooling) tracked: a "
                    "coordinate whose f(x+h) and f(x-h) took different winners is checked again with a "
                    "smaller step or a one-sided difference that crosses nothing, and judged on that. "
                    "Rows exactly 0 on both sides are counted apart, with why. Prints one row per "
                    "coordinate, grouped per tensor, with the layer each tensor sits in. "
                    "Settings: the [gradcheck] config section.", 92),
        epilog="relative error |a-n| / max(|a|,|n|): <= 1e-7 happy, <= 1e-4 ok with kinks,\n"
               "<= 1e-2 uneasy, above: wrong.\n"
               "a coordinate fails when its error is above 1e-4 and the difference exceeds the\n"
               "round-off of the numeric estimate; one that crossed a kink is judged on its\n"
               "re-check (smaller step, or one-sided on the side that crosses nothing).\n\n"
               "exit codes:\n"
               "  0  passed\n"
               "  1  failed: some gradient disagrees with the numeric one\n"
               "  2  bad input (config, options)\n"
               "  3  inconclusive: some coordinate sits on a kink nothing resolves (exactly on a\n"
               "     tie or a ReLU's zero, closer than round-off allows); no coordinate disagrees,\n"
               "     the reason is printed — try --burn-in or other datapoints\n\n"
               "examples:\n  babysit gradcheck\n  babysit gradcheck exp.toml --sweep\n"
               "  babysit gradcheck --all --burn-in 20 --run-dir runs/default\n"
               "  babysit gradcheck --set loss.name=svm --set model.init_scale=0.01",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_experiment_args(parser)
    parser.add_argument("--run-dir", metavar="DIR",
                        help="also write DIR/gradcheck/report.json and report.txt (and with --sweep "
                             "the relative error against h, plots/h_sweep.png)")
    parser.add_argument("--sweep", action="store_true",
                        help="try h = 1e-3 .. 1e-8, report the error per h and keep the best")
    parser.add_argument("--all", action="store_true", help="check every coordinate of every tensor")
    parser.add_argument("--burn-in", type=int, metavar="STEPS",
                        help="check also after this many training steps, at a characteristic point "
                             f"(default gradcheck.burn_in = {DEFAULTS['gradcheck']['burn_in']}; 0: at initialization only)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..check import gradcheck_experiment

    config = config_from_args(args)
    if args.run_dir:
        writable_folder(args.run_dir, "--run-dir")
    if args.sweep:
        set_key(config, "gradcheck.sweep", True)
    if args.all:
        set_key(config, "gradcheck.coords_per_tensor", 0)
    if args.burn_in is not None:
        set_key(config, "gradcheck.burn_in", args.burn_in)
    report = gradcheck_experiment(config, args.run_dir, quiet=args.quiet)
    print(report)
    if args.run_dir:
        print(f"written: {args.run_dir}/gradcheck/report.json, report.txt")
    return EXIT_CODES[report.outcome]


EXIT_CODES = {"passed": 0, "failed": 1, "inconclusive": 3}  # 2: bad input, as every verb
