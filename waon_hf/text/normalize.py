"""Caption normalisation: Unicode NFKC, control characters removed, whitespace collapsed.

Full-width ASCII becomes ASCII, half-width katakana becomes full-width, compatibility characters
such as ``①`` or ``㈱`` are expanded; every run of whitespace (including the ideographic space
U+3000) becomes one ASCII space and the ends are stripped. Every caption of this package, from any
source, goes through it before any filter.
"""

from __future__ import annotations

import re
import unicodedata

_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")
_SPACE_RE = re.compile(r"\s+")


def normalize_caption(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = _CONTROL_RE.sub("", text)
    return _SPACE_RE.sub(" ", text).strip()
