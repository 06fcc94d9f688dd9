"""Interleaved A/B of two versions of ``waon_hf/steps/extract.py`` in one process (CPU seconds, best of N).

Both versions run over the same in-memory pages, alternating, so that the load of a shared machine
hits both alike. ``OLD`` is a copy of an earlier ``extract.py`` (e.g. ``git show REV:waon_hf/steps/extract.py``)
importable as a module; it uses the current ``waon_hf`` for everything else.

Usage: ``python benchmarks/ab_extract.py OLD.py FILE.warc.gz [...] [--rounds 10]``
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections import Counter


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    spec = importlib.util.spec_from_file_location("old_extract", args.old)
    old = importlib.util.module_from_spec(spec)
    sys.modules["old_extract"] = old  # dataclasses look their module up
    spec.loader.exec_module(old)
    from waon_hf.sources.warc import iter_html_responses
    from waon_hf.steps.extract import PageExtractor

    pages = [(p.body, p.url, p.content_type) for f in args.files for p in iter_html_responses(f, Counter())]
    variants = {"old": old.PageExtractor(), "new": PageExtractor()}
    best = dict.fromkeys(variants, float("inf"))
    pairs = {}
    for _ in range(args.rounds):
        for name, extractor in variants.items():
            start = time.process_time()
            pairs[name] = sum(len(extractor.extract(*page).pairs) for page in pages)
            best[name] = min(best[name], time.process_time() - start)
    for name in variants:
        print(f"{name}: {len(pages):,} pages, {pairs[name]:,} pairs, best {best[name]:.3f} s CPU, "
              f"{len(pages) / best[name]:,.0f} pages/s, {pairs[name] / best[name]:,.0f} pairs/s")
    print(f"new / old time: {best['new'] / best['old']:.3f}")


if __name__ == "__main__":
    main()
