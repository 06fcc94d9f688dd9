"""Where a run keeps its files, and the one writer of shard results.

::

    <output>/
      data/train-NNNNN-of-MMMMM.parquet   the dataset (written by finalize)
      README.md, stats.json, pipeline.json, funnel.svg
      .waon/lock                          held by the run writing the folder (a second one is refused)
      .waon/manifest.json                 the inputs (with fingerprints) and the job's settings
      .waon/shards/NNNNN.parquet          one shard's rows ...
      .waon/shards/NNNNN.stats.json       ... and its counters: the completion marker, written last
      .waon/final.json                    the stage is finished

:meth:`ShardLayout.write_shard` is the only code that writes a shard: parquet under a temporary
name, fsynced and renamed, then the stats file. Jobs produce rows; they never write markers.

A folder is waon's when it holds ``.waon/`` (or is new or empty); anything else is refused
(:meth:`ShardLayout.claim`), and waon deletes only what it writes: ``.waon/``, the
``data/train-*.parquet`` files and :data:`OUTPUT_FILES` (:meth:`ShardLayout.wipe`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from waon_hf.dataset_card import FUNNEL_IMAGE
from waon_hf.io import exclusive_lock, link_or_copy, write_atomically, write_json_atomic
from waon_hf.stats import Stats

WORK_DIR = ".waon"
STAGES_DIR = ".waon-stages"  # `waon build`'s intermediate stages, inside its output folder
LOCK_FILE = "lock"
DATA_GLOB = "train-*.parquet"  # the dataset's files in data/: the only ones finalize replaces
# The files a run writes next to data/ (decontamination.json: the dedup report's default place).
OUTPUT_FILES = ("README.md", "stats.json", "pipeline.json", FUNNEL_IMAGE, "decontamination.json")


class NotWaonFolderError(ValueError):
    """The output folder holds files waon did not write: nothing there is touched."""


@dataclasses.dataclass(frozen=True)
class FinishedShard:
    """A shard someone else already wrote (a slice's, for `waon merge`): adopted as it is."""

    data: str  # parquet path
    stats: str  # its stats file (the record is copied, counters unchanged)


class ShardLayout:
    """Where a run keeps its files."""

    def __init__(self, output_dir: str | os.PathLike):
        self.root = Path(output_dir)
        self.work = self.root / WORK_DIR
        self.shards = self.work / "shards"
        self.data = self.root / "data"

    def shard_data(self, index: int) -> Path:
        return self.shards / f"{index:05d}.parquet"

    def shard_stats(self, index: int) -> Path:
        return self.shards / f"{index:05d}.stats.json"

    def is_done(self, index: int) -> bool:
        return self.shard_stats(index).exists() and self.shard_data(index).exists()

    def shard_problem(self, index: int) -> str | None:
        """Why a done shard cannot be used (a 0-byte or truncated parquet, a row count other than the
        one recorded), or None. Reads the parquet footer and the marker only."""
        try:
            rows = pq.ParquetFile(self.shard_data(index)).metadata.num_rows
        except (OSError, pa.ArrowException) as e:
            return f"unreadable parquet ({type(e).__name__}: {e})"
        try:
            record = json.loads(self.shard_stats(index).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            return f"unreadable marker ({type(e).__name__})"
        recorded = record.get("rows") if isinstance(record, dict) else None
        if recorded is not None and recorded != rows:
            return f"{rows} rows, {recorded} recorded"
        return None

    def forget_shard(self, index: int) -> None:
        """Make a done shard pending again (marker first: a kill in between leaves it pending)."""
        self.shard_stats(index).unlink(missing_ok=True)
        self.shard_data(index).unlink(missing_ok=True)

    def data_files(self) -> list[Path]:
        """The dataset's files, ``data/train-*.parquet``, in order."""
        return sorted(self.data.glob(DATA_GLOB))

    @property
    def final_marker(self) -> Path:
        return self.work / "final.json"

    @property
    def manifest(self) -> Path:
        return self.work / "manifest.json"

    @property
    def failed(self) -> Path:
        return self.work / "failed.json"

    @property
    def lock_file(self) -> Path:
        return self.work / LOCK_FILE

    def claim(self) -> None:
        """Make sure the folder is waon's (new, empty, or holding ``.waon/``), then create ``.waon/``.

        Raises :class:`NotWaonFolderError` for any other folder, ``--overwrite`` or not: waon never
        deletes or replaces files it did not write.
        """
        if self.root.exists() and not self.root.is_dir():
            raise NotWaonFolderError(f"{self.root} is a file, not an output folder")
        if self.root.is_dir() and not self.work.is_dir():
            foreign = sorted(p.name for p in self.root.iterdir() if p.name != STAGES_DIR)
            if foreign:
                shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
                raise NotWaonFolderError(
                    f"{self.root} is not empty and is not a waon output folder (no {WORK_DIR}/; it holds {shown}); "
                    "nothing was changed. Write to a new or empty folder (-o)")
        self.work.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive use of the folder for the run (:func:`waon_hf.io.exclusive_lock`): a second run
        fails at once with "... is in use by PID n"."""
        self.work.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(self.lock_file, self.root):
            yield

    def final_rows(self) -> int:
        """Rows of the finished dataset (from the final marker)."""
        return json.loads(self.final_marker.read_text(encoding="utf-8"))["rows"]

    # -- writing ---------------------------------------------------------------------------------
    def write_shard(self, index: int, source, rows: datasets.Dataset | pa.Table, stats: Stats,
                    started: float) -> None:
        """The shard's parquet (atomically, durably), then the stats file that marks it done."""
        out = self.shard_data(index)
        if isinstance(rows, pa.Table):
            write_atomically(out, lambda tmp: pq.write_table(rows, tmp))
        else:
            write_atomically(out, lambda tmp: rows.to_parquet(str(tmp)))
        stats.add("shard.milliseconds", int((time.monotonic() - started) * 1000))
        stats.add("shard.files", 1)
        record = {"source": source.public(), "rows": pq.ParquetFile(out).metadata.num_rows, "stats": stats}
        write_json_atomic(self.shard_stats(index), record)

    def adopt_shard(self, index: int, shard: FinishedShard) -> Stats:
        """Link a finished shard's parquet into this layout and copy its record (counters as they were)."""
        out = self.shard_data(index)
        out.unlink(missing_ok=True)
        link_or_copy(Path(shard.data), out)
        with open(shard.stats, encoding="utf-8") as f:
            record = json.load(f)
        record["rows"] = pq.ParquetFile(out).metadata.num_rows
        write_json_atomic(self.shard_stats(index), record)
        return Stats(record["stats"])

    def wipe(self) -> None:
        """``--overwrite``: forget a previous run here: ``.waon/`` (but its lock, held by this run),
        ``data/train-*.parquet`` and :data:`OUTPUT_FILES`; nothing else (``.waon-stages/`` is wiped
        stage by stage by ``waon build`` itself)."""
        self.forget_run()
        for p in self.data_files():
            p.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.data.rmdir()  # only when empty: a file waon did not write keeps it
        for name in OUTPUT_FILES:
            (self.root / name).unlink(missing_ok=True)

    def forget_run(self) -> None:
        """Drop the run's bookkeeping (``.waon/`` but its lock): every shard is redone and finalize
        then replaces ``data/train-*.parquet`` and the files next to it."""
        if not self.work.is_dir():
            return
        for p in self.work.iterdir():
            if p.name == LOCK_FILE:
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def read_pipeline(root: str | os.PathLike) -> dict | None:
    """A finished folder's ``pipeline.json`` (its stages and settings), or None."""
    path = Path(root) / "pipeline.json"
    if not path.exists():
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)
