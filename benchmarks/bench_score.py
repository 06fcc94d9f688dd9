"""Throughput of the ``siglip_score`` step against the model's bare forward pass (pairs/s, CPU).

Model: a random SigLIP2 built locally (``build_tiny_siglip2`` with hidden 256 x 4 layers in both
towers, 224 px / patch 16 = 196 patches, text length 64).

(a) bare: ``get_image_features`` + ``get_text_features`` under ``torch.inference_mode`` on tensors
    preprocessed and batched before the clock starts (``--batch-size`` pairs a batch), plus the
    cosine. No step can beat it.
(b) step: ``SiglipScore(...).apply(ds)`` on a ``datasets.Dataset`` of ``--pairs`` synthetic JPEGs
    (random colour blocks, 200-320 px) with Japanese captions: reading the rows, JPEG decoding, the
    image processor, tokenising, both towers, the cosine and writing the ``similarity`` column.

Each is the best of ``--repeats`` runs after a warm-up (the model is loaded before the clock).
Prints a Markdown table.

Usage: ``python benchmarks/bench_score.py [--pairs 256] [--batch-size 64] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

SMALL = {
    "text_config": {"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 4,
                    "num_attention_heads": 4, "projection_size": 256},
    "vision_config": {"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 4,
                      "num_attention_heads": 4, "num_patches": 196},
    "max_num_patches": 196,
}
CAPTIONS = ("赤い鳥居と石の階段", "富士山と桜の風景", "夏祭りの屋台と提灯", "寿司とお茶の写真", "京都の古いお寺の庭",
            "柴犬が公園を散歩している", "浴衣を着た人と花火", "東京の夜景とタワー")


def synthetic_pairs(n: int, seed: int = 0):
    import datasets

    from waon_hf.testing.synthetic import synthetic_jpegs

    images = synthetic_jpegs(n, seed)
    captions = [CAPTIONS[i % len(CAPTIONS)] + f" {i}" for i in range(n)]
    features = datasets.Features({"image": datasets.Image(), "caption": datasets.Value("string")})
    return datasets.Dataset.from_dict({"image": images, "caption": captions}, features=features)


def best_of(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    import torch
    from PIL import Image

    from waon_hf.images import image_bytes
    from waon_hf.steps.scoring import SiglipScore
    from waon_hf.testing.tiny_models import build_tiny_siglip2

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_siglip2(Path(tmp) / "small", seed=0, **SMALL)
        ds = synthetic_pairs(args.pairs)
        step = SiglipScore(model=model_dir, batch_size=args.batch_size)
        enc = step.encoder()  # load before the clock
        model = enc.model

        # (a) bare forward on pre-batched tensors
        raw = ds.cast_column("image", ds.features["image"].__class__(decode=False))
        pil = [Image.open(io.BytesIO(image_bytes(v))).convert("RGB") for v in raw["image"]]
        caps = raw["caption"]
        batches = []
        for s in range(0, len(pil), args.batch_size):
            chunk = slice(s, s + args.batch_size)
            batches.append((enc.preprocess_images(pil[chunk]), enc.tokenize(caps[chunk])))

        def bare():
            with torch.inference_mode():
                for img_in, txt_in in batches:
                    img = model.get_image_features(**img_in).pooler_output
                    txt = model.get_text_features(**txt_in).pooler_output
                    torch.nn.functional.cosine_similarity(img, txt, dim=-1)

        def through_step():
            out = step.apply(ds)
            assert out.features["similarity"].dtype == "float32" and len(out) == args.pairs

        rows = []
        paths = (("bare forward (pre-batched tensors)", bare), ("`siglip_score` step via `apply`", through_step))
        for name, fn in paths:
            rows.append((name, args.pairs / best_of(fn, args.repeats)))

    n_params = sum(p.numel() for p in model.parameters())
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; model: random SigLIP2 hidden 256 x 4 layers, 196 patches, "
          f"{n_params / 1e6:.1f}M params; {args.pairs} pairs, batch {args.batch_size}, best of {args.repeats}")
    print()
    print("| path | pairs/s | vs bare |")
    print("|---|---:|---:|")
    base = rows[0][1]
    for name, rate in rows:
        print(f"| {name} | {rate:.1f} | {rate / base:.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
