"""Caption normalisation and caption/URL filters, each a step with its own drop reason.

Normalisation (:class:`NormalizeCaption`) runs first so that every filter sees the same text:
Unicode NFKC (full-width ASCII becomes ASCII, half-width katakana becomes full-width, compatibility
characters such as ``①`` or ``㈱`` are expanded), control characters removed, every run of
whitespace (including the ideographic space U+3000) collapsed to one ASCII space, ends stripped.
"""

from __future__ import annotations

import dataclasses
import re
from functools import cached_property
from importlib import resources

from waon_hf.steps.base import Batch, FilterStep, MapStep, register
from waon_hf.text.normalize import normalize_caption
from waon_hf.text.scripts import HANGUL_RE, KANA_RE, KANJI_RE


@register
@dataclasses.dataclass
class NormalizeCaption(MapStep):
    name = "normalize_caption"
    column: str = "caption"

    def process_batch(self, batch: Batch) -> Batch:
        batch[self.column] = [normalize_caption(t) for t in batch[self.column]]
        return batch


@register
@dataclasses.dataclass
class CaptionLength(FilterStep):
    """Keep captions with ``min_chars <= len <= max_chars`` (characters, after normalisation)."""

    name = "caption_length"
    min_chars: int = 5
    max_chars: int = 512
    column: str = "caption"

    def drop_reasons(self, batch):
        lo, hi = self.min_chars, self.max_chars
        return ["too_short" if len(t) < lo else "too_long" if len(t) > hi else None for t in batch[self.column]]


@register
@dataclasses.dataclass
class JapaneseCaption(FilterStep):
    """Keep captions that are Japanese by script: hiragana or katakana present.

    Kana is the test because it separates Japanese from Chinese without false positives on short
    strings, where statistical detectors fail. Kanji-only captions (``東京都庁舎``) are ambiguous
    with Chinese; ``allow_kanji_only`` keeps them when they have no hangul.
    """

    name = "japanese_caption"
    allow_kanji_only: bool = False
    column: str = "caption"

    def _reason(self, text: str) -> str | None:
        if KANA_RE.search(text):
            return None
        if HANGUL_RE.search(text) or not KANJI_RE.search(text):
            return "not_japanese"
        return None if self.allow_kanji_only else "kanji_only"

    def drop_reasons(self, batch):
        return [self._reason(t) for t in batch[self.column]]


_IMAGE_EXT = r"(?:jpe?g|png|gif|webp|bmp|tiff?|heic|avif|jfif)"
_FILENAME_PATTERNS = [
    rf"[\w\-. ()]+\.{_IMAGE_EXT}",  # foo_bar.jpg, IMG_1234.JPG
    r"(?:img|dsc|dscn|dscf|dcim|pxl|pict?|photo|image|sam|gopr|mvimg|screenshot)[\s_\-]?\d[\d_\-]*",
    r"[0-9a-f]{16,}",  # content hashes, uuids without dashes
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    r"[\d\W_]+",  # nothing but digits and punctuation
]
_FILENAME_RE = re.compile("|".join(f"(?:{p})" for p in _FILENAME_PATTERNS), re.IGNORECASE)


@register
@dataclasses.dataclass
class NotFilenameLike(FilterStep):
    """Drop captions that are file names, camera counters or hashes rather than descriptions."""

    name = "filename_like"
    column: str = "caption"

    def drop_reasons(self, batch):
        return ["filename_like" if _FILENAME_RE.fullmatch(t) else None for t in batch[self.column]]


@register
@dataclasses.dataclass
class RepeatedChars(FilterStep):
    """Drop captions with a run of the same character longer than ``max_run`` (``ーーーーーー``, ``!!!!!!!``)."""

    name = "repeated_chars"
    max_run: int = 5
    column: str = "caption"

    @cached_property
    def _cache_re(self) -> re.Pattern:
        return re.compile(rf"(.)\1{{{self.max_run},}}", re.DOTALL)

    def drop_reasons(self, batch):
        pattern = self._cache_re
        return ["repeated_chars" if pattern.search(t) else None for t in batch[self.column]]


