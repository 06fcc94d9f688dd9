"""Atomic file writes: the one way this package puts a file where a reader (or a resume) will look.

A file is written under a temporary name in the same folder (``.NAME.tmp-PID``), flushed and
fsynced, then renamed over the target, and the folder is fsynced so that the rename itself
survives a power loss. A reader therefore sees the old file or the whole new one, never half of
it, and a completion marker written after its data can be trusted.

:func:`exclusive_lock` keeps a second process out of a folder a run is writing.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

TMP_INFIX = ".tmp-"  # what every temporary name holds; `waon publish` and cleanup skip such files


def tmp_path(path: str | os.PathLike) -> Path:
    """The temporary name a write to ``path`` goes through (unique per process)."""
    path = Path(path)
    return path.with_name(f".{path.name}{TMP_INFIX}{os.getpid()}")


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename or a new file in ``folder`` durable (no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def replace_durably(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """fsync ``tmp``, rename it to ``path`` and fsync the folder."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(Path(path).parent)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", **open_kwargs) -> Iterator[IO[Any]]:
    """``with atomic_write(path, "w", encoding="utf-8") as f: ...``: all or nothing at ``path``."""
    tmp = tmp_path(path)
    try:
        with open(tmp, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(Path(path).parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomically(path: str | os.PathLike, write: Callable[[Path], Any]) -> None:
    """``write(tmp_path)`` (e.g. a parquet writer that wants a path), then the durable rename."""
    tmp = tmp_path(path)
    try:
        write(tmp)
        replace_durably(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    """JSON at ``path``, written atomically."""
    with atomic_write(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)


def link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Hard-link ``src`` to ``dst`` (same file system), else copy it."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def remove_stale_tmp_files(folder: str | os.PathLike) -> int:
    """Delete the temporary files failed writes left in ``folder`` (not recursive); returns how many."""
    removed = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    for p in folder.iterdir():
        if p.name.startswith(".") and TMP_INFIX in p.name and p.is_file():
            p.unlink(missing_ok=True)
            removed += 1
    return removed


class FolderInUseError(RuntimeError):
    """Another process holds the lock of a folder (a second run into the same output)."""


_HELD_LOCKS: dict[str, list] = {}  # real path of a lock file -> [fd, depth, pid]: re-entrant per process


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, what: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) for the ``with`` block, or raise
    :class:`FolderInUseError` naming ``what`` and the PID of the holder at once (never waits).

    A POSIX record lock (``fcntl.lockf``), not ``flock``: it belongs to the process, so forked pool
    workers do not inherit it (a worker outliving a killed driver cannot keep the folder locked)
    and the kernel drops it when the driver dies, however it dies. Re-entrant within one process
    (``waon build`` holds its output's lock while the last stage takes it again); only the driver
    takes it, so workers never wait on it.
    """
    key = os.path.realpath(path)
    held = _HELD_LOCKS.get(key)
    if held is not None and held[2] == os.getpid():
        held[1] += 1
        try:
            yield
        finally:
            held[1] -= 1
        return
    fd = os.open(key, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        if e.errno in (errno.EAGAIN, errno.EACCES):
            raise FolderInUseError(f"{what} is in use by PID {holder} (another run is writing it); "
                                   "wait for it to end or use another output folder") from None
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    _HELD_LOCKS[key] = [fd, 1, os.getpid()]
    try:
        yield
    finally:
        del _HELD_LOCKS[key]
        os.close(fd)  # releases the lock; the file stays (removing it would race a waiting opener)
