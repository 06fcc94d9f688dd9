"""The stage catalogue: the one place that turns a config into each stage's job.

`waon build` and the single-stage commands (`waon download`, `filter-images`, `dedup-images`,
`score`) construct their jobs through these functions, so a stage does the same work however it is
started. Options come from the config section of the stage (:class:`waon_hf.config.BuildConfig`),
overridden by command-line flags the caller merged in; a default lives in the step class itself.

=============  ==============================================================================
stage          steps (per shard) / global steps (over all shards)
=============  ==============================================================================
download       ``download`` (``download:``), or ``download_retry`` with ``retry_failed``
filter_images  ``downloaded`` (failed downloads dropped), ``image_quality`` (``image_quality:``),
               ``sha256``, ``phash``
dedup_images   [``sha256``, ``phash`` when the input lacks them] / ``sha256_dedup``,
               ``phash_dedup``, ``decontaminate`` (``image_dedup:``)
score          ``nsfw_score``, ``nsfw_filter`` (``nsfw:``), ``siglip_score``, ``similarity_band``
               (``siglip:``)
=============  ==============================================================================

Recipes add steps to a stage: ``image_quality:``, ``image_dedup:``, ``nsfw:`` and ``siglip:`` may hold
``steps:`` (per-shard, run after the stage's own) and ``global_steps:`` (run after its own global
steps), e.g. ``image_dedup: {global_steps: [phash_caption_dedup]}``; parsed by
:func:`waon_hf.config.stage_extra_steps`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from waon_hf.config import BuildConfig, ConfigError, dataclass_from, stage_extra_steps
from waon_hf.jobs.stage import StageJob


def _split(options: dict[str, Any], keys: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(options with keys, options without)``."""
    taken = {k: options[k] for k in keys if k in options}
    return taken, {k: v for k, v in options.items() if k not in keys}


def download_job(config: BuildConfig, *, name: str, note: str = "", retry_failed: bool = False) -> StageJob:
    """Download the images (resized, re-encoded, embedded); every row gets a status."""
    from waon_hf.steps.download import DownloadImages

    step = dataclass_from(DownloadImages, config.download, "download")
    if retry_failed:
        from waon_hf.steps.download_retry import RetryFailedDownloads

        return StageJob(steps=[RetryFailedDownloads(download=step)], stage="download_retry", dataset_name=name,
                        card_note=note, batch_size=1_000)
    return StageJob(steps=[step], stage="download", dataset_name=name, card_note=note, batch_size=1_000)


def filter_images_job(config: BuildConfig, *, name: str, note: str = "", keep_failed: bool = False) -> StageJob:
    """Failed downloads and WAON's image-quality rules dropped; sha256 and pHash added."""
    from waon_hf.steps.image_dedup import ImageSha256, PHashStep
    from waon_hf.steps.image_filters import ImageQuality, KeepDownloaded

    options, extra, extra_global = stage_extra_steps(config.image_quality, "image_quality")
    quality = dataclass_from(ImageQuality, options, "image_quality")
    steps = ([] if keep_failed else [KeepDownloaded()]) + [quality, ImageSha256(), PHashStep(), *extra]
    return StageJob(steps=steps, global_steps=extra_global, stage="filter_images", dataset_name=name,
                    card_note=note, batch_size=500)


IMAGE_DEDUP_KEYS = ("max_distance", "against", "report")


def dedup_images_job(config: BuildConfig, *, name: str, note: str = "", report_dir: str | Path,
                     input_columns: list[str] | None = None) -> StageJob:
    """Exact (sha256) and near-duplicate (pHash) dedup over all shards, decontamination when configured.

    The hashes are computed here only when the input does not have them (``input_columns``; a
    `filter-images` output has both), so no image is hashed twice along a pipeline.
    """
    from waon_hf.steps.image_dedup import Decontaminate, ExactImageDedup, ImageSha256, NearDupImages, PHashStep

    section, extra, extra_global = stage_extra_steps(config.image_dedup, "image_dedup")
    options, unknown = _split(section, IMAGE_DEDUP_KEYS)
    if unknown:
        raise ConfigError(f"image_dedup: unknown option(s) {sorted(unknown)}; options: {', '.join(IMAGE_DEDUP_KEYS)}")
    near = dataclass_from(NearDupImages, {k: v for k, v in options.items() if k == "max_distance"}, "image_dedup")
    global_steps: list = [ExactImageDedup(), near]
    against = tuple(options.get("against") or ())
    if against:
        report = options.get("report") or str(Path(report_dir) / "decontamination.json")
        global_steps.append(Decontaminate(against=against, max_distance=near.max_distance, report=report))
    steps = []
    if input_columns is not None:
        if "sha256" not in input_columns:
            steps.append(ImageSha256())
        if "phash" not in input_columns:
            steps.append(PHashStep())
    steps += extra
    global_steps += extra_global
    return StageJob(steps=steps, global_steps=global_steps, stage="dedup_images", dataset_name=name,
                    card_note=note, batch_size=500)


NSFW_FILTER_KEYS = ("max_punsafe",)
SIMILARITY_BAND_KEYS = ("min_similarity", "max_similarity")


def score_job(config: BuildConfig, *, name: str, note: str = "") -> StageJob:
    """WAON's two model-based filters: NSFW (keep ``punsafe < 0.1``) and SigLIP2 similarity (``>= 0.1``)."""
    from waon_hf.steps.nsfw import NsfwFilter, NsfwScore
    from waon_hf.steps.scoring import SiglipScore, SimilarityBand

    nsfw_section, nsfw_extra, nsfw_global = stage_extra_steps(config.nsfw, "nsfw")
    siglip_section, siglip_extra, siglip_global = stage_extra_steps(config.siglip, "siglip")
    nsfw_filter, nsfw = _split(nsfw_section, NSFW_FILTER_KEYS)
    band, siglip = _split(siglip_section, SIMILARITY_BAND_KEYS)
    scorer = dataclass_from(SiglipScore, siglip, "siglip")
    for step in [*nsfw_extra, *siglip_extra]:  # model: null in an added encoder step means siglip's model
        if isinstance(step, SiglipScore) and step.model is None:
            step.model, step.revision = scorer.model, scorer.revision
    steps = [dataclass_from(NsfwScore, nsfw, "nsfw"), dataclass_from(NsfwFilter, nsfw_filter, "nsfw"), *nsfw_extra,
             scorer, dataclass_from(SimilarityBand, band, "siglip"), *siglip_extra]
    return StageJob(steps=steps, global_steps=[*nsfw_global, *siglip_global], stage="score", dataset_name=name,
                    card_note=note, batch_size=256)


def validate(config: BuildConfig, report_dir: str | Path = ".") -> None:
    """Build every stage's job once: a bad option is an error before the first stage runs."""
    name, note = config.dataset_name, config.note
    download_job(config, name=name, note=note)
    filter_images_job(config, name=name, note=note)
    dedup_images_job(config, name=name, note=note, report_dir=report_dir)
    score_job(config, name=name, note=note)
