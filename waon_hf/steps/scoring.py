"""Model-based curation: image-caption similarity with a dual encoder, and a band filter on it.

WAON keeps a pair when the SigLIP2 cosine between the image and the caption is >= 0.1
(``google/siglip2-base-patch16-256``); DanQing also drops pairs ABOVE an upper bound (OCR-heavy
images whose caption repeats the text in the image). Two steps:

* :class:`SiglipScore` (``siglip_score``, a map step) adds ``similarity``: the raw cosine of the
  L2-normalised image and text embeddings (float32; WAON's definition), null when the image is
  missing or undecodable, or the caption is null. With ``with_probability`` it also adds
  ``similarity_prob`` = ``sigmoid(exp(logit_scale) * cosine + logit_bias)``, the model's own pair
  probability (SigLIP / SigLIP2 only).
* :class:`SimilarityBand` (``similarity_band``, a filter) keeps ``min_similarity <= similarity <=
  max_similarity`` (either bound may be ``None``). Drop reasons ``no_similarity`` (null),
  ``low_similarity``, ``high_similarity``.

Preprocessing is :class:`waon_hf.models.dual_encoder.DualEncoder`'s, the one the evaluation uses: SigLIP
text lowercased, padded RIGHT to the text tower's length (64) with no attention mask; the image
processor called with its saved settings passed explicitly. The model is loaded lazily, once per
process (``_cache_encoder``, never pickled); a model that cannot be loaded is an error naming it
(no fallback, no silent skip). Each image is decoded once; rows are scored ``batch_size`` at a time
whatever the ``map`` batch is, so memory stays bounded.

Devices
    ``device="cpu"`` (float32), ``"cuda"``, ``"cuda:1"``, ... ``dtype="auto"`` is float32 on the CPU
    and bfloat16 on CUDA; ``"float32"`` / ``"bfloat16"`` / ``"float16"`` (or ``fp32`` / ``bf16`` /
    ``fp16``) force one. Scores are always computed in float32 from the normalised embeddings.

Several GPUs: one process per device
    ``device="cuda:auto"`` gives each process its own GPU, ``cuda:{rank % torch.cuda.device_count()}``.
    The rank is the ``datasets`` process rank when the step runs through :meth:`SiglipScore.apply`
    with ``num_proc=N`` (this step's ``apply`` calls ``map(..., with_rank=True)``), so on a machine
    with 4 GPUs::

        step = SiglipScore(device="cuda:auto")
        ds = step.apply(ds, num_proc=4)   # process k scores its contiguous quarter on cuda:k

    Outside ``map`` (``apply_batch``, or ``num_proc=None``) the rank is ``LOCAL_RANK`` when set
    (``torchrun`` / ``accelerate``), else 0. The ``--workers N`` shard runner starts its processes
    without a rank, so there use ``num_proc`` inside a worker, or one ``waon`` command per GPU with
    ``device="cuda:K"`` (or ``CUDA_VISIBLE_DEVICES=K``) on a disjoint set of input shards.
    ``datasets`` forks its workers: the parent must not have used CUDA before (this step loads the
    model in the workers, never in the parent, when ``num_proc > 1``), and on the CPU a fork after
    torch has run in the parent hung here (OpenMP thread pool); on the CPU use ``num_proc=None``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from typing import Any

import datasets

from waon_hf.images import load_rgb, to_rgb
from waon_hf.steps.base import Batch, FilterStep, MapStep, register

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "google/siglip2-base-patch16-256"
_DTYPE_ALIASES = {"fp32": "float32", "float32": "float32", "bf16": "bfloat16", "bfloat16": "bfloat16",
                  "fp16": "float16", "float16": "float16"}


def resolve_device(device: str, rank: int | None = None) -> str:
    """``cuda:auto`` -> ``cuda:{rank % device_count}`` (rank: given, else ``LOCAL_RANK``, else 0)."""
    if device != "cuda:auto":
        return device
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("device 'cuda:auto' was asked for but torch sees no CUDA device")
    if rank is None:
        rank = int(os.environ.get("LOCAL_RANK", "0"))
    return f"cuda:{rank % torch.cuda.device_count()}"


def resolve_dtype(dtype: str, device: str) -> str:
    """``auto`` -> float32 on the CPU, bfloat16 on CUDA; aliases -> torch names."""
    if dtype == "auto":
        return "bfloat16" if device.startswith("cuda") else "float32"
    try:
        return _DTYPE_ALIASES[dtype]
    except KeyError:
        raise ValueError(f"dtype must be 'auto' or one of {sorted(_DTYPE_ALIASES)}, got {dtype!r}") from None


@register
@dataclasses.dataclass
class SiglipScore(MapStep):
    """Add ``similarity`` (cosine of image and caption embeddings) and optionally ``similarity_prob``."""

    name = "siglip_score"
    needs_rank = True  # device="cuda:auto" picks the GPU of the map process
    model: str = DEFAULT_MODEL
    revision: str | None = None
    device: str = "cpu"
    dtype: str = "auto"
    batch_size: int = 64
    with_probability: bool = False
    image_column: str = "image"
    caption_column: str = "caption"

    def __post_init__(self):
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.dtype != "auto" and self.dtype not in _DTYPE_ALIASES:
            raise ValueError(f"dtype must be 'auto' or one of {sorted(_DTYPE_ALIASES)}, got {self.dtype!r}")

    def input_columns(self) -> list[str]:
        return [self.image_column, self.caption_column]

    def image_columns(self) -> list[str]:
        return [self.image_column]

    def output_columns(self) -> list[str]:
        return ["similarity", "similarity_prob"] if self.with_probability else ["similarity"]

    def output_features(self) -> dict[str, Any]:
        # float64 as in WAON's release (computed in float32), so our rows and WAON's concatenate
        return {c: datasets.Value("float64") for c in self.output_columns()}

    # -- the model, once per process ---------------------------------------------------------------
    def encoder(self, rank: int | None = None):
        """The loaded :class:`DualEncoder` (loaded on first use in this process)."""
        enc = getattr(self, "_cache_encoder", None)
        if enc is None:
            from waon_hf.models.dual_encoder import DualEncoder

            device = resolve_device(self.device, rank)
            dtype = resolve_dtype(self.dtype, device)
            enc = DualEncoder.from_pretrained(self.model, device=device, dtype=dtype, revision=self.revision)
            scale_bias = None
            if self.with_probability:
                scale, bias = getattr(enc.model, "logit_scale", None), getattr(enc.model, "logit_bias", None)
                if scale is None or bias is None:
                    raise RuntimeError(f"model {self.model!r} ({type(enc.model).__name__}) has no logit_scale/"
                                       "logit_bias: with_probability needs a SigLIP-style model")
                scale_bias = (float(scale.detach().float().exp().reshape(-1)[0]),
                              float(bias.detach().float().reshape(-1)[0]))
            logger.info("siglip_score: loaded %s on %s (%s)", self.model, device, dtype)
            self._cache_encoder = enc
            self._cache_scale_bias = scale_bias
        return enc

    # -- scoring -----------------------------------------------------------------------------------
    def score_batch(self, batch: Batch, rank: int | None = None) -> Batch:
        """The new columns only (``similarity`` [, ``similarity_prob``]) for a batch of rows."""
        images, captions = batch[self.image_column], batch[self.caption_column]
        n = len(images)
        sims: list[float | None] = [None] * n
        probs: list[float | None] = [None] * n
        if n:
            enc = self.encoder(rank)
            rows: list[int] = []
            pending: list = []
            for i, (value, caption) in enumerate(zip(images, captions, strict=True)):
                if caption is None:
                    continue
                img = _decode(value)
                if img is None:
                    continue
                rows.append(i)
                pending.append(img)
                if len(pending) == self.batch_size:
                    self._score_chunk(enc, rows, pending, captions, sims, probs)
                    rows, pending = [], []
            if pending:
                self._score_chunk(enc, rows, pending, captions, sims, probs)
        out: Batch = {"similarity": sims}
        if self.with_probability:
            out["similarity_prob"] = probs
        return out

    def _score_chunk(self, enc, rows, images, captions, sims, probs) -> None:
        import torch

        img_emb = enc.encode_images(images)
        txt_emb = enc.encode_texts([captions[i] for i in rows])
        cos = (img_emb * txt_emb).sum(-1)
        for i, c in zip(rows, cos.tolist(), strict=True):
            sims[i] = c
        if self.with_probability:
            scale, bias = self._cache_scale_bias
            for i, p in zip(rows, torch.sigmoid(cos * scale + bias).tolist(), strict=True):
                probs[i] = p

    def process_batch(self, batch: Batch) -> Batch:
        return {**batch, **self.score_batch(batch)}

    def process_batch_ranked(self, batch: Batch, rank: int | None) -> Batch:
        return {**batch, **self.score_batch(batch, rank)}


def _decode(value: Any):
    """An RGB image (imagededup's conversion, as the scores were defined with), or ``None``."""
    return load_rgb(value, who="siglip_score", convert=to_rgb)


@register
@dataclasses.dataclass
class SimilarityBand(FilterStep):
    """Keep rows with ``min_similarity <= similarity <= max_similarity`` (``None``: no bound on that side)."""

    name = "similarity_band"
    min_similarity: float | None = 0.1
    max_similarity: float | None = None
    column: str = "similarity"

    def __post_init__(self):
        lo, hi = self.min_similarity, self.max_similarity
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"min_similarity {lo} > max_similarity {hi}: the band keeps nothing")

    def drop_reasons(self, batch: Batch) -> list[str | None]:
        lo, hi = self.min_similarity, self.max_similarity
        reasons: list[str | None] = []
        for s in batch[self.column]:
            if s is None or (isinstance(s, float) and math.isnan(s)):
                reasons.append("no_similarity")
            elif lo is not None and s < lo:
                reasons.append("low_similarity")
            elif hi is not None and s > hi:
                reasons.append("high_similarity")
            else:
                reasons.append(None)
        return reasons
