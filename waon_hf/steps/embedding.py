"""Dual-encoder steps the recipes add to the score stage.

* :class:`ImageEmbedding` (``image_embedding``): writes ``embedding`` (``list<float32>``, L2-normalised
  image embedding of the dual encoder), what :class:`~waon_hf.steps.semantic_dedup.SemanticDedup`
  clusters. Null when the image is missing or undecodable. Images are encoded ``batch_size`` at a
  time, so memory is bounded by one chunk of images plus the batch's vectors.
* :class:`ExtraSiglipScore` (``extra_siglip_score``): the image-caption cosine of a second model into
  its own column (default ``similarity_2``), for VILA-jp's two-model score (each normalised by its
  median over the dataset by the ``score_quantile`` global step).

Both load the model exactly like :class:`~waon_hf.steps.scoring.SiglipScore` (its ``encoder``: lazily,
once per process, a model that cannot be loaded is an error naming it).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import datasets

from waon_hf.images import load_rgb, to_rgb
from waon_hf.steps.base import Batch, register
from waon_hf.steps.scoring import SiglipScore


@register
@dataclasses.dataclass
class ImageEmbedding(SiglipScore):
    """Add ``embedding``: the normalised image embedding (float32 list), null for a missing image."""

    name = "image_embedding"
    model: str | None = None  # None: the score stage's siglip model (filled in by the catalogue)
    output_column: str = "embedding"

    def input_columns(self) -> list[str]:
        return [self.image_column]

    def output_columns(self) -> list[str]:
        return [self.output_column]

    def output_features(self) -> dict[str, Any]:
        return {self.output_column: datasets.List(datasets.Value("float32"))}

    def embed_batch(self, batch: Batch, rank: int | None = None) -> Batch:
        images = batch[self.image_column]
        out: list[list[float] | None] = [None] * len(images)
        rows, pending = [], []
        for i, value in enumerate(images):
            img = load_rgb(value, who=self.name, convert=to_rgb)
            if img is None:
                continue
            rows.append(i)
            pending.append(img)
            if len(pending) == self.batch_size:
                self._embed_chunk(rows, pending, out, rank)
                rows, pending = [], []
        if pending:
            self._embed_chunk(rows, pending, out, rank)
        return {self.output_column: out}

    def _embed_chunk(self, rows, images, out, rank) -> None:
        emb = self.encoder(rank).encode_images(images).float().cpu().numpy()
        for i, vector in zip(rows, emb, strict=True):
            out[i] = vector.tolist()

    def process_batch(self, batch: Batch) -> Batch:
        return {**batch, **self.embed_batch(batch)}

    def process_batch_ranked(self, batch: Batch, rank: int | None) -> Batch:
        return {**batch, **self.embed_batch(batch, rank)}


@register
@dataclasses.dataclass
class ExtraSiglipScore(SiglipScore):
    """A second model's image-caption cosine in ``output_column`` (VILA-jp scores with two models)."""

    name = "extra_siglip_score"
    model: str | None = None  # None: the score stage's siglip model (filled in by the catalogue)
    output_column: str = "similarity_2"

    def __post_init__(self):
        super().__post_init__()
        if self.with_probability:
            raise ValueError("extra_siglip_score writes the cosine only (with_probability is not supported)")
        if self.output_column == "similarity":
            raise ValueError("output_column 'similarity' is siglip_score's; name the second score another column")

    def output_columns(self) -> list[str]:
        return [self.output_column]

    def output_features(self) -> dict[str, Any]:
        return {self.output_column: datasets.Value("float64")}  # as SiglipScore's similarity

    def process_batch(self, batch: Batch) -> Batch:
        return {**batch, self.output_column: self.score_batch(batch)["similarity"]}

    def process_batch_ranked(self, batch: Batch, rank: int | None) -> Batch:
        return {**batch, self.output_column: self.score_batch(batch, rank)["similarity"]}
