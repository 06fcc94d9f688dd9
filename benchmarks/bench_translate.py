"""Translation throughput: the transformers backend against the model's bare ``generate`` on the same batches.

    .venv/bin/python benchmarks/bench_translate.py                    # ~4 minutes on one CPU core
    .venv/bin/python benchmarks/bench_translate.py --captions 1024 --batch-size 64 --device cuda

What runs, all in one process on the same model and captions:

1. **pipeline**: ``TransformersBackend.generate`` on the user turns (default prompt + caption): chat
   template, tokenization, length-sorted batches, left padding, generate, decode of the new tokens.
2. **bare generate, sorted**: ``model.generate`` on the same length-sorted batches, tokenized and padded
   before the clock starts: the ceiling the pipeline is compared with (pipeline / bare = overhead).
3. **bare generate, unsorted**: the same, batches cut in input order: what length sorting saves.

Every variant generates exactly ``--new-tokens`` tokens per caption (``min_new_tokens`` =
``max_new_tokens``): the model has random weights, so without it EOS would fire at random and the
variants would do different work. The model is a Llama-architecture causal LM built locally with
:func:`waon_hf.testing.tiny_models.build_tiny_causal_lm` (``--hidden`` / ``--layers``; default ~11M
parameters) whose byte-fallback BPE is trained on the benchmark's own captions, so prompts have
realistic token counts.

Timing: one torch thread by default, and rates per CPU-second of the process (the median of
``--repeats`` interleaved runs): on a shared machine, wall time swings by 10x with other people's load
while CPU time moves about 10%. Wall seconds are reported next to them; on a dedicated machine or a
GPU, use wall time (``--threads`` N, ``--device cuda``).

Captions: English words drawn at random; lengths in characters from a log-normal with median 45 and
sigma 0.75, cut to [8, 400] — the shape of LAION-2B-en's caption lengths (median in the 40s, a long
right tail of product descriptions and keyword lists). Seeded: the same list every run.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from waon_hf.steps.translation_filters import DEFAULT_PROMPT, build_prompt  # noqa: E402
from waon_hf.testing.tiny_models import build_tiny_causal_lm  # noqa: E402
from waon_hf.translate import TransformersBackend, TranslationConfig, length_sorted_batches  # noqa: E402

_WORD_TEXT = (
    "a the of and with on in for red blue black white small large vintage modern wooden metal glass cat dog "
    "woman man child girl boy family house garden street city beach mountain lake river sunset night photo "
    "image stock vector illustration background pattern dress shirt shoes bag table chair lamp kitchen room "
    "car bike flower tree forest snow winter summer autumn spring christmas wedding birthday party food cake "
    "coffee tea bowl plate fresh organic handmade design logo icon set collection new sale 2020 3d portrait"
)
WORDS = tuple(_WORD_TEXT.split(" "))


def laion_like_captions(n: int, seed: int = 0, median_chars: float = 45.0, sigma: float = 0.75) -> list[str]:
    """``n`` captions whose lengths follow a LAION-like log-normal (see the module docstring)."""
    rng = random.Random(seed)
    captions = []
    for _ in range(n):
        target = min(400, max(8, int(rng.lognormvariate(math.log(median_chars), sigma))))
        words: list[str] = []
        while len(" ".join(words)) < target:
            words.append(rng.choice(WORDS))
        text = " ".join(words)[:target].strip()
        captions.append(text[0].upper() + text[1:])
    return captions


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) since ``start``."""
    wall, cpu = _clock()
    return wall - start[0], cpu - start[1]


