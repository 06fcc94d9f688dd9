"""Benchmark hydration: the images of a 1,870-row URL-only benchmark (WAON-Bench's size), fetched
through the downloader into the evaluation cache, then read back from it.

Setup: the local server of ``bench_download.py`` (aiohttp on ``--hosts`` ports of 127.0.0.1, one
port per web host, every answer delayed by a per-URL latency in ``--latency``, default 50-200 ms;
96% images, 3% 404, 1% 500), synthetic pictures 320-1600 px wide. A WAON-Bench-shaped table
(``class``, ``url``, ``category``; 374 classes x 5) points at it.

Measured, in this process: ``cold`` (empty cache: every URL requested, robots.txt once per host,
the 500s retried twice with back-off), ``warm`` (the same call again: only the retryable failures
are asked again), ``offline`` (``--offline``: the cache alone). The baseline of the ratios is the
cold run.

    python benchmarks/bench_hydrate.py [--hosts 64] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_download import make_images, serve, url_plan  # noqa: E402

N_ROWS = 1_870


def write_table(path: Path, urls: list[str]) -> None:
    import datasets

    classes = [f"クラス{i // 5:03d}" for i in range(len(urls))]
    categories = ["animal", "building", "event", "everyday", "food", "nature", "scenery", "tradition"]
    datasets.Dataset.from_dict({"class": classes, "url": urls,
                                "category": [categories[(i // 5) % 8] for i in range(len(urls))]}).to_parquet(str(path))


def timed_hydrate(table: Path, cache_dir: Path, offline: bool) -> tuple[float, Counter]:
    from waon_hf.eval.benchmarks import load_benchmark
    from waon_hf.eval.hydrate import ImageCache, hydrate_task, make_downloader

    (task,) = load_benchmark("waon-bench", str(table))
    t0 = time.perf_counter()
    fetched = hydrate_task(task, cache=ImageCache(cache_dir), offline=offline,
                           downloader=None if offline else make_downloader(allow_private=True))
    return time.perf_counter() - t0, Counter(f.status for f in fetched)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", type=int, default=64)
    ap.add_argument("--unique", type=int, default=400)
    ap.add_argument("--latency", type=float, nargs=2, default=(0.05, 0.2), metavar=("MIN", "MAX"))
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    folder = make_images(args.unique)
    with tempfile.TemporaryDirectory(prefix="bench-hydrate-") as tmp:
        tmp = Path(tmp)
        ports_file = tmp / "ports.json"
        server = mp.get_context("spawn").Process(
            target=serve, args=(str(folder), str(ports_file), args.hosts, *args.latency, 10 * N_ROWS), daemon=True)
        server.start()
        for _ in range(400):
            if ports_file.exists() and ports_file.stat().st_size:
                break
            time.sleep(0.05)
        ports = json.loads(ports_file.read_text())
        urls = [f"http://127.0.0.1:{ports[h]}{p}" for h, p in url_plan(N_ROWS, args.hosts, args.unique)]
        table = tmp / "waon_bench.parquet"
        write_table(table, urls)
        results = {}
        for name, offline in (("cold", False), ("warm", False), ("offline", True)):
            seconds, statuses = timed_hydrate(table, tmp / "cache", offline)
            results[name] = {"seconds": round(seconds, 2), "statuses": dict(statuses)}
            print(f"{name:8s} {seconds:7.2f} s  {dict(statuses)}")
        server.terminate()
    cold = results["cold"]["seconds"]
    for name in ("warm", "offline"):
        results[name]["speedup_vs_cold"] = round(cold / results[name]["seconds"], 1)
    results["setup"] = {"rows": N_ROWS, "hosts": args.hosts, "latency_s": list(args.latency),
                        "machine": f"{os.cpu_count()}-core {platform.machine()}"}
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
