"""The ``babysit`` command: thin — it parses, calls the library, prints.

Each verb lives in ``babysit.commands.<verb>``. A :class:`~babysit.errors.UserError` ends the
command with one line on stderr and exit code 2; Ctrl-C with exit code 130, and so does a
SIGTERM to a verb that trains in this process (``kill PID``, a cluster's scheduler): it
unwinds like Ctrl-C, so the monitor's records and the run log reach the disk first.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading

from . import __version__
from .errors import UserError

VERBS = [
    "config",
    "train",
    "run",
    "report",
    "optimizers",
    "plots",
    "ensemble",
    "preflight",
    "gradcheck",
    "search",
    "worker",
]


# Verbs that train in this process. Search workers are left to die by SIGTERM: their master
# retries a killed trial from its last checkpoint, which an unwound trial (FAIL) would not get.
TERMINATE_AS_INTERRUPT = ("train", "run", "ensemble", "preflight", "gradcheck")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the fix (like every other bad input),
    not the usage block followed by the error."""

    def error(self, message: str):
        self.exit(2, f"babysit: error: {message}: see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="babysit",
        description="Make training neural networks go right: the practice of the course notes "
                    "'Neural Networks Part 3: Learning and Evaluation' as a tool.",
        epilog="Run 'babysit VERB --help' for what a verb does and its options.")
    parser.add_argument("--version", action="version", version=f"babysit {__version__}")
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB", title="verbs")
    for verb in VERBS:
        importlib.import_module(f"babysit.commands.{verb}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded by verbs that log their command
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with sigterm_as_interrupt(args.verb in TERMINATE_AS_INTERRUPT):
            return int(args.func(args) or 0)
    except UserError as exc:
        print(f"babysit: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("babysit: interrupted", file=sys.stderr)
        return 130


@contextlib.contextmanager
def sigterm_as_interrupt(wanted: bool):
    """While the verb runs, SIGTERM raises KeyboardInterrupt (restored afterwards). Only the
    main thread may set a handler; elsewhere (babysit called from a thread) nothing changes."""
    if not wanted or threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
