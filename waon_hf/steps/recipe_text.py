"""Caption filters of the seeds' recipes (VILA-jp pairs, DanQing text purification).

* :class:`AdultTextJa` (``adult_text_ja``): HojiChar's ``DiscardAdultContentJa`` keyword list (VILA-jp).
  HojiChar matches substrings, so it has false positives (its own docs: "アスパラガス" contains "アス").
* :class:`ContainsNoun` (``contains_noun``): the caption has at least one noun (名詞) under the UniDic
  analysis of ``fugashi`` + ``unidic-lite`` (DanQing keeps texts with nouns; the analyser choice and
  its speed against SudachiPy are in BENCHMARKS.md).
* :class:`UnknownTokens` (``unknown_tokens``): at most ``max_unknown`` unknown tokens under the scoring
  model's tokenizer (DanQing: <= 5 ``[UNK]``). A byte-level tokenizer (SigLIP2's Gemma tokenizer)
  never produces one; the check matters for WordPiece/SentencePiece models without byte fallback.
* :class:`CharEntropy` (``char_entropy``): Shannon entropy of the caption's character distribution
  (bits) at least ``min_bits`` (DanQing: a character-entropy floor against "ーーーー", "★★★★★").

Resources (the keyword filter, the tagger, the tokenizer) are loaded once per process and dropped
from pickles (``_cache_*``). A null caption is dropped as ``no_caption``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections import Counter

from waon_hf.steps.base import Batch, FilterStep, register

logger = logging.getLogger(__name__)


def char_entropy(text: str) -> float:
    """Shannon entropy (bits) of the characters of ``text`` (0 for empty or one repeated character)."""
    n = len(text)
    if not n:
        return 0.0
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


@register
@dataclasses.dataclass
class AdultTextJa(FilterStep):
    """Drop captions that HojiChar's Japanese adult-keyword filter rejects. Reason ``adult_text``."""

    name = "adult_text_ja"
    dict_path: str | None = None  # None: HojiChar's bundled adult_keywords_ja.txt
    column: str = "caption"

    def input_columns(self) -> list[str]:
        return [self.column]

    def _filter(self):
        f = getattr(self, "_cache_filter", None)
        if f is None:
            from hojichar.filters.document_filters import DiscardAdultContentJa

            f = DiscardAdultContentJa(self.dict_path) if self.dict_path else DiscardAdultContentJa()
            self._cache_filter = f
        return f

    def drop_reasons(self, batch: Batch) -> list[str | None]:
        from hojichar import Document

        f = self._filter()
        out: list[str | None] = []
        for text in batch[self.column]:
            if text is None:
                out.append("no_caption")
            else:
                out.append("adult_text" if f.apply(Document(text)).is_rejected else None)
        return out


@register
@dataclasses.dataclass
class ContainsNoun(FilterStep):
    """Keep captions with at least one noun (UniDic ``pos1 == 名詞``, fugashi). Reason ``no_noun``."""

    name = "contains_noun"
    column: str = "caption"

    def input_columns(self) -> list[str]:
        return [self.column]

    def _tagger(self):
        tagger = getattr(self, "_cache_tagger", None)
        if tagger is None:
            import fugashi

            tagger = fugashi.Tagger()  # unidic-lite's dictionary when installed
            self._cache_tagger = tagger
        return tagger

    def drop_reasons(self, batch: Batch) -> list[str | None]:
        tagger = self._tagger()
        out: list[str | None] = []
        for text in batch[self.column]:
            if text is None:
                out.append("no_caption")
            elif any(word.feature.pos1 == "名詞" for word in tagger(text)):
                out.append(None)
            else:
                out.append("no_noun")
        return out


@register
@dataclasses.dataclass
class UnknownTokens(FilterStep):
    """Keep captions with at most ``max_unknown`` unknown tokens under ``tokenizer``. Reason ``unknown_tokens``.

    ``tokenizer``: a Hub id or local folder; ``None`` in a build config: the ``siglip: model``'s
    (filled in by :meth:`waon_hf.config.BuildConfig.extract_job`).
    """

    name = "unknown_tokens"
    tokenizer: str | None = "google/siglip2-base-patch16-256"
    max_unknown: int = 5
    column: str = "caption"

    def __post_init__(self):
        if isinstance(self.max_unknown, bool) or not isinstance(self.max_unknown, int) or self.max_unknown < 0:
            raise ValueError(f"max_unknown must be an integer >= 0, got {self.max_unknown!r}")

    def input_columns(self) -> list[str]:
        return [self.column]

    def _tok(self):
        tok = getattr(self, "_cache_tokenizer", None)
        if tok is None:
            from transformers import AutoTokenizer

            if self.tokenizer is None:
                raise RuntimeError("unknown_tokens: no tokenizer given (null is only filled in inside a build config)")
            try:
                tok = AutoTokenizer.from_pretrained(self.tokenizer)
            except (OSError, ValueError) as e:
                raise RuntimeError(f"unknown_tokens: cannot load tokenizer {self.tokenizer!r}: {e}") from e
            if tok.unk_token_id is None:
                logger.info("unknown_tokens: %s has no unknown token (byte-level): nothing is dropped", self.tokenizer)
            self._cache_tokenizer = tok
        return tok

    def drop_reasons(self, batch: Batch) -> list[str | None]:
        tok = self._tok()
        unk = tok.unk_token_id
        texts = batch[self.column]
        present = [t for t in texts if t is not None]
        ids = tok(present, add_special_tokens=False)["input_ids"] if present and unk is not None else []
        counts = iter(sum(1 for i in row if i == unk) for row in ids)
        out: list[str | None] = []
        for text in texts:
            if text is None:
                out.append("no_caption")
            elif unk is None:
                out.append(None)
            else:
                out.append("unknown_tokens" if next(counts) > self.max_unknown else None)
        return out


@register
@dataclasses.dataclass
class CharEntropy(FilterStep):
    """Keep captions whose character entropy is at least ``min_bits``. Reason ``low_char_entropy``.

    2.0 bits: a caption needs about four equally used characters; "ーーーー" (0), "★★★☆☆" (0.97) and
    "あいあいあい" (1.0) go, "東京タワー" (2.32) stays.
    """

    name = "char_entropy"
    min_bits: float = 2.0
    column: str = "caption"

    def input_columns(self) -> list[str]:
        return [self.column]

    def drop_reasons(self, batch: Batch) -> list[str | None]:
        out: list[str | None] = []
        for text in batch[self.column]:
            if text is None:
                out.append("no_caption")
            else:
                out.append("low_char_entropy" if char_entropy(text) < self.min_bits else None)
        return out
