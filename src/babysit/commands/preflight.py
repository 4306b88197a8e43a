"""``babysit preflight``: the sanity checks before learning, as a table with the fix for each failure."""

from __future__ import annotations

import argparse

from ..sanity import CHECKS
from .common import add_experiment_args, add_run_dir_args, config_from_args, run_dir_from_args, writable_folder


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "preflight", help="sanity checks before training: loss at chance, overfit a tiny set, ...",
        description="Run the sanity checks the notes ask for before an expensive training,\n"
                    "on the experiment in CONFIG (or the built-in default):\n\n"
                    "  initial_loss        loss at initialization (reg 0) is the loss at chance:\n"
                    "                      softmax -ln(1/C), SVM C-1; far above = weights too large\n"
                    "  reg_increases_loss  raising the regularization strength raises the loss\n"
                    "  deterministic       with dropout, the same seed gives the same loss and gradient\n"
                    "  gradcheck           analytic vs centered numerical gradient on 3 datapoints\n"
                    "  overfit_tiny        reg 0: memorize 20 examples (near-zero loss, 100% accuracy)\n"
                    "  input_dependence    trained on real inputs it clearly beats zeroed inputs\n\n"
                    "Prints a table with what to do for each failure, writes preflight/report.json\n"
                    "and report.txt into the run directory, and exits 1 when a check fails.",
        epilog="examples:\n  babysit preflight\n  babysit preflight exp.toml --run-dir runs/exp\n"
               "  babysit preflight --set model.init_scale=10      # see initial_loss fail\n"
               "  babysit preflight --set preflight.skip='[\"gradcheck\"]'\n\n"
               "settings: the [preflight] config section (tolerances, tiny-set size, step bounds);\n"
               "the gradcheck check follows the [gradcheck] section, like 'babysit gradcheck'.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_experiment_args(parser)
    add_run_dir_args(parser)
    parser.add_argument("--skip", action="append", default=[], choices=list(CHECKS), metavar="CHECK",
                        help="do not run this check (repeatable): " + ", ".join(CHECKS))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..sanity import preflight_experiment, save_report

    config = config_from_args(args)
    if args.run_dir:
        writable_folder(args.run_dir, "--run-dir")
    if args.skip:
        config["preflight"]["skip"] = sorted(set(_as_list(config["preflight"]["skip"]) + args.skip))
    # The run directory is made only once there is a report: bad input leaves no empty folder.
    report = preflight_experiment(config, quiet=args.quiet)
    run_dir = run_dir_from_args(args, config)
    path = save_report(report, run_dir, config)
    print(report)
    print(f"written: {path}")
    return 0 if report.passed else 1


def _as_list(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)
