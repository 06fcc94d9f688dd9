"""Pages and pairs per second of ``PageExtractor.extract`` alone, over the HTML responses of WARC files.

The payloads are read into memory first, so only the extractor is timed (decode, budget check,
parse, language identification, image walk, URL resolution). Best of ``--repeat`` passes; rates
are given per CPU second (``time.process_time``), steadier than wall time on a shared machine.

Usage: ``python benchmarks/bench_page_loop.py FILE.warc.gz [...] [--repeat 3]``; a synthetic corpus
like bench_extract.py's is written with ``--make PATH --pages N`` (90% Japanese, realistic charsets).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--make", help="write a synthetic corpus here first")
    ap.add_argument("--pages", type=int, default=5000)
    args = ap.parse_args()
    files = list(args.files)
    if args.make:
        from waon_hf.testing.synthetic import generate_corpus

        generate_corpus(args.make, n_pages=args.pages, ja_fraction=0.9, seed=0, legacy_every=10)
        files.append(args.make)
    from waon_hf.sources.warc import iter_html_responses
    from waon_hf.steps.extract import PageExtractor

    pages = [(p.body, p.url, p.content_type) for f in files for p in iter_html_responses(f, Counter())]
    extractor = PageExtractor()
    best, best_cpu, pairs = float("inf"), float("inf"), 0
    for _ in range(args.repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        pairs = sum(len(extractor.extract(*page).pairs) for page in pages)
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
    print(f"{len(pages):,} pages, {pairs:,} pairs: best of {args.repeat} {best:.3f} s wall, {best_cpu:.3f} s CPU; "
          f"{len(pages) / best_cpu:,.0f} pages/s, {pairs / best_cpu:,.0f} pairs/s (CPU)")


if __name__ == "__main__":
    main()
