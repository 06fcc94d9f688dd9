"""Unicode script tests used across the package (Japanese vs Chinese vs Korean)."""

from __future__ import annotations

import re

# Hiragana (3040-309F) and katakana (30A0-30FF, 31F0-31FF extensions, FF66-FF9D half-width),
# excluding the middle dot and prolonged-sound mark shared with other scripts' typography.
KANA_RE = re.compile("[\u3041-\u3096\u309d\u309e\u30a1-\u30fa\u30fd\u30fe\u31f0-\u31ff\uff66-\uff6f\uff71-\uff9d]")
KANJI_RE = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
HANGUL_RE = re.compile("[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")

# UTF-8 lead bytes of hiragana/katakana: E3 81 xx, E3 82 xx, E3 83 xx (U+3040..U+30FF).
KANA_UTF8_RE = re.compile(rb"\xe3[\x81-\x83][\x80-\xbf]")


def kana_count(text: str) -> int:
    return len(KANA_RE.findall(text))
