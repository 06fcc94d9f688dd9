"""Japanese / Chinese / Korean confusion of the page detector and the caption rule.

Three measurements, printed as Markdown:
1. detectors (pycld2, fasttext lid.176) on hand-written short strings (captions) and paragraphs
   from ``tests/langid_corpus.py``;
2. the caption rule of ``JapaneseCaption`` (kana present) on the same short strings;
3. the page decision of ``PageExtractor`` (kana pre-check, then the detector on the first
   ``langid_chars`` characters of visible text) on synthetic pages of every language and encoding.

    python benchmarks/langid_confusion.py --pages 2000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.langid_corpus import LONG, SHORT  # noqa: E402
from waon_hf.sources.warc import iter_html_responses  # noqa: E402
from waon_hf.steps.extract import ExtractConfig, PageExtractor  # noqa: E402
from waon_hf.steps.text_filters import JapaneseCaption  # noqa: E402
from waon_hf.testing.synthetic import generate_corpus  # noqa: E402
from waon_hf.text.langid import get_detector  # noqa: E402


def _fmt(counter: Counter) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counter.most_common())


def strings_table() -> list[str]:
    lines = ["| detector | set | true language | n | predicted |", "|---|---|---|---:|---|"]
    for name in ("pycld2", "fasttext"):
        detect = get_detector(name)
        for set_name, data in (("short", SHORT), ("paragraph", LONG)):
            for lang, texts in data.items():
                predicted = _fmt(Counter(detect(t)[0] for t in texts))
                lines.append(f"| {name} | {set_name} | {lang} | {len(texts)} | {predicted} |")
    step = JapaneseCaption()
    for lang, texts in SHORT.items():
        reasons = Counter(r or "kept" for r in step.drop_reasons({"caption": texts}))
        lines.append(f"| kana rule | short | {lang} | {len(texts)} | {_fmt(reasons)} |")
    return lines


def pages_table(n_pages: int, langid: str) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pages.warc.gz"
        manifest = generate_corpus(path, n_pages=n_pages, ja_fraction=0.5, seed=7, target_bytes=8000, n_images=4)
        truth = {p["url"]: (p["lang"], p["encoding"]) for p in manifest["pages"]}
        extractor = PageExtractor(ExtractConfig(langid=langid))
        confusion: dict[str, Counter] = defaultdict(Counter)
        for page in iter_html_responses(str(path), Counter()):
            lang, _ = truth[page.url]
            result = extractor.extract(page.body, page.url, page.content_type)
            confusion[lang]["ja" if result.counts["japanese_pages"] else "rejected"] += 1
    lines = ["| detector | true language | pages | kept as Japanese | rejected |", "|---|---|---:|---:|---:|"]
    for lang in sorted(confusion):
        c = confusion[lang]
        lines.append(f"| {langid} | {lang} | {sum(c.values())} | {c['ja']} | {c['rejected']} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=2000)
    args = parser.parse_args()
    print("\n".join(strings_table()))
    print()
    for langid in ("pycld2", "fasttext"):
        print("\n".join(pages_table(args.pages, langid)))
        print()


if __name__ == "__main__":
    main()