# Emoji and pictographs: the blocks that hold emoji presentation characters and their modifiers.
EMOJI_RE = re.compile(
    "[\U0001f000-\U0001faff\U0001fc00-\U0001fffd\u2600-\u27bf\u2b00-\u2bff\u2300-\u23ff\ufe0f\u200d]"
)


@register
@dataclasses.dataclass
class EmojiLimit(FilterStep):
    """Drop captions with more than ``max_emoji`` emoji/pictograph code points."""

    name = "emoji_limit"
    max_emoji: int = 2
    column: str = "caption"

    def drop_reasons(self, batch):
        limit = self.max_emoji
        return ["too_many_emoji" if len(EMOJI_RE.findall(t)) > limit else None for t in batch[self.column]]


def url_host(url: str) -> str:
    """Lower-cased host of an absolute URL by string operations ('' when there is none)."""
    start = url.find("://")
    if start < 0:
        return ""
    rest = url[start + 3:]
    for sep in "/?#":
        at = rest.find(sep)
        if at >= 0:
            rest = rest[:at]
    host = rest.rpartition("@")[2]
    if host.startswith("["):  # IPv6 literal: never a listed domain
        return ""
    return host.partition(":")[0].lower().rstrip(".")


def _read_list(path: str | None, default_resource: str) -> list[str]:
    if path:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    else:
        text = resources.files("waon_hf.data").joinpath(default_resource).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@register
@dataclasses.dataclass
class NGWords(FilterStep):
    """Drop captions containing any word of a list (substring match after NFKC, case-folded).

    ``path`` is a UTF-8 file, one word per line, ``#`` comments; empty means the small shipped list
    ``waon_hf/data/ng_words_ja.txt``.
    """

    name = "ng_words"
    path: str | None = None
    column: str = "caption"

    @cached_property
    def _cache_re(self) -> re.Pattern | None:
        words = sorted({normalize_caption(w).casefold() for w in _read_list(self.path, "ng_words_ja.txt")},
                       key=len, reverse=True)
        return re.compile("|".join(map(re.escape, words))) if words else None

    def drop_reasons(self, batch):
        pattern = self._cache_re
        if pattern is None:
            return [None] * len(batch[self.column])
        return ["ng_word" if pattern.search(t.casefold()) else None for t in batch[self.column]]


@register
@dataclasses.dataclass
class DomainBlocklist(FilterStep):
    """Drop rows whose image URL or page URL host is a listed domain or a subdomain of one.

    ``path`` is a file of domains, one per line; empty means ``waon_hf/data/blocked_domains.txt``.
    """

    name = "domain_blocklist"
    path: str | None = None
    columns: tuple[str, ...] = ("url", "page_url")

    @cached_property
    def _cache_domains(self) -> frozenset[str]:
        return frozenset(d.lower().lstrip(".") for d in _read_list(self.path, "blocked_domains.txt"))

    def _blocked(self, url: str) -> bool:
        domains = self._cache_domains
        host = url_host(url)
        while host:
            if host in domains:
                return True
            dot = host.find(".")
            host = host[dot + 1:] if dot >= 0 else ""
        return False

    def drop_reasons(self, batch):
        cols = [batch[c] for c in self.columns if c in batch]
        memo: dict[str, bool] = {}  # page URLs repeat for every image of a page

        def blocked(url: str) -> bool:
            hit = memo.get(url)
            if hit is None:
                hit = memo[url] = self._blocked(url)
            return hit

        return ["blocked_domain" if any(blocked(col[i]) for col in cols) else None
                for i in range(len(cols[0]) if cols else 0)]


def default_caption_steps() -> list:
    """The caption pipeline of ``waon extract`` in order (exact dedup runs after, globally)."""
    return [
        NormalizeCaption(),
        CaptionLength(),
        NotFilenameLike(),
        JapaneseCaption(),
        RepeatedChars(),
        EmojiLimit(),
        NGWords(),
        DomainBlocklist(),
    ]
