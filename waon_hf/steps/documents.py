"""Per-shard steps over interleaved documents (one row per document, lists per row).

* :class:`DocumentNGWords`: the caption NG-word filter applied to a document's whole text;
* :class:`DocumentShape`: the recipe's size rule (sentences and images within bounds); the same step
  runs early on candidate images (``min_images`` only, before anything is downloaded) and at the end
  on the assigned images (2-5 images, 10-100 sentences, every assigned pair >= the threshold).
"""

from __future__ import annotations

import dataclasses

from waon_hf.steps.base import FilterStep, register
from waon_hf.steps.text_filters import NGWords
from waon_hf.text.normalize import normalize_caption


@register
@dataclasses.dataclass
class DocumentNGWords(NGWords):
    """Drop documents whose text (all sentences) contains a listed word (NFKC, case-folded)."""

    name = "document_ng_words"
    column: str = "sentences"

    def drop_reasons(self, batch):
        pattern = self._cache_re
        if pattern is None:
            return [None] * len(batch[self.column])
        return ["ng_word" if pattern.search(normalize_caption("\n".join(s or [])).casefold()) else None
                for s in batch[self.column]]


@register
@dataclasses.dataclass
class DocumentShape(FilterStep):
    """Keep documents with ``min_sentences..max_sentences`` sentences and ``min_images..max_images`` images.

    ``max_images`` None: no upper bound (the early filter on candidate URLs). With
    ``similarity_column`` set, a document any of whose images has a similarity below
    ``min_similarity`` (or no sentence: ``-1`` in ``sentence_column``) is dropped as well.
    """

    name = "document_shape"
    sentences_column: str = "sentences"
    images_column: str = "image_urls"
    min_sentences: int = 10
    max_sentences: int = 100
    min_images: int = 2
    max_images: int | None = 5
    similarity_column: str | None = None
    sentence_column: str | None = None
    min_similarity: float = 0.20

    def __post_init__(self):
        if self.min_sentences > self.max_sentences:
            raise ValueError("min_sentences must be <= max_sentences")
        if self.max_images is not None and self.min_images > self.max_images:
            raise ValueError("min_images must be <= max_images")

    def input_columns(self) -> list[str]:
        cols = [self.sentences_column, self.images_column, self.similarity_column, self.sentence_column]
        return [c for c in cols if c]

    def _reason(self, n_sentences: int, n_images: int, sims, assigned) -> str | None:
        if n_sentences < self.min_sentences:
            return "too_few_sentences"
        if n_sentences > self.max_sentences:
            return "too_many_sentences"
        if n_images < self.min_images:
            return "too_few_images"
        if self.max_images is not None and n_images > self.max_images:
            return "too_many_images"
        if assigned is not None and any(s < 0 for s in assigned):
            return "image_without_sentence"
        if sims is not None and any(s is None or s < self.min_similarity for s in sims):
            return "weak_assignment"
        return None

    def drop_reasons(self, batch):
        sentences, images = batch[self.sentences_column], batch[self.images_column]
        n = len(sentences)
        sims = batch[self.similarity_column] if self.similarity_column else [None] * n
        assigned = batch[self.sentence_column] if self.sentence_column else [None] * n
        return [self._reason(len(s or []), len(i or []), m, a)
                for s, i, m, a in zip(sentences, images, sims, assigned, strict=True)]
