"""Training data for SigLIP2 fine-tuning: image-caption pairs from a Hub id or a `waon build` folder.

* ``load_pairs``: the ``image`` and ``caption`` columns, map-style or streaming, with images left
  undecoded (``datasets.Image(decode=False)``) so that decoding happens in the collate, where a bad
  image is a counted skip instead of an exception inside ``datasets``.
* ``EpochShuffleSampler``: a seeded permutation per epoch (``set_epoch``), the same on every rank;
  for map-style data, accelerate's prepared DataLoader then gives each rank its own batches
  (``BatchSamplerShard``), so ranks never see the same row in an epoch.
* ``make_train_loader``: the DataLoader; for streaming data, ``split_dataset_by_node`` shards the
  stream (the prepared-DataLoader route would have rank 0 read everything and dispatch it) and a
  seeded shuffle buffer is reshuffled per epoch with ``set_epoch``.
* ``SiglipCollator``: preprocessing as the checkpoint's family was trained
  (``waon_hf.training.family``): captions lowercased, padded on the right to ``max_length`` (64)
  with no attention mask; images through the checkpoint's image processor (fixed size for
  ``SiglipModel``, its ``max_num_patches`` for NaFlex ``Siglip2Model``). Undecodable images and
  empty captions are skipped and counted in the batch (``n_skipped`` and ``skip_reasons``), so
  counts survive DataLoader workers.
"""

from __future__ import annotations

import io
import logging
from collections import Counter
from pathlib import Path

import numpy as np
import torch

logger = logging.getLogger(__name__)

# Every tensor a SigLIP-family model may take (a batch holds the ones its family lists).
TENSOR_KEYS = ("input_ids", "pixel_values", "pixel_attention_mask", "spatial_shapes")


def load_pairs(source: str, *, split: str = "train", streaming: bool = False, image_column: str = "image",
               caption_column: str = "caption"):
    """The ``(image, caption)`` columns of a Hub dataset or a local folder written by ``waon build``."""
    import datasets

    try:
        ds = datasets.load_dataset(str(Path(source)) if Path(source).is_dir() else source, split=split,
                                   streaming=streaming)
    except (FileNotFoundError, ConnectionError, OSError, ValueError) as e:
        raise RuntimeError(f"could not load training data {source!r} (split {split!r}): {e}") from e
    columns = ds.column_names if ds.column_names is not None else list((ds.features or {}).keys())
    missing = [c for c in (image_column, caption_column) if c not in columns]
    if missing:
        raise ValueError(f"training data {source!r} has no column(s) {missing}; it has {columns} "
                         "(a `waon build` output has `image` and `caption`)")
    ds = ds.select_columns([image_column, caption_column])
    feature = (ds.features or {}).get(image_column)
    if isinstance(feature, datasets.Image) and feature.decode:
        ds = ds.cast_column(image_column, datasets.Image(decode=False))
    return ds


class EpochShuffleSampler(torch.utils.data.Sampler[int]):
    """A permutation of ``range(n)`` drawn from ``(seed, epoch)``: reproducible, different every epoch."""

    def __init__(self, n: int, seed: int = 0):
        self.n = n
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        return iter(order.tolist())

    def __len__(self) -> int:
        return self.n


def make_train_loader(ds, collate, *, batch_size: int, seed: int, num_workers: int = 0, streaming: bool = False,
                      rank: int = 0, world_size: int = 1, shuffle_buffer: int = 10_000):
    """``(DataLoader, epoch_setter)``; call ``epoch_setter(epoch)`` before iterating an epoch.

    Map-style: give the loader to ``accelerator.prepare``, which shards it by batch across ranks.
    Streaming: the stream is already this rank's shard; do not prepare the loader (move batches to
    the device yourself). ``drop_last=True`` in both: every rank's micro-batch has the same size,
    which the sigmoid loss's all-gather needs.
    """
    from torch.utils.data import DataLoader

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if streaming:
        from datasets.distributed import split_dataset_by_node

        ds = split_dataset_by_node(ds, rank=rank, world_size=world_size).shuffle(seed=seed, buffer_size=shuffle_buffer)
        loader = DataLoader(ds, batch_size=batch_size, collate_fn=collate, num_workers=num_workers, drop_last=True)
        return loader, ds.set_epoch
    sampler = EpochShuffleSampler(len(ds), seed)
    loader = DataLoader(ds, batch_size=batch_size, sampler=sampler, collate_fn=collate, num_workers=num_workers,
                        drop_last=True)
    return loader, sampler.set_epoch


