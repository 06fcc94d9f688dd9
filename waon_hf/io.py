"""Atomic file writes: the one way this package puts a file where a reader (or a resume) will look.

A file is written under a temporary name in the same folder (``.NAME.tmp-PID``), flushed and
fsynced, then renamed over the target, and the folder is fsynced so that the rename itself
survives a power loss. A reader therefore sees the old file or the whole new one, never half of
it, and a completion marker written after its data can be trusted.
"""

from __future__ import annotations

import contextlib
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
