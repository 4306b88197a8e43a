"""The ``babysit`` command: thin — it parses, calls the library, prints.

Each verb lives in ``babysit.commands.<verb>``. A :class:`~babysit.errors.UserError` ends the
command with one line on stderr and exit code 2; Ctrl-C with exit code 130.
"""

from __future__ import annotations

import argparse
import importlib
import sys

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
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"babysit: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("babysit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
