"""HTML page -> an interleaved document: main-text sentences and the images at their places.

The first step of the MMC4 / VILA-jp recipe. A page becomes a document when it is Japanese (judged on
its main text: the kana-rich script shortcut, else the configured detector). Its main content
(:mod:`waon_hf.text.main_content`) is split into sentences (:mod:`waon_hf.text.sentences`); every
``<img>`` in it keeps its position, the number of sentences before it (0: before the first sentence).

Image URLs follow the pair rules: lazy-loading attributes first, then ``src``, then the largest
``srcset`` candidate; resolved against ``<base href>`` or the page URL with the same
:class:`~waon_hf.steps.extract.UrlResolver`; spacers (a ``width``/``height`` under
``min_img_side``) and icons (``.svg``, ``.ico``) skipped; a URL repeated on the page is kept once.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from urllib.parse import urljoin

from selectolax.lexbor import LexborHTMLParser

from waon_hf.steps.extract import UrlResolver
from waon_hf.text.decode import declared_encoding, decode_html
from waon_hf.text.langid import get_detector
from waon_hf.text.main_content import Block, ImageItem, main_content
from waon_hf.text.scripts import HANGUL_RE, KANA_NCR_RE, KANA_RE, KANJI_RE, may_contain_kana
from waon_hf.text.sentences import split_sentences

_URL_ATTRS = ("data-src", "data-original", "data-lazy-src", "src")
_SRCSET_ATTRS = ("srcset", "data-srcset")
_ICON_EXTS = (".svg", ".svgz", ".ico")


@dataclasses.dataclass
class DocumentConfig:
    """Page-level settings of the document extractor."""

    langid: str = "pycld2"
    langid_chars: int = 400  # characters of main text given to the detector
    min_img_side: int = 10  # width/height attributes below this mark spacers and trackers
    sibling_ratio: float = 0.2  # main_content: siblings of the best element scoring this share join it
    max_link_density: float = 0.5  # main_content: blocks whose text is more links than this are dropped
    # Larger pages are skipped (counted html_too_large): their main-content walk costs seconds, and a
    # page of 10-100 sentences is far smaller (inline scripts included) in the crawls we measured.
    max_html_bytes: int = 2_000_000


@dataclasses.dataclass
class Document:
    """One page's document: sentences, and images with their positions (sentences before them)."""

    title: str
    sentences: list[str]
    image_urls: list[str]
    image_positions: list[int]
    image_alts: list[str]


def largest_srcset_candidate(value: str | None) -> str | None:
    """The URL of a ``srcset``'s largest candidate (``w`` descriptors, then ``x``; none counts as 1x)."""
    best, best_size = None, -1.0
    for part in (value or "").split(","):
        tokens = part.split()
        if not tokens:
            continue
        size = 1.0
        if len(tokens) > 1 and tokens[1][-1:].lower() in ("w", "x"):
            try:
                size = float(tokens[1][:-1]) * (1.0 if tokens[1][-1].lower() == "w" else 10_000.0)
            except ValueError:
                size = 1.0
        if size > best_size:
            best, best_size = tokens[0], size
    return best


def image_reference(attrs: dict) -> str | None:
    """The URL an ``<img>`` loads (lazy-loading attributes first; ``data:`` URIs are not images to fetch)."""
    for name in _URL_ATTRS:
        value = (attrs.get(name) or "").strip()
        if value and value[:5].lower() != "data:":
            return value
    for name in _SRCSET_ATTRS:
        best = largest_srcset_candidate(attrs.get(name))
        if best and best[:5].lower() != "data:":
            return best
    return None


def _valid_utf8(data: bytes) -> bool:
    """Whether bytes declared UTF-8 are (a Shift_JIS page mislabelled UTF-8 has no UTF-8 kana bytes, but
    is invalid UTF-8: it must be decoded, not rejected)."""
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _side(value: str | None) -> int | None:
    digits = ""
    for ch in (value or "").strip():
        if not ch.isdigit():
            break
        digits += ch
    return int(digits) if digits else None


