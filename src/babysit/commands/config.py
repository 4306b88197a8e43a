"""``babysit config``: print the resolved experiment config (defaults, file, overrides)."""

from __future__ import annotations

import argparse

from ..config import to_toml
from .common import config_from_args


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "config", help="print the resolved config: every key, its value, as TOML",
        description="Print the experiment config as babysit will use it: the built-in defaults, "
                    "then CONFIG, then --set overrides. Save it as a starting point for your own.",
        epilog="examples:\n  babysit config > exp.toml\n  babysit config exp.toml --set lr=0.01",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", metavar="CONFIG", help="experiment config (TOML)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config key (repeatable)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(to_toml(config_from_args(args)), end="")
    return 0
