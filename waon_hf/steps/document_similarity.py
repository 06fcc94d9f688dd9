"""Image-sentence similarity for interleaved documents, and the assignment of images to sentences.

:class:`AssignImages` embeds a document's sentences and images with a configurable dual encoder
(:class:`~waon_hf.models.dual_encoder.DualEncoder`; VILA-jp used a multilingual OpenCLIP ViT-H-14,
the default here is the SigLIP2 model the pair scores use), computes the raw cosine of every
(image, sentence), removes images below ``min_similarity`` against every sentence, and assigns the
rest by maximum total similarity (:func:`waon_hf.steps.assignment.assign_images`). The per-image
list columns are filtered together; ``image_sentence`` and ``image_similarity`` are added.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np

from waon_hf.images import load_rgb, to_rgb
from waon_hf.steps.assignment import assign_images
from waon_hf.steps.base import Batch, MapStep, register
from waon_hf.steps.scoring import DEFAULT_MODEL, resolve_device, resolve_dtype

logger = logging.getLogger(__name__)

# Columns holding one value per image of a document, filtered together.
IMAGE_LIST_COLUMNS = ("image", "image_url", "image_sha256", "image_phash", "image_width", "image_height",
                      "image_position", "image_punsafe", "image_alt")


@register
@dataclasses.dataclass
class AssignImages(MapStep):
    """Similarity of every image to every sentence; weak images removed; the rest assigned one-to-one."""

    name = "assign_images"
    needs_rank = True
    model: str = DEFAULT_MODEL
    revision: str | None = None
    device: str = "cpu"
    dtype: str = "auto"
    min_similarity: float = 0.20
    batch_size: int = 64  # sentences or images per forward pass
    sentences_column: str = "sentences"

    def input_columns(self) -> list[str]:
        return [self.sentences_column, *IMAGE_LIST_COLUMNS]

    def output_columns(self) -> list[str]:
        return [*IMAGE_LIST_COLUMNS, "image_sentence", "image_similarity"]

    def encoder(self, rank: int | None = None):
        enc = getattr(self, "_cache_encoder", None)
        if enc is None:
            from waon_hf.models.dual_encoder import DualEncoder

            device = resolve_device(self.device, rank)
            enc = DualEncoder.from_pretrained(self.model, device=device, dtype=resolve_dtype(self.dtype, device),
                                              revision=self.revision)
            logger.info("assign_images: loaded %s on %s", self.model, device)
            self._cache_encoder = enc
        return enc

    def _embed(self, fn, values: list) -> np.ndarray:
        out = [fn(values[i:i + self.batch_size]).float().cpu().numpy() for i in range(0, len(values), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    def similarity(self, sentences: list[str], images: list, rank: int | None = None) -> np.ndarray:
        """``images x sentences`` raw cosines (decoded images only; None rows for undecodable ones are -inf)."""
        enc = self.encoder(rank)
        decoded = [load_rgb(v, who=self.name, convert=to_rgb) for v in images]
        ok = [i for i, img in enumerate(decoded) if img is not None]
        sim = np.full((len(images), len(sentences)), -np.inf)
        if ok and sentences:
            txt = self._embed(enc.encode_texts, sentences)
            img = self._embed(enc.encode_images, [decoded[i] for i in ok])
            sim[ok] = img @ txt.T
        return sim

    def process_batch_ranked(self, batch: Batch, rank: int | None) -> Batch:
        out: dict[str, list[Any]] = {c: [] for c in self.output_columns()}
        for row in range(len(batch[self.sentences_column])):
            sentences = batch[self.sentences_column][row] or []
            images = batch["image"][row] or []
            a = assign_images(self.similarity(sentences, images, rank), self.min_similarity) if images else None
            kept = a.kept if a else []
            for col in IMAGE_LIST_COLUMNS:
                values = batch[col][row] or []
                out[col].append([values[i] for i in kept])
            out["image_sentence"].append(a.sentence if a else [])
            out["image_similarity"].append(a.similarity if a else [])
        return out

    def process_batch(self, batch: Batch) -> Batch:
        return self.process_batch_ranked(batch, None)
