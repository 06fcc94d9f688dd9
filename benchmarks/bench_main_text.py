"""Main text and sentences on real pages: the rule vs trafilatura, the splitter vs ja-sentence-segmenter.

Each case is ``NAME=PAGE.html:EXPECTED`` (expected text as .txt, or the suite's expected .html);
precision/recall are over character bigrams (whitespace removed). Default: the shipped pages
(``tests/data/ja_pages``). trafilatura and ja-sentence-segmenter come with the ``bench`` extra.

Usage: ``python benchmarks/bench_main_text.py [NAME=page.html:expected ...]``
"""

from __future__ import annotations

import re
import sys
import time
import unicodedata
from collections import Counter
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser

from waon_hf.text.main_content import Block, main_content
from waon_hf.text.sentences import split_raw

PAGES = Path(__file__).resolve().parent.parent / "tests" / "data" / "ja_pages"
DEFAULT = [f"lhpat-tm={PAGES / 'lhpat-tm.html'}:{PAGES / 'lhpat-tm.expected.txt'}",
           f"hukumusume={PAGES / 'hukumusume.html'}:"]


def bigrams(text: str) -> Counter:
    text = re.sub(r"\s+", "", text)
    return Counter(text[i:i + 2] for i in range(len(text) - 1))


def precision_recall(got: str, expected: str) -> tuple[float, float]:
    g, e = bigrams(got), bigrams(expected)
    overlap = sum((g & e).values())
    return overlap / max(1, sum(g.values())), overlap / max(1, sum(e.values()))


def rule_text(html: bytes) -> str:
    return "\n".join(i.text for i in main_content(LexborHTMLParser(html)) if isinstance(i, Block))


def expected_text(path: str) -> str | None:
    if not path:
        return None
    data = Path(path).read_bytes()
    if path.endswith(".txt"):
        return data.decode("utf-8")
    tree = LexborHTMLParser(data)
    return (tree.body or tree.root).text(separator="\n")


def timed(fn, arg, n: int = 10):
    fn(arg)
    t0 = time.perf_counter()
    for _ in range(n):
        out = fn(arg)
    return out, (time.perf_counter() - t0) / n * 1000


def main(cases: list[str]) -> None:
    import trafilatura

    blocks = []
    for case in cases:
        name, _, rest = case.partition("=")
        page, _, expected_path = rest.partition(":")
        html = Path(page).read_bytes()
        expected = expected_text(expected_path)
        for label, fn in (("rule", rule_text), ("trafilatura", lambda b: trafilatura.extract(
                b.decode("utf-8", "replace")) or "")):
            out, ms = timed(fn, html)
            pr = " P={:.3f} R={:.3f}".format(*precision_recall(out, expected)) if expected else ""
            print(f"{name:16s} {label:12s} {ms:7.2f} ms/page{pr}")
        blocks += [i.text for i in main_content(LexborHTMLParser(html)) if isinstance(i, Block)]

    import functools

    from ja_sentence_segmenter.common.pipeline import make_pipeline
    from ja_sentence_segmenter.concatenate.simple_concatenator import concatenate_matching
    from ja_sentence_segmenter.normalize.neologd_normalizer import normalize
    from ja_sentence_segmenter.split.simple_splitter import split_newline, split_punctuation

    segmenter = make_pipeline(normalize, split_newline, functools.partial(
        concatenate_matching, former_matching_rule=r"^(?P<result>.+)([\xa5\u3001\u3002])$",
        remove_former_matched=False), split_punctuation)
    chars = sum(map(len, blocks))
    results = {}
    for label, fn in (("rule", split_raw), ("ja-sentence-segmenter", lambda t: [s for s in segmenter(t) if s.strip()])):
        t0 = time.perf_counter()
        results[label] = [fn(b) for b in blocks]
        dt = time.perf_counter() - t0
        print(f"{label:22s} {len(blocks)} blocks, {chars} chars: {chars / dt / 1e6:.3f} M chars/s, "
              f"{sum(map(len, results[label]))} sentences")

    def norm(sentences):
        return [unicodedata.normalize("NFKC", s).replace(" ", "").replace("\u3000", "") for s in sentences]
    same = sum(norm(a) == norm(b) for a, b in zip(results["rule"], results["ja-sentence-segmenter"], strict=True))
    print(f"same boundaries (NFKC, spaces removed): {same}/{len(blocks)} blocks")


if __name__ == "__main__":
    main(sys.argv[1:] or DEFAULT)
