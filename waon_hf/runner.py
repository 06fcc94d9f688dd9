"""Shards, resume and finalize for every stage (`waon extract`, `waon download`, ...).

One input file is one shard (a WARC file for extraction, a parquet file of the previous stage's
output for the later stages). A shard's rows go to ``<out>/.waon/shards/NNNNN.parquet`` under a
temporary name that is renamed when the file is complete, and then its stats JSON is written the
same way; the stats file is the completion marker. A re-run skips every shard that has one, so a
run killed at any moment and started again ends with exactly the rows of an uninterrupted run.

When every shard is done, the global steps (exact dedup, perceptual dedup, decontamination) run
in order over all of them and the final dataset
(``data/train-NNNNN-of-MMMMM.parquet``, ``README.md`` card, ``stats.json``) is written: files go to
a temporary folder first and are moved in only when all of them exist; ``.waon/final.json``
marks that stage done.

Where the shards run is the executor's business (:mod:`waon_hf.executors`: a process pool here,
or Ray tasks); whichever runs them, a shard is done when its stats file exists.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from collections import Counter
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from waon_hf.executors import LocalExecutor, RayExecutor, make_executor
from waon_hf.schema import PAIR_COLUMNS, empty_pairs
from waon_hf.sources.commoncrawl import SourceFile
from waon_hf.sources.warc import DEFAULT_MAX_PAYLOAD_BYTES, iter_html_responses
from waon_hf.stats import Stats, write_json_atomic
from waon_hf.steps.base import Step, apply_steps
from waon_hf.steps.dedup import ExactDedup, write_kept
from waon_hf.steps.extract import ExtractConfig, PageExtractor
from waon_hf.steps.text_filters import default_caption_steps

logger = logging.getLogger(__name__)

WORK_DIR = ".waon"


@dataclasses.dataclass
class ExtractJob:
    """Everything an extraction shard worker needs; picklable (steps hold config only)."""

    extract: ExtractConfig = dataclasses.field(default_factory=ExtractConfig)
    steps: list[Step] = dataclasses.field(default_factory=default_caption_steps)
    dedup: ExactDedup = dataclasses.field(default_factory=ExactDedup)
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    dataset_name: str = "waon-extract"
    card_note: str = ""  # shown at the top of the dataset card (e.g. "built from the synthetic sample")

    stage = "extract"

    @property
    def global_steps(self) -> list:
        return [self.dedup]

    def describe(self) -> dict:
        """This stage's entry in ``pipeline.json`` (rendered into the card)."""
        return {"stage": self.stage, "langid": self.extract.langid, "extract": dataclasses.asdict(self.extract),
                "max_payload_bytes": self.max_payload_bytes, "steps": [step_summary(s) for s in self.steps],
                "global_steps": [step_summary(g) for g in self.global_steps]}

    def run_shard(self, index: int, source: SourceFile, layout: ShardLayout, show_progress: bool = False) -> Stats:
        return extract_shard(index, source, self, layout, show_progress)


@dataclasses.dataclass
class StageJob:
    """A stage over the parquet shards of a previous stage's output (download, image filters, ...)."""

    steps: list[Step] = dataclasses.field(default_factory=list)
    global_steps: list = dataclasses.field(default_factory=list)
    stage: str = "stage"
    dataset_name: str = "waon"
    card_note: str = ""
    batch_size: int = 1_000

    def describe(self) -> dict:
        return {"stage": self.stage, "steps": [step_summary(s) for s in self.steps],
                "global_steps": [step_summary(g) for g in self.global_steps]}

    def run_shard(self, index: int, source: SourceFile, layout: ShardLayout, show_progress: bool = False) -> Stats:
        started = time.monotonic()
        ds = datasets.Dataset(pq.read_table(source.location))
        stats = Stats()
        for step in self.steps:
            ds = step.apply(ds, stats, batch_size=self.batch_size)
        _write_shard(ds, index, source, layout, stats, started)
        return stats


def step_summary(step) -> dict:
    config = {f.name: getattr(step, f.name) for f in dataclasses.fields(step)}
    def plain(v):
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        return v if isinstance(v, (int, float, str, bool, type(None))) else repr(v)
    return {"name": step.name, "config": {k: plain(v) for k, v in config.items()}}


