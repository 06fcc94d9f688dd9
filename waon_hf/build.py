"""`waon build`: every stage from one config, resumable stage by stage.

Stages, each a folder written by the sharded runner (finished stages are skipped on a re-run):

1. ``pairs``: `waon extract` (WARC -> Japanese pairs, caption steps, exact URL/caption dedup);
2. ``images``: download (resized, re-encoded, embedded), every row with a status;
3. ``filtered``: failed downloads and WAON's image-quality rules dropped; sha256 and pHash added;
4. ``dedup``: exact (sha256) and near-duplicate (pHash) dedup, decontamination when configured;
5. the output folder itself: NSFW score (keep ``punsafe < 0.1``) and SigLIP2 image-caption cosine
   (keep ``similarity >= 0.1``), WAON's two model-based filters.

The intermediate stages live in ``<output>/.waon-stages/``; the output folder is the final
Hub-ready dataset whose card's funnel covers every stage. The config file holds the extraction
settings (see :mod:`waon_hf.config`) plus one section per later stage; every default is WAON's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from waon_hf.config import job_from_dict
from waon_hf.runner import StageJob, run_extract, run_stage
from waon_hf.sources.commoncrawl import SourceFile
from waon_hf.stats import Stats

logger = logging.getLogger(__name__)

STAGES_DIR = ".waon-stages"
BUILD_SECTIONS = ("download", "image_quality", "image_dedup", "nsfw", "siglip", "relaion")


@dataclass
class BuildConfig:
    """The whole pipeline's settings: the extraction job plus one dict of options per later stage."""

    extract: dict[str, Any] = field(default_factory=dict)
    download: dict[str, Any] = field(default_factory=dict)
    image_quality: dict[str, Any] = field(default_factory=dict)
    image_dedup: dict[str, Any] = field(default_factory=dict)
    nsfw: dict[str, Any] = field(default_factory=dict)
    siglip: dict[str, Any] = field(default_factory=dict)
    relaion: dict[str, Any] = field(default_factory=dict)  # set: the pairs come from ReLAION, not WARC files

    @classmethod
    def from_file(cls, path: str | None) -> BuildConfig:
        raw: dict[str, Any] = {}
        if path:
            with open(path, encoding="utf-8") as f:
                raw = yaml.safe_load(f) or {}
        sections = {name: dict(raw.pop(name, None) or {}) for name in BUILD_SECTIONS}
        job_from_dict(raw)  # validate the extraction part now, not after an hour of work
        return cls(extract=raw, **sections)


def _download_job(config: BuildConfig, name: str) -> StageJob:
    from waon_hf.steps.download import DownloadImages

    options = dict(config.download)
    if "warc_sources" in options:
        options["warc_sources"] = tuple(options["warc_sources"])
    return StageJob(steps=[DownloadImages(**options)], stage="download", dataset_name=name)


def _filter_job(config: BuildConfig, name: str) -> StageJob:
    from waon_hf.image_cli import KeepDownloaded
    from waon_hf.steps.image_dedup import ImageSha256, PHashStep
    from waon_hf.steps.image_filters import ImageQuality

    return StageJob(steps=[KeepDownloaded(), ImageQuality(**config.image_quality), ImageSha256(), PHashStep()],
                    stage="filter_images", dataset_name=name, batch_size=500)


def _dedup_job(config: BuildConfig, name: str, output: Path) -> StageJob:
    from waon_hf.steps.image_dedup import Decontaminate, ExactImageDedup, NearDupImages

    options = dict(config.image_dedup)
    max_distance = int(options.pop("max_distance", 4))
    against = tuple(options.pop("against", None) or ())
    report = options.pop("report", None) or str(output / "decontamination.json")
    if options:
        raise ValueError(f"image_dedup: unknown option(s) {sorted(options)}; options: max_distance, against, report")
    global_steps = [ExactImageDedup(), NearDupImages(max_distance=max_distance)]
    if against:
        global_steps.append(Decontaminate(against=against, max_distance=max_distance, report=report))
    return StageJob(global_steps=global_steps, stage="dedup_images", dataset_name=name)


def _score_job(config: BuildConfig, name: str) -> StageJob:
    from waon_hf.steps.nsfw import NsfwFilter, NsfwScore
    from waon_hf.steps.scoring import SiglipScore, SimilarityBand

    nsfw = dict(config.nsfw)
    max_punsafe = nsfw.pop("max_punsafe", 0.1)
    siglip = dict(config.siglip)
    band = {k: siglip.pop(k) for k in ("min_similarity", "max_similarity") if k in siglip}
    band.setdefault("min_similarity", 0.1)
    steps = [NsfwScore(**nsfw), NsfwFilter(max_punsafe=max_punsafe), SiglipScore(**siglip), SimilarityBand(**band)]
    return StageJob(steps=steps, stage="score", dataset_name=name, batch_size=256)


def run_build(sources: list[SourceFile], output: str | Path, config: BuildConfig, *, workers: int = 1,
              overwrite: bool = False, executor=None, slice_info: dict | None = None) -> Stats:
    """Run every stage; a stage whose folder is complete is skipped, so a re-run resumes.

    ``executor`` (``"local"``, ``"ray"`` or a :mod:`waon_hf.executors` object) runs every stage's shards;
    ``slice_info`` is recorded by the extraction stage for `waon merge`.
    """
    output = Path(output)
    stages = output / STAGES_DIR
    job = job_from_dict(config.extract)
    name = job.dataset_name
    if config.relaion:  # ReLAION (Japanese subset, or English translated) instead of WARC extraction
        from waon_hf.relaion_cli import run_relaion_pairs

        def pairs(prev, out):
            return run_relaion_pairs([s.location for s in sources], out, config.relaion, name=name, workers=workers,
                                     overwrite=overwrite, executor=executor)
    else:
        def pairs(prev, out):
            return run_extract(sources, out, job, workers=workers, overwrite=overwrite, executor=executor,
                               slice_info=slice_info)
    steps = [
        ("pairs", pairs),
        ("images", lambda prev, out: run_stage(prev, out, _download_job(config, name), workers=workers,
                                               overwrite=overwrite, executor=executor)),
        ("filtered", lambda prev, out: run_stage(prev, out, _filter_job(config, name), workers=workers,
                                                 overwrite=overwrite, executor=executor)),
        ("dedup", lambda prev, out: run_stage(prev, out, _dedup_job(config, name, output), workers=workers,
                                              overwrite=overwrite, executor=executor)),
    ]
    previous = None
    for stage_name, run in steps:
        target = stages / stage_name
        logger.info("stage %s -> %s", stage_name, target)
        run(previous, target)
        previous = target
    logger.info("stage score -> %s", output)
    return run_stage(previous, output, _score_job(config, name), workers=workers, overwrite=overwrite,
                     executor=executor)
