"""ReLAION as a first stage: one source parquet file per shard, read into this package's columns.

Rows are kept in file order; ``language`` drops the other languages; ``takes`` (planned before any
shard runs, see :func:`waon_hf.sources.relaion.plan_relaion_shards`) stops a shard after its share
of ``--limit``, so the result does not depend on the number of workers.
"""

from __future__ import annotations

import dataclasses

import pyarrow as pa

from waon_hf.pipeline.contract import ShardContext, ShardJob, step_summary
from waon_hf.sources.relaion import iter_relaion, relaion_features
from waon_hf.stats import Stats
from waon_hf.steps.dedup import ExactDedup
from waon_hf.text.normalize import normalize_caption


@dataclasses.dataclass
class RelaionReadJob(ShardJob):
    """Read one ReLAION parquet file per shard into our columns (a job for :func:`waon_hf.pipeline.runner.run_sharded`).

    Rows are kept in file order; ``language`` drops the other languages (reason ``language``); rows
    without a URL or caption are dropped (``no_url``, ``no_caption``); ``takes[index]`` (see
    :func:`plan_relaion_shards`) stops a shard after that many rows passed the language filter.
    Japanese captions (``english=False``) are NFKC/whitespace-normalised like every caption of this
    package; English ones are kept verbatim (they are the translation's source).
    """

    stage = "relaion"

    english: bool = False
    language: str | None = None
    takes: tuple[int | None, ...] = ()
    batch_rows: int = 10_000
    dataset_name: str = "relaion"

    def __post_init__(self) -> None:
        # Exact URL then caption dedup over every shard, as for Common Crawl pairs (ReLAION repeats
        # both); English rows are left for the translation stage, which deduplicates its output.
        self.global_steps = [] if self.english else [ExactDedup()]
        super().__post_init__()

    def describe(self) -> dict:
        return {"stage": self.stage, "steps": [{"name": "relaion_read", "config": {
            "language": self.language, "english": self.english,
            "limited_shards": sum(t is not None for t in self.takes)}}],
            "global_steps": [step_summary(g) for g in self.global_steps]}

    def read(self, ctx: ShardContext, stats: Stats) -> pa.Table:
        table, counts = self.read_file(ctx.index, ctx.source.location)
        stats.add_stage(self.stage, counts)
        return table

    def read_file(self, index: int, location: str) -> tuple[pa.Table, dict[str, int]]:
        """The shard's rows in our columns, and the counts (``in``, ``kept``, ``dropped_<reason>``)."""
        take = self.takes[index] if index < len(self.takes) else None
        caption = "caption_en" if self.english else "caption"
        wanted = self.language.lower() if self.language else None
        features = relaion_features(self.english)
        ds = iter_relaion(location, streaming=True, english=self.english)
        counts = {"in": 0, "dropped_language": 0, "dropped_no_url": 0, "dropped_no_caption": 0}
        batches: list[pa.Table] = []
        passed = 0  # rows past the language filter, what ``take`` counts
        for batch in ds.iter(batch_size=self.batch_rows):
            n = len(batch["url"])
            keep = []
            for i in range(n):
                if take is not None and passed >= take:
                    break
                counts["in"] += 1
                if wanted and (batch["language"][i] or "").strip().lower() != wanted:
                    counts["dropped_language"] += 1
                    continue
                passed += 1
                if not (batch["url"][i] or "").strip():
                    counts["dropped_no_url"] += 1
                elif not (batch[caption][i] or "").strip():
                    counts["dropped_no_caption"] += 1
                else:
                    keep.append(i)
            rows = {name: [values[i] for i in keep] for name, values in batch.items()}
            if not self.english:
                rows[caption] = [normalize_caption(c) for c in rows[caption]]
            batches.append(pa.Table.from_pydict(rows, schema=features.arrow_schema))
            if take is not None and passed >= take:
                break
        table = pa.concat_tables(batches) if batches else features.arrow_schema.empty_table()
        counts["kept"] = table.num_rows
        return table, {k: v for k, v in counts.items() if v or not k.startswith("dropped_")}
