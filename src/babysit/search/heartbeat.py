"""Heartbeats on the journal storage, for workers on other machines.

Optuna's journal storage has no heartbeat. On one machine the master needs none: a trial
records its worker's ``host:pid`` and the master asks the kernel whether that process lives
(:func:`.retry.orphaned`). A worker on another machine, sharing the journal through a network
file system, cannot be asked: it beats instead, rewriting ``<journal>.heartbeats/<host:pid>``
every few seconds, and the master fails and retries the RUNNING trials of a worker whose
file has not changed for ``search.grace_period`` seconds.

The master times the silence on its own clock, from when it saw the file change last: the
clocks of two machines (and the file server's mtimes) need not agree.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path


def heartbeat_dir(journal: str | os.PathLike) -> Path:
    return Path(f"{journal}.heartbeats")


@contextmanager
def beating(journal: str | os.PathLike, tag: str, interval_s: float):
    """While the block runs, a thread rewrites this worker's heartbeat file every `interval_s`.
    A worker that leaves in order removes its file; one killed leaves it, still, and silent."""
    path = heartbeat_dir(journal) / tag
    stop = threading.Event()

    def beat():
        count = 0
        while not stop.is_set():
            count += 1
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"{count}\n")
            except OSError:
                pass  # a file server hiccup: the next beat tries again
            stop.wait(interval_s)

    thread = threading.Thread(target=beat, name="babysit-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        path.unlink(missing_ok=True)


class SilentWorkers:
    """The master's view of the heartbeat files: which workers have gone silent."""

    def __init__(self, journal: str | os.PathLike, grace_s: float):
        self.folder, self.grace_s = heartbeat_dir(journal), grace_s
        self.seen: dict[str, tuple[object, float]] = {}  # tag -> (last beat seen, when, our clock)

    def silent(self, tag: str) -> bool:
        """True once `tag`'s heartbeat has not changed for grace_s seconds of our watching."""
        try:
            beat = (self.folder / tag).read_text()
        except OSError:
            beat = None  # not beating (yet): counts as silence from when we first looked
        now = time.monotonic()
        last = self.seen.get(tag)
        if last is None or last[0] != beat:
            self.seen[tag] = (beat, now)
            return False
        return now - last[1] > self.grace_s
