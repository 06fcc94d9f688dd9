"""`waon extract`'s job: one WARC file -> Japanese (image URL, caption) pairs, caption steps, exact dedup.

Extraction is not a ``datasets`` step: WARC records stream through
:class:`~waon_hf.steps.extract.PageExtractor` in the shard worker (a WARC file is not a table, and
most records are rejected before anything is built); the surviving pairs become a table that the
caption steps run on.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import pyarrow as pa
from tqdm.auto import tqdm

from waon_hf.pipeline.contract import ShardContext, ShardJob, step_summary
from waon_hf.schema import PAIR_COLUMNS, empty_pairs
from waon_hf.sources.warc import DEFAULT_MAX_PAYLOAD_BYTES, iter_html_responses
from waon_hf.stats import Stats
from waon_hf.steps.dedup import ExactDedup
from waon_hf.steps.extract import ExtractConfig, PageExtractor
from waon_hf.steps.text_filters import default_caption_steps

BATCH_ROWS = 20_000  # pairs per Arrow record batch: Arrow holds strings far more compactly than lists


@dataclasses.dataclass
class ExtractJob(ShardJob):
    """Everything an extraction shard worker needs; picklable (steps hold config only)."""

    stage = "extract"

    extract: ExtractConfig = dataclasses.field(default_factory=ExtractConfig)
    steps: list = dataclasses.field(default_factory=default_caption_steps)
    dedup: ExactDedup = dataclasses.field(default_factory=ExactDedup)
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    dataset_name: str = "waon-extract"

    def __post_init__(self) -> None:
        self.global_steps = [self.dedup]
        super().__post_init__()

    def describe(self) -> dict:
        return {"stage": self.stage, "langid": self.extract.langid, "extract": dataclasses.asdict(self.extract),
                "max_payload_bytes": self.max_payload_bytes, "steps": [step_summary(s) for s in self.steps],
                "global_steps": [step_summary(g) for g in self.global_steps]}

    def read(self, ctx: ShardContext, stats: Stats) -> pa.Table:
        source = ctx.source
        warc_counts: Counter = Counter()
        page_counts: Counter = Counter()
        extractor = PageExtractor(self.extract)
        pairs = empty_pairs()
        batches: list[pa.RecordBatch] = []
        pages = iter_html_responses(source.location, warc_counts, self.max_payload_bytes)
        if ctx.show_progress:  # one process: a per-page bar inside the shard bar
            pages = tqdm(pages, desc=f"shard {ctx.index}", unit="page", leave=False, mininterval=1.0)
        for page in pages:
            result = extractor.extract(page.body, page.url, page.content_type)
            page_counts.update(result.counts)
            for url, caption, caption_source in result.pairs:
                pairs["url"].append(url)
                pairs["caption"].append(caption)
                pairs["caption_source"].append(caption_source)
                pairs["page_url"].append(page.url)
                pairs["page_title"].append(result.title)
                pairs["crawl"].append(source.crawl)
                pairs["warc_file"].append(source.public_location)
                pairs["warc_record_id"].append(page.record_id)
            if len(pairs["url"]) >= BATCH_ROWS:
                batches.append(_to_batch(pairs))
                pairs = empty_pairs()
        batches.append(_to_batch(pairs))
        stats.add_stage("warc", warc_counts)
        stats.add_stage("extract", page_counts)
        return pa.Table.from_batches(batches)


def _to_batch(pairs: dict[str, list]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array(pairs[name], pa.string()) for name in PAIR_COLUMNS],
                                      names=list(PAIR_COLUMNS))


def run_extract(sources, output_dir, job: ExtractJob | None = None, *, workers: int = 1, overwrite: bool = False,
                executor=None, slice_info: dict | None = None) -> Stats:
    """Extract, filter and deduplicate pairs from WARC files into a Hub-ready dataset folder."""
    from waon_hf.pipeline.runner import run_sharded

    return run_sharded(sources, output_dir, job or ExtractJob(), workers=workers, overwrite=overwrite,
                       executor=executor, slice_info=slice_info)
