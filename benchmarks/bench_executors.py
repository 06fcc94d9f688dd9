"""The Ray executor against the local one on the same files: same rows, and what Ray costs.

Runs ``run_extract`` over the same WARC files with (1) the local executor, one process, (2) the
local executor, ``--workers N`` processes, (3) the Ray executor on a local instance of N CPUs,
timing Ray's start-up (``ray.init``) apart from the run, then a second Ray run whose workers are
already started (a fresh Ray worker is a new process that imports waon_hf, about a second each;
the local pool forks from a parent that has already imported it). Every configuration must give the same
rows (checked); the figures say how much Ray's scheduling and object store cost per shard on one
machine, where the local pool is the baseline. On a cluster Ray's point is more machines, which
one VM cannot measure.

Input: the ``ja10`` corpus cut into 4 files by ``bench_extract.py`` (``benchmarks/data/ja10.part*of4.warc.gz``);
if absent, 4 files of ``--pages`` pages each are generated (10% Japanese, seed 0..3).

Usage: ``python benchmarks/bench_executors.py [--workers 2] [--json results.json]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import datasets
import pyarrow.parquet as pq

from waon_hf.jobs.extract import ExtractJob, run_extract
from waon_hf.pipeline.executors import LocalExecutor, RayExecutor
from waon_hf.sources.commoncrawl import SourceFile
from waon_hf.testing.synthetic import generate_corpus

DATA = Path(__file__).resolve().parent / "data"


def corpus(pages: int) -> list[Path]:
    files = sorted(DATA.glob("ja10.part*of4.warc.gz"))
    if len(files) == 4:
        return files
    out = DATA / "executors"
    out.mkdir(parents=True, exist_ok=True)
    files = [out / f"ja10-{i}.warc.gz" for i in range(4)]
    for i, path in enumerate(files):
        if not path.exists():
            generate_corpus(path, n_pages=pages, ja_fraction=0.1, seed=i, legacy_every=10, include_pages=False)
    return files


def rows(out: Path) -> list[dict]:
    return [r for p in sorted((out / "data").glob("train-*.parquet")) for r in pq.read_table(p).to_pylist()]


def timed(sources, out: Path, executor) -> tuple[float, dict]:
    started = time.perf_counter()
    stats = run_extract(sources, out, ExtractJob(), executor=executor)
    return time.perf_counter() - started, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pages", type=int, default=5000, help="pages per generated file (when no cached corpus)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    datasets.disable_progress_bars()
    import ray

    files = corpus(args.pages)
    sources = [SourceFile(str(p), "") for p in files]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        seconds, stats = timed(sources, tmp / "local1", LocalExecutor(1))
        pages = stats["warc.html_responses"]
        expected = rows(tmp / "local1")
        results.append({"method": "local executor, 1 process", "seconds": seconds})
        seconds, _ = timed(sources, tmp / "localN", LocalExecutor(args.workers))
        assert rows(tmp / "localN") == expected
        results.append({"method": f"local executor, --workers {args.workers}", "seconds": seconds})
        started = time.perf_counter()
        ray.init(num_cpus=args.workers, include_dashboard=False, logging_level=logging.WARNING)
        init_seconds = time.perf_counter() - started
        seconds, _ = timed(sources, tmp / "ray", RayExecutor())
        assert rows(tmp / "ray") == expected
        results.append({"method": f"ray executor, local instance of {args.workers} CPUs, first run "
                                  "(workers start and import waon_hf)", "seconds": seconds})
        results.append({"method": f"ray executor, first run incl. ray.init ({init_seconds:.2f} s)",
                        "seconds": seconds + init_seconds})
        seconds, _ = timed(sources, tmp / "ray-warm", RayExecutor())
        assert rows(tmp / "ray-warm") == expected
        results.append({"method": "ray executor, second run (warm workers)", "seconds": seconds})
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    base = results[1]["seconds"]
    print(f"{len(files)} files, {pages:,} pages, {len(expected):,} rows (identical for every executor); "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    print("| method | seconds | pages/s | × local --workers N |\n|---|---:|---:|---:|")
    for r in results:
        r["pages_per_s"] = pages / r["seconds"]
        print(f"| {r['method']} | {r['seconds']:.2f} | {r['pages_per_s']:,.0f} | {base / r['seconds']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"files": [str(f) for f in files], "pages": pages, "rows": len(expected),
                                               "results": results}, indent=1))


if __name__ == "__main__":
    main()
