"""SigmoidLoss: the definition by hand, transformers' Siglip2 loss, and 2-process parity with one process."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from waon_hf.training.loss import SigmoidLoss  # noqa: E402

GLOBAL_BATCH, DIM_IN, DIM_OUT = 12, 5, 4  # 12 rows split evenly over 2 or 3 ranks


def _normalised(n: int, d: int, generator: torch.Generator) -> torch.Tensor:
    x = torch.randn(n, d, generator=generator, dtype=torch.float64)
    return x / x.norm(dim=-1, keepdim=True)


def test_single_process_matches_definition():
    g = torch.Generator().manual_seed(0)
    img, txt = _normalised(6, 3, g), _normalised(6, 3, g)
    logit_scale, logit_bias = torch.tensor(math.log(10.0), dtype=torch.float64), torch.tensor(-3.0, dtype=torch.float64)
    expected = 0.0
    for i in range(6):
        for j in range(6):
            logit = 10.0 * float(img[i] @ txt[j]) - 3.0
            z = 1.0 if i == j else -1.0
            expected -= math.log(1.0 / (1.0 + math.exp(-z * logit)))
    expected /= 6
    got = SigmoidLoss()(img, txt, logit_scale, logit_bias)
    assert got.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("family", ["naflex", "fixres", "siglip"])
def test_single_process_matches_the_models_own_loss(family, tiny_model_dir):
    """``Siglip2Model`` (NaFlex) and ``SiglipModel`` (FixRes SigLIP2, SigLIP 1) with ``return_loss=True``."""
    pytest.importorskip("transformers")
    from PIL import Image
    from transformers import AutoModel, AutoProcessor

    model_dir = tiny_model_dir(family)
    model = AutoModel.from_pretrained(model_dir, local_files_only=True).eval()
    processor = AutoProcessor.from_pretrained(model_dir, local_files_only=True)
    images = [Image.new("RGB", (32 + 16 * k, 48), (40 * k, 200 - 30 * k, 90)) for k in range(4)]
    texts = ["赤い花", "青い空と海", "猫が寝ている", "富士山"]
    extra = {"max_num_patches": 64} if family == "naflex" else {}
    batch = processor(text=texts, images=images, padding="max_length", max_length=16, return_tensors="pt", **extra)
    batch.pop("attention_mask", None)
    with torch.no_grad():
        out = model(**batch, return_loss=True)
        ours = SigmoidLoss()(out.image_embeds, out.text_embeds, model.logit_scale, model.logit_bias)
    assert ours.item() == pytest.approx(out.loss.item(), rel=1e-5, abs=1e-6)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError):
        SigmoidLoss(rank=2, world_size=2)
    with pytest.raises(ValueError, match="unknown exchange"):
        SigmoidLoss(exchange="bidir")


def _global_batch():
    g = torch.Generator().manual_seed(1234)
    x_img = torch.randn(GLOBAL_BATCH, DIM_IN, generator=g, dtype=torch.float64)
    x_txt = torch.randn(GLOBAL_BATCH, DIM_IN, generator=g, dtype=torch.float64)
    return x_img, x_txt


def _fresh_params():
    """Two linear towers plus scale and bias, identical on every rank (what DDP's broadcast ensures)."""
    torch.manual_seed(0)
    img_proj = torch.nn.Linear(DIM_IN, DIM_OUT, dtype=torch.float64)
    txt_proj = torch.nn.Linear(DIM_IN, DIM_OUT, dtype=torch.float64)
    logit_scale = torch.nn.Parameter(torch.tensor(math.log(10.0), dtype=torch.float64))
    logit_bias = torch.nn.Parameter(torch.tensor(-10.0 / 3, dtype=torch.float64))
    return [img_proj, txt_proj], [*img_proj.parameters(), *txt_proj.parameters(), logit_scale, logit_bias]


def _loss_and_grads(x_img, x_txt, loss_fn):
    (img_proj, txt_proj), params = _fresh_params()
    img = torch.nn.functional.normalize(img_proj(x_img), dim=-1)
    txt = torch.nn.functional.normalize(txt_proj(x_txt), dim=-1)
    loss = loss_fn(img, txt, params[-2], params[-1])
    loss.backward()
    return loss.detach(), [p.grad.detach().clone() for p in params]


def _parity_on_rank(break_it: bool = False, exchange: str = "all_gather", world_size: int = 2):
    import warnings

    import torch.distributed as dist
    from accelerate import PartialState

    warnings.simplefilter("error", FutureWarning)  # no deprecated collective on the way
    state = PartialState(cpu=True)
    rank, world = state.process_index, state.num_processes
    assert world == world_size and dist.get_backend() == "gloo"
    x_img, x_txt = _global_batch()
    ref_loss, ref_grads = _loss_and_grads(x_img, x_txt, SigmoidLoss())

    n = GLOBAL_BATCH // world
    local = slice(rank * n, (rank + 1) * n)
    loss, grads = _loss_and_grads(x_img[local], x_txt[local], SigmoidLoss(rank, world, exchange=exchange))
    # what accelerator.reduce(loss, "mean") and DDP's gradient averaging do
    for t in [loss, *grads]:
        dist.all_reduce(t)
        t /= world
    if break_it:
        loss += 1e-3
    torch.testing.assert_close(loss, ref_loss, rtol=0, atol=1e-6)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    # cross-rank negatives matter: the local-only loss would differ
    local_only, _ = _loss_and_grads(x_img[local], x_txt[local], SigmoidLoss())
    assert abs(local_only.item() - ref_loss.item()) > 1e-3


def _launch(break_it: bool, exchange: str = "all_gather", world_size: int = 2) -> subprocess.CompletedProcess:
    """``debug_launcher`` forks; forking a process whose torch thread pool already ran hangs the children,
    so the launch happens in a fresh interpreter. A failing assertion on a rank makes it exit non-zero."""
    code = (
        "from accelerate import debug_launcher; from tests.test_loss import _parity_on_rank; "
        f"debug_launcher(_parity_on_rank, args=({break_it}, {exchange!r}, {world_size}), num_processes={world_size})"
    )
    root = Path(__file__).resolve().parents[1]
    return subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("exchange,world_size", [("all_gather", 2), ("ring", 2), ("all_gather", 3), ("ring", 3)])
def test_multi_process_parity_with_concatenated_batch(exchange, world_size):
    """Loss and every gradient on 2 (and 3: the ring then takes two hops) gloo processes equal one process
    on the concatenated batch."""
    pytest.importorskip("accelerate")
    result = _launch(break_it=False, exchange=exchange, world_size=world_size)
    assert result.returncode == 0, result.stderr[-4000:]


def test_failure_inside_launched_function_fails_the_test():
    pytest.importorskip("accelerate")
    result = _launch(break_it=True)
    assert result.returncode != 0
    assert "Scalars are not close" in result.stderr
