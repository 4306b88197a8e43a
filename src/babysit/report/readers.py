"""Reading a run directory for the report: only the files the stages are known to write.

Every reader is forgiving in one way and strict in another. A file that is absent is *missing*
(an interrupted or partial run is normal: the report shows what exists and names what is not
there). A file that exists but cannot be parsed is an *error* the report shows as such, instead
of failing the whole page. Nothing here writes to the run directory.

The files, by stage (see the run directory conventions in ``babysit.rundir``)::

    run.json                     the workflow: stages, verdicts, seed, versions, device
    config.toml, metrics.jsonl   the (final) training
    checkpoints/epoch_*_val_*.pt
    gradcheck/report.json        preflight/report.json
    search/leaderboard.json      search/alarms.json     search/stages.json
    watch/diagnoses.json         ensemble/table.json
    <stage>/plots/*.png
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..rundir import list_checkpoints, read_jsonl

# Files and folders whose presence makes a folder a run directory.
RUN_MARKERS = ("run.json", "config.toml", "metrics.jsonl", "gradcheck", "preflight", "search",
               "watch", "ensemble", "checkpoints")

PLOT_STAGES = ("gradcheck", "preflight", "search", "watch", "ensemble")


@dataclass
class Read:
    """What one reader found: the parsed `data` (None when absent or unreadable)."""

    rel: str
    data: Any = None
    missing: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.missing and self.error is None


@dataclass
class RunFiles:
    """A run directory, read for the report."""

    path: Path
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, path: str | os.PathLike) -> "RunFiles":
        """The run directory at `path`, or a UserError when there is none there."""
        path = Path(path)
        if not path.exists():
            raise UserError(f"run directory {path} does not exist: give a folder that "
                            "'babysit run' or 'babysit train' wrote (e.g. runs/default)")
        if not path.is_dir():
            raise UserError(f"{path} is a file, not a run directory: give the folder that holds "
                            "run.json or config.toml")
        if not any((path / marker).exists() for marker in RUN_MARKERS):
            raise UserError(f"{path} holds no run (no run.json, config.toml or stage folders): "
                            "give a folder that 'babysit run' or 'babysit train' wrote")
        return cls(path)

    # -- plain files ---------------------------------------------------------------------

    def json(self, rel: str) -> Read:
        p = self.path / rel
        if not p.is_file():
            return Read(rel, missing=True)
        try:
            return Read(rel, json.loads(p.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            return Read(rel, error=f"{rel} cannot be read ({type(exc).__name__}: {exc})")

    def jsonl(self, rel: str) -> Read:
        p = self.path / rel
        if not p.is_file():
            return Read(rel, missing=True)
        try:
            return Read(rel, read_jsonl(p))
        except (OSError, UnicodeDecodeError) as exc:
            return Read(rel, error=f"{rel} cannot be read ({type(exc).__name__}: {exc})")

    def text(self, rel: str) -> Read:
        p = self.path / rel
        if not p.is_file():
            return Read(rel, missing=True)
        try:
            return Read(rel, p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            return Read(rel, error=f"{rel} cannot be read ({type(exc).__name__}: {exc})")

    # -- what the stages wrote -----------------------------------------------------------

    def run_info(self) -> Read:
        return self.json("run.json")

    def config_text(self) -> Read:
        return self.text("config.toml")

    def config(self) -> Read:
        read = self.config_text()
        if not read.ok:
            return read
        try:
            return Read(read.rel, tomllib.loads(read.data))
        except tomllib.TOMLDecodeError as exc:
            return Read(read.rel, error=f"config.toml is not valid TOML ({exc})")

    def metrics(self) -> Read:
        return self.jsonl("metrics.jsonl")

    def gradcheck(self) -> Read:
        return self.json("gradcheck/report.json")

    def preflight(self) -> Read:
        return self.json("preflight/report.json")

    def search_leaderboard(self) -> Read:
        return self.json("search/leaderboard.json")

    def search_alarms(self) -> Read:
        return self.json("search/alarms.json")

    def search_stages(self) -> Read:
        return self.json("search/stages.json")

    def diagnoses(self) -> Read:
        return self.json("watch/diagnoses.json")

    def ensemble_table(self) -> Read:
        return self.json("ensemble/table.json")

    def plots(self, stage: str) -> list[Path]:
        """The PNG plots a stage drew into ``<stage>/plots/``, in name order."""
        folder = self.path / stage / "plots"
        return sorted(p for p in folder.glob("*.png") if p.is_file()) if folder.is_dir() else []

    def checkpoints(self) -> list[Path]:
        return list_checkpoints(self.path / "checkpoints")

    def has(self, rel: str) -> bool:
        return (self.path / rel).exists()

    # -- change detection for the live server --------------------------------------------

    def signature(self) -> tuple[int, int]:
        """(number of files, newest modification time in ns) over what the report reads.

        Cheap enough to compute on every request; it changes whenever a stage writes (all
        writes are a rename or an append, both update the modification time).
        """
        count, newest = 0, 0
        for rel in ("run.json", "config.toml", "metrics.jsonl"):
            count, newest = _fold(self.path / rel, count, newest)
        for stage in PLOT_STAGES:
            folder = self.path / stage
            if folder.is_dir():
                for p in folder.rglob("*"):
                    if p.suffix in (".json", ".jsonl", ".png") and not p.name.startswith("."):
                        count, newest = _fold(p, count, newest)
        for p in self.checkpoints():
            count, newest = _fold(p, count, newest)
        return count, newest


def _fold(p: Path, count: int, newest: int) -> tuple[int, int]:
    try:
        st = p.stat()
    except OSError:
        return count, newest
    return count + 1, max(newest, st.st_mtime_ns)
