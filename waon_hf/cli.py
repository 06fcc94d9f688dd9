"""The ``waon`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from waon_hf.executors import add_executor_arguments, executor_from_args
from waon_hf.remote_output import finish_output, local_folder_for

logger = logging.getLogger("waon_hf")

COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, add_arguments: Callable[[argparse.ArgumentParser], None]):
    def wrap(run: Callable[[argparse.Namespace], int]):
        COMMANDS[name] = (add_arguments, run)
        return run
    return wrap


def _extract_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="local WARC paths or globs, http(s)/s3 URLs of WARC files, or a Common Crawl id "
                        "such as CC-MAIN-2025-18 (expanded from the crawl's warc.paths.gz listing)")
    p.add_argument("-o", "--output", required=True, help="output folder (Hub-ready: data/*.parquet + README.md), or "
                   "an fsspec URL (s3://bucket/waon/, hf://datasets/org/name) the finished dataset is uploaded to")
    p.add_argument("--work-dir", help="with a URL -o: local folder to build in (default under ~/.cache/waon/)")
    p.add_argument("--workers", type=int, default=1, help="processes, one shard (input file) each at a time")
    p.add_argument("--limit-files", type=int, default=None, help="process only the first N files of the slice")
    p.add_argument("--num-shards", type=int, default=1, help="split the file list into N slices (Slurm arrays)")
    p.add_argument("--shard-index", type=int, default=0, help="which slice this job takes, in [0, N)")
    p.add_argument("--config", help="YAML job config (steps and thresholds); defaults are WAON's")
    p.add_argument("--langid", help="page language detector: pycld2 (default) or fasttext")
    p.add_argument("--cc-base-url", help="Common Crawl HTTP endpoint (default https://data.commoncrawl.org/)")
    p.add_argument("--name", help="dataset name shown in the card")
    p.add_argument("--overwrite", action="store_true", help="discard a previous run in the output folder")
    add_executor_arguments(p, workers=False)


def _slice_info(args: argparse.Namespace) -> dict | None:
    """Recorded in the manifest so that `waon merge` can restore input order across the slices."""
    return {"num_shards": args.num_shards, "shard_index": args.shard_index} if args.num_shards > 1 else None


@command("extract", _extract_args)
def _extract(args: argparse.Namespace) -> int:
    """Extract Japanese (image URL, caption) pairs from WARC files into a Hub-ready dataset folder."""
    from waon_hf.config import load_job
    from waon_hf.funnel import funnel_markdown
    from waon_hf.runner import run_extract
    from waon_hf.sources.commoncrawl import resolve_inputs

    job = load_job(args.config)
    if args.langid:
        job.extract.langid = args.langid
    if args.name:
        job.dataset_name = args.name
    sources = resolve_inputs(args.inputs, limit_files=args.limit_files, num_shards=args.num_shards,
                             shard_index=args.shard_index, base_url=args.cc_base_url)
    logger.info("%d input file(s) -> %s", len(sources), args.output)
    folder, url = local_folder_for(args.output, args.work_dir)
    stats = run_extract(sources, folder, job, workers=args.workers, overwrite=args.overwrite,
                        executor=executor_from_args(args), slice_info=_slice_info(args))
    print(funnel_markdown(stats))
    finish_output(folder, url)
    kept = stats.get("exact_dedup.kept", 0)
    if kept:
        print(f"\n{kept:,} pairs written to {args.output}/data (load with datasets.load_dataset({args.output!r}))")
    else:
        print(f"\nNo pair survived: {args.output}/data holds an empty table with the schema "
              "(datasets cannot load an empty split; see the funnel above for where rows went).")
    return 0


from waon_hf.eval.cli import add_eval_arguments, run_eval  # noqa: E402
from waon_hf.image_cli import (  # noqa: E402
    _dedup_args,
    _download_args,
    _filter_args,
    _score_args,
    run_dedup_images,
    run_download,
    run_filter_images,
    run_score,
)
from waon_hf.merge import add_merge_arguments, run_merge  # noqa: E402
from waon_hf.publish import add_publish_arguments, run_publish  # noqa: E402
from waon_hf.relaion_cli import (  # noqa: E402
    add_build_relaion_args,
    relaion_build_sources,
    relaion_ja_args,
    run_relaion_ja_command,
    run_translate_command,
    translate_args,
)

command("download", _download_args)(run_download)
command("filter-images", _filter_args)(run_filter_images)
command("dedup-images", _dedup_args)(run_dedup_images)
command("score", _score_args)(run_score)
command("eval", add_eval_arguments)(run_eval)
command("publish", add_publish_arguments)(run_publish)
command("relaion-ja", relaion_ja_args)(run_relaion_ja_command)
command("translate", translate_args)(run_translate_command)
command("merge", add_merge_arguments)(run_merge)


def _build_args(p: argparse.ArgumentParser) -> None:
    _extract_args(p)
    p.set_defaults(langid=None, name=None)
    add_build_relaion_args(p)


@command("build", _build_args)
def _build(args: argparse.Namespace) -> int:
    """Run every stage (extract, download, image filters, image dedup, NSFW and SigLIP2 scores) from one config."""
    from waon_hf.build import BuildConfig, run_build
    from waon_hf.funnel import funnel_markdown
    from waon_hf.sources.commoncrawl import resolve_inputs

    config = BuildConfig.from_file(args.config)
    if args.name:
        config.extract["dataset_name"] = args.name
    if args.langid:
        config.extract.setdefault("extract", {})["langid"] = args.langid
    sources = relaion_build_sources(args, config) or resolve_inputs(
        args.inputs, limit_files=args.limit_files, num_shards=args.num_shards, shard_index=args.shard_index,
        base_url=args.cc_base_url)
    folder, url = local_folder_for(args.output, args.work_dir)
    with executor_from_args(args) as executor:  # one Ray connection for every stage
        stats = run_build(sources, folder, config, workers=args.workers, overwrite=args.overwrite,
                          executor=executor, slice_info=_slice_info(args))
    print(funnel_markdown(stats))
    finish_output(folder, url)
    print(f"\nfinal dataset in {args.output}/data (intermediate stages in {folder}/.waon-stages/)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="waon",
        description="Build Japanese image-text datasets from Common Crawl, Hugging Face-native.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add_arguments, _) in COMMANDS.items():
        doc = (COMMANDS[name][1].__doc__ or "").strip()
        add_arguments(sub.add_parser(name, help=doc or None, description=doc or None))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose + 1, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    import datasets

    datasets.disable_progress_bars()  # our own bars show shard progress; per-step bars are noise
    datasets.logging.set_verbosity_error()
    _, run = COMMANDS[args.command]
    try:
        return run(args)
    except (ValueError, FileNotFoundError, OSError, RuntimeError) as e:
        logger.error("%s", e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
