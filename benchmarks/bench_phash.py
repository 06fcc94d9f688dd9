"""Perceptual-hash benchmark: pHash throughput per core, and near-duplicate search at 10^5-10^7 hashes.

    .venv/bin/python benchmarks/bench_phash.py                       # everything (about 12 minutes)
    .venv/bin/python benchmarks/bench_phash.py --sizes 1e5 1e6 --ks 4 --no-imagededup-search

1. Hashing: ``--images`` 256 px JPEGs (smooth colour fields plus noise, random aspect) are hashed
   with our builtin PHash (the ``phash`` step), imagededup's ``PHash().encode_image(image_array=...)``
   and ``encode_image(image_file=...)``, one process; all three must agree on every hash.
2. Search: random 64-bit hashes, 1% of them planted copies of other rows at distances 0..k+1
   (uniform). Each configuration runs in its own process (clean peak RSS) and checks recall: every
   planted pair within k found, none at k+1, every reported pair within k. ``k+1 bands`` is the
   textbook split (k+1 blocks, one equal block) for comparison. A configuration whose modelled time
   is over ``--budget`` seconds runs only a few tables and extrapolates (marked as such).
3. Reference: imagededup ``find_duplicates`` (brute_force_cython, one worker) on 10^4 of the same
   kind of hashes at the same thresholds; its pairs must equal ours.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from waon_hf.neardup import (  # noqa: E402
    _collapse,
    describe_search,
    distinct_pairs,
    hamming_pairs,
    near_duplicate_groups,
    uint64_to_hex,
)


# ------------------------------------------------------------------------------------------- data
def planted_hashes(n: int, k: int, seed: int = 0, fraction: float = 0.01):
    """``n`` hashes: random ones plus ``fraction * n`` copies of random rows with ``d`` in 0..k+1 bits
    flipped. Returns ``(hashes, i, j, d)`` with the planted pairs as row indices after shuffling."""
    rng = np.random.default_rng(seed)
    n_copies = max(1, int(n * fraction))
    n_base = n - n_copies
    base = rng.integers(0, 2**64 - 1, size=n_base, dtype=np.uint64, endpoint=True)
    src = rng.integers(0, n_base, size=n_copies)
    dist = rng.integers(0, k + 2, size=n_copies)
    bit_order = rng.random((n_copies, 64)).argsort(axis=1).astype(np.uint64)
    flips = np.left_shift(np.uint64(1), bit_order)
    flips[np.arange(64)[None, :] >= dist[:, None]] = 0
    copies = base[src] ^ np.bitwise_or.reduce(flips, axis=1)
    hashes = np.concatenate([base, copies])
    perm = rng.permutation(n)
    where = np.empty(n, dtype=np.int64)
    where[perm] = np.arange(n)
    a, b = where[src], where[n_base + np.arange(n_copies)]
    return hashes[perm], np.minimum(a, b), np.maximum(a, b), dist


def photo_jpeg(rng, side: int = 256) -> bytes:
    from PIL import Image

    other = int(rng.integers(side * 2 // 3, side + 1))
    size = (side, other) if rng.random() < 0.5 else (other, side)
    blobs = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize(size, Image.Resampling.BICUBIC)
    noise = rng.normal(0, 12, (size[1], size[0], 3))
    img = Image.fromarray(np.clip(np.asarray(blobs, dtype=np.float64) + noise, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------- hashing
def bench_hashing(n_images: int) -> dict:
    from PIL import Image

    from waon_hf.steps.image_dedup import PHashStep

    rng = np.random.default_rng(0)
    jpegs = [photo_jpeg(rng) for _ in range(n_images)]
    out = {"images": n_images, "mean_kb": round(sum(map(len, jpegs)) / n_images / 1024, 1)}

    def decode(data):
        img = Image.open(io.BytesIO(data))
        img.load()
        return img.size

    builtin = PHashStep()
    start = time.perf_counter()
    from imagededup.methods import PHash
    out["imagededup_import_s"] = time.perf_counter() - start
    encoder = PHash(verbose=False)

    def from_array(data):
        img = Image.open(io.BytesIO(data))
        return encoder.encode_image(image_array=np.asarray(img.convert("RGB") if img.mode != "RGB" else img))

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, data in enumerate(jpegs):
            path = os.path.join(tmp, f"{i:05d}.jpg")
            with open(path, "wb") as f:
                f.write(data)
            paths.append(path)
        methods = {  # name -> (function, its input per image)
            "decode_only": (decode, jpegs),
            "builtin": (builtin.hash_value, jpegs),
            "imagededup_array": (from_array, jpegs),
            "imagededup_file": (lambda p: encoder.encode_image(image_file=p), paths),
        }
        seconds = dict.fromkeys(methods, 0.0)
        hashes: dict[str, list] = {name: [] for name in methods}
        for fn, items in methods.values():
            fn(items[0])  # warm-up
        for i in range(n_images):  # interleaved, so a busy machine slows every method alike
            for name, (fn, items) in methods.items():
                start = time.perf_counter()
                hashes[name].append(fn(items[i]))
                seconds[name] += time.perf_counter() - start
    for name in methods:
        out[f"{name}_per_s"] = n_images / seconds[name]
    ours, theirs_array, theirs_file = hashes["builtin"], hashes["imagededup_array"], hashes["imagededup_file"]
    out["identical_hashes"] = ours == theirs_array == theirs_file
    return out


# ----------------------------------------------------------------------------------------- search
def run_search(n: int, k: int, blocks: int | None, max_tables: int) -> dict:
    """One configuration (in a child process): time, recall, peak RSS."""
    hashes, pi, pj, pd = planted_hashes(n, k, seed=n + k)
    plan = describe_search(n, k, blocks=blocks)
    result = {"n": n, "k": k, "blocks": plan["blocks"], "tables": plan["tables"], "key_bits": plan["key_bits"],
              "planted": int(len(pd)), "planted_within_k": int((pd <= k).sum())}
    if max_tables and plan["tables"] > max_tables:  # too slow: time a few tables, extrapolate
        start = time.perf_counter()
        values, _, _ = _collapse(hashes)
        collapse_s = time.perf_counter() - start
        start = time.perf_counter()
        distinct_pairs(values, k, blocks=plan["blocks"], table_range=range(max_tables))
        per_table = (time.perf_counter() - start) / max_tables
        result.update(partial_tables=max_tables, per_table_s=per_table,
                      pairs_s=collapse_s + per_table * plan["tables"], recall="n/a (partial)")
    else:
        start = time.perf_counter()
        i, j, d = hamming_pairs(hashes, k, blocks=blocks, return_distances=True)
        result["pairs_s"] = time.perf_counter() - start
        start = time.perf_counter()
        reps = near_duplicate_groups(hashes, k, blocks=blocks)
        result["groups_s"] = time.perf_counter() - start
        found = i * n + j
        planted = pi * n + pj
        pos = np.minimum(np.searchsorted(found, planted), max(len(found) - 1, 0))
        hit = (found[pos] == planted) if len(found) else np.zeros(len(planted), dtype=bool)
        within = pd <= k
        result.update(
            pairs=int(len(i)), dropped_rows=int((reps != np.arange(n)).sum()),
            recall=f"{int(hit[within].sum())}/{int(within.sum())}",
            found_at_k_plus_1=int(hit[~within].sum()),
            false_pairs=int((np.bitwise_count(hashes[i] ^ hashes[j]) > k).sum() + (d > k).sum()),
            planted_grouped=bool((reps[pi[within]] == reps[pj[within]]).all()),
        )
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss, not inherited from the parent across exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def search_in_child(n: int, k: int, blocks: int | None, max_tables: int, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--child", str(n), str(k), str(-1 if blocks is None else blocks), str(max_tables)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return {"n": n, "k": k, "blocks": blocks, "error": f"timed out after {timeout:.0f} s"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_imagededup_search(n: int, k: int) -> dict:
    from imagededup.methods import PHash

    hashes, *_ = planted_hashes(n, k, seed=123 + k)
    names = [str(x) for x in range(n)]
    encoding_map = dict(zip(names, uint64_to_hex(hashes), strict=True))
    start = time.perf_counter()
    dups = PHash(verbose=False).find_duplicates(encoding_map=encoding_map, max_distance_threshold=k,
                                                num_dist_workers=1)
    theirs_s = time.perf_counter() - start
    theirs = {(min(int(a), int(b)), max(int(a), int(b))) for a, others in dups.items() for b in others}
    start = time.perf_counter()
    i, j = hamming_pairs(hashes, k)
    ours_s = time.perf_counter() - start
    ours = set(zip(i.tolist(), j.tolist(), strict=True))
    return {"n": n, "k": k, "imagededup_s": theirs_s, "ours_s": ours_s, "pairs": len(ours),
            "same_pairs": ours == theirs}


# ------------------------------------------------------------------------------------------ report
def machine() -> dict:
    with open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")),
                     platform.processor())
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(), "numpy": np.__version__,
            "loadavg_1m_at_start": os.getloadavg()[0]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e5, 1e6, 3e6, 1e7])
    parser.add_argument("--ks", nargs="+", type=int, default=[4, 8])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--budget", type=float, default=300.0, help="seconds a configuration may take")
    parser.add_argument("--partial-tables", type=int, default=10)
    parser.add_argument("--naive-up-to", type=float, default=1e6, help="largest N for the k+1-band comparison")
    parser.add_argument("--reference-n", type=int, default=10_000)
    parser.add_argument("--no-hashing", action="store_true")
    parser.add_argument("--no-imagededup-search", action="store_true")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--child", nargs=4, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        n, k, blocks, max_tables = args.child
        print(json.dumps(run_search(n, k, None if blocks < 0 else blocks, max_tables)))
        return

    results: dict = {"machine": machine()}
    print(f"machine: {results['machine']}")
    if not args.no_hashing:
        results["hashing"] = h = bench_hashing(args.images)
        print(f"\n## pHash throughput, one process ({h['images']} JPEGs of 256 px, {h['mean_kb']} KB mean)\n")
        print("| method | images/s | ms/image |\n|---|---:|---:|")
        for label, key in (("PIL decode only", "decode_only_per_s"), ("builtin (phash step, decode included)",
                                                                     "builtin_per_s"),
                           ("imagededup encode_image(image_array=)", "imagededup_array_per_s"),
                           ("imagededup encode_image(image_file=)", "imagededup_file_per_s")):
            print(f"| {label} | {h[key]:,.0f} | {1000 / h[key]:.2f} |")
        print(f"\nidentical hashes across methods: {h['identical_hashes']}; "
              f"imagededup import: {h['imagededup_import_s']:.1f} s")

    rows = []
    for n in (int(s) for s in args.sizes):
        for k in args.ks:
            variants = [("multi-index", None)]
            if n <= args.naive_up_to:
                variants.append(("k+1 bands", k + 1))
            for label, blocks in variants:
                plan = describe_search(n, k, blocks=blocks)
                max_tables = args.partial_tables if plan["estimated_s"] > args.budget else 0
                if blocks is not None and max_tables:
                    print(f"skip {label} n={n:.0e} k={k}: modelled {plan['estimated_s']:.0f} s > budget")
                    rows.append({"n": n, "k": k, "method": label, "blocks": plan["blocks"], "tables": plan["tables"],
                                 "skipped": f"modelled {plan['estimated_s']:.0f} s"})
                    continue
                print(f"running {label} n={n:.0e} k={k} (blocks {plan['blocks']}, {plan['tables']} tables, "
                      f"modelled {plan['estimated_s']:.1f} s{', partial' if max_tables else ''}) ...", flush=True)
                row = search_in_child(n, k, blocks, max_tables, timeout=max(60.0, 3 * args.budget))
                row["method"] = label
                rows.append(row)
                print(f"  {row}", flush=True)
    results["search"] = rows

    print("\n## Near-duplicate search (one core; 1% planted copies at distances 0..k+1)\n")
    print("| N | k | method | blocks / tables | pairs s | groups s | recall (<= k) | found at k+1 | false pairs |"
          " peak RSS MB |")
    print("|---:|---:|---|---|---:|---:|---|---:|---:|---:|")
    for r in rows:
        if "skipped" in r:
            print(f"| {r['n']:.0e} | {r['k']} | {r['method']} | {r['blocks']} / {r['tables']} | skipped: "
                  f"{r['skipped']} | | | | | |")
            continue
        if "error" in r:
            print(f"| {r['n']:.0e} | {r['k']} | {r['method']} | | {r['error']} | | | | | |")
            continue
        partial = f" (extrapolated from {r['partial_tables']} tables)" if "partial_tables" in r else ""
        groups = f"{r['groups_s']:.2f}" if "groups_s" in r else "-"
        cells = [f"{r['n']:.0e}", r["k"], r["method"], f"{r['blocks']} / {r['tables']}", f"{r['pairs_s']:.2f}{partial}",
                 groups, r["recall"], r.get("found_at_k_plus_1", "-"), r.get("false_pairs", "-"),
                 f"{r['peak_rss_mb']:.0f}"]
        print("| " + " | ".join(str(c) for c in cells) + " |")

    if not args.no_imagededup_search:
        refs = [bench_imagededup_search(args.reference_n, k) for k in args.ks]
        results["imagededup_reference"] = refs
        print(f"\n## imagededup find_duplicates (brute_force_cython, 1 worker) vs ours, N = {args.reference_n:,}\n")
        print("| k | imagededup s | ours s | pairs | same pairs |\n|---:|---:|---:|---:|---|")
        for r in refs:
            print(f"| {r['k']} | {r['imagededup_s']:.1f} | {r['ours_s']:.3f} | {r['pairs']} | {r['same_pairs']} |")
    results["loadavg_1m_at_end"] = os.getloadavg()[0]
    print(f"\nload average (1 min) at start {results['machine']['loadavg_1m_at_start']:.2f}, "
          f"at end {results['loadavg_1m_at_end']:.2f} (other work on the machine slows every number)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
