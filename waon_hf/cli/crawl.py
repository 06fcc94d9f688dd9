"""`waon extract`, `waon build` and `waon merge`: Common Crawl (or ReLAION) to a Hub-ready dataset."""

from __future__ import annotations

import argparse
import logging

from waon_hf.cli.options import (
    add_config_option,
    add_executor_options,
    add_output_options,
    auto_device,
    executor_from_args,
    finish_output,
    int_at_least,
    int_in,
    output_folder,
    print_summary,
)
from waon_hf.cli.registry import command
from waon_hf.config import ConfigError
from waon_hf.funnel import funnel_markdown
from waon_hf.pipeline.layout import ShardLayout
from waon_hf.text.langid import DETECTORS

logger = logging.getLogger(__name__)


def _input_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="local WARC paths or globs, http(s)/s3 URLs of WARC files, or a Common Crawl id "
                        "such as CC-MAIN-2025-18 (expanded from the crawl's warc.paths.gz listing)")
    add_output_options(p)
    add_executor_options(p)
    p.add_argument("--limit-files", type=int_at_least(0), default=None,
                   help="process only the first N files of the slice")
    p.add_argument("--num-shards", type=int_at_least(1), default=1,
                   help="split the file list into N slices (Slurm arrays)")
    p.add_argument("--shard-index", type=int_at_least(0), default=0, help="which slice this job takes, in [0, N)")
    add_config_option(p)
    p.add_argument("--langid", choices=sorted(DETECTORS), help="page language detector (default: pycld2)")
    p.add_argument("--cc-base-url", help="Common Crawl HTTP endpoint (default https://data.commoncrawl.org/)")


def _slice_info(args: argparse.Namespace) -> dict | None:
    """Recorded in the manifest so that `waon merge` can restore input order across the slices."""
    return {"num_shards": args.num_shards, "shard_index": args.shard_index} if args.num_shards > 1 else None


def _sources(args: argparse.Namespace):
    from waon_hf.sources.commoncrawl import resolve_inputs

    if args.limit_files is not None and args.limit_files < 0:
        raise ConfigError(f"--limit-files must be >= 0, got {args.limit_files}")
    if not 0 <= args.shard_index < args.num_shards:
        raise ConfigError(f"--shard-index must be in [0, {args.num_shards}) (--num-shards), got {args.shard_index}")
    return resolve_inputs(args.inputs, limit_files=args.limit_files, num_shards=args.num_shards,
                          shard_index=args.shard_index, base_url=args.cc_base_url)


def _config(args: argparse.Namespace, recipe: str | None = None):
    from waon_hf.config import BuildConfig

    config = BuildConfig.from_recipe(recipe, args.config) if recipe else BuildConfig.from_file(args.config)
    if args.name:
        config.extract["dataset_name"] = args.name
    if args.langid:
        config.extract["extract"] = {**(config.extract.get("extract") or {}), "langid": args.langid}
    config.extract_job()  # the flags' values are checked too
    return config


@command("extract", _input_args)
def run_extract_command(args: argparse.Namespace) -> int:
    """Extract Japanese (image URL, caption) pairs from WARC files into a Hub-ready dataset folder."""
    from waon_hf.jobs.extract import run_extract

    job = _config(args).extract_job()
    folder, url = output_folder(args)
    sources = _sources(args)
    logger.info("%d input file(s) -> %s", len(sources), args.output)
    stats = run_extract(sources, folder, job, workers=args.workers, overwrite=args.overwrite,
                        executor=executor_from_args(args), slice_info=_slice_info(args))
    print_summary(stats, folder, args, url, next_hint=f"waon download {args.output} -o <images>", what="pairs")
    return 0


def _build_args(p: argparse.ArgumentParser) -> None:
    from waon_hf.cli.relaion import add_build_relaion_args

    _input_args(p)
    p.add_argument("--siglip", default=None, help="score stage: SigLIP2 model, a Hub id or a local folder "
                                                  "(overrides the config's siglip: model)")
    p.add_argument("--device", default="auto", help="score stage (NSFW and SigLIP2): auto (default: cuda when "
                   "available, else cpu; the choice is logged), cpu, cuda, cuda:N; an explicit value overrides "
                   "the config's nsfw:/siglip: device, auto fills only what the config leaves unset")
    add_build_relaion_args(p)
    p.add_argument("--recipe", help="a shipped recipe (waon, vila-jp, danqing: configs/recipes/NAME.yaml) or a recipe "
                                    "file; --config overrides it key by key")


def apply_scoring_flags(args: argparse.Namespace, config) -> None:
    """``--siglip`` and ``--device`` into the config's ``siglip:`` and ``nsfw:`` sections."""
    if args.siglip:
        config.siglip["model"] = args.siglip
    if args.device != "auto":
        config.siglip["device"] = config.nsfw["device"] = args.device
    elif "device" not in config.siglip or "device" not in config.nsfw:
        device = auto_device()
        config.siglip.setdefault("device", device)
        config.nsfw.setdefault("device", device)


@command("build", _build_args)
def run_build_command(args: argparse.Namespace) -> int:
    """Run every stage (extract, download, image filters, image dedup, NSFW and SigLIP2 scores) from one config."""
    from waon_hf import catalogue
    from waon_hf.build import STAGES_DIR, run_build
    from waon_hf.cli.relaion import relaion_build_sources

    config = _config(args, recipe=args.recipe)
    apply_scoring_flags(args, config)
    folder, url = output_folder(args)
    sources = relaion_build_sources(args, config) or _sources(args)
    config.check_relaion()  # with the --relaion-* flags merged in
    catalogue.validate(config, report_dir=folder)  # every stage's options
    catalogue.check_models(config)  # then every model the stages load, before the first shard
    with executor_from_args(args) as executor:  # one Ray connection for every stage
        stats = run_build(sources, folder, config, workers=args.workers, overwrite=args.overwrite,
                          executor=executor, slice_info=_slice_info(args))
    print_summary(stats, folder, args, url)
    print(f"(intermediate stages in {folder}/{STAGES_DIR}/)")
    return 0


def _merge_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("slices", nargs="+", metavar="SLICE_DIR",
                   help="finished output folders of the array's jobs (e.g. out-*/); any order for slices made "
                        "with --num-shards/--shard-index, else the order given is taken as input order")
    add_output_options(p)
    add_executor_options(p)
    p.add_argument("--max-distance", type=int_in(0, 31), default=None,
                   help="later-stage slices: pHash Hamming distance of near-duplicate images (default 4)")


@command("merge", _merge_args)
def run_merge_command(args: argparse.Namespace) -> int:
    """Merge the finished slices of a Slurm array into one dataset (cross-slice dedup, summed funnel)."""
    from waon_hf.merge import merge_slices

    folder, url = output_folder(args)
    stats = merge_slices(args.slices, folder, executor=executor_from_args(args), overwrite=args.overwrite,
                         max_distance=args.max_distance)
    print(funnel_markdown(stats))
    finish_output(folder, url)
    print(f"\n{len(args.slices)} slices merged: {ShardLayout(folder).final_rows():,} rows in {args.output}/data")
    return 0
