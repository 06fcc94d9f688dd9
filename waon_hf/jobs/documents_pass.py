"""Pairs and documents from one read of each WARC file (`waon documents --pairs-output`).

:class:`PairsAndDocumentsJob` is the pairs stage (:class:`~waon_hf.jobs.extract.ExtractJob`: its
rows, steps, exact dedup and dataset are exactly a pairs-only run's) whose ``read`` also turns each
page into a document and writes the documents stage's shard for the same input file, through that
stage's :class:`~waon_hf.pipeline.layout.ShardLayout` (parquet, then its marker), before the pairs
shard is written. A killed run redoes a file whose pairs shard is missing (rewriting its documents
shard, identically); the documents stage then finds every shard done and only finalizes.
The WARC is downloaded, decompressed and split into records once; each page is parsed twice (the
pair extractor's byte-level rejection and the document rules need different trees).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter

import datasets
import pyarrow as pa

from waon_hf.jobs.documents import DOCUMENT_SCHEMA, DocumentsJob
from waon_hf.jobs.extract import BATCH_ROWS, ExtractJob
from waon_hf.pipeline.contract import ShardContext
from waon_hf.pipeline.layout import ShardLayout
from waon_hf.schema import PAIR_COLUMNS, empty_pairs
from waon_hf.sources.warc import iter_html_responses
from waon_hf.stats import Stats
from waon_hf.steps.document_pages import DocumentExtractor
from waon_hf.steps.extract import PageExtractor


def pairs_batch(pairs: dict[str, list]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array(pairs[name], pa.string()) for name in PAIR_COLUMNS],
                                      names=list(PAIR_COLUMNS))


@dataclasses.dataclass
class PairsAndDocumentsJob(ExtractJob):
    """The pairs stage, also writing the documents stage's shards from the same pages."""

    documents: DocumentsJob = dataclasses.field(default_factory=DocumentsJob)
    documents_root: str = ""  # the documents stage's folder

    @classmethod
    def from_extract_job(cls, job: ExtractJob, documents: DocumentsJob, documents_root: str) -> PairsAndDocumentsJob:
        """The same pairs stage as ``job`` (its settings, steps and dedup), with the documents added."""
        settings = {f.name: getattr(job, f.name) for f in dataclasses.fields(ExtractJob) if f.init}
        return cls(**settings, documents=documents, documents_root=str(documents_root))

    def read(self, ctx: ShardContext, stats: Stats) -> pa.Table:
        started = time.monotonic()
        source = ctx.source
        warc_counts: Counter = Counter()
        page_counts: Counter = Counter()
        doc_counts: Counter = Counter()
        pair_extractor = PageExtractor(self.extract)
        doc_extractor = DocumentExtractor(self.documents.document)
        pairs = empty_pairs()
        batches: list[pa.RecordBatch] = []
        docs: dict[str, list] = {name: [] for name in DOCUMENT_SCHEMA.names}
        for page in iter_html_responses(source.location, warc_counts, self.max_payload_bytes):
            result = pair_extractor.extract(page.body, page.url, page.content_type)
            page_counts.update(result.counts)
            for url, caption, caption_source in result.pairs:
                for name, value in (("url", url), ("caption", caption), ("caption_source", caption_source),
                                    ("page_url", page.url), ("page_title", result.title), ("crawl", source.crawl),
                                    ("warc_file", source.location), ("warc_record_id", page.record_id)):
                    pairs[name].append(value)
            if len(pairs["url"]) >= BATCH_ROWS:
                batches.append(pairs_batch(pairs))
                pairs = empty_pairs()
            doc_counts["pages"] += 1
            doc = doc_extractor.extract(page.body, page.url, page.content_type, doc_counts)
            if doc is not None:
                for name, value in (("doc_id", page.record_id), ("url", page.url), ("page_title", doc.title),
                                    ("crawl", source.crawl), ("warc_file", source.location),
                                    ("sentences", doc.sentences), ("image_urls", doc.image_urls),
                                    ("image_positions", doc.image_positions), ("image_alts", doc.image_alts)):
                    docs[name].append(value)
        batches.append(pairs_batch(pairs))
        stats.add_stage("warc", warc_counts)
        stats.add_stage("extract", page_counts)

        doc_stats = Stats()
        doc_stats.add_stage("warc", warc_counts)
        doc_stats.add_stage("document_pages", doc_counts)
        layout = ShardLayout(self.documents_root)
        doc_ctx = ShardContext(ctx.index, source, layout)
        rows = self.documents.transform(datasets.Dataset(pa.table(docs, schema=DOCUMENT_SCHEMA)), doc_ctx, doc_stats)
        layout.write_shard(ctx.index, source, rows, doc_stats, started)
        return pa.Table.from_batches(batches)
