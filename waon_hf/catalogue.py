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

import dataclasses
import logging
from pathlib import Path
from typing import Any

from waon_hf.config import BuildConfig, ConfigError, dataclass_from, stage_extra_steps
from waon_hf.jobs.stage import StageJob

logger = logging.getLogger(__name__)


def _split(options: dict[str, Any], keys: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(options with keys, options without)``."""
    taken = {k: options[k] for k in keys if k in options}
    return taken, {k: v for k, v in options.items() if k not in keys}


@dataclasses.dataclass
class DownloadStageJob(StageJob):
    """The download stage: every row's status is also counted, so the funnel shows the outcomes."""

    def transform(self, rows, ctx, stats):
        from waon_hf.steps.download.statuses import count_statuses

        rows = super().transform(rows, ctx, stats)
        count_statuses(rows, self.steps[-1].name if self.steps else self.stage, stats)
        return rows


def download_job(config: BuildConfig, *, name: str, note: str = "", retry_failed: bool = False) -> StageJob:
    """Download the images (resized, re-encoded, embedded); every row gets a status (counted by status)."""
    from waon_hf.steps.download import DownloadImages

    step = dataclass_from(DownloadImages, config.download, "download")
    if retry_failed:
        from waon_hf.steps.download.retry import RetryFailedDownloads

        return DownloadStageJob(steps=[RetryFailedDownloads(download=step)], stage="download_retry",
                                dataset_name=name, card_note=note, batch_size=1_000)
    return DownloadStageJob(steps=[step], stage="download", dataset_name=name, card_note=note, batch_size=1_000)


def download_source_job(config: BuildConfig, *, name: str, note: str = "", columns: dict | None = None,
                        takes: tuple[int | None, ...] = ()):
    """The download stage over a published URL-only table (one source parquet file per shard)."""
    from waon_hf.jobs.url_source import UrlSourceJob
    from waon_hf.steps.download import DownloadImages

    step = dataclass_from(DownloadImages, config.download, "download")
    return UrlSourceJob(steps=[step], dataset_name=name, card_note=note, columns=dict(columns or {}), takes=takes)


def filter_images_job(config: BuildConfig, *, name: str, note: str = "", keep_failed: bool = False) -> StageJob:
    """Failed downloads and WAON's image-quality rules dropped; sha256 and pHash added."""
    from waon_hf.steps.image_dedup import ImageSha256, PHashStep
    from waon_hf.steps.image_filters import ImageQuality, KeepDownloaded

    options, extra, extra_global = stage_extra_steps(config.image_quality, "image_quality")
    quality = dataclass_from(ImageQuality, options, "image_quality")
    phash = PHashStep(algorithm=phash_algorithm(config))
    steps = ([] if keep_failed else [KeepDownloaded()]) + [quality, ImageSha256(), phash, *extra]
    return StageJob(steps=steps, global_steps=extra_global, stage="filter_images", dataset_name=name,
                    card_note=note, batch_size=500)


IMAGE_DEDUP_KEYS = ("max_distance", "against", "report", "phash_algorithm")


def phash_algorithm(config: BuildConfig) -> str:
    """``image_dedup: {phash_algorithm: imagededup | imagehash}``: one algorithm for every pHash of a build
    (the filter stage computes them, the dedup stage compares them); imagehash's is WAON's column."""
    from waon_hf.steps.image_dedup import DEFAULT_PHASH_ALGORITHM, PHASH_ALGORITHMS

    name = config.image_dedup.get("phash_algorithm", DEFAULT_PHASH_ALGORITHM)
    if name not in PHASH_ALGORITHMS:
        raise ConfigError(f"image_dedup: phash_algorithm must be one of {', '.join(PHASH_ALGORITHMS)}, got {name!r}")
    return name


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
    algorithm = phash_algorithm(config)
    near = dataclass_from(NearDupImages, {**{k: v for k, v in options.items() if k == "max_distance"},
                                          "algorithm": algorithm}, "image_dedup")
    global_steps: list = [ExactImageDedup(), near]
    against = tuple(options.get("against") or ())
    if against:
        report = options.get("report") or str(Path(report_dir) / "decontamination.json")
        global_steps.append(Decontaminate(against=against, max_distance=near.max_distance, report=report,
                                          algorithm=algorithm))
    steps = []
    if input_columns is not None:
        if "sha256" not in input_columns:
            steps.append(ImageSha256())
        if "phash" not in input_columns:
            steps.append(PHashStep(algorithm=algorithm))
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
    nsfw_score = dataclass_from(NsfwScore, nsfw, "nsfw")
    nsfw_score.check_labels()  # a classifier whose labels give no punsafe fails here, not in every shard
    steps = [nsfw_score, dataclass_from(NsfwFilter, nsfw_filter, "nsfw"), *nsfw_extra,
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


# What each stage reads, for the message when a folder of the wrong shape is given to it.
EXPECTED_INPUT = {
    "download": "a pairs dataset (url, caption): the output of `waon extract`, `relaion-ja` or `translate`",
    "download_retry": "the output of `waon download` (url, status)",
    "filter_images": "the output of `waon download` (url, caption, status, image)",
    "dedup_images": "the output of `waon filter-images` (image, sha256, phash) or of `waon download`",
    "score": "the output of `waon dedup-images` (or any stage after `waon download`: image, caption)",
}
# Columns a step needs that its input_columns() does not name (it reads the whole batch).
EXTRA_INPUT_COLUMNS = {"download_retry": ("url", "status")}


def required_input_columns(job: StageJob) -> list[str]:
    """The columns ``job`` needs from its input: what its steps and global steps read that no earlier
    step of the job adds (a map step that rewrites whole batches ends the analysis: it may add anything)."""
    from waon_hf.steps.base import MapStep

    required: list[str] = []
    produced: set[str] = set()

    def need(columns) -> None:
        required.extend(c for c in columns if c not in produced and c not in required)

    for step in job.steps:
        need(EXTRA_INPUT_COLUMNS.get(step.name, ()))
        need(step.input_columns())
        if isinstance(step, MapStep):
            outputs = step.output_columns()
            if outputs is None:
                return required
            produced.update(outputs)
    for step in job.global_steps:
        columns = getattr(step, "columns", None) or [getattr(step, "column", None)]
        need([c for c in columns if isinstance(c, str)])
    return required


def check_input(job: StageJob, columns: list[str], where: str) -> None:
    """Refuse, before any shard starts, an input whose first shard lacks a column the stage reads."""
    missing = [c for c in required_input_columns(job) if c not in columns]
    if missing:
        expected = EXPECTED_INPUT.get(job.stage, "the output of the previous stage")
        raise ConfigError(f"{where} is not an input for {job.stage}: it has no column(s) {missing} "
                          f"(its columns: {', '.join(columns)}); expected {expected}")


def check_models(config: BuildConfig, *, score: bool = True, translation: bool = True) -> None:
    """Resolve each model the run names (SigLIP2, a transformers NSFW classifier, the translation LLM) once,
    in the driver, without downloading weights: a missing folder or an unknown id fails before any shard."""
    from waon_hf.models.resolve import ModelUnavailableError, resolve_model

    wanted: list[tuple[str, str, str | None]] = []
    if score:
        from waon_hf.steps.scoring import SiglipScore

        wanted.append((config.siglip.get("model", SiglipScore.model), "siglip: model", config.siglip.get("revision")))
        if config.nsfw.get("backend") == "transformers" and config.nsfw.get("model"):
            wanted.append((config.nsfw["model"], "nsfw: model", None))
    if (translation and config.relaion.get("mode") == "translate" and config.relaion.get("model")
            and config.relaion.get("backend", "auto") in ("auto", "transformers", "vllm")):
        wanted.append((config.relaion["model"], "relaion: model", None))
    for name, what, revision in wanted:
        try:
            where = resolve_model(name, what, revision)
        except ModelUnavailableError as e:
            raise ConfigError(str(e)) from None
        logger.info("%s %s: %s", what, name, where)
