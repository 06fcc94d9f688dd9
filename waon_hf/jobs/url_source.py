"""The download stage over a published URL-only dataset: one source parquet file per shard.

``waon download speed/WAON -o waon-images/`` lists the dataset's parquet files (local, glob, Hub id
or ``hf://`` path), and each file becomes one shard of the usual resumable runner: read (the URL
and caption columns named ours, recomputed columns kept as ``source_*``, see
:mod:`waon_hf.sources.url_tables`), download, then two things specific to a published source:

* our ``sha256`` is compared with the source's where both exist (``source_sha256_match`` /
  ``source_sha256_mismatch``: a mismatch means the bytes served today differ from what the
  publisher stored, or that it was re-encoded differently);
* the size columns are written as float64, WAON's published dtype (``width``, ``height``,
  ``original_width``, ``original_height``), so our output and WAON concatenate without a cast.
"""

from __future__ import annotations

import dataclasses

import datasets
import pyarrow as pa

from waon_hf.pipeline.contract import ShardContext, ShardJob
from waon_hf.sources.relaion import open_parquet
from waon_hf.sources.url_tables import SOURCE_PREFIX, resolve_columns, to_download_input
from waon_hf.stats import Stats

FLOAT64_COLUMNS = ("width", "height", "original_width", "original_height")  # WAON's dtypes


@dataclasses.dataclass
class UrlSourceJob(ShardJob):
    """Download the images of a URL-only source table, one parquet file per shard.

    ``columns`` maps ``url``/``caption`` to the source's names (missing keys are detected, see
    :func:`~waon_hf.sources.url_tables.resolve_columns`); ``takes[i]`` stops shard ``i`` after that
    many rows (``--limit``, planned before any shard runs).
    """

    stage = "download"

    columns: dict = dataclasses.field(default_factory=dict)
    takes: tuple[int | None, ...] = ()
    batch_size: int = 1_000

    def describe(self) -> dict:
        out = super().describe()
        out["steps"].insert(0, {"name": "url_source_read", "config": {
            "columns": dict(self.columns), "limited_shards": sum(t is not None for t in self.takes)}})
        return out

    def read(self, ctx: ShardContext, stats: Stats) -> pa.Table:
        pf = open_parquet(ctx.source.location)
        take = self.takes[ctx.index] if ctx.index < len(self.takes) else None
        columns = resolve_columns(pf.schema_arrow.names, self.columns)
        batches, n = [], 0
        for batch in pf.iter_batches(batch_size=10_000):
            if take is not None and n + batch.num_rows > take:
                batch = batch.slice(0, take - n)
            batches.append(batch)
            n += batch.num_rows
            if take is not None and n >= take:
                break
        table = pa.Table.from_batches(batches, schema=pf.schema_arrow)
        stats.add_stage("url_source", {"in": table.num_rows, "kept": table.num_rows})
        return to_download_input(table, columns)

    def transform(self, rows: datasets.Dataset, ctx: ShardContext, stats: Stats) -> datasets.Dataset:
        from waon_hf.steps.download.statuses import count_statuses

        out = super().transform(rows, ctx, stats)
        count_statuses(out, self.steps[-1].name if self.steps else self.stage, stats)
        source_sha = SOURCE_PREFIX + "sha256"
        if source_sha in out.column_names and "sha256" in out.column_names:
            pairs = [(ours, theirs) for ours, theirs in zip(out["sha256"], out[source_sha], strict=True)
                     if ours and theirs]
            same = sum(ours == theirs for ours, theirs in pairs)
            stats.add_stage("url_source", {"source_sha256_match": same, "source_sha256_mismatch": len(pairs) - same})
        for name in FLOAT64_COLUMNS:
            if name in out.column_names and out.features[name] != datasets.Value("float64"):
                out = out.cast_column(name, datasets.Value("float64"))
        return out
