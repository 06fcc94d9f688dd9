"""Throughput of the recipes' caption filters: the noun check (fugashi + unidic-lite vs SudachiPy) and
HojiChar's adult-keyword filter, on the captions of a generated corpus (the sample's text pools).

    .venv/bin/python benchmarks/bench_recipe_text.py --captions 5000

Each analyser must agree with the other on most captions (printed); the time is the filter step's
``drop_reasons`` over all captions, one process, best of ``--repeat`` runs, after a warm-up call
(dictionary loading is reported apart).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from waon_hf.steps.recipe_text import AdultTextJa, ContainsNoun  # noqa: E402
from waon_hf.testing.synthetic.text_ja import JA_CAPTIONS, JA_FIGCAPTIONS, JA_SENTENCES  # noqa: E402


def captions(n: int) -> list[str]:
    """Japanese captions and sentences of the synthetic pools, one to three joined, cut to 5-60 characters."""
    import random

    rng = random.Random(0)
    pool = [line.strip() for block in (JA_CAPTIONS, JA_FIGCAPTIONS, JA_SENTENCES) for line in block.splitlines()
            if line.strip()]
    return ["".join(rng.choice(pool) for _ in range(rng.randint(1, 3)))[: rng.randint(5, 60)] for _ in range(n)]


def sudachi_reasons(tokenizer, mode, texts):
    return [None if any(m.part_of_speech()[0] == "名詞" for m in tokenizer.tokenize(t, mode)) else "no_noun"
            for t in texts]


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--captions", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    texts = captions(args.captions)
    chars = sum(map(len, texts))
    print(f"{len(texts)} captions, {chars / len(texts):.1f} characters on average")
    batch = {"caption": texts}

    step = ContainsNoun()
    t0 = time.perf_counter()
    step.drop_reasons({"caption": ["東京"]})
    load = time.perf_counter() - t0
    t_fugashi, fugashi_out = best(lambda: step.drop_reasons(batch), args.repeat)
    print(f"fugashi + unidic-lite: load {load:.2f} s, {len(texts) / t_fugashi:,.0f} captions/s")

    from sudachipy import dictionary
    from sudachipy import tokenizer as sudachi_tokenizer

    t0 = time.perf_counter()
    tok = dictionary.Dictionary(dict="core").create()
    load = time.perf_counter() - t0
    mode = sudachi_tokenizer.Tokenizer.SplitMode.C
    t_sudachi, sudachi_out = best(lambda: sudachi_reasons(tok, mode, texts), args.repeat)
    agree = sum(a == b for a, b in zip(fugashi_out, sudachi_out, strict=True)) / len(texts)
    print(f"sudachipy (core, mode C): load {load:.2f} s, {len(texts) / t_sudachi:,.0f} captions/s; "
          f"fugashi/sudachi = {t_sudachi / t_fugashi:.2f}x; same verdict on {agree:.1%}")
    print(f"  no noun: fugashi {fugashi_out.count('no_noun')}, sudachi {sudachi_out.count('no_noun')}")

    adult = AdultTextJa()
    t0 = time.perf_counter()
    adult.drop_reasons({"caption": ["東京"]})
    load = time.perf_counter() - t0
    t_adult, out = best(lambda: adult.drop_reasons(batch), args.repeat)
    print(f"hojichar DiscardAdultContentJa: load {load:.2f} s, {len(texts) / t_adult:,.0f} captions/s, "
          f"{out.count('adult_text')} dropped")


if __name__ == "__main__":
    main()
