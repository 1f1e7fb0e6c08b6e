"""A run-directory lock: one process at a time writes into a run directory.

Two runs into one directory would interleave checkpoints and results (one of
them crashed on the other's half-moved ``.tmp-*/best.npz``).  :class:`RunLock`
takes an OS lock on ``<run_dir>/.kerasmer.lock``:

* with ``fcntl`` (Linux, macOS) it is ``flock(LOCK_EX | LOCK_NB)``, which the
  kernel releases when the holder dies, SIGKILL included, so a killed run never
  blocks its own restart;
* without ``fcntl`` (Windows) the file is created with ``O_EXCL``; a file whose
  holder's pid is no longer alive on this host is taken over.

The file also holds a JSON record of the holder (pid, host, start time, command)
so a refused run can say who holds the directory.  The record is emptied on a
normal release, so a non-empty record found while taking the lock means the
previous holder was killed: the lock is taken over and the log says so.

Example:
    >>> with RunLock("runs/demo", log=print):   # doctest: +SKIP
    ...     train_everything()
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import sys
from pathlib import Path
from typing import Callable

try:  # POSIX only; the O_EXCL fallback below covers the rest
    import fcntl
except ImportError:  # pragma: no cover - exercised by monkeypatching in tests
    fcntl = None

LOCK_NAME = ".kerasmer.lock"


class RunLockedError(RuntimeError):
    """Another live process holds the run directory's lock; the message names it."""


def _holder_record() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv)[:500]}


def _read_record(path: Path) -> dict | None:
    """The holder record in ``path``; None when empty or unreadable (a holder mid-write, or none)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
        record = json.loads(text) if text else None
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _pid_alive(pid) -> bool:
    """True when ``pid`` runs on this host (a process we may not signal still counts as alive)."""
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError, OverflowError):
        return False
    except (PermissionError, OSError):
        return True
    return True


def describe_holder(record: dict | None) -> str:
    """``"pid 123 on host h since 2026-01-01T00:00:00+00:00 (kerasmer train ...)"`` for messages."""
    if not record:
        return "a process that has not written its record yet"
    text = f"pid {record.get('pid')} on host {record.get('host')} since {record.get('started')}"
    return text + (f" ({record['command']})" if record.get("command") else "")


class RunLock:
    """An exclusive lock on a run directory, held for the ``with`` block.

    Args:
        run_dir: the run directory (created if missing).
        log: ``fn(str)`` told when a stale lock of a killed run is taken over (default: print).

    Raises:
        RunLockedError: (on entering) another live process holds the directory; the
            message names its pid, host and start time, and the lock file.

    Example:
        >>> with RunLock("runs/demo"):   # doctest: +SKIP
        ...     ...
    """

    def __init__(self, run_dir: str | os.PathLike, *, log: Callable[[str], None] | None = None):
        self.path = Path(run_dir) / LOCK_NAME
        self.log = log or print
        self._fd: int | None = None

    def __enter__(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        previous = self._acquire_flock() if fcntl is not None else self._acquire_exclusive()
        if previous:
            self.log(f"run directory {self.path.parent}: taking over the stale lock of a run that was killed "
                     f"({describe_holder(previous)}; {self.path})")
        self._write_record()
        return self

    def _refuse(self, record: dict | None):
        raise RunLockedError(
            f"run directory {self.path.parent} is in use by {describe_holder(record)}: lock file {self.path}. "
            "Wait for that run to end, stop it, or use another output directory.")

    def _acquire_flock(self) -> dict | None:
        """``flock`` the lock file; returns the record a killed holder left behind (None if none)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # BlockingIOError: a live process holds it (the kernel drops a dead one's lock)
            os.close(fd)
            self._refuse(_read_record(self.path))
        self._fd = fd
        return _read_record(self.path)

    def _acquire_exclusive(self) -> dict | None:
        """Without ``fcntl``: create the file with ``O_EXCL``; take over one whose holder is dead on this host."""
        previous = None
        for _ in range(2):
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
                return previous
            except FileExistsError:
                record = _read_record(self.path)
                if record is None or record.get("host") != socket.gethostname() or _pid_alive(record.get("pid")):
                    self._refuse(record)  # on another host (or unreadable) we cannot tell: refuse
                previous = record
                self.path.unlink(missing_ok=True)
        self._refuse(_read_record(self.path))  # another process took it over between our two tries

    def _write_record(self) -> None:
        data = json.dumps(_holder_record()).encode("utf-8")
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.write(self._fd, data)
        os.fsync(self._fd)

    def __exit__(self, *exc) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if fcntl is not None:
            os.ftruncate(fd, 0)  # an empty record = released normally; the file stays (unlinking races with flock)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        else:
            os.close(fd)
            self.path.unlink(missing_ok=True)


__all__ = ["LOCK_NAME", "RunLock", "RunLockedError", "describe_holder"]
