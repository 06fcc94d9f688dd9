"""`waon download SOURCE` where SOURCE is a published URL-only dataset (WAON, ReLAION, DanQing...).

The input is a Hub dataset id (``speed/WAON``), an ``hf://datasets/...`` path, or local parquet
files (a file, a folder, a glob) rather than the output folder of ``waon extract``. Each parquet
file is one shard (resumable); ``--limit`` takes the first N rows in file order; ``--num-shards``/
``--shard-index`` take every N-th file (a Slurm array), recorded for ``waon merge``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_source_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("a published URL-only dataset as input (a Hub id, hf:// path or parquet files)")
    g.add_argument("--limit", type=int, default=None, help="download only the first N rows (in file order)")
    g.add_argument("--num-shards", type=int, default=1, help="split the source's files into N slices")
    g.add_argument("--shard-index", type=int, default=0, help="which slice this job takes, in [0, N)")
    g.add_argument("--columns", default=None, help="the source's URL/caption columns, e.g. url=URL,caption=TEXT "
                   "(default: detected; url/URL/image_url and caption/TEXT/alt_text/text are known)")


def is_stage_folder(path: str) -> bool:
    """A previous waon stage's output (``data/train-*.parquet`` with its ``pipeline.json`` or stats)."""
    p = Path(path)
    return p.is_dir() and any((p / "data").glob("train-*.parquet")) and (
        (p / "pipeline.json").exists() or (p / "stats.json").exists() or (p / ".waon").exists())


def run_source_download(args: argparse.Namespace, config) -> int:
    from waon_hf import catalogue
    from waon_hf.cli.options import executor_from_args, output_folder, print_summary
    from waon_hf.pipeline.runner import run_sharded
    from waon_hf.sources.commoncrawl import SourceFile
    from waon_hf.sources.relaion import plan_relaion_shards
    from waon_hf.sources.url_tables import list_source_files, parse_column_map

    if args.retry_failed:
        raise ValueError("--retry-failed needs a download output folder as input, not a source dataset")
    if args.num_shards < 1 or not 0 <= args.shard_index < args.num_shards:
        raise ValueError(f"--shard-index must be in [0, {args.num_shards}), got {args.shard_index}")
    files = list_source_files(args.input)
    files = [f for k, f in enumerate(files) if k % args.num_shards == args.shard_index]
    if not files:
        raise ValueError(f"slice {args.shard_index} of {args.num_shards} of {args.input} has no file")
    _check_source_columns(files[0], args)
    plan = plan_relaion_shards(files, args.limit, None)
    name = args.name or str(args.input).rstrip("/").split("/")[-1] or "waon"
    job = catalogue.download_source_job(config, name=name, note=f"images of {args.input}",
                                        columns=parse_column_map(args.columns), takes=tuple(t for _, t in plan))
    folder, url = output_folder(args)
    slice_info = {"num_shards": args.num_shards, "shard_index": args.shard_index} if args.num_shards > 1 else None
    stats = run_sharded([SourceFile(f, "") for f, _ in plan], folder, job, workers=args.workers,
                        overwrite=args.overwrite, executor=executor_from_args(args), slice_info=slice_info)
    print_summary(stats, folder, args, url, next_hint=f"waon filter-images {args.output} -o <filtered>")
    return 0


def _check_source_columns(first: str, args: argparse.Namespace) -> None:
    """A source whose first file has no URL column is refused before any shard starts."""
    from waon_hf.catalogue import EXPECTED_INPUT
    from waon_hf.config import ConfigError
    from waon_hf.sources.relaion import open_parquet
    from waon_hf.sources.url_tables import parse_column_map, resolve_columns

    names = open_parquet(first).schema_arrow.names
    try:
        resolve_columns(names, parse_column_map(args.columns))
    except ValueError as e:
        raise ConfigError(f"{args.input} is not an input for download: it has no column(s) ['url'] (its columns: "
                          f"{', '.join(names)}); expected {EXPECTED_INPUT['download']}, or a URL-only dataset "
                          f"({e})") from e
