"""What the search's kill tests share: waiting for a state, and a master killed with its workers."""

import os
import signal
import time
from pathlib import Path


def wait_for(condition, timeout_s=90.0, what=""):
    """`condition()`'s first truthy value, polled every 0.1 s, or an AssertionError naming `what`."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def children(pid):
    """The pids whose parent is `pid` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return found


def kill_with_workers(master) -> None:
    """kill -9 a search master (a Popen) and the worker processes it started, as a crash would."""
    workers = children(master.pid)
    master.kill()
    for pid in workers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    master.wait(timeout=30)