class DocumentExtractor:
    """Turns one HTML payload into a :class:`Document` (or None, with the reason counted)."""

    def __init__(self, config: DocumentConfig | None = None):
        self.config = config or DocumentConfig()
        self._detect = None

    def _is_japanese(self, text: str) -> tuple[bool, str]:
        if not HANGUL_RE.search(text):
            kana = len(KANA_RE.findall(text))
            if kana >= 20 and kana >= 0.2 * (kana + len(KANJI_RE.findall(text))):
                return True, "script"
        if self._detect is None:
            self._detect = get_detector(self.config.langid)
        return self._detect(text)[0] == "ja", "detector"

    def extract(self, body: bytes, page_url: str, content_type: str | None, counts: Counter) -> Document | None:
        if b"\x00" in body[:2048]:
            counts["binary_payload"] += 1
            return None
        if len(body) > self.config.max_html_bytes:
            counts["html_too_large"] += 1
            return None
        declared = declared_encoding(body, content_type)
        codec, source = declared
        maybe_kana = may_contain_kana(body, codec)
        if not maybe_kana and (codec != "utf-8" or _valid_utf8(body)):
            counts["no_kana"] += 1  # rejected from the bytes, without decoding (most pages of a crawl)
            return None
        if codec == "utf-8" and source != "bom" and maybe_kana:
            tree = LexborHTMLParser(body)  # declared UTF-8 with UTF-8 kana bytes: parsed as it is
        else:
            decoded = decode_html(body, content_type, declared)
            if not KANA_RE.search(decoded.text) and not KANA_NCR_RE.search(decoded.text):
                counts["no_kana"] += 1
                return None
            tree = LexborHTMLParser(decoded.text)
        titles = tree.tags("title")
        title = " ".join(titles[0].text().split()) if titles else ""
        base = self._base_url(tree, page_url)
        items = main_content(tree, sibling_ratio=self.config.sibling_ratio,
                             max_link_density=self.config.max_link_density)
        sample = " ".join(i.text for i in items if isinstance(i, Block))[: self.config.langid_chars]
        if not sample:
            counts["no_main_text"] += 1
            return None
        japanese, how = self._is_japanese(sample)
        if not japanese:
            counts["not_japanese"] += 1
            return None
        counts["japanese_pages"] += 1
        counts[f"japanese_by_{how}"] += 1
        return self._document(items, base, title, counts)

    @staticmethod
    def _base_url(tree, page_url: str) -> str:
        href = next((b.attributes.get("href") for b in tree.tags("base") if b.attributes.get("href")), None)
        if href and href.strip():
            try:
                return urljoin(page_url, href.strip())
            except ValueError:
                return page_url
        return page_url

    def _document(self, items, base: str, title: str, counts: Counter) -> Document:
        resolver = UrlResolver(base)
        doc = Document(title, [], [], [], [])
        seen: set[str] = set()
        min_side = self.config.min_img_side
        for item in items:
            if isinstance(item, Block):
                doc.sentences.extend(split_sentences(item.text))
                continue
            assert isinstance(item, ImageItem)
            counts["img_tags"] += 1
            ref = image_reference(item.attrs)
            if not ref:
                counts["img_no_url"] += 1
                continue
            url, problem = resolver.resolve(ref)
            if problem:
                counts[problem] += 1
                continue
            width, height = _side(item.attrs.get("width")), _side(item.attrs.get("height"))
            if (width is not None and width < min_side) or (height is not None and height < min_side):
                counts["img_tracker"] += 1
                continue
            if url.rsplit("?", 1)[0].lower().endswith(_ICON_EXTS):
                counts["img_icon"] += 1
                continue
            if url in seen:
                counts["img_repeated_on_page"] += 1
                continue
            seen.add(url)
            doc.image_urls.append(url)
            doc.image_positions.append(len(doc.sentences))
            doc.image_alts.append(" ".join((item.attrs.get("alt") or "").split()))
        counts["sentences"] += len(doc.sentences)
        counts["images"] += len(doc.image_urls)
        return doc
