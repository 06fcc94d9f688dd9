"""Extraction jobs that fail on purpose, for the executor tests (importable by Ray workers).

Faults are triggered once per shard through marker files on disk, so the retried attempt (in
another process) behaves normally: exactly what a worker lost mid-shard looks like.
"""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path

from waon_hf.io import tmp_path
from waon_hf.jobs.extract import ExtractJob
from waon_hf.pipeline.contract import ShardContext
from waon_hf.stats import Stats


@dataclasses.dataclass
class KillOnceJob(ExtractJob):
    """SIGKILLs its own process halfway through shard ``kill_index`` the first time it runs it."""

    kill_index: int = 0
    marker_dir: str = ""

    def read(self, ctx: ShardContext, stats: Stats):
        if ctx.index == self.kill_index:
            marker = Path(self.marker_dir) / f"killed-{ctx.index}"
            if not marker.exists():
                marker.write_text(str(os.getpid()))
                # mid-shard: a partial temporary parquet exists, the stats marker does not
                tmp_path(ctx.layout.shard_data(ctx.index)).write_bytes(b"PAR1 half a file")
                os.kill(os.getpid(), signal.SIGKILL)
        with open(Path(self.marker_dir) / f"ran-{ctx.index}-{os.getpid()}", "w"):
            pass
        return super().read(ctx, stats)


@dataclasses.dataclass
class FailOnceJob(ExtractJob):
    """Raises in shard ``fail_index`` until the marker file ``<marker_dir>/fixed`` exists."""

    fail_index: int = 0
    marker_dir: str = ""

    def read(self, ctx: ShardContext, stats: Stats):
        if ctx.index == self.fail_index and not (Path(self.marker_dir) / "fixed").exists():
            raise OSError(f"input {ctx.source.location} unreadable (injected)")
        return super().read(ctx, stats)
