"""AdamW with no weight decay on norms, biases and the logit scale/bias; linear warmup then cosine decay."""

from __future__ import annotations

import logging

import torch

logger = logging.getLogger(__name__)

NO_DECAY_NAMES = ("logit_scale", "logit_bias")


def decays(name: str, param: torch.Tensor) -> bool:
    """Weight decay applies to matrices (linear, attention, embeddings); not to norms, biases (all 1-D)
    nor to the learnable temperature and bias of the sigmoid loss."""
    return param.ndim >= 2 and not any(n in name for n in NO_DECAY_NAMES)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups over the trainable parameters (frozen towers are left out)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (decay if decays(name, p) else no_decay).append(p)
    if not decay and not no_decay:
        raise ValueError("the model has no trainable parameter")
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: torch.nn.Module, *, lr: float, weight_decay: float, betas=(0.9, 0.999),
                    eps: float = 1e-8) -> torch.optim.AdamW:
    return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=betas, eps=eps)


def build_scheduler(optimizer: torch.optim.Optimizer, *, warmup_steps: int, total_steps: int):
    """Linear warmup to the base LR over ``warmup_steps``, then cosine decay to 0 at ``total_steps``."""
    from transformers import get_cosine_schedule_with_warmup

    if total_steps < 1 or warmup_steps < 0:
        raise ValueError(f"need total_steps >= 1 and warmup_steps >= 0, got {total_steps}, {warmup_steps}")
    return get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=warmup_steps, num_training_steps=total_steps)


WARMUP_FRACTION_WHEN_TOO_LONG = 0.1


def clamp_warmup(warmup_steps: int, total_steps: int, fraction: float = WARMUP_FRACTION_WHEN_TOO_LONG) -> int:
    """``warmup_steps``, or ``fraction`` of the run (at least 1 step) with a warning when the warmup would
    last the whole run: the LR would then never reach its base value (500 warmup steps in a 20-step run
    peak at 4% of it)."""
    if warmup_steps < total_steps:
        return warmup_steps
    clamped = max(1, int(total_steps * fraction))
    logger.warning("--warmup-steps %d is not shorter than the run (%d steps): warming up over %d steps (%d%% of "
                   "the run) instead", warmup_steps, total_steps, clamped, round(fraction * 100))
    return clamped
