"""HTML page -> Japanese (image URL, caption) pairs.

The order of work is chosen so that the common case (a page that is not Japanese) costs as little
as possible: decode, a kana pre-check on the decoded text, and only then the full parse, the
language identification of the visible text, and the ``<img>`` walk.

Pair rules (WAON's, made precise):
* every ``<img>``; its URL is the first non-empty, non-``data:`` value among ``data-src``,
  ``data-original``, ``data-lazy-src``, ``src``, the best ``srcset`` candidate and the best
  ``data-srcset`` candidate (lazy-loading pages keep a placeholder in ``src``);
* resolved against ``<base href>`` (itself resolved against the page URL) or the page URL,
  fragment removed, http(s) only, as a browser parses it (WHATWG URL, :mod:`waon_hf.steps.image_urls`):
  references a browser rejects (bad host or port) are skipped as ``img_bad_url``;
* skipped: spacers and trackers (``width``/``height`` attribute under ``min_img_side``, or a file
  name such as ``spacer.gif``), icons and vector art by extension (``.svg``, ``.svgz``, ``.ico``);
* caption = text of the ``<figcaption>`` of the nearest enclosing ``<figure>`` when non-empty,
  else ``alt``; images with neither are skipped.
"""

from __future__ import annotations

import codecs
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urljoin

from selectolax.lexbor import LexborHTMLParser

from waon_hf.steps.html_budget import within_budget
from waon_hf.steps.image_urls import UrlResolver
from waon_hf.text.decode import declared_encoding, decode_html
from waon_hf.text.langid import get_detector
from waon_hf.text.scripts import HANGUL_RE, KANA_NCR_RE, KANA_RE, KANJI_RE, may_contain_kana

_URL_ATTRS = ("data-src", "data-original", "data-lazy-src", "src")
_SRCSET_ATTRS = ("srcset", "data-srcset")
_SPACER_NAMES = frozenset({"spacer.gif", "pixel.gif", "blank.gif", "1x1.gif", "transparent.gif", "clear.gif",
                           "spacer.png", "pixel.png", "blank.png", "1x1.png", "transparent.png"})
_ICON_EXTS = (".svg", ".svgz", ".ico")
_NON_TEXT_TAGS = frozenset({"script", "style", "noscript", "template"})
_NAMED_LANGS = frozenset({"zh", "zh-Hant", "ko", "en"})
_CONTINUATION_BYTES = bytes(range(0x80, 0xC0))
_ZH_KO_CODECS = frozenset({"gb18030", "big5hkscs", "cp950", "cp949"})
_DIGITS_RE = re.compile(r"\s*(\d+)")
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)

logger = logging.getLogger(__name__)


@dataclass
class ExtractConfig:
    """Page-level settings of the extractor."""

    langid: str = "pycld2"  # see waon_hf.text.langid.DETECTORS
    kana_precheck: bool = True  # reject pages with no kana at all before parsing
    # Pages declared GB2312/GBK/GB18030, Big5 or EUC-KR are Chinese or Korean sites: reject them
    # without decoding (those encodings can hold kana, but Japanese sites do not use them).
    reject_zh_ko_charsets: bool = True
    langid_chars: int = 400  # characters of visible text given to the detector (CLD2: ~0.1 ms per 1,000)
    # Text whose kana are at least 20% of its kana + kanji (and 20 or more, with no hangul) is
    # Japanese without asking the detector: Chinese has no kana and Korean has hangul. Mixed or
    # kana-poor text still goes to the detector. Both paths are counted (japanese_by_*).
    script_shortcut: bool = True
    min_img_side: int = 10  # width/height attributes below this mark spacers and trackers
    # Budget of the tree builder's work on deeply nested markup (see waon_hf.steps.html_budget): the
    # sum over block start tags of the elements open there. 16M is about 30 ms of parsing at worst
    # (8,000 nested <div> ask 32M and take 0.2 s; real pages ask under 100,000). Pages over it are
    # skipped unparsed as ``page_too_deep``.
    max_nesting_work: int = 16_000_000


@dataclass
class PageResult:
    pairs: list[tuple[str, str, str]] = field(default_factory=list)  # (url, caption, caption_source)
    title: str = ""
    language: str = ""
    counts: Counter = field(default_factory=Counter)


def _collapse(text: str | None) -> str:
    return " ".join(text.split()) if text else ""


