"""``run.json``: what the workflow did, stage by stage, kept current on disk as it goes.

Rewritten atomically after every change, so a reader (the live report) always sees a whole
file, and a run killed at any moment leaves a record of the stages it finished. Besides the
stages it holds what reproducing the run needs: the command line, the input config, the seed,
the versions of python/torch/numpy/optuna and the device.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import socket
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata

from .. import __version__
from ..rundir import RunDir
from ..train import resolve_device

STATUSES = ("running", "passed", "inconclusive", "failed", "done", "unavailable", "skipped", "error", "interrupted")


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def versions() -> dict[str, str]:
    """Versions of what decides the numbers: python and the libraries babysit computes with."""
    from ..report.provenance import code_version

    found = {"python": platform.python_version(), "babysit": __version__,
             "babysit_code": code_version()}  # with the git commit when run from a checkout
    for dist in ("torch", "numpy", "optuna", "matplotlib", "scikit-learn"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            module = sys.modules.get(dist.replace("-", "_"))
            found[dist] = getattr(module, "__version__", "not installed")
    return found


def device_info(device: str = "auto") -> dict:
    """The device training ran on, and the CPU threads torch used (they change float sums)."""
    import torch

    dev = resolve_device(device)
    info = {"name": str(dev), "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(), "cpu": platform.processor() or platform.machine()}
    if dev.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(dev)
        info["cuda"] = torch.version.cuda
    return info


@dataclass
class RunLog:
    """The run's ``run.json``, one stage entry per workflow stage."""

    run_dir: RunDir
    data: dict = field(default_factory=dict)

    @classmethod
    def start(cls, run_dir: RunDir, *, name: str, config: dict, argv: list[str], quick: bool,
              force: bool) -> "RunLog":
        log = cls(run_dir, {
            "name": name, "status": "running", "started": now_iso(), "finished": None, "seconds": None,
            "command": argv, "cwd": os.getcwd(), "pid": os.getpid(), "host": socket.gethostname(),
            "seed": config["seed"], "quick": quick, "force": force,
            "versions": versions(), "device": device_info(config["device"]),
            "input_config": config, "stages": [],
        })
        log._t0 = time.perf_counter()
        log.save()
        return log

    def save(self) -> None:
        self.run_dir.write_json("run.json", self.data)

    def begin(self, name: str) -> dict:
        entry = {"name": name, "status": "running", "verdict": "", "started": now_iso(), "seconds": None}
        self.data["stages"].append(entry)
        entry["_t0"] = time.perf_counter()
        self.save_clean()
        return entry

    def end(self, entry: dict, status: str, verdict: str, **extra) -> None:
        assert status in STATUSES, status
        entry.update(status=status, verdict=verdict, **extra)
        entry["seconds"] = round(time.perf_counter() - entry.pop("_t0", time.perf_counter()), 2)
        self.save_clean()

    def finish(self, status: str, reason: str | None = None) -> None:
        self.data.update(status=status, finished=now_iso(),
                         seconds=round(time.perf_counter() - getattr(self, "_t0", time.perf_counter()), 2))
        if reason:
            self.data["reason"] = reason
        self.save_clean()

    def save_clean(self) -> None:
        """Save without the private start times kept in the entries."""
        clean = dict(self.data)
        clean["stages"] = [{k: v for k, v in s.items() if not k.startswith("_")} for s in self.data["stages"]]
        self.run_dir.write_json("run.json", clean)
