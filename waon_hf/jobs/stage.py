"""The job of a stage over a previous stage's output (download, image filters, dedup, scores, merge).

Each parquet file of the input's ``data/`` is one shard; its rows go through the stage's steps, and
the stage's global steps run over all shards at the end.
"""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pyarrow.parquet as pq

from waon_hf.pipeline.contract import ShardContext, ShardJob
from waon_hf.stats import Stats


@dataclasses.dataclass
class StageJob(ShardJob):
    """Steps (and global steps) over the parquet shards of a previous stage's folder."""

    stage: str = "stage"  # a field here: each stage of the catalogue names itself
    batch_size: int = 1_000

    def read(self, ctx: ShardContext, stats: Stats) -> pa.Table:
        return pq.read_table(ctx.source.location)
