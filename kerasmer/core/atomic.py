"""The one atomic writer: a file or a directory appears whole, or not at all.

Everything kerasmer writes that a reader may see half-written (run configs,
fold results, checkpoints, reports, cache files, SavedModel versions) goes
through these functions: the content is written beside the target under a
unique temporary name, flushed, and renamed over the target with
``os.replace``, which is atomic within one file system (POSIX and Windows).  A
process killed at any moment leaves the old target or the new one; stale
temporaries are named ``.<name>.tmp-<pid>-*`` (files) or ``.tmp-<pid>-*`` (directories) so
their owners can sweep them (:func:`remove_stale_temporaries`).

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write_text(d / "a.json", "{}")
    PosixPath('...a.json')  # doctest: +SKIP
    >>> with atomic_directory(d / "v1") as tmp:   # doctest: +SKIP
    ...     (tmp / "x.txt").write_text("x")
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable, Iterator


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def atomic_write(path: str | os.PathLike, write: Callable, *, binary: bool = True, fsync: bool = True) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, then rename it over ``path``.

    Args:
        path: the target file; its folder is created if missing.
        write: ``fn(file_object)`` that writes the content.
        binary: open the temporary file in binary (``"wb"``) or text mode (UTF-8).
        fsync: flush the data to disk before the rename (survives a power cut, not just a kill).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        >>> atomic_write("out/arrays.npy", lambda f: np.save(f, x))  # doctest: +SKIP
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path)
    try:
        with open(tmp, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically.

    Example:
        >>> atomic_write_text("runs/a/config.json", "{}")  # doctest: +SKIP
    """
    return atomic_write(path, lambda f: f.write(text), binary=False)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(data))


def atomic_save_figure(fig, path: str | os.PathLike, **savefig_kwargs) -> Path:
    """Save a matplotlib figure atomically (the format comes from ``path``'s suffix)."""
    path = Path(path)
    fmt = savefig_kwargs.pop("format", path.suffix.lstrip(".") or "png")
    return atomic_write(path, lambda f: fig.savefig(f, format=fmt, **savefig_kwargs), fsync=False)


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Fill a temporary directory beside ``target``; on success it replaces ``target``.

    Args:
        target: the directory to create (or replace, with ``overwrite``).
        overwrite: replace an existing ``target``; when False an existing one raises.

    Yields:
        The temporary directory (``.tmp-<pid>-<random>-<name>`` beside ``target``)
        to write into.  On an exception it is removed and ``target`` is untouched.

    Raises:
        FileExistsError: ``target`` exists and ``overwrite`` is False.

    Example:
        >>> with atomic_directory("saved_models/learnet/3") as tmp:   # doctest: +SKIP
        ...     archive.write_out(str(tmp))
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists")
    tmp = target.with_name(f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}-{target.name}")
    tmp.mkdir()
    try:
        yield tmp
        if target.exists():
            # Not atomic as a pair: a kill between the two calls leaves no target, never a half one.
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_stale_temporaries(folder: str | os.PathLike, *, live_pids: bool = True) -> list[Path]:
    """Remove temporaries left in ``folder`` by killed writers; return what was removed.

    Args:
        folder: the folder to sweep (not recursive).
        live_pids: keep temporaries whose writer process is still alive (another
            process may be writing right now).

    Returns:
        The removed paths.
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        if not (p.name.startswith(".") and ".tmp-" in p.name):
            continue
        pid = _pid_of(p.name)
        if live_pids and pid is not None and pid != os.getpid() and _alive(pid):
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def _pid_of(name: str) -> int | None:
    """The writer's pid: the first field after ``.tmp-`` in both naming forms."""
    head = name.split(".tmp-", 1)[-1].split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


__all__ = ["atomic_directory", "atomic_save_figure", "atomic_write", "atomic_write_bytes", "atomic_write_text",
           "remove_stale_temporaries"]
