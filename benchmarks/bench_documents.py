"""Throughput of the documents' WARC pass next to the pairs-only pass, and the memory of the cross-document count.

(a) The same WARC read by ``ExtractJob.read`` (pages -> pairs, the pairs-only pass) and by
    ``DocumentsJob.read`` (pages -> documents: main content, sentences, image positions), each
    best of ``--repeat``, in this process; pages/s = HTML responses / seconds.
    Also the one-pass job (``PairsAndDocumentsJob.read``: pairs and documents from one read, the
    documents' shard written) next to the two separate passes.
(b) ``frequent_hashes`` (exact (pHash, document) counting, the cross-document rule) on ``--images``
    synthetic image rows (Zipf-distributed pHashes, ~5 images a document); peak memory from
    ``tracemalloc`` (numpy reports its buffers to it) and wall time.

Usage: ``python benchmarks/bench_documents.py [--warc samples/sample.warc.gz] [--images 10000000]``.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np

from waon_hf.jobs.documents import DocumentsJob
from waon_hf.jobs.extract import ExtractJob
from waon_hf.pipeline.contract import ShardContext
from waon_hf.sources.commoncrawl import SourceFile
from waon_hf.sources.warc import iter_html_responses
from waon_hf.stats import Stats
from waon_hf.steps.document_dedup import frequent_hashes


def time_read(job, warc: str, repeat: int) -> tuple[float, int, Stats]:
    ctx = ShardContext(0, SourceFile(warc, ""), layout=None)
    best, rows, stats = float("inf"), 0, Stats()
    for _ in range(repeat):
        stats = Stats()
        t0 = time.perf_counter()
        table = job.read(ctx, stats)
        best = min(best, time.perf_counter() - t0)
        rows = table.num_rows
    return best, rows, stats


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--warc", default="samples/sample.warc.gz")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--images", type=int, default=10_000_000)
    args = p.parse_args()

    pages = sum(1 for _ in iter_html_responses(args.warc, Counter()))
    print(f"{args.warc}: {pages} HTML responses")
    import tempfile

    from waon_hf.jobs.documents_pass import PairsAndDocumentsJob

    docs_dir = tempfile.mkdtemp(prefix="bench-documents-")
    (Path(docs_dir) / ".waon" / "shards").mkdir(parents=True)
    both = PairsAndDocumentsJob.from_extract_job(ExtractJob(), DocumentsJob(), docs_dir)
    for name, job in (("pairs (ExtractJob.read)", ExtractJob()), ("documents (DocumentsJob.read)", DocumentsJob()),
                      ("both in one pass", both)):
        seconds, rows, stats = time_read(job, args.warc, args.repeat)
        print(f"{name:32s} {seconds:7.3f} s  {pages / seconds:8.0f} pages/s  rows={rows}")

    rng = np.random.default_rng(0)
    n = args.images
    hashes = rng.zipf(1.3, size=n).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)  # a few very common images
    docs = (np.arange(n, dtype=np.uint64) // np.uint64(5))
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    frequent = frequent_hashes(hashes, docs, 10)
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    inputs = hashes.nbytes + docs.nbytes
    print(f"cross-document count over {n:,} images: {seconds:.2f} s, inputs {inputs / 2**20:.0f} MiB, "
          f"extra peak {peak / 2**20:.0f} MiB, {len(frequent):,} hashes in >= 10 documents")


if __name__ == "__main__":
    main()
