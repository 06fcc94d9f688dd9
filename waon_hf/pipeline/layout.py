"""Where a run keeps its files, and the one writer of shard results.

::

    <output>/
      data/train-NNNNN-of-MMMMM.parquet   the dataset (written by finalize)
      README.md, stats.json, pipeline.json, funnel.svg
      .waon/manifest.json                 the inputs (a re-run over other inputs is refused)
      .waon/shards/NNNNN.parquet          one shard's rows ...
      .waon/shards/NNNNN.stats.json       ... and its counters: the completion marker, written last
      .waon/final.json                    the stage is finished

:meth:`ShardLayout.write_shard` is the only code that writes a shard: parquet under a temporary
name, fsynced and renamed, then the stats file. Jobs produce rows; they never write markers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from waon_hf.io import link_or_copy, write_atomically, write_json_atomic
from waon_hf.stats import Stats

WORK_DIR = ".waon"


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

    @property
    def final_marker(self) -> Path:
        return self.work / "final.json"

    @property
    def manifest(self) -> Path:
        return self.work / "manifest.json"

    @property
    def failed(self) -> Path:
        return self.work / "failed.json"

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
        write_json_atomic(self.shard_stats(index), {"source": dataclasses.asdict(source), "stats": stats})

    def adopt_shard(self, index: int, shard: FinishedShard) -> Stats:
        """Link a finished shard's parquet into this layout and copy its record (counters as they were)."""
        out = self.shard_data(index)
        out.unlink(missing_ok=True)
        link_or_copy(Path(shard.data), out)
        with open(shard.stats, encoding="utf-8") as f:
            record = json.load(f)
        write_json_atomic(self.shard_stats(index), record)
        return Stats(record["stats"])

    def wipe(self) -> None:
        """``--overwrite``: forget a previous run here (its bookkeeping and its data files)."""
        shutil.rmtree(self.work, ignore_errors=True)
        shutil.rmtree(self.data, ignore_errors=True)


def read_pipeline(root: str | os.PathLike) -> dict | None:
    """A finished folder's ``pipeline.json`` (its stages and settings), or None."""
    path = Path(root) / "pipeline.json"
    if not path.exists():
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)
