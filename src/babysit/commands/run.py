"""``babysit run``: the whole workflow of the notes, from gradient check to report."""

from __future__ import annotations

import argparse
import textwrap
import sys

from .common import add_experiment_args, check_workers, config_from_args


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="the whole workflow: gradcheck, preflight, search, training, ensembles, report",
        description=textwrap.fill(
            "Walk the notes' whole workflow on CONFIG (or the built-in default) into one "
            "run directory: gradient check -> sanity checks -> coarse-to-fine "
            "hyperparameter search with local workers -> final training of the best "
            "configuration with the monitor and the parameter average -> ensembles -> "
            "report.html. Each stage prints a one-line verdict and is recorded in "
            "run.json. A failed gradient check or sanity check stops the run with the "
            "reason (exit code 1), unless --force."),
        epilog="examples:\n  babysit run                         # the default, about 5 minutes on 2 cores\n"
               "  babysit run --quick                 # a smaller search and ensembles, about 1 minute\n"
               "  babysit run exp.toml --run-dir runs/exp1\n"
               "  babysit run --skip search           # train CONFIG as given, monitored, with ensembles\n"
               "  babysit report runs/default --serve # watch it in a browser while it runs",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_experiment_args(parser)
    parser.add_argument("--run-dir", metavar="DIR",
                        help="a new or empty folder to write into (default: runs/<name>, or "
                             "runs/<name>-N when taken)")
    parser.add_argument("--quick", action="store_true",
                        help="shrink the search, the training and the ensembles to about a minute")
    parser.add_argument("--force", action="store_true",
                        help="go on after a failed gradient check or sanity check")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="search worker processes (default: search.workers, 0 = one per core)")
    parser.add_argument("--skip", action="append", default=[], metavar="STAGE",
                        help="leave out a stage: gradcheck, preflight, search, train or ensemble "
                             "(repeatable, or comma-separated); without a search the final "
                             "training uses CONFIG as given")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..experiment import validate
    from ..workflow import run_workflow

    check_workers(args.workers)
    config = config_from_args(args)
    skip = [s.strip() for item in args.skip for s in item.split(",") if s.strip()]
    validate(config, search="search" not in skip)  # bad input: one line, no run directory
    code, run_dir = run_workflow(config, args.run_dir, quick=args.quick, force=args.force,
                                 quiet=args.quiet, workers=args.workers,
                                 skip=skip,
                                 argv=["babysit", *getattr(args, "argv", sys.argv[1:])],
                                 echo=lambda line: print(line, flush=True))
    print(f"run directory: {run_dir.path}\nreport: {run_dir.path / 'report.html'}"
          f"  (babysit report {run_dir.path} --serve to watch it live)")
    print_verdict(run_dir.path)
    return code


def print_verdict(path) -> None:
    """The run's verdict, the same the report opens with, as the last lines of the output."""
    from ..report import RunFiles
    from ..report.verdict import compute_verdict

    print("\n".join(compute_verdict(RunFiles.open(path)).lines()), flush=True)
