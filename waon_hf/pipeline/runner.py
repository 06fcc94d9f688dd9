"""Shards, resume and finalize for every stage (`waon extract`, `waon download`, ...).

One input file is one shard. The runner asks the executor to run ``job.run_shard`` for every
shard without a completion marker (:mod:`waon_hf.pipeline.contract`), so a run killed at any
moment and started again ends with exactly the rows of an uninterrupted run. When every shard is
done, the job's global steps run in order over all of them and the final dataset
(``data/train-NNNNN-of-MMMMM.parquet``, ``README.md`` card, ``stats.json``, ``pipeline.json``) is
written: files go to a temporary folder first and are moved in only when all of them exist;
``.waon/final.json`` marks the stage done.
"""

from __future__ import annotations

import dataclasses
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
from waon_hf.sources.commoncrawl import SourceFile
from waon_hf.stats import Stats
from waon_hf.steps.dedup import write_kept
from waon_hf.steps.global_steps import GlobalStep

logger = logging.getLogger(__name__)

Executor = LocalExecutor | RayExecutor


class ShardsFailedError(RuntimeError):
    """Some shards failed; the others are done and a re-run retries only the failed ones."""


def check_manifest(layout: ShardLayout, sources: list[SourceFile], slice_info: dict | None = None) -> None:
    """Record the inputs of a new run; refuse to resume a run over other inputs."""
    wanted = [dataclasses.asdict(s) for s in sources]
    if layout.manifest.exists():
        with open(layout.manifest, encoding="utf-8") as f:
            previous = json.load(f)["sources"]
        if previous != wanted:
            raise ValueError(
                f"{layout.root} holds a run over other inputs ({len(previous)} files, now {len(wanted)}); "
                "use another output folder or --overwrite"
            )
        return
    layout.shards.mkdir(parents=True, exist_ok=True)
    write_json_atomic(layout.manifest, {"sources": wanted, **({"slice": slice_info} if slice_info else {})})


def stage_sources(input_dir: str | os.PathLike) -> list[SourceFile]:
    """The shards of a stage that reads a previous stage's folder: one per ``data/train-*.parquet``."""
    files = sorted((Path(input_dir) / "data").glob("train-*.parquet"))
    if not files:
        raise FileNotFoundError(f"{input_dir} has no data/train-*.parquet (is it the output of a waon stage?)")
    return [SourceFile(str(p), "") for p in files]


def run_stage(
    input_dir: str | os.PathLike, output_dir: str | os.PathLike, job: ShardJob, *,
    workers: int = 1, overwrite: bool = False, executor: Executor | str | None = None,
) -> Stats:
    """Run a stage over a previous stage's output folder; the funnel and pipeline carry on from it."""
    input_dir = Path(input_dir)
    sources = stage_sources(input_dir)
    if Path(output_dir).resolve() == input_dir.resolve():
        raise ValueError("write a stage to a new folder (-o), not over its input")
    previous_stats = Stats.load(input_dir / "stats.json") if (input_dir / "stats.json").exists() else Stats()
    return run_sharded(sources, output_dir, job, workers=workers, overwrite=overwrite, executor=executor,
                       previous_stats=previous_stats, previous_pipeline=read_pipeline(input_dir))


def run_sharded(
    sources: list[SourceFile], output_dir: str | os.PathLike, job: ShardJob, *, workers: int = 1,
    overwrite: bool = False, previous_stats: Stats | None = None, previous_pipeline: dict | None = None,
    executor: Executor | str | None = None, slice_info: dict | None = None,
) -> Stats:
    """Process every source as a shard (resumable), then the global steps, then write the dataset.

    ``executor``: ``"local"`` (default: ``workers`` processes), ``"ray"`` (a local Ray instance) or an
    executor object (:mod:`waon_hf.pipeline.executors`, e.g. ``RayExecutor("auto")``). ``slice_info``
    (``{"num_shards": N, "shard_index": I}``) is recorded in the manifest so that `waon merge` can
    put the shards of a Slurm array's slices back in input order.
    """
    executor = make_executor(executor, workers=workers)
    layout = ShardLayout(output_dir)
    if overwrite and layout.root.exists():
        layout.wipe()
    if not sources:
        raise ValueError("no input files")
    check_manifest(layout, sources, slice_info)
    stale = remove_stale_tmp_files(layout.shards)
    if stale:
        logger.info("removed %d temporary file(s) left by an interrupted run", stale)

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

    shutil.rmtree(layout.data, ignore_errors=True)
    layout.data.mkdir(parents=True)
    for j, path in enumerate(final):
        os.replace(path, layout.data / f"train-{j:05d}-of-{len(final):05d}.parquet")
    stats.save(layout.root / "stats.json")
    pipeline = {"name": job.dataset_name, "note": job.card_note,
                "crawls": sorted({s.crawl for s in sources if s.crawl}) or (previous_pipeline or {}).get("crawls", []),
                "stages": [*(previous_pipeline or {}).get("stages", []), job.describe()]}
    write_json_atomic(layout.root / "pipeline.json", pipeline)
    write_dataset_card(layout.root, stats, pipeline=pipeline, num_sources=len(sources))
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in layout.data.glob("train-*.parquet"))
    write_json_atomic(layout.final_marker, {"files": len(final), "rows": rows})
    for leftover in [staging, *layout.work.glob("global-*")]:
        shutil.rmtree(leftover, ignore_errors=True)
    return stats


def check_settings(output: str | os.PathLike, settings: dict, overwrite: bool) -> None:
    """Refuse to resume a run made with other settings (another limit, model or prompt would mix rows).

    ``settings`` is recorded in ``.waon/settings.json`` by the first run; ``overwrite`` forgets the
    previous run first.
    """
    layout = ShardLayout(output)
    if overwrite and layout.root.exists():
        layout.wipe()
    path = layout.work / "settings.json"
    if path.exists():
        previous = json.loads(path.read_text(encoding="utf-8"))
        if previous != settings:
            changed = sorted(k for k in {*previous, *settings} if previous.get(k) != settings.get(k))
            raise ValueError(f"{layout.root} holds a run with other settings ({', '.join(changed)}); "
                             "use another output folder or --overwrite")
        return
    layout.work.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, settings)
