"""`waon documents`: WARC files -> interleaved Japanese documents (OBELICS layout), the VILA-jp / MMC4 recipe."""

from __future__ import annotations

import argparse
import logging

from waon_hf.cli.options import (
    add_config_option,
    add_executor_options,
    add_output_options,
    executor_from_args,
    output_folder,
    print_summary,
)
from waon_hf.cli.registry import command

logger = logging.getLogger(__name__)


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="local WARC paths or globs, http(s)/s3 URLs of WARC files, or a Common Crawl id")
    add_output_options(p)
    add_executor_options(p)
    p.add_argument("--limit-files", type=int, default=None, help="process only the first N files")
    add_config_option(p, "a documents: section with the recipe's thresholds, download: and nsfw: options")
    p.add_argument("--no-embed", action="store_true", help="image URLs only in the output, no image bytes")
    p.add_argument("--model", help="dual encoder for image-sentence similarity (default: the SigLIP2 of the scores)")
    p.add_argument("--device", help="device of the dual encoder and NSFW model (cpu, cuda, cuda:auto)")
    p.add_argument("--min-similarity", type=float, help="image-sentence similarity threshold (default 0.20)")
    p.add_argument("--images-warc", action="append", default=[], metavar="WARC",
                   help="serve images from this WARC archive (repeatable); with --offline, only from there")
    p.add_argument("--offline", action="store_true", help="never fetch images from the network")
    p.add_argument("--pairs-output", metavar="DIR",
                   help="also write the (image URL, caption) pairs `waon extract` would write (its config keys "
                        "from --config) to DIR, from the same read of each WARC file")
    p.add_argument("--cc-base-url", help="Common Crawl HTTP endpoint (default https://data.commoncrawl.org/)")


def _read_config(path: str | None) -> dict:
    if not path:
        return {}
    import yaml

    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def _pairs_job(args: argparse.Namespace):
    """The pairs stage from the config's extraction keys (the documents: section set aside)."""
    from waon_hf.config import BuildConfig

    raw = {k: v for k, v in _read_config(args.config).items() if k != "documents"}
    return BuildConfig.from_dict(raw).extract_job()


def _recipe(args: argparse.Namespace):
    from waon_hf.jobs.documents import recipe_from_dict

    config = _read_config(args.config)
    section = dict(config.get("documents") or {})
    download, nsfw = dict(config.get("download") or {}), dict(config.get("nsfw") or {})
    if args.images_warc:
        download["warc_sources"] = [*download.get("warc_sources", ()), *args.images_warc]
    if args.offline:
        download["offline"] = True
    section.setdefault("download", download)
    section.setdefault("nsfw", nsfw)
    for flag, key in ((args.model, "model"), (args.device, "device"), (args.min_similarity, "min_similarity")):
        if flag is not None:
            section[key] = flag
    if args.device is not None:
        section["nsfw"] = {**section["nsfw"], "device": args.device}
    if args.no_embed:
        section["embed_images"] = False
    return recipe_from_dict(section)


@command("documents", _args)
def run_documents_command(args: argparse.Namespace) -> int:
    """Build interleaved Japanese documents (sentences and images, OBELICS layout) from WARC files."""
    from waon_hf.jobs.documents import STAGES, recipe_jobs, run_documents
    from waon_hf.sources.commoncrawl import resolve_inputs

    recipe = _recipe(args)
    folder, url = output_folder(args)
    recipe_jobs(recipe, folder)  # bad options fail before any work
    pairs_job = _pairs_job(args) if args.pairs_output else None
    sources = resolve_inputs(args.inputs, limit_files=args.limit_files, base_url=args.cc_base_url)
    with executor_from_args(args) as executor:
        stats = run_documents(sources, folder, recipe, workers=args.workers, overwrite=args.overwrite,
                              executor=executor, dataset_name=args.name or "waon-interleaved",
                              pairs_output=args.pairs_output, pairs_job=pairs_job)
    print_summary(stats, folder, args, url, what="documents")
    print(f"(intermediate stages in {folder}/.waon-stages/{{{','.join(STAGES)}}}/)")
    if args.pairs_output:
        print(f"pairs from the same pass in {args.pairs_output} (next: waon download {args.pairs_output} -o <images>)")
    return 0