def _bare(backend: TransformersBackend, batches: list[list[list[int]]], new_tokens: int):
    """(wall, CPU) seconds of ``model.generate`` over pre-padded batches, and padded prompt positions."""
    import torch

    tok, model = backend.tokenizer, backend.model
    padded = [tok.pad({"input_ids": b}, padding=True, return_tensors="pt") for b in batches]
    padded = [{k: v.to(model.device) for k, v in p.items()} for p in padded]
    waste = sum(p["input_ids"].numel() - sum(len(x) for x in b) for p, b in zip(padded, batches, strict=True))
    start = _clock()
    with torch.inference_mode():
        for inputs in padded:
            model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                           pad_token_id=tok.pad_token_id)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    return _since(start), waste


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--captions", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: CPU time is then a stable measure on a shared machine)")
    ap.add_argument("--repeats", type=int, default=5, help="runs per variant; the median is reported")
    ap.add_argument("--json", default=None, help="also write the summary here")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    captions = laion_like_captions(args.captions)
    folder = tempfile.mkdtemp(prefix="bench-translate-")
    config = {"hidden_size": args.hidden, "intermediate_size": args.hidden * 8 // 3, "num_hidden_layers": args.layers,
              "num_attention_heads": max(1, args.hidden // 64), "num_key_value_heads": max(1, args.hidden // 192),
              "max_position_embeddings": 2048}
    model_dir = build_tiny_causal_lm(folder, config=config, vocab_size=4000,
                                     training_lines=(*laion_like_captions(2000, seed=1), DEFAULT_PROMPT))
    tconfig = TranslationConfig(model=model_dir, batch_size=args.batch_size, max_new_tokens=args.new_tokens,
                                device=args.device, generate_kwargs={"min_new_tokens": args.new_tokens})
    backend = TransformersBackend(tconfig)
    turns = [build_prompt(c) for c in captions]
    encoded = backend.encode(turns)
    params = sum(p.numel() for p in backend.model.parameters())
    backend.generate(turns[: args.batch_size])  # warm-up

    def pipeline() -> tuple[float, float]:
        backend.generated_tokens = backend.padded_positions = 0
        start = _clock()
        outputs = backend.generate(turns)
        elapsed = _since(start)
        assert len(outputs) == len(turns) and backend.generated_tokens == len(turns) * args.new_tokens
        return elapsed

    sorted_batches = [[encoded[i] for i in b] for b in length_sorted_batches([len(x) for x in encoded],
                                                                             args.batch_size)]
    unsorted_batches = [encoded[i:i + args.batch_size] for i in range(0, len(encoded), args.batch_size)]
    results = {}
    # Variants interleaved within each repeat: on a shared machine, load changes
    # over minutes; interleaving spreads it over the variants instead of penalising one.
    runs: dict[str, list[tuple[float, float]]] = {"pipe": [], "sorted": [], "unsorted": []}
    for _ in range(args.repeats):
        runs["pipe"].append(pipeline())
        pipe_waste = backend.padded_positions
        seconds, waste_sorted = _bare(backend, sorted_batches, args.new_tokens)
        runs["sorted"].append(seconds)
        seconds, waste_unsorted = _bare(backend, unsorted_batches, args.new_tokens)
        runs["unsorted"].append(seconds)
    # The run with the median CPU time (and its wall time): with one torch thread, CPU seconds move far
    # less than wall seconds when other processes share the cores (wall: up to 10x on a shared 2-core
    # machine; CPU: about +-10%, both ways with the clock frequency, hence the median, not the best).
    (w_pipe, t_pipe), (w_sorted, t_sorted), (w_unsorted, t_unsorted) = (
        sorted(runs[k], key=lambda r: r[1])[len(runs[k]) // 2] for k in ("pipe", "sorted", "unsorted"))
    n, gen = len(captions), len(captions) * args.new_tokens
    prompt_tokens = sum(len(x) for x in encoded)
    for name, seconds, wall, waste in (
            ("pipeline (TransformersBackend.generate)", t_pipe, w_pipe, pipe_waste),
            ("bare generate, length-sorted batches", t_sorted, w_sorted, waste_sorted),
            ("bare generate, unsorted batches", t_unsorted, w_unsorted, waste_unsorted)):
        results[name] = {"cpu_seconds": round(seconds, 3), "wall_seconds": round(wall, 3),
                         "captions_per_s": round(n / seconds, 2),
                         "generated_tokens_per_s": round(gen / seconds, 1),
                         "padding_share_of_prompt_positions": round(waste / (waste + prompt_tokens), 3)}
    summary = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch_threads": torch.get_num_threads(), "device": args.device, "params": params,
        "captions": n, "batch_size": args.batch_size, "new_tokens_per_caption": args.new_tokens,
        "prompt_tokens_mean": round(prompt_tokens / n, 1),
        "prompt_tokens_min_max": [min(len(x) for x in encoded), max(len(x) for x in encoded)],
        "caption_chars_median": sorted(len(c) for c in captions)[n // 2],
        "results": results,
        "all_runs_wall_cpu_seconds": {k: [[round(w, 2), round(c, 2)] for w, c in v] for k, v in runs.items()},
        "pipeline_over_bare_sorted": round(t_pipe / t_sorted, 3),
        "unsorted_over_sorted": round(t_unsorted / t_sorted, 3),
    }
    print(json.dumps(summary, indent=1))
    print("\n| variant | CPU s | wall s | captions/s | generated tok/s | padding share |\n"
          "|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['cpu_seconds']} | {r['wall_seconds']} | {r['captions_per_s']} | "
              f"{r['generated_tokens_per_s']} | "
              f"{r['padding_share_of_prompt_positions']:.1%} |")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
