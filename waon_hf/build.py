"""`waon build`: every stage from one config, resumable stage by stage.

Stages, each a folder written by the sharded runner (finished stages are skipped on a re-run):

1. ``pairs``: `waon extract` (WARC -> Japanese pairs, caption steps, exact URL/caption dedup), or
   ReLAION (``relaion:`` section: the Japanese subset, or English captions translated);
2. ``images``: download (resized, re-encoded, embedded), every row with a status;
3. ``filtered``: failed downloads and WAON's image-quality rules dropped; sha256 and pHash added;
4. ``dedup``: exact (sha256) and near-duplicate (pHash) dedup, decontamination when configured;
5. the output folder itself: NSFW score (keep ``punsafe < 0.1``) and SigLIP2 image-caption cosine
   (keep ``similarity >= 0.1``), WAON's two model-based filters.

The intermediate stages live in ``<output>/.waon-stages/``; the output folder is the final
Hub-ready dataset whose card's funnel covers every stage. The build holds the output folder's lock
throughout. A re-run with a changed config redoes the stages whose settings changed and, through
their inputs' fingerprints, what follows them; earlier stages are kept. Each later stage's job comes from the
stage catalogue (:mod:`waon_hf.catalogue`), the same functions the single-stage commands use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

from waon_hf import catalogue
from waon_hf.config import BuildConfig
from waon_hf.jobs.stage import StageJob
from waon_hf.pipeline.layout import STAGES_DIR, ShardLayout
from waon_hf.pipeline.runner import run_sharded, run_stage, stage_sources
from waon_hf.sources.commoncrawl import SourceFile
from waon_hf.stats import Stats

logger = logging.getLogger(__name__)

INTERMEDIATE_STAGES = ("pairs", "images", "filtered", "dedup")  # folders under .waon-stages/, in order


def input_columns(folder: str | Path) -> list[str]:
    """The columns of a finished stage's folder (from its first data file)."""
    return pq.read_schema(stage_sources(folder)[0].location).names


def later_stages(config: BuildConfig, output: Path) -> list[tuple[str, Callable[[Path], StageJob]]]:
    """``(folder name, job for an input folder)`` of the stages after the pairs, in order."""
    name, note = config.dataset_name, config.note
    return [
        ("images", lambda prev: catalogue.download_job(config, name=name, note=note)),
        ("filtered", lambda prev: catalogue.filter_images_job(config, name=name, note=note)),
        ("dedup", lambda prev: catalogue.dedup_images_job(config, name=name, note=note, report_dir=output,
                                                          input_columns=input_columns(prev))),
        ("", lambda prev: catalogue.score_job(config, name=name, note=note)),  # "": the output folder itself
    ]


def run_build(sources: list[SourceFile], output: str | Path, config: BuildConfig, *, workers: int = 1,
              overwrite: bool = False, executor=None, slice_info: dict | None = None) -> Stats:
    """Run every stage; a stage whose folder is complete is skipped, so a re-run resumes.

    ``executor`` (``"local"``, ``"ray"`` or a :mod:`waon_hf.pipeline.executors` object) runs every stage's
    shards; ``slice_info`` is recorded by the extraction stage for `waon merge`.
    """
    output = Path(output)
    catalogue.validate(config, report_dir=output)  # every stage's options, before the first stage runs
    layout = ShardLayout(output)
    layout.claim()
    with layout.lock():  # the whole build: a second build into this folder fails at once
        if overwrite:
            wipe_stages(output)
        return _run_stages(sources, output, config, workers=workers, executor=executor, slice_info=slice_info)


def stage_folders(output: Path) -> list[Path]:
    """Every folder a build writes, in stage order (the output folder last)."""
    return [*(output / STAGES_DIR / name for name in INTERMEDIATE_STAGES), output]


def wipe_stages(output: Path) -> None:
    """``--overwrite``: forget every stage's run (only what waon wrote in each stage folder)."""
    for folder in stage_folders(output):
        if folder.exists():
            stage = ShardLayout(folder)
            stage.claim()
            with stage.lock():
                stage.wipe()


def _run_stages(sources: list[SourceFile], output: Path, config: BuildConfig, *, workers: int, executor,
                slice_info: dict | None) -> Stats:
    # A stage whose settings changed is redone (the user changed the config of this build); a later
    # stage is also redone when its input (the previous stage's data/) has other files. The pairs
    # stage's inputs are the user's: another list of inputs is refused, as for `waon extract`.
    pairs = output / STAGES_DIR / "pairs"
    logger.info("stage pairs -> %s", pairs)
    if config.relaion:  # ReLAION (Japanese subset, or English translated) instead of WARC extraction
        from waon_hf.relaion import run_relaion_pairs

        run_relaion_pairs([s.location for s in sources], pairs, config.relaion, name=config.dataset_name,
                          note=config.note, workers=workers, executor=executor, redo=("settings",))
    else:
        run_sharded(sources, pairs, config.extract_job(), workers=workers, executor=executor, slice_info=slice_info,
                    redo=("settings",))
    previous, stats = pairs, Stats()
    for folder, make_job in later_stages(config, output):
        target = output / STAGES_DIR / folder if folder else output
        logger.info("stage %s -> %s", folder or "score", target)
        stats = run_stage(previous, target, make_job(previous), workers=workers, executor=executor,
                          redo=("settings", "inputs"))
        previous = target
    return stats
