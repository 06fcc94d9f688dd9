"""Decode HTML bytes the way a browser picks the encoding.

Order (HTML standard, "determining the character encoding"): byte order mark, then the charset of
the HTTP ``Content-Type``, then a prescan of the first bytes for ``<meta charset>`` /
``<meta http-equiv="Content-Type" content="...; charset=...">``, then detection.

Only the labels of the WHATWG Encoding Standard count (:mod:`waon_hf.text.labels`); an unknown
label is no declaration at all, as in a browser. They map to Python codecs as browsers decode them:
``Shift_JIS`` and friends as Windows-31J (``cp932``, which has the NEC/IBM extensions such as ``①``
and ``髙`` that real pages use), ``ISO-8859-1``/``US-ASCII`` as ``cp1252``, ``GB2312``/``GBK`` as
``gb18030``, ``EUC-KR`` as ``cp949``, and a declared UTF-16 without a byte order mark as UTF-8.

Two deviations, both counted by the caller through :attr:`Decoded.source`:
* A declared encoding that fails to decode strictly is retried as UTF-8 (the most common
  mislabel), then detected; only then decoded with replacement characters.
* An HTTP charset of ISO-8859-1/ASCII/windows-1252 yields to a page's own ``<meta>`` declaration:
  those header values are server defaults, not the author's statement, and trusting them turns
  every Japanese page they cover into mojibake.

Detection for undeclared pages is tuned for the Japanese web: ASCII, UTF-8, ISO-2022-JP (escape
sequences), then whichever of CP932 / EUC-JP decodes strictly with the more plausible text, and
``charset_normalizer`` as the last resort.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from waon_hf.text.labels import codec_for_label, decode_bytes, web_codec
from waon_hf.text.scripts import FULLWIDTH_KANA_RE

# Relaxed fallbacks when the strict codec rejects real-world bytes (vendor extensions).
_FALLBACK_CODECS = {"euc_jp": "euc_jis_2004", "iso2022_jp_ext": "iso2022_jp_2004", "big5hkscs": "cp950"}
_SERVER_DEFAULTS = {"cp1252"}

_META_RE = re.compile(rb"<meta[^>]{0,512}?charset\s*=\s*[\"']?\s*([a-zA-Z0-9_\-:.]{1,40})", re.IGNORECASE)
_CONTENT_TYPE_CHARSET_RE = re.compile(r"charset\s*=\s*[\"']?\s*([a-zA-Z0-9_\-:.]{1,40})", re.IGNORECASE)
_ISO2022_ESC_RE = re.compile(rb"\x1b\$[@B]|\x1b\(J|\x1b\(I")
PRESCAN_BYTES = 4096


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str  # the Python codec used
    source: str  # bom | http | meta | detected | fallback_utf8 | replaced


def http_charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    m = _CONTENT_TYPE_CHARSET_RE.search(content_type)
    return m.group(1) if m else None


def meta_charset(head: bytes) -> str | None:
    m = _META_RE.search(head[:PRESCAN_BYTES])
    return m.group(1).decode("ascii", "ignore") if m else None


def _strict(data: bytes, codec: str) -> str | None:
    try:
        return decode_bytes(data, codec)
    except UnicodeDecodeError:
        fallback = _FALLBACK_CODECS.get(codec)
        if fallback:
            try:
                return data.decode(fallback)
            except UnicodeDecodeError:
                return None
        return None


def _japanese_plausibility(text: str) -> float:
    """Share of full-width hiragana/katakana: right decodes of Japanese are kana-rich, wrong ones are not.

    Half-width katakana do not count: CP932 reads every EUC-JP byte in A1-DF as one, so a wrong
    CP932 decode of EUC-JP text is full of them (and real pages use them rarely).
    """
    return len(FULLWIDTH_KANA_RE.findall(text)) / (len(text) + 1)


def detect_encoding(data: bytes) -> tuple[str, str] | None:
    """Guess the codec of undeclared bytes; returns ``(codec, text)`` or None."""
    if data.isascii():
        if _ISO2022_ESC_RE.search(data):
            text = _strict(data, "iso2022_jp_ext")
            if text is not None:
                return "iso2022_jp_ext", text
        return "utf-8", data.decode("ascii")
    text = _strict(data, "utf-8")
    if text is not None:
        return "utf-8", text
    candidates = []
    for codec in ("cp932", "euc_jp"):
        text = _strict(data, codec)
        if text is not None:
            candidates.append((_japanese_plausibility(text), codec, text))
    if candidates:
        _, codec, text = max(candidates)
        return codec, text
    try:
        from charset_normalizer import from_bytes
    except ImportError:
        return None
    best = from_bytes(data[:65536]).best()
    if best is None:
        return None
    codec = web_codec(best.encoding)
    text = _strict(data, codec) if codec else None
    return (codec, text) if text is not None else None


def declared_encoding(data: bytes, content_type: str | None = None) -> tuple[str | None, str]:
    """The codec a browser would use before any detection: ``(codec, source)``, or ``(None, "")``.

    ``source`` is ``bom``, ``http`` or ``meta``. Cheap (no decoding): the extractor uses it to run a
    byte-level kana pre-check before paying for a decode.
    """
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8", "bom"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", "bom"
    header_codec = codec_for_label(http_charset(content_type))
    meta_codec = codec_for_label(meta_charset(data))
    if header_codec and not (header_codec in _SERVER_DEFAULTS and meta_codec and meta_codec != header_codec):
        return header_codec, "http"
    if meta_codec:
        return meta_codec, "meta"
    return None, ""


def decode_html(data: bytes, content_type: str | None = None,
                declared: tuple[str | None, str] | None = None) -> Decoded:
    """Decode an HTML payload; never raises on bad bytes.

    ``declared`` is :func:`declared_encoding`'s answer when the caller already has it.
    """
    codec, source = declared if declared is not None else declared_encoding(data, content_type)
    if source == "bom":
        skip = 3 if codec == "utf-8" else 0
        return Decoded(data[skip:].decode(codec, "replace"), codec, "bom")
    if codec:
        text = _strict(data, codec)
        if text is not None:
            return Decoded(text, codec, source)
        if codec != "utf-8":
            text = _strict(data, "utf-8")
            if text is not None:
                return Decoded(text, "utf-8", "fallback_utf8")
    guess = detect_encoding(data)
    if guess is not None:
        return Decoded(guess[1], guess[0], "detected")
    codec = codec or "utf-8"
    return Decoded(decode_bytes(data, codec, "replace"), codec, "replaced")
