"""Extraction jobs that fail on purpose, for the executor tests (importable by Ray workers).

Faults are triggered once per shard through marker files on disk, so the retried attempt (in
another process) behaves normally: exactly what a worker lost mid-shard looks like.
"""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path

from waon_hf.runner import ExtractJob, ShardLayout, extract_shard
from waon_hf.sources.commoncrawl import SourceFile
from waon_hf.stats import Stats


@dataclasses.dataclass
class KillOnceJob(ExtractJob):
    """SIGKILLs its own process halfway through shard ``kill_index`` the first time it runs it."""

    kill_index: int = 0
    marker_dir: str = ""

    def run_shard(self, index: int, source: SourceFile, layout: ShardLayout, show_progress: bool = False) -> Stats:
        if index == self.kill_index:
            marker = Path(self.marker_dir) / f"killed-{index}"
            if not marker.exists():
                marker.write_text(str(os.getpid()))
                # mid-shard: a partial temporary parquet exists, the stats marker does not
                tmp = layout.shard_data(index).with_name(f".{layout.shard_data(index).name}.tmp-{os.getpid()}")
                tmp.write_bytes(b"PAR1 half a file")
                os.kill(os.getpid(), signal.SIGKILL)
        with open(Path(self.marker_dir) / f"ran-{index}-{os.getpid()}", "w"):
            pass
        return extract_shard(index, source, self, layout, show_progress)


@dataclasses.dataclass
class FailOnceJob(ExtractJob):
    """Raises in shard ``fail_index`` until the marker file ``<marker_dir>/fixed`` exists."""

    fail_index: int = 0
    marker_dir: str = ""

    def run_shard(self, index: int, source: SourceFile, layout: ShardLayout, show_progress: bool = False) -> Stats:
        if index == self.fail_index and not (Path(self.marker_dir) / "fixed").exists():
            raise OSError(f"input {source.location} unreadable (injected)")
        return extract_shard(index, source, self, layout, show_progress)