def _best_srcset(value: str | None) -> str | None:
    """The largest candidate of a ``srcset`` (by ``w``, then ``x`` descriptor)."""
    if not value:
        return None
    best, best_size = None, -1.0
    for part in value.split(","):
        tokens = part.split()
        if not tokens:
            continue
        size = 1.0
        if len(tokens) > 1:
            desc = tokens[1].lower()
            try:
                size = float(desc[:-1]) * (1.0 if desc.endswith("w") else 10_000.0) if desc[-1] in "wx" else 1.0
            except ValueError:
                size = 1.0
        if size > best_size:
            best, best_size = tokens[0], size
    return best


def _is_utf8(data: bytes, window: int = 2048) -> bool:
    """Whether bytes declared UTF-8 really are, judged on three windows (start, middle, end).

    Guards the byte-level rejection: a Shift_JIS or EUC-JP page mislabelled UTF-8 has no UTF-8
    kana bytes, but it is invalid UTF-8 wherever it has Japanese text, so it goes on to be decoded.
    """
    n = len(data)
    for start in (0, max(0, n // 2 - window // 2), max(0, n - window)):
        chunk = data[start:start + window].lstrip(_CONTINUATION_BYTES)  # start on a character
        try:
            codecs.getincrementaldecoder("utf-8")().decode(chunk, final=start + window >= n)
        except UnicodeDecodeError:
            return False
    return True


def _visible_text(tree, limit: int) -> str:
    """The first ``limit`` characters of the body's text (script/style excluded), in document order.

    Walks text nodes and stops early: the detector needs a sample, not the whole page.
    """
    root = tree.body or tree.root
    if root is None:
        return ""
    parts, n = [], 0
    for node in root.traverse(include_text=True):
        if node.tag != "-text":
            continue
        parent = node.parent
        if parent is not None and parent.tag in _NON_TEXT_TAGS:
            continue
        text = node.text_content
        if text and not text.isspace():
            parts.append(text.strip())
            n += len(parts[-1])
            if n >= limit:
                break
    return " ".join(parts)[:limit]


def _attr_int(value: str | None) -> int | None:
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    m = _DIGITS_RE.match(value)
    return int(m.group(1)) if m else None


def _img_url(attrs: dict) -> tuple[str | None, bool]:
    """The image URL an ``<img>`` loads (lazy-loading attributes first); also whether a data: URI was seen."""
    saw_data_uri = False
    for name in _URL_ATTRS:
        value = attrs.get(name)
        if value:
            value = value.strip()
            if not value:
                continue
            if value[:5].lower() == "data:":
                saw_data_uri = True
                continue
            return value, saw_data_uri
    for name in _SRCSET_ATTRS:
        best = _best_srcset(attrs.get(name))
        if best:
            if best[:5].lower() == "data:":
                saw_data_uri = True
                continue
            return best, saw_data_uri
    return None, saw_data_uri


class PageExtractor:
    """Turns one HTML payload into pairs; holds only config and a lazily loaded detector."""

    def __init__(self, config: ExtractConfig | None = None):
        self.config = config or ExtractConfig()
        self._detect = None
        self._errors_logged: set[str] = set()

    def _language(self, text: str) -> tuple[str, str]:
        """``(language code, how it was decided)``: ``script`` (kana-rich text) or ``detector``."""
        if self.config.script_shortcut and not HANGUL_RE.search(text):
            kana = len(KANA_RE.findall(text))
            if kana >= 20 and kana >= 0.2 * (kana + len(KANJI_RE.findall(text))):
                return "ja", "script"
        if self._detect is None:
            self._detect = get_detector(self.config.langid)
        return self._detect(text)[0], "detector"

    def extract(self, body: bytes, page_url: str, content_type: str | None = None) -> PageResult:
        """Pairs of one page; never raises: a page that breaks the decoder or parser is a counted skip.

        The skip is ``page_error_<ExceptionType>`` (and nothing else of that page is counted): at
        Common Crawl scale every decoder and parser corner case happens, and one page must not fail
        the file it is in.
        """
        try:
            return self._extract(body, page_url, content_type)
        except Exception as e:  # noqa: BLE001 - any failure of one page is that page's skip
            name = f"page_error_{type(e).__name__}"
            if name not in self._errors_logged:
                self._errors_logged.add(name)
                logger.warning("page %s skipped (%s: %s); further pages failing this way are only counted",
                               page_url, type(e).__name__, e)
            result = PageResult()
            result.counts[name] += 1
            return result

    def _extract(self, body: bytes, page_url: str, content_type: str | None) -> PageResult:
        result = PageResult()
        counts = result.counts
        # A UTF-16 page with a byte order mark is full of NUL bytes; it is text, not a binary payload.
        if b"\x00" in body[:2048] and not body.startswith(_UTF16_BOMS):
            counts["binary_payload"] += 1
            return result
        declared = declared_encoding(body, content_type)
        if self.config.reject_zh_ko_charsets and declared[0] in _ZH_KO_CODECS:
            counts["zh_ko_charset"] += 1
            return result
        codec, source = declared
        maybe_kana = may_contain_kana(body, codec)
        if self.config.kana_precheck and not maybe_kana and (codec != "utf-8" or _is_utf8(body)):
            counts["no_kana"] += 1  # rejected without decoding: the common case in a crawl
            return result
        if codec == "utf-8" and source != "bom" and maybe_kana:
            # Declared UTF-8 with UTF-8 kana bytes: the parser takes the bytes as they are.
            counts[f"charset_{source}"] += 1
            markup = body
        else:
            decoded = decode_html(body, content_type, declared)
            counts[f"charset_{decoded.source}"] += 1
            html = decoded.text
            if self.config.kana_precheck and not KANA_RE.search(html) and not KANA_NCR_RE.search(html):
                counts["no_kana"] += 1
                return result
            markup = body if decoded.encoding == "utf-8" and decoded.source != "bom" else html
        if not within_budget(markup, self.config.max_nesting_work):
            counts["page_too_deep"] += 1
            return result
        tree = LexborHTMLParser(markup)
        titles = tree.tags("title")
        result.title = _collapse(titles[0].text()) if titles else ""
        result.language, how = self._language(_visible_text(tree, self.config.langid_chars))
        if result.language != "ja":
            counts[f"lang_{result.language}" if result.language in _NAMED_LANGS else "lang_other"] += 1
            return result
        counts["japanese_pages"] += 1
        counts[f"japanese_by_{how}"] += 1
        self._pairs(tree.tags("img"), self._figure_captions(tree), page_url, tree, result)
        return result

    @staticmethod
    def _figure_captions(tree) -> dict[int, str]:
        """``img mem_id -> figcaption text`` of its nearest enclosing ``<figure>`` with a non-empty caption.

        Walks up from each image inside a figure and caches every node it passes (node -> caption),
        so the cost is linear in the tree however deeply figures nest (a per-figure
        ``figure.css("img")`` is quadratic). A figure's own caption is a ``<figcaption>`` child; a
        nested figure's is not its parent's.
        """
        captions: dict[int, str] = {}
        if not tree.tags("figure"):
            return captions
        cache: dict[int, str] = {}
        for img in tree.css("figure img"):  # lexbor's matcher stops at the nearest figure: linear
            path, node, found = [], img.parent, ""
            while node is not None:
                key = node.mem_id
                if key in cache:
                    found = cache[key]
                    break
                path.append(key)
                if node.tag == "figure":
                    cap = next((child for child in node.iter() if child.tag == "figcaption"), None)
                    found = _collapse(cap.text(separator=" ")) if cap is not None else ""
                    if found:
                        break
                node = node.parent
            for key in path:
                cache[key] = found
            if found:
                captions[img.mem_id] = found
        return captions

    @staticmethod
    def _base_url(tree, page_url: str) -> str:
        bases = tree.tags("base")
        href = next((b.attributes.get("href") for b in bases if b.attributes.get("href")), None)
        if href and href.strip():
            try:
                return urljoin(page_url, href.strip())
            except ValueError:
                return page_url
        return page_url

    def _pairs(self, images, figure_captions, page_url, tree, result: PageResult) -> None:
        counts = result.counts
        resolver = None
        min_side = self.config.min_img_side
        for img in images:
            attrs = img.attributes
            raw, saw_data_uri = _img_url(attrs)
            if not raw:
                counts["img_data_uri" if saw_data_uri else "img_no_url"] += 1
                continue
            caption = figure_captions.get(img.mem_id) if figure_captions else None
            source = "figcaption"
            if not caption:
                caption, source = _collapse(attrs.get("alt")), "alt"
            if not caption:
                counts["img_no_caption"] += 1
                continue
            if resolver is None:
                resolver = UrlResolver(self._base_url(tree, page_url))
            url, problem = resolver.resolve(raw)
            if problem:
                counts[problem] += 1
                continue
            width, height = _attr_int(attrs.get("width")), _attr_int(attrs.get("height"))
            filename = url.rsplit("?", 1)[0].rsplit("/", 1)[-1].lower()
            if (width is not None and width < min_side) or (height is not None and height < min_side) \
                    or filename in _SPACER_NAMES:
                counts["img_tracker"] += 1
                continue
            if filename.endswith(_ICON_EXTS):
                counts["img_icon"] += 1
                continue
            result.pairs.append((url, caption, source))
        counts["img_tags"] += len(images)
        counts["pairs"] += len(result.pairs)
        if result.pairs:
            counts["pages_with_pairs"] += 1
