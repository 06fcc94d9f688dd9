"""Throughput of the zero-shot runner against the model's bare image forward pass.

For each model (random SigLIP2s built locally: ``tiny``, hidden 32 x 2 layers, 64 patches; and
``small``, hidden 256 x 4 layers, 224 px / patch 16 = 196 patches):

(a) bare: ``model.get_image_features(**batch)`` under ``torch.inference_mode`` on pixel tensors
    preprocessed and batched before the clock starts. No runner can beat it.
(b) runner: ``waon_hf.eval.zeroshot.score_rows`` over a ``datasets`` table of JPEG bytes: reading
    rows, decoding, the checkpoint's image processor, the forward pass, normalisation and the
    similarity with the class embeddings, with the next batch prepared in a helper thread
    (``prefetch``) and without it.

Each is the best of ``--repeats`` runs after a warm-up, all configurations run round-robin so that
load from other processes hits them alike (the load average before and after is printed; the
``--json`` rows also hold the process CPU time of each). The last column splits the work into
decoding, the image processor and the forward pass, each timed alone the same way. Images are synthetic (random
blocks of colour, varied sizes around 256 px), ``--images`` of them, batch ``--batch-size``.
Prints a Markdown table; ``--json`` saves the numbers.

Usage: ``python benchmarks/bench_eval.py [--images 256] [--batch-size 32] [--models tiny,small]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from machine import describe_torch_machine  # benchmarks/machine.py (scripts run from benchmarks/)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

MODELS = {
    "tiny": {"text_config": {}, "vision_config": {}, "max_num_patches": 64},
    "small": {
        "text_config": {"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 4,
                        "num_attention_heads": 4, "projection_size": 256},
        "vision_config": {"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 4,
                          "num_attention_heads": 4, "num_patches": 196},
        "max_num_patches": 196,
    },
}
N_CLASSES = 374  # WAON-Bench's class count: the similarity matmul is as wide as the real one


def synthetic_table(n: int, seed: int = 0):
    import datasets

    from waon_hf.testing.synthetic import synthetic_jpegs

    blobs = synthetic_jpegs(n, seed)
    return datasets.Dataset.from_dict({"image": blobs}, features=datasets.Features({"image": datasets.Image()}))


def interleaved_best(fns: dict, repeats: int) -> dict[str, tuple[float, float]]:
    """Best (wall, CPU) seconds of each function, run round-robin so that a burst of load from other
    processes on the machine hits every configuration alike rather than one of them. CPU time
    (all threads of this process) does not depend on what else runs on the machine."""
    best = {k: (float("inf"), float("inf")) for k in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            best[key] = (min(best[key][0], wall), min(best[key][1], cpu))
    return best


def bench_model(name: str, table, args) -> dict:
    import torch

    from waon_hf.eval.benchmarks import ImageColumn
    from waon_hf.eval.zeroshot import EmbeddingScorer, class_embeddings, score_rows
    from waon_hf.models.dual_encoder import DualEncoder
    from waon_hf.testing.tiny_models import build_tiny_siglip2

    cfg = MODELS[name]
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_siglip2(Path(tmp) / name, seed=0, max_num_patches=cfg["max_num_patches"],
                                  text_config=cfg["text_config"], vision_config=cfg["vision_config"])
        encoder = DualEncoder.from_pretrained(path, local_files_only=True)
    images = ImageColumn(table, base_dir=None, source="synthetic")
    classes = [f"クラス{i}" for i in range(N_CLASSES)]
    scorer = EmbeddingScorer(encoder, class_embeddings(encoder, classes, ("{}の写真",)))
    n, bs = len(table), args.batch_size

    # (a) bare forward on pre-batched tensors
    decoded = [img for img, _ in images.load(list(range(n)))]
    batches = [encoder.preprocess_images(decoded[i:i + bs]) for i in range(0, n, bs)]
    model = encoder.model

    def bare():
        with torch.inference_mode():
            for b in batches:
                model.get_image_features(**b)

    with torch.inference_mode():
        model.get_image_features(**batches[0])  # warm-up
    score_rows(images, scorer, N_CLASSES, batch_size=bs)
    chunks = [list(range(i, min(i + bs, n))) for i in range(0, n, bs)]

    def decode():
        for rows in chunks:
            images.load(rows)

    def preprocess():
        for i in range(0, n, bs):
            encoder.preprocess_images(decoded[i:i + bs])

    best = interleaved_best({
        "bare": bare,
        "runner_prefetch": lambda: score_rows(images, scorer, N_CLASSES, batch_size=bs, prefetch=True),
        "runner_serial": lambda: score_rows(images, scorer, N_CLASSES, batch_size=bs, prefetch=False),
        "decode": decode,
        "preprocess": preprocess,
    }, args.repeats)
    t_bare, cpu_bare = best["bare"]
    row = {"model": name, "n_parameters": encoder.describe()["n_parameters"],
           "max_num_patches": cfg["max_num_patches"], "images": n, "batch_size": bs,
           "bare_images_per_s": n / t_bare, "bare_cpu_ms_per_image": 1000 * cpu_bare / n}
    for key in ("runner_prefetch", "runner_serial"):
        wall, cpu = best[key]
        row[f"{key}_images_per_s"] = n / wall
        row[f"{key}_share_of_bare"] = t_bare / wall
        row[f"{key}_cpu_ms_per_image"] = 1000 * cpu / n
        row[f"{key}_cpu_share_of_bare"] = cpu_bare / cpu
    row["decode_ms_per_image"] = 1000 * best["decode"][0] / n
    row["preprocess_ms_per_image"] = 1000 * best["preprocess"][0] / n
    row["forward_ms_per_image"] = 1000 * t_bare / n
    return row


def markdown(rows: list[dict]) -> str:
    out = ["| model | params | patches | bare forward | runner, serial (share of bare) | "
           "runner, prefetch (share of bare) | decode / preprocess / forward (ms per image) |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(
            f"| {r['model']} | {r['n_parameters'] / 1e6:.2f} M | {r['max_num_patches']} | "
            f"{r['bare_images_per_s']:.0f} img/s | "
            f"{r['runner_serial_images_per_s']:.0f} img/s ({100 * r['runner_serial_share_of_bare']:.0f}%) | "
            f"{r['runner_prefetch_images_per_s']:.0f} img/s ({100 * r['runner_prefetch_share_of_bare']:.0f}%) | "
            f"{r['decode_ms_per_image']:.2f} / {r['preprocess_ms_per_image']:.2f} / {r['forward_ms_per_image']:.2f} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--models", default="tiny,small")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = ap.parse_args(argv)

    import datasets
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    table = synthetic_table(args.images)
    print(f"Before: {describe_torch_machine()}")
    rows = [bench_model(name.strip(), table, args) for name in args.models.split(",") if name.strip()]
    print(f"After:  {describe_torch_machine()}\n")
    print(markdown(rows))
    if args.json:
        report = {"machine": describe_torch_machine(), "rows": rows}
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