class ShardLayout:
    """Where a run keeps its files."""

    def __init__(self, output_dir: str | os.PathLike):
        self.root = Path(output_dir)
        self.work = self.root / WORK_DIR
        self.shards = self.work / "shards"
        self.data = self.root / "data"

    def shard_data(self, index: int) -> Path:
        return self.shards / f"{index:05d}.parquet"

    def shard_stats(self, index: int) -> Path:
        return self.shards / f"{index:05d}.stats.json"

    def is_done(self, index: int) -> bool:
        return self.shard_stats(index).exists() and self.shard_data(index).exists()

    @property
    def final_marker(self) -> Path:
        return self.work / "final.json"


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def extract_shard(
    index: int, source: SourceFile, job: ExtractJob, layout: ShardLayout, show_progress: bool = False,
) -> Stats:
    """Process one input file into its shard parquet + stats; the unit of work and of recovery."""
    started = time.monotonic()
    warc_counts: Counter = Counter()
    page_counts: Counter = Counter()
    extractor = PageExtractor(job.extract)
    pairs = empty_pairs()
    batches: list[pa.RecordBatch] = []
    pages = iter_html_responses(source.location, warc_counts, job.max_payload_bytes)
    if show_progress:  # one process: a per-page bar inside the shard bar
        pages = tqdm(pages, desc=f"shard {index}", unit="page", leave=False, mininterval=1.0)
    for page in pages:
        result = extractor.extract(page.body, page.url, page.content_type)
        page_counts.update(result.counts)
        for url, caption, caption_source in result.pairs:
            pairs["url"].append(url)
            pairs["caption"].append(caption)
            pairs["caption_source"].append(caption_source)
            pairs["page_url"].append(page.url)
            pairs["page_title"].append(result.title)
            pairs["crawl"].append(source.crawl)
            pairs["warc_file"].append(source.location)
            pairs["warc_record_id"].append(page.record_id)
        if len(pairs["url"]) >= _BATCH_ROWS:  # Arrow holds strings far more compactly than lists
            batches.append(_to_batch(pairs))
            pairs = empty_pairs()
    batches.append(_to_batch(pairs))

    stats = Stats()
    stats.add_stage("warc", warc_counts)
    stats.add_stage("extract", page_counts)
    ds = datasets.Dataset(pa.Table.from_batches(batches))
    ds = apply_steps(job.steps, ds, stats)
    _write_shard(ds, index, source, layout, stats, started)
    return stats


def _write_shard(ds: datasets.Dataset, index: int, source: SourceFile, layout: ShardLayout, stats: Stats,
                 started: float) -> None:
    """Parquet under a temporary name, renamed when complete; then the stats file that marks it done."""
    out = layout.shard_data(index)
    tmp = _tmp_name(out)
    ds.to_parquet(str(tmp))
    os.replace(tmp, out)
    stats.add("shard.milliseconds", int((time.monotonic() - started) * 1000))
    stats.add("shard.files", 1)
    write_json_atomic(layout.shard_stats(index), {"source": dataclasses.asdict(source), "stats": stats})


_BATCH_ROWS = 20_000


def _to_batch(pairs: dict[str, list]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array(pairs[name], pa.string()) for name in PAIR_COLUMNS],
                                      names=list(PAIR_COLUMNS))


def _check_manifest(layout: ShardLayout, sources: list[SourceFile], slice_info: dict | None = None) -> None:
    manifest = layout.work / "manifest.json"
    wanted = [dataclasses.asdict(s) for s in sources]
    if manifest.exists():
        with open(manifest, encoding="utf-8") as f:
            previous = json.load(f)["sources"]
        if previous != wanted:
            raise ValueError(
                f"{layout.root} holds a run over other inputs ({len(previous)} files, now {len(wanted)}); "
                "use another output folder or --overwrite"
            )
        return
    layout.shards.mkdir(parents=True, exist_ok=True)
    write_json_atomic(manifest, {"sources": wanted, **({"slice": slice_info} if slice_info else {})})


Executor = LocalExecutor | RayExecutor


class ShardsFailedError(RuntimeError):
    """Some shards failed; the others are done and a re-run retries only the failed ones."""


def run_extract(
    sources: list[SourceFile], output_dir: str | os.PathLike, job: ExtractJob | None = None, *,
    workers: int = 1, overwrite: bool = False, executor: Executor | str | None = None,
    slice_info: dict | None = None,
) -> Stats:
    """Extract, filter and deduplicate pairs from WARC files into a Hub-ready dataset folder."""
    return run_sharded(sources, output_dir, job or ExtractJob(), workers=workers, overwrite=overwrite,
                       executor=executor, slice_info=slice_info)


