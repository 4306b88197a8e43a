"""``babysit worker``: one search worker, joining a study (on this machine or another)."""

from __future__ import annotations

import argparse

from ..config import SEED, above, at_least, load_config, violation, whole
from ..errors import UserError
from .common import writable_folder

EXAMPLES = """\
examples:
  babysit worker exp.toml --storage postgresql://postgres@db:5432/test --study exp1
  babysit worker runs/exp1/config.toml --storage runs/exp1/search/study.journal --study exp1

The master (babysit search) starts local workers itself. Start more on other machines with the
same config, the database URL and the study name the master printed: each follows the search
stage by stage and leaves when it is finished. Trials go to RUN_DIR/trials/<id>/ (put RUN_DIR on
a shared file system to see them all in one place).
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "worker", help="join a running search as one more worker",
        description="Run trials of a babysit search: sample hyperparameters from the study, train, "
                    "checkpoint every epoch, report validation accuracy each epoch (the study may "
                    "prune), until the search's budget is spent.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", metavar="CONFIG", help="the experiment config (TOML) of the search")
    parser.add_argument("--storage", required=True, metavar="URL",
                        help="the study storage: postgresql://... or the path of a study.journal")
    parser.add_argument("--study", required=True, metavar="NAME",
                        help="the search's study name (or one stage's, NAME.stageK)")
    parser.add_argument("--run-dir", metavar="DIR",
                        help="where trials/<id>/ go (default: runs/<study name>)")
    parser.add_argument("--seed", type=int, help="sampler seed (default: random)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--max-trials", type=int, metavar="N", help="leave after N trials")
    parser.add_argument("--poll", type=float, default=1.0, metavar="SECONDS",
                        help="how often to look for the next stage while waiting (default 1)")
    parser.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                        help="wait up to SECONDS for the search to start (a worker started first)")
    parser.add_argument("--objective", metavar="MODULE:FUNCTION",
                        help="the search's own training function (as given to babysit search --objective)")
    parser.add_argument("--master-pid", type=int, help=argparse.SUPPRESS)  # set by babysit search
    parser.add_argument("--start-together", type=int, default=0, help=argparse.SUPPRESS)  # ditto
    parser.add_argument("--quiet", "-q", action="store_true", help="no output but errors")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..search.worker import run_worker, stop_on_sigterm

    check_options(args)
    config = load_config(args.config)
    run_dir = args.run_dir or f"runs/{args.study.split('.stage')[0]}"
    writable_folder(run_dir, "--run-dir")
    stop_on_sigterm()
    done = run_worker(config, args.storage, args.study, run_dir, seed=args.seed,
                      threads=args.threads, max_trials=args.max_trials, poll_s=args.poll,
                      master_pid=args.master_pid, wait_s=args.wait, start_together=args.start_together,
                      on_wait=None if args.quiet else lambda message: print(message, flush=True),
                      objective=args.objective)
    if not args.quiet:
        print(f"worker done: {done} trial(s) in {run_dir}/trials")
    return 0


def check_options(args: argparse.Namespace) -> None:
    """The worker's own numbers, each in its range, before it joins anything."""
    for flag, value, rule in (("--threads", args.threads, whole(1, "torch threads for this worker")),
                              ("--max-trials", args.max_trials, whole(1, "leave after this many trials")),
                              ("--seed", args.seed, SEED),
                              ("--poll", args.poll, above(0, "seconds between looks, e.g. 1")),
                              ("--wait", args.wait, at_least(0, "seconds to wait for the search to start"))):
        if value is not None and not rule.admits(value):
            raise UserError(violation(flag, rule.expected, value, rule.fix))