def decode_image(value):
    """``(RGB PIL image, None)`` or ``(None, reason)`` for a ``{"bytes", "path"}`` value or a PIL image."""
    from PIL import Image, UnidentifiedImageError

    if value is not None and hasattr(value, "convert"):
        return (value if value.mode == "RGB" else value.convert("RGB")), None
    data = value.get("bytes") if isinstance(value, dict) else None
    path = value.get("path") if isinstance(value, dict) else value if isinstance(value, str) else None
    try:
        if data is not None:
            img = Image.open(io.BytesIO(data))
        elif path and Path(path).is_file():
            img = Image.open(path)
        else:
            return None, "no_image_bytes"
        img.load()
        if img.width < 1 or img.height < 1:
            return None, "empty_image"
        return (img if img.mode == "RGB" else img.convert("RGB")), None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None, "undecodable_image"


class SiglipCollator:
    """Rows ``{image, caption}`` -> a batch of the tensors ``family`` says the model takes; bad rows are
    skipped and counted in the batch.

    ``family`` (:class:`waon_hf.training.family.ModelFamily`) fixes the text recipe (lowercase, right
    padding to ``max_length``) and the image-processor settings (fixed size for ``SiglipModel``, the
    checkpoint's ``max_num_patches`` for NaFlex ``Siglip2Model``)."""

    def __init__(self, processor, family, *, image_column: str = "image", caption_column: str = "caption"):
        self.tokenizer = getattr(processor, "tokenizer", None)
        self.image_processor = getattr(processor, "image_processor", None)
        if self.tokenizer is None or self.image_processor is None:
            raise ValueError(f"{type(processor).__name__} lacks a tokenizer or an image processor")
        self.family = family
        self.image_keys = tuple(k for k in family.tensor_keys if k != "input_ids")
        self.image_column = image_column
        self.caption_column = caption_column

    @property
    def max_length(self) -> int:
        return self.family.max_length

    def __call__(self, rows: list[dict]) -> dict:
        images, texts, reasons = [], [], Counter()
        for row in rows:
            caption = row.get(self.caption_column)
            if not isinstance(caption, str) or not caption.strip():
                reasons["empty_caption"] += 1
                continue
            img, why = decode_image(row.get(self.image_column))
            if img is None:
                reasons[why] += 1
                continue
            images.append(img)
            texts.append(caption.lower() if self.family.lowercase else caption)
        batch: dict = {"n_skipped": torch.tensor(sum(reasons.values())), "skip_reasons": dict(reasons)}
        if not images:
            batch["input_ids"] = torch.empty(0, self.max_length, dtype=torch.long)
            return batch
        enc = self.tokenizer(texts, padding="max_length", max_length=self.max_length, truncation=True,
                             padding_side=self.family.padding_side, return_tensors="pt")
        pix = self.image_processor(images, return_tensors="pt", **self.family.image_kwargs)
        missing = [k for k in self.image_keys if k not in pix]
        if missing:
            raise RuntimeError(f"{type(self.image_processor).__name__} gave {sorted(pix)}, not the {missing} that a "
                               f"{self.family.model_class} takes")
        batch["input_ids"] = enc["input_ids"]
        batch.update({k: pix[k] for k in self.image_keys})
        return batch


def batch_rows(batch: dict) -> int:
    return int(batch["input_ids"].shape[0])


def model_inputs(batch: dict, n: int | None = None) -> dict:
    """The tensors the model takes, cut to the first ``n`` rows (all ranks must hold the same count)."""
    return {k: (batch[k] if n is None else batch[k][:n]) for k in TENSOR_KEYS if k in batch}
