"""A SigLIP-family model wrapped for training: forward returns the sigmoid loss with negatives from every rank.

``SiglipModel`` (FixRes SigLIP2, SigLIP 1) and ``Siglip2Model`` (NaFlex) alike: the wrapper passes on
whatever tensors the batch holds (the collator puts in those the family takes, see
``waon_hf.training.family``) and reads only ``image_embeds`` / ``text_embeds``.

The wrapper is what accelerate prepares (DDP/FSDP), so the model's own learnable ``logit_scale`` and
``logit_bias`` are read inside ``forward``, where FSDP has them gathered, and their gradients are
averaged like any other parameter's.
"""

from __future__ import annotations

import logging

import torch

from waon_hf.training.loss import SigmoidLoss

logger = logging.getLogger(__name__)

TOWERS = {"vision": "vision_model", "text": "text_model"}


class ContrastiveSiglip(torch.nn.Module):
    """``forward(**batch) -> this rank's sigmoid loss`` (see ``SigmoidLoss`` for the normalisation)."""

    def __init__(self, model: torch.nn.Module, loss_fn: SigmoidLoss):
        super().__init__()
        for name in ("logit_scale", "logit_bias"):
            if not isinstance(getattr(model, name, None), torch.nn.Parameter):
                raise TypeError(f"{type(model).__name__} has no learnable {name}: not a SigLIP-style model")
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, **inputs):
        """``inputs``: ``input_ids`` and ``pixel_values`` (+ ``pixel_attention_mask`` and ``spatial_shapes``
        for NaFlex)."""
        out = self.model(**inputs)
        return self.loss_fn(out.image_embeds, out.text_embeds, self.model.logit_scale, self.model.logit_bias)


def freeze_tower(model: torch.nn.Module, tower: str | None) -> None:
    """LiT-style: freeze the ``vision`` or ``text`` tower (the logit scale/bias stay trainable)."""
    if tower is None:
        return
    if tower not in TOWERS:
        raise ValueError(f"tower must be one of {sorted(TOWERS)}, got {tower!r}")
    module = getattr(model, TOWERS[tower], None)
    if module is None:
        raise ValueError(f"{type(model).__name__} has no {TOWERS[tower]} to freeze")
    module.requires_grad_(False)
    frozen = sum(p.numel() for p in module.parameters())
    total = sum(p.numel() for p in model.parameters())
    logger.info("froze the %s tower: %d of %d parameters", tower, frozen, total)


def load_model_and_processor(name_or_path: str, *, revision: str | None = None):
    """``AutoModel`` + ``AutoProcessor`` (float32 weights: accelerate's mixed precision autocasts)."""
    from transformers import AutoModel, AutoProcessor

    try:
        model = AutoModel.from_pretrained(name_or_path, revision=revision, dtype=torch.float32)
        processor = AutoProcessor.from_pretrained(name_or_path, revision=revision)
    except (OSError, ValueError, KeyError, TypeError, ImportError) as e:
        raise RuntimeError(f"could not load model {name_or_path!r}: {e}") from e
    return model, processor
