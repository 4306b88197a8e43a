"""Where the study lives, so that several worker processes (or machines) share it.

- Default: Optuna's journal storage, an append-only log of operations in
  ``run_dir/search/study.journal``. Processes on one machine share it through an ``flock``
  on ``study.journal.flock`` (:class:`FlockLock`): a waiting writer sleeps in the kernel until
  the lock is free (Optuna's own file locks poll with a backoff of up to a second, and leave a
  stale lock behind a writer killed with ``-9``; the kernel drops an flock with its holder).
  A killed writer leaves at most a torn last line, which readers skip.
- ``postgresql://user@host:port/db`` (or any SQLAlchemy URL): Optuna's RDB storage, for workers
  on many machines. A worker there beats a heartbeat; a trial whose worker stops beating for
  ``search.grace_period`` seconds is failed and queued again, by the next worker that asks for
  a trial or by the master, which looks for such trials while it waits.

A storage is named by one string, passed unchanged to ``babysit worker --storage``: a URL
with ``://`` is a database, anything else the path of a journal file.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..errors import UserError

JOURNAL = "search/study.journal"
HEARTBEAT_S = 10
GRACE_S = 60  # the default of search.grace_period


def default_storage(run_dir) -> str:
    return str((Path(run_dir) / JOURNAL).resolve())


def is_database(url: str) -> bool:
    return "://" in url


def heartbeat_interval(grace_s: int) -> int:
    """A worker beats several times per grace period, so one late beat is not taken for death."""
    return max(1, min(HEARTBEAT_S, int(grace_s) // 3))


def open_storage(url: str, grace_s: int = GRACE_S):
    """The Optuna storage named by `url` (see the module docstring)."""
    import optuna

    if is_database(url):
        import warnings

        from .retry import retry_stale_trial

        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.x
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    with_driver(url), heartbeat_interval=heartbeat_interval(grace_s), grace_period=int(grace_s),
                    heartbeat_stale_trial_callback=retry_stale_trial,
                    engine_kwargs={"pool_pre_ping": True})
        except Exception as exc:  # unreachable server, bad URL, missing driver
            raise UserError(f"cannot open the study storage {redact(url)} "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]}): "
                            "check the URL and that the database server is running") from None
    path = Path(url)
    if path.is_dir():
        raise UserError(f"--storage {url} is a directory: give the path of a study.journal file "
                        "(or a postgresql:// URL)")
    path.parent.mkdir(parents=True, exist_ok=True)
    from optuna.storages.journal import JournalFileBackend

    lock = journal_lock(path)
    if path.exists():
        check_journal(path, lock)
    try:
        return optuna.storages.JournalStorage(JournalFileBackend(str(path), lock_obj=lock))
    except (ValueError, KeyError, IndexError, AssertionError, TypeError, AttributeError) as exc:
        # operations that do not fit together (a hand-edited or spliced journal)
        raise UserError(unreadable(path, f"{type(exc).__name__}: {exc}")) from None


def unreadable(path: Path, why: str) -> str:
    return (f"{path} is not a study journal babysit can read ({why[:120]}): give the "
            "search/study.journal that babysit search wrote, or a path that does not exist yet")


def check_journal(path: Path, lock) -> None:
    """Refuse a file that is not an Optuna journal (one JSON object with an ``op_code`` per
    line), before anything is written to it; then mend a torn last line (taking the lock
    does, see :func:`mend_torn_tail`)."""
    from optuna.storages.journal._storage import JournalOperation

    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if not line.endswith(b"\n"):  # a torn record (or one being appended) starts like one
                if not line.lstrip().startswith(b"{"):
                    raise UserError(unreadable(path, f"line {number} is not JSON"))
                break
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise UserError(unreadable(path, f"line {number} is not JSON")) from None
            op = record.get("op_code") if isinstance(record, dict) else None
            if not isinstance(op, int) or op not in set(JournalOperation):
                raise UserError(unreadable(path, f"line {number} is no journal operation"))
    lock.acquire()
    lock.release()


def mend_torn_tail(path: Path) -> None:
    """Cut off a last line without its newline: the record a writer killed mid-append left
    half written. Call it holding the journal's lock (then no append is in progress); the
    records before it are whole, and the cut one never took effect for any reader."""
    try:
        with open(path, "rb+") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            keep = max(0, size - 65536)
            while True:  # the last newline, searched backwards in blocks
                f.seek(keep)
                block = f.read(size - keep)
                cut = block.rfind(b"\n")
                if cut >= 0:
                    keep += cut + 1
                    break
                if keep == 0:
                    break
                keep = max(0, keep - 65536)
            f.truncate(keep)
    except FileNotFoundError:
        return
    print(f"warning: {path} ended in a torn record ({size - keep} bytes, a write cut short "
          "by a kill): dropped it", file=sys.stderr)


def journal_lock(path: Path):
    from optuna.storages.journal import JournalFileOpenLock

    try:
        import fcntl
    except ImportError:  # no flock (Windows): Optuna's lock file, stale after 5 s, not 30
        return JournalFileOpenLock(str(path), grace_period=5)

    class FlockLock:
        """An exclusive ``flock`` on a side file, held only while one journal append runs.
        (The journal backend calls just ``acquire`` and ``release``: Optuna's base class for
        locks is not public.)"""

        def __init__(self, lock_path: str):
            self.lock_path, self.fd = lock_path, None

        def acquire(self) -> bool:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)  # blocks without polling
            self.fd = fd
            mend_torn_tail(path)  # a writer killed mid-append: never append onto its half line
            return True

        def release(self) -> None:
            fd, self.fd = self.fd, None
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    return FlockLock(f"{path}.flock")


def with_driver(url: str) -> str:
    """SQLAlchemy 2.1 reads ``postgresql://`` as psycopg 3; use psycopg2 (our dependency) when
    psycopg 3 is not installed."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def redact(url: str) -> str:
    """The URL without a password, for messages."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"


def delete_studies(url: str, names: list[str]) -> None:
    """Remove studies (tests and benchmarks clean up after themselves)."""
    import optuna

    storage = open_storage(url)
    existing = {s.study_name for s in storage.get_all_studies()}
    for name in names:
        if name in existing:
            optuna.delete_study(study_name=name, storage=storage)
