"""Semantic dedup (``semantic_dedup``) at 10^5-10^6 embeddings of dimension 768: time, peak memory, recall.

    .venv/bin/python benchmarks/bench_semantic_dedup.py --sizes 1e5 1e6

Data: clustered unit vectors (``--centers`` centres; a row is its centre plus noise, cosine ~0.5
within a cluster, like real image embeddings that crowd around topics), 1% of rows replaced by
near copies of earlier rows (cosine ~0.97, distance ~0.03 < 0.1). Written as parquet shards of
50,000 rows (``list<float32>``, what the embedding step writes) and run through the global step
exactly as a stage would (shards read from disk). Each configuration runs in its own process (clean
peak RSS). Recall: (1) of the planted pairs (each must end in one cluster); (2) against brute force
on a sample: for ``--sample`` random rows, every row of the whole set within the threshold is found
exactly (numpy), and the fraction of those links the index found.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from waon_hf.neardup import connected_components  # noqa: E402
from waon_hf.steps.semantic_dedup import SemanticDedup, normalized, read_embeddings  # noqa: E402

SHARD = 50_000


def make_data(folder: Path, n: int, dim: int, centers: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    c = normalized(rng.standard_normal((centers, dim)).astype(np.float32))
    copies_src = np.sort(rng.choice(n // 2, n // 100, replace=False))
    copies_dst = np.sort(rng.choice(np.arange(n // 2, n), n // 100, replace=False))
    dst_of = dict(zip(copies_dst.tolist(), copies_src.tolist(), strict=True))
    paths, kept_rows = [], {}
    for s, start in enumerate(range(0, n, SHARD)):
        m = min(SHARD, n - start)
        x = c[rng.integers(0, centers, m)] + rng.standard_normal((m, dim)).astype(np.float32) / np.sqrt(dim)
        x = normalized(x)
        for i in np.flatnonzero((copies_src >= start) & (copies_src < start + m)):  # sources precede copies
            kept_rows[int(copies_src[i])] = x[int(copies_src[i]) - start].copy()
        for i in range(m):
            src = dst_of.get(start + i)
            if src is not None:
                noise = rng.standard_normal(dim).astype(np.float32)
                x[i] = kept_rows[src] + 0.25 * noise / np.linalg.norm(noise)
        path = folder / f"{s:05d}.parquet"
        flat = pa.array(x.reshape(-1))
        col = pa.FixedSizeListArray.from_arrays(flat, dim).cast(pa.list_(pa.float32()))
        pq.write_table(pa.table({"embedding": col}), path)
        paths.append(str(path))
    return {"paths": paths, "planted": [copies_src.tolist(), copies_dst.tolist()]}


def run_one(args) -> None:
    """Child process: one configuration; prints a JSON line."""
    info = json.loads(Path(args.data_json).read_text())
    step = SemanticDedup(index=args.index, nprobe=args.nprobe, threads=args.threads)
    t0 = time.perf_counter()
    a, b, offsets, meta = step.pairs([Path(p) for p in info["paths"]])
    t_search = time.perf_counter() - t0
    n = int(offsets[-1])
    roots = connected_components(n, a, b)
    elapsed = time.perf_counter() - t0
    src, dst = (np.asarray(v) for v in info["planted"])
    planted_recall = float(np.mean(roots[src] == roots[dst]))
    # brute force on a sample of query rows
    rng = np.random.default_rng(1)
    sample = np.sort(rng.choice(n, args.sample, replace=False))
    sample = np.unique(np.concatenate([sample, dst[: args.sample // 10]]))  # some planted copies in it
    queries = []
    for s, path in enumerate(info["paths"]):
        x, rows = read_embeddings(path)
        inside = sample[(sample >= offsets[s]) & (sample < offsets[s + 1])] - offsets[s]
        queries.append(normalized(x[inside]))
    q = np.concatenate(queries)
    true_links = set()
    for s, path in enumerate(info["paths"]):
        x = normalized(read_embeddings(path)[0])
        qi, xi = np.nonzero(q @ x.T > 1 - step.max_distance)
        for i, j in zip(sample[qi].tolist(), (xi + offsets[s]).tolist(), strict=True):
            if i != j:
                true_links.add((min(i, j), max(i, j)))
    found = set(zip(a.tolist(), b.tolist(), strict=True))
    link_recall = len(true_links & found) / len(true_links) if true_links else 1.0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = usage.ru_maxrss / 1024
    print(json.dumps({"n": n, "index": meta["index"], "nprobe": args.nprobe, "search_s": round(t_search, 1),
                      "cpu_s_with_check": round(usage.ru_utime + usage.ru_stime, 1),
                      "total_s": round(elapsed, 1), "peak_rss_mb": round(peak), "pairs": int(len(a)),
                      "kept": int((roots == np.arange(n)).sum()), "planted_recall": round(planted_recall, 4),
                      "sample_links": len(true_links), "sample_link_recall": round(link_recall, 4)}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e5, 1e6])
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--centers", type=int, default=1000)
    ap.add_argument("--sample", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--nprobe", type=int, default=8)
    ap.add_argument("--flat-up-to", type=float, default=1e5, help="also run the exact index up to this size")
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--data-json")
    ap.add_argument("--index", default="ivf")
    args = ap.parse_args()
    if args.child:
        run_one(args)
        return
    for size in args.sizes:
        n = int(size)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            info = make_data(Path(tmp), n, args.dim, args.centers)
            data_json = Path(tmp) / "data.json"
            data_json.write_text(json.dumps(info))
            print(f"# n={n}: data written in {time.perf_counter() - t0:.0f} s", flush=True)
            kinds = ["ivf"] + (["flat"] if n <= args.flat_up_to else [])
            for kind in kinds:
                cmd = [sys.executable, __file__, "--child", "--data-json", str(data_json), "--index", kind,
                       "--nprobe", str(args.nprobe), "--threads", str(args.threads), "--sample", str(args.sample)]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                print(out.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
