"""Shards, resume and finalize for every stage (`waon extract`, `waon download`, ...).

One input file is one shard. The runner asks the executor to run ``job.run_shard`` for every
shard without a completion marker (:mod:`waon_hf.pipeline.contract`), so a run killed at any
moment and started again ends with exactly the rows of an uninterrupted run. When every shard is
done, the job's global steps run in order over all of them and the final dataset
(``data/train-NNNNN-of-MMMMM.parquet``, ``README.md`` card, ``stats.json``, ``pipeline.json``) is
written: files go to a temporary folder first and are moved in only when all of them exist;
``.waon/final.json`` marks the stage done.

A run holds the folder's lock from start to end (a second run into it fails at once), refuses a
folder waon did not write (:meth:`ShardLayout.claim`), redoes shards whose input changed or whose
parquet is damaged, and refuses other settings (:mod:`waon_hf.pipeline.manifest`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
from tqdm.auto import tqdm

from waon_hf.dataset_card import write_dataset_card
from waon_hf.io import link_or_copy, remove_stale_tmp_files, write_json_atomic
from waon_hf.pipeline.contract import ShardJob
from waon_hf.pipeline.executors import LocalExecutor, RayExecutor, make_executor
from waon_hf.pipeline.layout import ShardLayout, read_pipeline
from waon_hf.pipeline.manifest import check_manifest
from waon_hf.sources.commoncrawl import SourceFile
from waon_hf.stats import Stats
from waon_hf.steps.dedup import write_kept
from waon_hf.steps.global_steps import GlobalStep

logger = logging.getLogger(__name__)

Executor = LocalExecutor | RayExecutor


class ShardsFailedError(RuntimeError):
    """Some shards failed; the others are done and a re-run retries only the failed ones."""


def stage_sources(input_dir: str | os.PathLike) -> list[SourceFile]:
    """The shards of a stage that reads a previous stage's folder: one per ``data/train-*.parquet``."""
    files = sorted((Path(input_dir) / "data").glob("train-*.parquet"))
    if not files:
        raise FileNotFoundError(f"{input_dir} has no data/train-*.parquet (is it the output of a waon stage?)")
    return [SourceFile(str(p), "") for p in files]


def run_stage(
    input_dir: str | os.PathLike, output_dir: str | os.PathLike, job: ShardJob, *,
    workers: int = 1, overwrite: bool = False, executor: Executor | str | None = None, redo: tuple[str, ...] = (),
) -> Stats:
    """Run a stage over a previous stage's output folder; the funnel and pipeline carry on from it."""
    input_dir = Path(input_dir)
    sources = stage_sources(input_dir)
    if Path(output_dir).resolve() == input_dir.resolve():
        raise ValueError("write a stage to a new folder (-o), not over its input")
    previous_stats = Stats.load(input_dir / "stats.json") if (input_dir / "stats.json").exists() else Stats()
    return run_sharded(sources, output_dir, job, workers=workers, overwrite=overwrite, executor=executor,
                       previous_stats=previous_stats, previous_pipeline=read_pipeline(input_dir), redo=redo)


def run_sharded(
    sources: list[SourceFile], output_dir: str | os.PathLike, job: ShardJob, *, workers: int = 1,
    overwrite: bool = False, previous_stats: Stats | None = None, previous_pipeline: dict | None = None,
    executor: Executor | str | None = None, slice_info: dict | None = None, settings: dict | None = None,
    redo: tuple[str, ...] = (),
) -> Stats:
    """Process every source as a shard (resumable), then the global steps, then write the dataset.

    ``executor``: ``"local"`` (default: ``workers`` processes), ``"ray"`` (a local Ray instance) or an
    executor object (:mod:`waon_hf.pipeline.executors`, e.g. ``RayExecutor("auto")``). ``slice_info``
    (``{"num_shards": N, "shard_index": I}``) is recorded in the manifest so that `waon merge` can
    put the shards of a Slurm array's slices back in input order. ``settings``: what else decides the
    rows besides ``job.describe()`` (a re-run with others is refused); ``redo``: redo the stage instead
    when its ``"settings"`` or ``"inputs"`` changed (:func:`waon_hf.pipeline.manifest.check_manifest`).
    """
    executor = make_executor(executor, workers=workers)
    if not sources:
        raise ValueError("no input files")
    layout = ShardLayout(output_dir)
    layout.claim()
    with layout.lock():
        if overwrite:
            layout.wipe()
        remove_temporaries(layout)
        check_manifest(layout, sources, job, settings=settings, slice_info=slice_info, redo=redo,
                       carried={"pipeline": previous_pipeline, "stats": previous_stats})
        return _run_locked(layout, sources, job, executor, previous_stats, previous_pipeline)


def remove_temporaries(layout: ShardLayout) -> int:
    """Delete what interrupted writes left (``.NAME.tmp-PID``) wherever a run writes: the folder,
    ``.waon/``, its shards and the shards' chunk folders. Safe because the run holds the lock."""
    folders = [layout.root, layout.work, layout.shards]
    if layout.shards.is_dir():
        folders += [p for p in layout.shards.iterdir() if p.is_dir()]
    stale = sum(remove_stale_tmp_files(f) for f in folders)
    if stale:
        logger.info("removed %d temporary file(s) left by an interrupted run", stale)
    return stale