def run_stage(
    input_dir: str | os.PathLike, output_dir: str | os.PathLike, job: StageJob, *,
    workers: int = 1, overwrite: bool = False, executor: Executor | str | None = None,
) -> Stats:
    """Run a stage over a previous stage's output folder; the funnel and pipeline carry on from it."""
    input_dir = Path(input_dir)
    files = sorted((input_dir / "data").glob("train-*.parquet"))
    if not files:
        raise FileNotFoundError(f"{input_dir} has no data/train-*.parquet (is it the output of a waon stage?)")
    if Path(output_dir).resolve() == input_dir.resolve():
        raise ValueError("write a stage to a new folder (-o), not over its input")
    previous_stats = Stats.load(input_dir / "stats.json") if (input_dir / "stats.json").exists() else Stats()
    previous = _read_pipeline(input_dir)
    sources = [SourceFile(str(p), "") for p in files]
    return run_sharded(sources, output_dir, job, workers=workers, overwrite=overwrite, executor=executor,
                       previous_stats=previous_stats, previous_pipeline=previous)


def run_sharded(
    sources: list[SourceFile], output_dir: str | os.PathLike, job, *, workers: int = 1, overwrite: bool = False,
    previous_stats: Stats | None = None, previous_pipeline: dict | None = None,
    executor: Executor | str | None = None, slice_info: dict | None = None,
) -> Stats:
    """Process every source as a shard (resumable), then the global steps, then write the dataset.

    ``executor``: ``"local"`` (default: ``workers`` processes), ``"ray"`` (a local Ray instance) or an
    executor object (:mod:`waon_hf.executors`, e.g. ``RayExecutor("auto")``). ``slice_info``
    (``{"num_shards": N, "shard_index": I}``) is recorded in the manifest so that `waon merge` can
    put the shards of a Slurm array's slices back in input order.
    """
    executor = make_executor(executor, workers=workers)
    layout = ShardLayout(output_dir)
    if overwrite and layout.root.exists():
        shutil.rmtree(layout.work, ignore_errors=True)
        shutil.rmtree(layout.data, ignore_errors=True)
    if not sources:
        raise ValueError("no input files")
    _check_manifest(layout, sources, slice_info)

    pending = [(i, s) for i, s in enumerate(sources) if not layout.is_done(i)]
    if len(pending) < len(sources):
        logger.info("resuming: %d of %d shards already done", len(sources) - len(pending), len(sources))
    if pending:
        layout.final_marker.unlink(missing_ok=True)
    with tqdm(total=len(sources), initial=len(sources) - len(pending), desc="shards", unit="file") as progress:
        failures = executor.run(pending, job, layout, progress)
    if failures:
        write_json_atomic(layout.work / "failed.json", {str(i): e for i, e in sorted(failures.items())})
        raise ShardsFailedError(
            f"{len(failures)} of {len(sources)} shard(s) failed (first: {next(iter(failures.values()))}); "
            f"the other shards are saved. Run the same command again to retry the failed ones "
            f"(details in {layout.work / 'failed.json'})."
        )
    (layout.work / "failed.json").unlink(missing_ok=True)

    if layout.final_marker.exists():
        logger.info("final dataset already written")
        return Stats.load(layout.root / "stats.json")
    return finalize(layout, sources, job, previous_stats or Stats(), previous_pipeline)


def _shard_stats(layout: ShardLayout, n: int) -> Stats:
    parts = []
    for i in range(n):
        with open(layout.shard_stats(i), encoding="utf-8") as f:
            parts.append(json.load(f)["stats"])
    return Stats.merged(parts)


def _read_pipeline(root: Path) -> dict | None:
    path = root / "pipeline.json"
    if not path.exists():
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _qualified(current: Stats, previous: Stats, stage: str) -> Stats:
    """Rename this stage's counters whose step name an earlier stage already used (``name@stage``)."""
    taken = set(previous.stages())
    out = Stats()
    for key, n in current.items():
        step, _, counter = key.partition(".")
        out[f"{step}@{stage}.{counter}" if step in taken else key] = n
    return out


def apply_global_steps(shard_paths: list[Path], global_steps: list, work: Path, stats: Stats) -> list[Path]:
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


def finalize(layout: ShardLayout, sources: list[SourceFile], job, previous_stats: Stats | None = None,
             previous_pipeline: dict | None = None) -> Stats:
    """Global steps over all shards, then write ``data/``, ``stats.json``, ``pipeline.json``, the card."""
    from waon_hf.hub import write_dataset_card

    current = _shard_stats(layout, len(sources))
    shard_paths = [layout.shard_data(i) for i in range(len(sources))]
    schema = pq.read_schema(shard_paths[0])
    final = apply_global_steps(shard_paths, job.global_steps, layout.work, current)
    stats = Stats(previous_stats or {}).merge(_qualified(current, previous_stats or Stats(), job.stage))
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
                _link_or_copy(path, staging / path.name)
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


__all__ = ["ExtractJob", "StageJob", "ShardLayout", "ShardsFailedError", "extract_shard", "finalize", "run_extract",
           "run_stage", "run_sharded", "PAIR_COLUMNS"]
