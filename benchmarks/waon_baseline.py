"""WAON's own extraction method, re-implemented as the speed baseline of ``bench_extract.py``.

The method, as WAON describes it: read the WARC with warcio's ``ArchiveIterator``; for each HTML
response take the main text with trafilatura (``extract(html, favor_precision=True)``), identify its
language with lingua (a detector over all languages, built once), keep the pages detected as
Japanese, and on those walk every ``<img>`` with BeautifulSoup (``html.parser``): the image URL is
``urljoin(page_url, src)`` and the caption is the ``<figcaption>`` of the enclosing ``<figure>``,
else the ``alt`` text.

Only the extraction is re-implemented (no dedup, no caption filters, no output), so the baseline
rate is an upper bound on what that pipeline achieves. The payload bytes are handed to trafilatura
and BeautifulSoup as they are; both detect the charset themselves.

Needs the ``bench`` extra (warcio, trafilatura, lingua-language-detector, beautifulsoup4).
"""

from __future__ import annotations

import os
from urllib.parse import urljoin

import trafilatura
from bs4 import BeautifulSoup
from lingua import Language, LanguageDetectorBuilder
from warcio.archiveiterator import ArchiveIterator

HTML_TYPES = ("text/html", "application/xhtml+xml")

_detector = None


def build_detector(preload: bool = True):
    """The lingua detector over all languages, built once per process.

    lingua loads a language's models on first use; ``preload`` loads them all now, so that the model
    load (seconds, about a gigabyte) is not charged to the first pages timed. Detection results are
    the same either way.
    """
    global _detector
    if _detector is None:
        builder = LanguageDetectorBuilder.from_all_languages()
        if preload:
            builder = builder.with_preloaded_language_models()
        _detector = builder.build()
    return _detector


def is_japanese(text: str | None) -> bool:
    """lingua's verdict on the main text of a page."""
    if not text:
        return False
    return build_detector().detect_language_of(text) == Language.JAPANESE


def main_text(html: bytes) -> str | None:
    """trafilatura's main-text extraction, with WAON's setting."""
    return trafilatura.extract(html, favor_precision=True)


def _caption(img) -> str:
    """The figcaption of the enclosing figure when it has text, else the alt text."""
    figure = img.find_parent("figure")
    if figure is not None:
        figcaption = figure.find("figcaption")
        if figcaption is not None:
            text = figcaption.get_text(" ", strip=True)
            if text:
                return text
    return (img.get("alt") or "").strip()


def image_pairs(html: bytes, page_url: str) -> list[tuple[str, str]]:
    """(image URL, caption) for every ``<img>`` with a ``src`` and a non-empty caption."""
    soup = BeautifulSoup(html, "html.parser")
    pairs = []
    for img in soup.find_all("img"):
        src = (img.get("src") or "").strip()
        if not src:
            continue
        caption = _caption(img)
        if caption:
            pairs.append((urljoin(page_url, src), caption))
    return pairs


def _is_html_response(record) -> bool:
    if record.rec_type != "response" or record.http_headers is None:
        return False
    content_type = record.http_headers.get_header("Content-Type") or ""
    return content_type.split(";", 1)[0].strip().lower() in HTML_TYPES


def baseline_extract(path: str | os.PathLike, limit_pages: int | None = None) -> tuple[int, int, int]:
    """Run WAON's method over a WARC file; stop after ``limit_pages`` response records.

    Returns ``(n_pages_read, n_japanese_pages, n_pairs)``; pages are WARC ``response`` records.
    """
    n_pages = n_japanese = n_pairs = 0
    with open(path, "rb") as stream:
        for record in ArchiveIterator(stream):
            if record.rec_type != "response":
                continue
            if limit_pages is not None and n_pages >= limit_pages:
                break
            n_pages += 1
            if not _is_html_response(record):
                continue
            html = record.content_stream().read()
            if not is_japanese(main_text(html)):
                continue
            n_japanese += 1
            page_url = record.rec_headers.get_header("WARC-Target-URI")
            n_pairs += len(image_pairs(html, page_url))
    return n_pages, n_japanese, n_pairs


if __name__ == "__main__":
    import sys

    build_detector()
    print(baseline_extract(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None))
