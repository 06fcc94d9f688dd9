"""Training throughput: the full data path of training/finetune_siglip2.py against the bare training step.

For a random SigLIP2 built locally (``--preset``) and AdamW:

(a) bare: forward (``ContrastiveSiglip`` = model + sigmoid loss) + backward + optimizer step on
    batches collated before the clock starts. No data path can beat it.
(b) data: the same step fed by the training DataLoader (``waon_hf.training.data``: a ``datasets``
    table of JPEG bytes -> epoch-shuffled sampler -> ``SiglipCollator``: decoding, lowercasing,
    tokenizing, the image processor) with ``--num-workers`` worker processes.

Each with and without gradient checkpointing. Configurations run round-robin, ``--repeats`` times
(best kept), after a warm-up step, so that load from other processes hits them alike; the CPU time of
this process (all its threads) is reported too: it does not depend on other load, and with
``--num-workers 0`` it holds the whole data path (workers are other processes). Peak memory:
on CUDA ``torch.cuda.max_memory_allocated``; on the CPU the peak resident set of this process during
the configuration (sampled every 5 ms; DataLoader workers are other processes and not included).
Captions are synthetic Japanese sentences; images synthetic JPEGs of 200-320 px.

Presets: ``small`` (CPU here: hidden 256 x 4 layers per tower, 196 patches); ``base`` (the shape of
siglip2-base-patch16-256: hidden 768 x 12 layers, 256 patches, 64 text tokens; random weights and the
tiny tokenizer's small vocabulary, so the 256k-row embedding of the real checkpoint is missing: pass
``--model google/siglip2-base-patch16-256`` where it is downloaded for the real one). On a GPU:
``python benchmarks/bench_train.py --device cuda --preset base --batch-size 256 --num-workers 8``.

Usage: ``python benchmarks/bench_train.py [--preset small] [--batch-size 32] [--steps 6] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from machine import describe_torch_machine  # benchmarks/machine.py (scripts run from benchmarks/)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

PRESETS = {
    "small": {
        "text_config": {"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 4,
                        "num_attention_heads": 4, "projection_size": 256},
        "vision_config": {"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 4,
                          "num_attention_heads": 4, "num_patches": 196},
        "max_num_patches": 196,
    },
    "base": {
        "text_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                        "num_attention_heads": 12, "projection_size": 768},
        "vision_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                          "num_attention_heads": 12, "num_patches": 256},
        "max_num_patches": 256,
    },
}
WORDS = ("赤い", "鳥居", "と", "石の", "階段", "富士山", "桜の", "風景", "夏祭り", "屋台", "提灯", "寿司", "お茶の",
         "写真", "京都の", "古い", "お寺", "庭", "柴犬", "公園", "ラーメン", "紅葉", "夜景", "Tokyo", "Photo")


def synthetic_pairs(n: int, seed: int = 0):
    import datasets
    import numpy as np

    from waon_hf.testing.synthetic import synthetic_jpegs

    rng = np.random.default_rng(seed)
    captions = ["".join(rng.choice(WORDS, size=int(rng.integers(3, 12)))) for _ in range(n)]
    features = datasets.Features({"image": datasets.Image(decode=False), "caption": datasets.Value("string")})
    return datasets.Dataset.from_dict({"image": synthetic_jpegs(n, seed), "caption": captions}, features=features)


class PeakRSS:
    """Peak resident set of this process while the ``with`` block runs (sampled)."""

    def __init__(self, interval: float = 0.005):
        import psutil

        self.proc, self.interval, self.peak = psutil.Process(), interval, 0
        self._stop = threading.Event()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self):
        self.peak = self.proc.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def load_model(args, tmp: str):
    from transformers import AutoModel, AutoProcessor

    from waon_hf.testing.tiny_models import build_tiny_siglip2

    if args.model:
        path = args.model
    else:
        cfg = PRESETS[args.preset]
        path = build_tiny_siglip2(Path(tmp) / args.preset, seed=0, max_num_patches=cfg["max_num_patches"],
                                  text_config=cfg["text_config"], vision_config=cfg["vision_config"])
    return AutoModel.from_pretrained(path), AutoProcessor.from_pretrained(path), path


def bench(args) -> list[dict]:
    import torch

    from waon_hf.training.data import SiglipCollator, make_train_loader, model_inputs
    from waon_hf.training.family import model_family
    from waon_hf.training.loss import SigmoidLoss
    from waon_hf.training.model import ContrastiveSiglip
    from waon_hf.training.optim import build_optimizer

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    with tempfile.TemporaryDirectory() as tmp:
        model, processor, _ = load_model(args, tmp)
    module = ContrastiveSiglip(model.to(device).train(), SigmoidLoss())
    optimizer = build_optimizer(module, lr=1e-6, weight_decay=1e-4)
    n_rows = args.batch_size * (args.steps + 1)
    table = synthetic_pairs(n_rows)
    collate = SiglipCollator(processor, model_family(model, processor))
    loader, set_epoch = make_train_loader(table, collate, batch_size=args.batch_size, seed=0,
                                          num_workers=args.num_workers)
    pre = [collate([table[i] for i in range(s, s + args.batch_size)]) for s in range(0, n_rows, args.batch_size)]

    def step(batch):
        inputs = {k: v.to(device, non_blocking=True) for k, v in model_inputs(batch).items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = module(**inputs)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def bare():
        step(pre[0])  # warm-up step, untimed
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        for b in pre[1:]:
            step(b)
        sync()
        return time.perf_counter() - t0, time.process_time() - c0

    epoch = [0]

    def data():
        epoch[0] += 1
        set_epoch(epoch[0])
        it = iter(loader)
        step(next(it))  # warm-up step (and worker start-up), untimed
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        for b in it:
            step(b)
        sync()
        return time.perf_counter() - t0, time.process_time() - c0

    configs = {(kind, gc): fn for gc in (False, True) for kind, fn in (("bare", bare), ("data", data))}
    best = {k: {"seconds": float("inf"), "cpu_seconds": float("inf"), "peak_bytes": 0} for k in configs}
    for _ in range(args.repeats):
        for (kind, gc), fn in configs.items():
            if gc:
                model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                model.activation_checkpointing_disable()
            if cuda:
                torch.cuda.reset_peak_memory_stats(device)
            with PeakRSS() as rss:
                seconds, cpu_seconds = fn()
            peak = torch.cuda.max_memory_allocated(device) if cuda else rss.peak
            b = best[kind, gc]
            b["seconds"], b["cpu_seconds"] = min(b["seconds"], seconds), min(b["cpu_seconds"], cpu_seconds)
            b["peak_bytes"] = max(b["peak_bytes"], peak)
    rows = []
    n_params = sum(p.numel() for p in model.parameters())
    for (kind, gc), b in best.items():
        samples = args.steps * args.batch_size
        bare_s, bare_cpu = best["bare", gc]["seconds"], best["bare", gc]["cpu_seconds"]
        rows.append({"model": args.model or f"random {args.preset}", "n_parameters": n_params, "device": str(device),
                     "batch_size": args.batch_size, "steps": args.steps, "gradient_checkpointing": gc, "path": kind,
                     "num_workers": args.num_workers if kind == "data" else None,
                     "samples_per_s": samples / b["seconds"], "share_of_bare": bare_s / b["seconds"],
                     "data_path_cost": b["seconds"] / bare_s - 1,
                     "cpu_ms_per_sample": 1000 * b["cpu_seconds"] / samples,
                     "data_path_cpu_cost": b["cpu_seconds"] / bare_cpu - 1, "peak_memory_gib": b["peak_bytes"] / 2**30,
                     "peak_memory_kind": "cuda max_memory_allocated" if cuda else "process RSS"})
    return rows


def markdown(rows: list[dict]) -> str:
    out = ["| model | params | batch | grad. ckpt | path | samples/s (wall) | vs bare (wall) | CPU ms/sample "
           "(this process) | vs bare (CPU) | peak memory |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        path = "bare (pre-collated)" if r["path"] == "bare" else f"data path, {r['num_workers']} worker(s)"
        cost = "" if r["path"] == "bare" else f"{100 * r['data_path_cost']:+.1f}%"
        cpu_cost = "" if r["path"] == "bare" else f"{100 * r['data_path_cpu_cost']:+.1f}%"
        out.append(f"| {r['model']} | {r['n_parameters'] / 1e6:.1f} M | {r['batch_size']} | "
                   f"{'yes' if r['gradient_checkpointing'] else 'no'} | {path} | {r['samples_per_s']:.1f} | {cost} | "
                   f"{r['cpu_ms_per_sample']:.0f} | {cpu_cost} | "
                   f"{r['peak_memory_gib']:.2f} GiB ({r['peak_memory_kind']}) |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="small")
    ap.add_argument("--model", help="a local SigLIP2 folder or Hub id instead of a random preset")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N] (bf16 autocast on CUDA)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=6, help="timed steps per configuration (after one warm-up)")
    ap.add_argument("--num-workers", type=int, default=1, help="DataLoader workers of the data path")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device")
    load_before = os.getloadavg()[0]
    rows = bench(args)
    print(f"machine: {describe_torch_machine(args.device)} (load average before: {load_before:.2f})")
    print(markdown(rows))
    if args.json:
        report = {"machine": describe_torch_machine(args.device), "rows": rows}
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
