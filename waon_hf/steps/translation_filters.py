"""Clean-up and quality checks for machine-translated captions (English -> Japanese).

llm-jp-clip translated ReLAION-2B-en captions with gemma-2-9b-it through text2dataset, which did no
cleaning. The known defects, and what handles each here:

* reasoning blocks of thinking models (``<think>...</think>``, also unterminated): :func:`strip_reasoning`;
* chatty wrappers ("Here is the translation:", "Please let me know if you have any questions.",
  ``（注：...）`` notes, quotes around the whole output, markdown): :func:`clean_translation` /
  :class:`CleanTranslation` strip them, keeping the translation;
* about 1% of outputs in Chinese or Korean, English echoes of the source, rambling or truncated
  outputs: :func:`classify_translation` / :class:`TranslationQuality` name them with a reason code;
  :func:`needs_retry` says which of those are worth one retry with :data:`STRICT_PROMPT`.

Run :class:`CleanTranslation` before :class:`TranslationQuality`; both read the Japanese output in
``column`` (``caption``), the quality check also the English source in ``source_column``
(``caption_en``).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import unicodedata

from waon_hf.steps.base import Batch, FilterStep, MapStep, register
from waon_hf.steps.text_filters import normalize_caption
from waon_hf.text.scripts import HANGUL_RE, KANA_RE, KANJI_RE

# --- prompts -------------------------------------------------------------------------------------
# gemma-2 has no system role: the translation step puts the prompt at the top of the user turn,
# followed by the caption (see :func:`build_prompt`).

DEFAULT_PROMPT = (
    "You are an excellent English-Japanese translator. "
    "Translate the following English image caption into natural Japanese. "
    "Output only the translation."
)

STRICT_PROMPT = (
    "You are an excellent English-Japanese translator. "
    "Translate the following English image caption into natural Japanese. "
    "Write the answer in Japanese only, using hiragana, katakana and kanji as Japanese does; "
    "never answer in Chinese, Korean or English (proper nouns and product names may stay as they are). "
    "Output only the translation: no quotes, no notes, no explanations, no greetings, no questions."
)


def build_prompt(caption: str, *, strict: bool = False, instruction: str | None = None) -> str:
    """The user turn for one caption: the instruction, a blank line, the caption.

    ``instruction`` replaces the default one (:data:`DEFAULT_PROMPT`, or :data:`STRICT_PROMPT` with
    ``strict``)."""
    if instruction is None:
        instruction = STRICT_PROMPT if strict else DEFAULT_PROMPT
    return f"{instruction.strip()}\n\n{caption}"


# --- cleaning ------------------------------------------------------------------------------------
# The text is NFKC-normalised first (as every caption is in this package), so the patterns below
# only need the ASCII forms of full-width punctuation: "（注：" arrives as "(注:", "！" as "!".
_F = re.IGNORECASE | re.DOTALL

# Applied anywhere: markdown emphasis and code marks (the content stays).
_MARKDOWN: list[tuple[re.Pattern, str]] = [
    (re.compile(r"\*\*(.+?)\*\*", _F), r"\1"),  # **bold**
    (re.compile(r"__(.+?)__", _F), r"\1"),  # __bold__
    (re.compile(r"`+"), ""),  # `code`, ```fences```
]

# Anchored at the start: announcements before the translation.
_PREFIXES: list[re.Pattern] = [re.compile(p, _F) for p in (
    r"^(?:sure|certainly|of course|okay|ok)\s*[!,.]\s*",  # "Sure! ..."
    # "Here is the translation:", "Here's the Japanese translation of the caption:"
    r"^here(?:'s| is| are)\s+(?:the|my|a|your)?\s*(?:natural\s+)?(?:japanese\s+)?translations?\b[^:\n]{0,60}:\s*",
    r"^(?:japanese\s+)?translation(?:\s*\(japanese\))?\s*:\s*",  # "Translation:", "Japanese translation:"
    r"^japanese\s*:\s*",  # "Japanese: ..."
    r"^(?:日本語)?(?:翻訳|和訳|訳)(?:文|結果)?\s*:\s*",  # "翻訳:", "日本語訳:", "訳文:"
    r"^日本語\s*:\s*",
    r"^以下(?:が|は)[^。:\n]{0,20}(?:翻訳|和訳|訳)(?:文|結果)?(?:です|になります)?\s*[。:]\s*",  # "以下が翻訳です。"
    r"^(?:日本語に)?(?:翻訳|和訳)(?:します|しました|すると)\s*[。:、]\s*",  # "翻訳します:"
    r"^[-*•]\s+",  # a leading markdown bullet
)]

# Anchored at the end: sign-offs and translator notes after the translation. English sign-offs
# cut from the phrase to the end: the output should be Japanese, so these are never content.
_SUFFIXES: list[re.Pattern] = [re.compile(p, _F) for p in (
    r"\s*(?:please\s+let\s+me\s+know|let\s+me\s+know\s+if|i\s+hope\s+(?:this|that|it)\s+helps|hope\s+this\s+helps"
    r"|feel\s+free\s+to|if\s+you\s+(?:have|need)\s+any|is\s+there\s+anything\s+else|i\s+can\s+also\b)[^\n]*$",
    # "他に質問があればお知らせください。", "ご不明な点がございましたら..."
    r"\s*(?:他に|ほかに|その他)?(?:何か)?(?:ご)?(?:質問|不明な点|要望)(?:など)?(?:が|は)?"
    r"(?:あれば|ありましたら|ございましたら)[^\n]*$",
    r"\s*(?:この翻訳が)?お役に立て(?:れば|たら)[^\n]*$",  # "お役に立てれば幸いです。"
    r"\s*\((?:注|訳注|備考|補足|note|translator'?s?\s+note|n\.b\.)\s*:[^()]*\)\s*$",  # "(注:...)" at the end
    r"\s*\n\s*(?:注|訳注|備考|補足|解説|説明|note|notes|explanation)\s*:.*$",  # a note on its own line(s)
)]

# Quotes that wrap the whole output (and contain no other quote of the pair).
_WRAPPING_QUOTES: list[re.Pattern] = [re.compile(p, re.DOTALL) for p in (
    r"^「([^「」]*)」$", r"^『([^『』]*)』$", r'^"([^"]*)"$', r"^“([^“”]*)”$", r"^'([^']*)'$", r"^‘([^‘’]*)’$",
)]


# Reasoning blocks of "thinking" models (Qwen3, DeepSeek-R1 style). ``<think>`` is an ordinary added
# token in these tokenizers, not a special one, so ``decode(skip_special_tokens=True)`` keeps it.
_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)
_THINK_CLOSE = "</think>"
_THINK_OPEN = "<think>"


def strip_reasoning(text: str) -> tuple[str, str | None]:
    """Remove reasoning blocks from one model output: ``(text, status)``.

    * every ``<think>...</think>`` block (status ``"closed"``);
    * a ``</think>`` without its opening tag (templates that open the block in the prompt): everything
      up to the last ``</think>`` (``"closed"``);
    * an unterminated ``<think>`` (the reasoning ran past ``max_new_tokens``): everything from it to the
      end (``"unterminated"``).

    ``status`` is ``None`` when the output had no reasoning marker.
    """
    status = None
    if _THINK_OPEN in text or _THINK_CLOSE in text:
        stripped = _THINK_BLOCK.sub("", text)
        status = "closed" if stripped != text else None
        text = stripped
        if _THINK_CLOSE in text:
            text = text.rsplit(_THINK_CLOSE, 1)[1]
            status = "closed"
        if _THINK_OPEN in text:
            text = text.split(_THINK_OPEN, 1)[0]
            status = "unterminated"
    return text.strip(), status


def clean_translation(text: str) -> str:
    """Strip chatty wrappers from one model output; returns the translation, whitespace-normalised.

    Reasoning blocks go first (:func:`strip_reasoning`). Then applies, until nothing changes: the
    markdown table (``**``, ``__``, backticks), the prefix table
    ("Here is the translation:", "Translation:", "翻訳:", "以下が翻訳です。", a leading ``- ``), the
    suffix table ("Please let me know ...", "I hope this helps!", "他に質問があればお知らせください。",
    a closing ``（注：...）`` or a ``Note:`` line), and quotes wrapping the whole output (「」 『』 "" “” '' ‘’).
    Ends with :func:`normalize_caption` (NFKC, one space per whitespace run). An output that is all
    wrapper becomes ``""`` (``empty`` for :func:`classify_translation`).
    """
    text = unicodedata.normalize("NFKC", strip_reasoning(text)[0]).strip()
    for pattern, repl in _MARKDOWN:
        text = pattern.sub(repl, text)
    while True:
        before = text
        for pattern in _PREFIXES:
            text = pattern.sub("", text, count=1).strip()
        for pattern in _SUFFIXES:
            text = pattern.sub("", text, count=1).strip()
        for pattern in _WRAPPING_QUOTES:
            text = pattern.sub(r"\1", text).strip()
        if text == before:
            return normalize_caption(text)


# --- quality -------------------------------------------------------------------------------------
# Reason codes, in the order they are tested.
REASONS = ("empty", "korean", "chinese", "english_echo", "too_long", "too_short")
RETRY_REASONS = frozenset({"chinese", "korean", "english_echo"})

# Defaults; why each, in the docstring of TranslationQuality.
MIN_RATIO = 0.15
MAX_RATIO = 3.0
SHORT_SOURCE_CHARS = 10
ECHO_SIMILARITY = 0.8
MAX_LATIN_SHARE = 0.9
CHINESE_MAX_KANA_SHARE = 0.05
CHINESE_MIN_CONFIDENCE = 0.9

_WORD_RE = re.compile(r"\w")
_LATIN_RE = re.compile(r"[A-Za-z]")
_SPACE_RE = re.compile(r"\s+")


def needs_retry(reason: str | None) -> bool:
    """True for the defects a stricter prompt fixes (``chinese``, ``korean``, ``english_echo``):
    translate those rows once more with :data:`STRICT_PROMPT`; the rest are dropped."""
    return reason in RETRY_REASONS


def _n_chars(text: str) -> int:
    return len(_SPACE_RE.sub("", text))


def _similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a.casefold(), b.casefold(), autojunk=False).ratio()


def _cld2(text: str) -> tuple[str, float]:
    from waon_hf.text.langid import get_detector
    return get_detector("pycld2")(text)


def classify_translation(
    source_en: str, output: str, *, min_ratio: float = MIN_RATIO, max_ratio: float = MAX_RATIO,
    short_source_chars: int = SHORT_SOURCE_CHARS, echo_similarity: float = ECHO_SIMILARITY,
    max_latin_share: float = MAX_LATIN_SHARE, allow_kanji_only: bool = False,
) -> str | None:
    """Why a translation is bad (a code of :data:`REASONS`), or ``None`` when it looks fine.

    Both strings are NFKC/whitespace-normalised first; lengths count non-space characters.

    * ``empty``: no letter or digit left (after :func:`clean_translation`, an all-chatter output).
    * ``korean``: hangul in the output that the source did not have.
    * ``chinese``: kanji without any kana (``一只猫坐在窗台上``; with ``allow_kanji_only`` such
      outputs are kept when CLD2 says Japanese, e.g. ``富士山``), or CLD2 says ``zh``/``zh-Hant``
      with >= 0.9 and kana are under 5% of the kana+kanji (Chinese with a stray ``の``).
    * ``english_echo``: no Japanese script at all (untranslated, or another script), Latin letters
      over ``max_latin_share`` of all letters, or ``difflib`` similarity to the source over
      ``echo_similarity`` (case-folded).
    * ``too_long``: more than ``max_ratio`` output chars per source char, the source counted as at
      least ``short_source_chars`` (so "DJ" -> "ディスクジョッキー" passes): rambling, explanations.
    * ``too_short``: fewer than ``min_ratio`` output chars per source char: truncated outputs.
    """
    src = normalize_caption(source_en or "")
    out = normalize_caption(output or "")
    if not _WORD_RE.search(out):
        return "empty"
    if HANGUL_RE.search(out) and not HANGUL_RE.search(src):
        return "korean"
    n_kana = len(KANA_RE.findall(out))
    n_kanji = len(KANJI_RE.findall(out))
    if n_kanji and not n_kana:
        if not allow_kanji_only or _cld2(out)[0] != "ja":
            return "chinese"
    elif n_kanji and n_kana / (n_kana + n_kanji) < CHINESE_MAX_KANA_SHARE:
        code, confidence = _cld2(out)
        if code.startswith("zh") and confidence >= CHINESE_MIN_CONFIDENCE:
            return "chinese"
    if not n_kana and not n_kanji:
        return "english_echo"
    letters = sum(1 for ch in out if ch.isalpha())
    if letters and len(_LATIN_RE.findall(out)) / letters > max_latin_share:
        return "english_echo"
    if src and _similarity(src, out) > echo_similarity:
        return "english_echo"
    n_src, n_out = _n_chars(src), _n_chars(out)
    if n_out > max_ratio * max(n_src, short_source_chars):
        return "too_long"
    if n_out < min_ratio * n_src:
        return "too_short"
    return None


@register
@dataclasses.dataclass
class CleanTranslation(MapStep):
    """Rewrite ``column`` with :func:`clean_translation` (chatty prefixes/suffixes, quotes, markdown)."""

    name = "clean_translation"
    column: str = "caption"

    def process_batch(self, batch: Batch) -> Batch:
        batch[self.column] = [clean_translation(t) if t is not None else "" for t in batch[self.column]]
        return batch


@register
@dataclasses.dataclass
class TranslationQuality(FilterStep):
    """Drop translations that :func:`classify_translation` flags; the drop reason is its code.

    Defaults, and why (character counts exclude spaces):

    * ``min_ratio = 0.15``, ``max_ratio = 3.0`` Japanese chars per English char. Japanese is denser:
      a faithful translation runs about 0.3-0.8 (``A cat sitting on a windowsill``, 24 chars ->
      ``窓辺に座っている猫``, 9 = 0.38); 0.15 is half the dense end (a kanji compound for a long
      English name) and 3.0 is several times the loose end, so only truncations and ramblings fall out.
    * ``short_source_chars = 10``: very short sources ("DJ", "TV") legitimately grow in katakana,
      so ``too_long`` measures them as if 10 chars long.
    * ``echo_similarity = 0.8``: a near copy of the source (the suggested difflib threshold).
    * ``max_latin_share = 0.9``: brand-heavy captions keep some Latin, but >90% is untranslated.
    * ``allow_kanji_only = False``: kanji without kana is Chinese by script; set True to let CLD2
      keep short Japanese noun phrases (``富士山``) — CLD2 is unreliable on strings this short.
    """

    name = "translation_quality"
    column: str = "caption"
    source_column: str = "caption_en"
    min_ratio: float = MIN_RATIO
    max_ratio: float = MAX_RATIO
    short_source_chars: int = SHORT_SOURCE_CHARS
    echo_similarity: float = ECHO_SIMILARITY
    max_latin_share: float = MAX_LATIN_SHARE
    allow_kanji_only: bool = False

    def input_columns(self) -> list[str]:
        return [self.column, self.source_column]

    def drop_reasons(self, batch: Batch) -> list[str | None]:
        kwargs = dict(
            min_ratio=self.min_ratio, max_ratio=self.max_ratio, short_source_chars=self.short_source_chars,
            echo_similarity=self.echo_similarity, max_latin_share=self.max_latin_share,
            allow_kanji_only=self.allow_kanji_only,
        )
        return [
            classify_translation(src or "", out or "", **kwargs)
            for src, out in zip(batch[self.source_column], batch[self.column], strict=True)
        ]
