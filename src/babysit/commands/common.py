"""Arguments shared by the verbs that work on an experiment config."""

from __future__ import annotations

import argparse

from ..config import load_config
from ..errors import UserError
from ..rundir import RunDir


def add_experiment_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", metavar="CONFIG",
                        help="experiment config (TOML); without one, the built-in default "
                             "(digits, 2-layer ReLU MLP, softmax)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config key, e.g. --set optim.lr=0.01 or --set lr=0.01 "
                             "(repeatable; a bare name works when it is unambiguous)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")


def add_run_dir_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", metavar="DIR",
                        help="write into DIR (default: runs/<name>, or runs/<name>-N when taken)")


def config_from_args(args: argparse.Namespace) -> dict:
    return load_config(args.config, args.overrides)


def check_workers(workers: int | None) -> None:
    """``--workers``, when given, must be >= 1: refused before anything is made."""
    if workers is not None and workers < 1:
        raise UserError(f"--workers takes a number >= 1, not {workers}")


def run_dir_from_args(args: argparse.Namespace, config: dict, *, search: bool = False) -> RunDir:
    """The run directory to write, made only once the config has proved valid."""
    from ..experiment import validate

    validate(config, search=search)
    if getattr(args, "run_dir", None):
        return RunDir.fresh(args.run_dir, args.verb)
    return RunDir.create("runs", config["name"])


def resumed_config(folder: str, overrides: list[str], verb: str) -> tuple[RunDir, dict]:
    """The run directory to resume and its config (from its config.toml, plus `overrides`)."""
    run_dir = RunDir(folder)
    if not (run_dir / "config.toml").is_file():
        raise UserError(f"{run_dir.path} holds no run (no config.toml): give a folder "
                        f"that babysit {verb} wrote")
    return run_dir, load_config(run_dir / "config.toml", overrides)
