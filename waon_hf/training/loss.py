"""Sigmoid (SigLIP) contrastive loss with negatives from every rank.

``Siglip2Model(return_loss=True)`` scores only the pairs of the local batch, and ``accelerator.gather``
carries no gradient, so with data parallelism each rank would see only its own negatives. ``SigmoidLoss``
scores the local images against the texts of *every* rank, with gradients flowing back to the rank that
owns each text.

Normalisation convention (exact; requires the same local batch size ``n`` on every rank, as
``DataLoader(drop_last=True)`` under DDP gives)::

    L_global = -1/N * sum_{i, j in global batch} logsigmoid(z_ij * (exp(t) * <img_i, txt_j> + b))

with ``N = n * world_size`` and ``z_ij = +1`` if ``i == j`` else ``-1``; this is the single-process
loss on the concatenated batch, and exactly what ``Siglip2Model`` computes (sum over texts, mean over
images). Rank ``r`` returns the rows of its own images, over all global texts, divided by the *local*
batch size::

    L_r = -1/n * sum_{i in rank r} sum_{j in global batch} logsigmoid(...)

Hence ``sum_r L_r = world_size * L_global`` and:

* loss value: the mean of ``L_r`` over ranks (``accelerator.reduce(loss, "mean")``) equals ``L_global``;
* gradients: the backward of the exchange sums, onto each text's owner, the gradient of every rank's
  ``L_r``, so the gradient a rank holds is that of
  ``sum_r L_r`` restricted to its own samples. DDP (``accelerator.backward`` + a prepared model)
  averages gradients over ranks, dividing by ``world_size``, so the effective gradient is exactly
  ``d L_global / d theta``. Parameters used by every rank (``logit_scale``, ``logit_bias``) get
  ``1/world_size * sum_r dL_r/dtheta = d L_global / d theta`` as well.

With ``world_size == 1`` the loss is ``L_global`` on the local batch, identical to ``Siglip2Model``'s.

Two exchanges of the text embeddings, equal in value and gradient (tested against one process):

* ``all_gather`` (default): one collective; every rank holds all ``N`` texts (``N x d`` memory,
  negligible next to the model for SigLIP-sized embeddings). The backward all-reduces the gradient of
  the gathered texts and keeps the owner's rows (:class:`GatherWithGrad`).
* ``ring``: ``world_size - 1`` neighbour exchanges (each rank sends its current block of texts to the
  next rank and receives the previous rank's), scoring each received block as it arrives, so a rank
  holds two blocks at a time, as open_clip's neighbour exchange does for SigLIP. The backward sends the
  gradients the opposite way round (:class:`NeighbourExchange`).

Both are small ``torch.autograd.Function`` s around the public ``torch.distributed`` calls;
``torch.distributed.nn.functional.all_gather`` is deprecated in torch 2.14 and its suggested
replacement lives in the private ``torch.distributed._functional_collectives``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

EXCHANGES = ("all_gather", "ring")


class GatherWithGrad(torch.autograd.Function):
    """``all_gather`` whose backward sums the gradient over ranks and returns the caller's rows."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
        import torch.distributed as dist

        ctx.rank, ctx.n = rank, tensor.shape[0]
        parts = [torch.empty_like(tensor) for _ in range(world_size)]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        import torch.distributed as dist

        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # every rank's loss used every text: the owner gets the sum
        return grad[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n], None, None


class NeighbourExchange(torch.autograd.Function):
    """Send ``tensor`` to ``to_rank`` and return what ``from_rank`` sent; the backward sends the gradient
    back the other way (the same exchange with the roles swapped)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, to_rank: int, from_rank: int) -> torch.Tensor:
        ctx.to_rank, ctx.from_rank = to_rank, from_rank
        return _exchange(tensor, to_rank, from_rank)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return NeighbourExchange.apply(grad, ctx.from_rank, ctx.to_rank), None, None


def _exchange(tensor: torch.Tensor, to_rank: int, from_rank: int) -> torch.Tensor:
    import torch.distributed as dist

    received = torch.empty_like(tensor)
    ops = [dist.P2POp(dist.isend, tensor.contiguous(), to_rank), dist.P2POp(dist.irecv, received, from_rank)]
    for request in dist.batch_isend_irecv(ops):
        request.wait()
    return received


class SigmoidLoss(torch.nn.Module):
    """Pairwise sigmoid loss; rank and world size are given, the exchange is chosen by name."""

    def __init__(self, rank: int = 0, world_size: int = 1, exchange: str = "all_gather"):
        super().__init__()
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        if exchange not in EXCHANGES:
            raise ValueError(f"unknown exchange {exchange!r}; available: {', '.join(EXCHANGES)}")
        self.rank = rank
        self.world_size = world_size
        self.exchange = exchange

    @staticmethod
    def pair_loss(
        img: torch.Tensor, txt: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, positives: bool
    ) -> torch.Tensor:
        """Single-device term: rows are ``img``, columns ``txt``; divided by the number of images.

        ``positives=True``: ``img[i]`` and ``txt[i]`` are pairs (label +1 on the diagonal, -1 elsewhere);
        ``positives=False``: every pair is a negative (label -1).
        """
        logits = scale * img @ txt.T + bias
        labels = -torch.ones_like(logits)
        if positives:
            labels = labels + 2 * torch.eye(logits.shape[0], logits.shape[1], dtype=logits.dtype, device=logits.device)
        return -F.logsigmoid(labels * logits).sum() / img.shape[0]

    def forward(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor,
        logit_bias: torch.Tensor,
    ) -> torch.Tensor:
        """``image_features``/``text_features``: L2-normalised ``(n, d)`` embeddings of the local batch;
        ``logit_scale``: log of the temperature scale (exponentiated here); ``logit_bias``: additive bias."""
        scale = logit_scale.exp()
        loss = self.pair_loss(image_features, text_features, scale, logit_bias, positives=True)
        if self.world_size == 1:
            return loss
        if self.exchange == "ring":
            right, left = (self.rank + 1) % self.world_size, (self.rank - 1) % self.world_size
            texts = text_features
            for _ in range(self.world_size - 1):  # after k hops this rank holds the texts of rank - k
                texts = NeighbourExchange.apply(texts, right, left)
                loss = loss + self.pair_loss(image_features, texts, scale, logit_bias, positives=False)
            return loss
        n = text_features.shape[0]
        texts = GatherWithGrad.apply(text_features, self.rank, self.world_size)
        for other in range(self.world_size):
            if other != self.rank:
                loss = loss + self.pair_loss(image_features, texts[other * n:(other + 1) * n], scale, logit_bias,
                                             positives=False)
        return loss
