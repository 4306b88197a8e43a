"""Arguments shared by the verbs that work on an experiment config."""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path
from typing import Iterator

from ..config import load_config
from ..errors import UserError
from ..plugins import TRUST_FLAG, refuse_code_from
from ..rundir import RESUMABLE, RunDir


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


def run_dir_from_args(args: argparse.Namespace, config: dict, *, search: bool = False,
                      objective: bool = False) -> RunDir:
    """The run directory to write, made only once the config has proved valid."""
    from ..experiment import validate

    validate(config, search=search, objective=objective)
    if not getattr(args, "run_dir", None):
        return RunDir.create("runs", config["name"])
    if args.verb in RESUMABLE:  # a second training into the same folder would mix two runs
        return RunDir.fresh(args.run_dir, args.verb)
    writable_folder(args.run_dir, "--run-dir")  # a report added to an existing run is fine
    return RunDir.fresh(args.run_dir, args.verb) if not Path(args.run_dir).exists() else RunDir(args.run_dir)


def add_trust_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(TRUST_FLAG, dest="trust_run_dir", action="store_true",
                        help="let the run directory's config.toml name your own code "
                             "(package.module:function); only for a run directory you wrote yourself")


def run_dir_config(run_dir: RunDir, overrides: list[str], trust: bool, *, fix: str | None = None) -> dict:
    """The config in ``run_dir/config.toml`` plus `overrides`, refused when it names code to
    import unless the user vouched for the run directory (see :func:`refuse_code_from`)."""
    config = load_config(run_dir / "config.toml", overrides)
    if trust:
        return config
    given = load_config(overrides=overrides)  # what the command line names is the user's own
    return refuse_code_from(config, str(run_dir / "config.toml"), trusted=given,
                            **({"fix": fix} if fix else {}))


def resumed_config(folder: str, overrides: list[str], verb: str, *,
                   trust: bool = False) -> tuple[RunDir, dict]:
    """The run directory to resume and its config (from its config.toml, plus `overrides`)."""
    run_dir = RunDir(folder)
    if not (run_dir / "config.toml").is_file():
        raise UserError(f"{run_dir.path} holds no run (no config.toml): give a folder "
                        f"that babysit {verb} wrote")
    return run_dir, run_dir_config(run_dir, overrides, trust)


def writable_file(path: str | os.PathLike, flag: str) -> Path:
    """`path` as a file babysit may write (nothing is made yet), else one line naming the fix."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{flag} {path} is a folder: give a file name inside it")
    _writable_above(path, flag)
    return path


def writable_folder(path: str | os.PathLike, flag: str) -> Path:
    """`path` as a folder babysit may write into (made later, when there is something to write)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path} is a file: give a folder")
    _writable_above(path / "x", flag)
    return path


def _writable_above(path: Path, flag: str) -> None:
    """The nearest existing folder above `path` must be a folder we may write into."""
    above = path.parent
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        raise UserError(f"{flag} {path.parent} cannot be made: {above} is a file; give another path")
    if not os.access(above, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {path.parent}: {above} is not writable for you; give a folder you can write to")


@contextlib.contextmanager
def discarded_on_user_error(run_dir: RunDir) -> Iterator[RunDir]:
    """Bad input found only once the run directory exists (an unreachable database, a broken
    user loss) leaves no half-made run behind: what this command made and never used goes."""
    try:
        yield run_dir
    except UserError:
        run_dir.discard_unless_used()
        raise