def redo_damaged_shards(layout: ShardLayout, n: int) -> list[int]:
    """Done shards whose parquet is unreadable or short (what a power loss can leave) become pending."""
    damaged = []
    for i in range(n):
        if layout.is_done(i):
            problem = layout.shard_problem(i)
            if problem:
                logger.warning("shard %d is damaged (%s): redoing it", i, problem)
                layout.forget_shard(i)
                damaged.append(i)
    if damaged:
        logger.warning("%d damaged shard(s) will be redone: %s", len(damaged), damaged[:20])
    return damaged


def _run_locked(layout: ShardLayout, sources: list[SourceFile], job: ShardJob, executor: Executor,
                previous_stats: Stats | None, previous_pipeline: dict | None) -> Stats:
    redo_damaged_shards(layout, len(sources))
    pending = [(i, s) for i, s in enumerate(sources) if not layout.is_done(i)]
    if len(pending) < len(sources):
        logger.info("resuming: %d of %d shards already done", len(sources) - len(pending), len(sources))
    if pending:
        layout.final_marker.unlink(missing_ok=True)
    with tqdm(total=len(sources), initial=len(sources) - len(pending), desc="shards", unit="file") as progress:
        failures = executor.run(pending, job, layout, progress)
    if failures:
        write_json_atomic(layout.failed, {str(i): e for i, e in sorted(failures.items())})
        raise ShardsFailedError(
            f"{len(failures)} of {len(sources)} shard(s) failed (first: {next(iter(failures.values()))}); "
            f"the other shards are saved. Run the same command again to retry the failed ones "
            f"(details in {layout.failed})."
        )
    layout.failed.unlink(missing_ok=True)

    if layout.final_marker.exists():
        logger.info("final dataset already written")
        return Stats.load(layout.root / "stats.json")
    return finalize(layout, sources, job, previous_stats or Stats(), previous_pipeline)


def shard_stats(layout: ShardLayout, n: int) -> Stats:
    """The counters of shards ``0..n-1``, summed."""
    parts = []
    for i in range(n):
        with open(layout.shard_stats(i), encoding="utf-8") as f:
            parts.append(json.load(f)["stats"])
    return Stats.merged(parts)


def qualified(current: Stats, previous: Stats, stage: str) -> Stats:
    """Rename this stage's counters whose step name an earlier stage already used (``name@stage``)."""
    taken = set(previous.stages())
    out = Stats()
    for key, n in current.items():
        step, _, counter = key.partition(".")
        out[f"{step}@{stage}.{counter}" if step in taken else key] = n
    return out


def apply_global_steps(shard_paths: list[Path], global_steps: list[GlobalStep], work: Path,
                       stats: Stats) -> list[Path]:
    """Run global steps in order; each writes the surviving rows of every shard for the next one."""
    paths = list(shard_paths)
    for k, step in enumerate(global_steps):
        out_dir = work / f"global-{k}"
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir(parents=True)
        kept, counts = step.keep_rows(paths, work / "global-tmp")
        written = []
        for shard, rows in tqdm(kept, desc=step.name, unit="shard", leave=False):
            out = out_dir / f"part-{shard:05d}.parquet"
            write_kept(paths[shard], rows, out)
            written.append(out)
        stats.add_stage(step.name, counts)
        paths = written
    return paths


def finalize(layout: ShardLayout, sources: list[SourceFile], job: ShardJob, previous_stats: Stats | None = None,
             previous_pipeline: dict | None = None) -> Stats:
    """Global steps over all shards, then write ``data/``, ``stats.json``, ``pipeline.json``, the card."""
    current = shard_stats(layout, len(sources))
    shard_paths = [layout.shard_data(i) for i in range(len(sources))]
    schema = pq.read_schema(shard_paths[0])
    final = apply_global_steps(shard_paths, job.global_steps, layout.work, current)
    stats = Stats(previous_stats or {}).merge(qualified(current, previous_stats or Stats(), job.stage))
    staging = layout.work / "final-tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    if not final:  # nothing survived: one empty table that still carries the columns
        empty = staging / "part-00000.parquet"
        pq.write_table(schema.empty_table(), empty)
        final = [empty]
    else:
        moved = []
        for path in final:
            if path.parent == layout.shards:  # no global step: the shard files must stay (resume)
                link_or_copy(path, staging / path.name)
            else:
                os.replace(path, staging / path.name)
            moved.append(staging / path.name)
        final = moved

    for old in layout.data_files():  # only the dataset's files: anything else in data/ is not ours
        old.unlink()
    layout.data.mkdir(parents=True, exist_ok=True)
    for j, path in enumerate(final):
        os.replace(path, layout.data / f"train-{j:05d}-of-{len(final):05d}.parquet")
    stats.save(layout.root / "stats.json")
    pipeline = {"name": job.dataset_name, "note": job.card_note,
                "crawls": sorted({s.crawl for s in sources if s.crawl}) or (previous_pipeline or {}).get("crawls", []),
                "stages": [*(previous_pipeline or {}).get("stages", []), job.describe()]}
    write_json_atomic(layout.root / "pipeline.json", pipeline)
    write_dataset_card(layout.root, stats, pipeline=pipeline, num_sources=len(sources))
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in layout.data_files())
    write_json_atomic(layout.final_marker, {"files": len(final), "rows": rows})
    for leftover in [staging, *layout.work.glob("global-*")]:
        shutil.rmtree(leftover, ignore_errors=True)
    return stats
