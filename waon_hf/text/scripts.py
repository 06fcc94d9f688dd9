"""Unicode script tests used across the package (Japanese vs Chinese vs Korean)."""

from __future__ import annotations

import re

# Hiragana (3040-309F) and katakana (30A0-30FF, 31F0-31FF extensions, FF66-FF9D half-width),
# excluding the middle dot and prolonged-sound mark shared with other scripts' typography.
KANA_RE = re.compile("[\u3041-\u3096\u309d\u309e\u30a1-\u30fa\u30fd\u30fe\u31f0-\u31ff\uff66-\uff6f\uff71-\uff9d]")
# Full-width kana only: what tells a right decode of Japanese bytes from a wrong one (see decode.py).
FULLWIDTH_KANA_RE = re.compile("[\u3041-\u3096\u309d\u309e\u30a1-\u30fa\u30fd\u30fe\u31f0-\u31ff]")
KANJI_RE = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
HANGUL_RE = re.compile("[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")

# Kana written as numeric character references (U+3041..U+30FF): &#12353; .. &#12543; or &#x3041;..
_KANA_NCR = r"&#(?:1235[3-9]|123[6-9]\d|124\d\d|125[0-3]\d|1254[0-3]);|&#[xX]30[4-9a-fA-F][0-9a-fA-F];"
KANA_NCR_RE = re.compile(_KANA_NCR)
_KANA_NCR_BYTES_RE = re.compile(_KANA_NCR.encode("ascii"))
# UTF-8 is self-synchronising: E3 81..83 starts U+3040..U+30FF and nothing else.
_KANA_UTF8_RE = re.compile(rb"\xe3[\x81-\x83]")
_ISO2022_RE = re.compile(rb"\x1b[$(]")


def may_contain_kana(data: bytes, codec: str | None) -> bool:
    """False only when ``data`` decoded as ``codec`` certainly holds no hiragana/katakana.

    Answers from the bytes (no decoding) for ASCII, UTF-8 and single-byte Western encodings;
    other encodings answer True and are decoded by the caller. Each pattern is searched on its
    own: one regex with alternatives loses the engine's fast literal scan and is ten times slower.
    """
    if data.isascii():  # ISO-2022-JP is 7-bit; otherwise kana can only be character references
        return _ISO2022_RE.search(data) is not None or _KANA_NCR_BYTES_RE.search(data) is not None
    if codec == "utf-8":  # a UTF-8 Japanese page has real kana bytes
        return _KANA_UTF8_RE.search(data) is not None
    if codec == "cp1252":
        return _KANA_NCR_BYTES_RE.search(data) is not None
    return True
