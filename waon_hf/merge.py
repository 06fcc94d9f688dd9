"""`waon merge`: one dataset from the slices of a Slurm array (``--num-shards N --shard-index I``).

Each slice is a complete dataset, deduplicated within itself only. Once every slice is finished
(each has ``.waon/final.json``; an unfinished one is refused), the merge runs the global steps
across all of them and writes one Hub-ready folder. It is resumable like any run.

Slices of `waon extract`: the merge reads each slice's per-shard results from before its dedup
(``<slice>/.waon/shards/``, so the slice folders must still hold ``.waon/``) in input order and
runs the exact URL/caption dedup over all of them, with the counters of every shard: rows and
funnel are exactly those of one run over all the inputs. Input order is rebuilt from the slice
recorded in each manifest (file ``j`` of slice ``I`` of ``N`` was file ``j*N + I``); slices
without that record keep the order they are given in (first occurrence in slice order wins).

Slices of later stages (`waon build` or an image stage): rows are taken from each slice's
``data/`` and deduplicated again across slices by whichever of these columns they have: exact URL
and caption (``url``, ``caption``), exact image (``sha256``), near-duplicate image (``phash``) and
semantic clusters of image embeddings (``embedding``, with the slices' ``semantic_dedup`` settings).
The funnel is the sum of the slices' funnels plus the merge's own rows (``exact_dedup@merge``...).
No two rows of the result share a URL, caption or sha256, but it is not guaranteed to be row for
row that of one big run: the slices already dropped their own duplicates, so which copy survives
can differ, and a row whose URL twin was dropped by caption dedup inside another slice survives
here. Each slice also downloaded its copy of an image that another slice found too.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

from waon_hf.jobs.stage import StageJob
from waon_hf.pipeline.contract import ShardContext, ShardJob
from waon_hf.pipeline.layout import FinishedShard, ShardLayout, read_pipeline
from waon_hf.pipeline.runner import run_sharded
from waon_hf.sources.commoncrawl import SourceFile
from waon_hf.stats import Stats
from waon_hf.steps.dedup import ExactDedup

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class ExtractSlicesJob(ShardJob):
    """Adopts the finished extraction shards of the slices (hard links, counters as they were); the
    extraction's global steps then run over all of them as in one run."""

    stage = "extract"

    shards: list[FinishedShard] = dataclasses.field(default_factory=list)
    stage_description: dict = dataclasses.field(default_factory=dict)
    dataset_name: str = "waon-extract"

    def describe(self) -> dict:
        return self.stage_description

    def read(self, ctx: ShardContext, stats: Stats) -> FinishedShard:
        return self.shards[ctx.index]


def _slice_state(folder: Path) -> tuple[dict, dict]:
    """``(pipeline, manifest)`` of a finished slice; a clear error for anything else."""
    if not (folder / ShardLayout(folder).work.name / "final.json").is_file():
        raise ValueError(f"{folder}: slice not finished (no .waon/final.json); run its job to completion, "
                         "then merge")
    pipeline = read_pipeline(folder)
    if not pipeline or not pipeline.get("stages"):
        raise ValueError(f"{folder}: no pipeline.json (not the output of a waon run)")
    manifest_path = ShardLayout(folder).work / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
    return pipeline, manifest


def _input_order(manifests: list[dict]) -> list[tuple[int, int]]:
    """``(slice, shard)`` pairs in the order of the original input list when the slices say which
    ``k % N`` slice they are (and are all the same N, each index once); else slice by slice."""
    infos = [m.get("slice") for m in manifests]
    pairs = [(s, j) for s, m in enumerate(manifests) for j in range(len(m.get("sources", [])))]
    if all(infos) and len({i["num_shards"] for i in infos}) == 1 and \
            len({i["shard_index"] for i in infos}) == len(infos):
        return sorted(pairs, key=lambda p: p[1] * infos[p[0]]["num_shards"] + infos[p[0]]["shard_index"])
    if any(infos):
        logger.warning("slices do not all record their --num-shards/--shard-index; merging in the order given")
    return pairs


def _merge_extract_slices(folders: list[Path], pipelines: list[dict], manifests: list[dict], output: Path,
                          *, overwrite: bool) -> Stats:
    shards, sources = [], []
    for s, j in _input_order(manifests):
        layout = ShardLayout(folders[s])
        data, stats = layout.shard_data(j), layout.shard_stats(j)
        if not (data.is_file() and stats.is_file()):
            raise FileNotFoundError(f"{folders[s]}: shard {j} results missing from .waon/shards/ (merging "
                                    "extraction slices needs each slice's .waon folder)")
        source = manifests[s]["sources"][j]
        shards.append(FinishedShard(str(data.resolve()), str(stats.resolve())))
        sources.append(SourceFile(source["location"], source.get("crawl", "")))
    stage = pipelines[0]["stages"][-1]
    dedup_config = next((g["config"] for g in stage.get("global_steps", []) if g["name"] == ExactDedup.name), {})
    known = {f.name for f in dataclasses.fields(ExactDedup)}
    dedup = ExactDedup(**{k: tuple(v) if isinstance(v, list) else v for k, v in dedup_config.items() if k in known})
    job = ExtractSlicesJob(shards=shards, stage_description=stage, global_steps=[dedup],
                           dataset_name=pipelines[0].get("name") or "waon-extract",
                           card_note=pipelines[0].get("note", ""))
    # hard links are cheap and the copies are small: this runs in the driver whatever the executor
    return run_sharded(sources, output, job, overwrite=overwrite)


def _merge_later_stage_slices(folders: list[Path], pipelines: list[dict], output: Path, *, executor,
                              overwrite: bool, max_distance: int | None) -> Stats:
    import pyarrow.parquet as pq

    from waon_hf.steps.image_dedup import ExactImageDedup, NearDupImages

    files = [p for f in folders for p in sorted((f / "data").glob("train-*.parquet"))]
    columns = set(pq.read_schema(files[0]).names)
    global_steps: list = []
    text_columns = tuple(c for c in ("url", "caption") if c in columns)
    if text_columns:
        global_steps.append(ExactDedup(columns=text_columns))
    if "sha256" in columns:
        global_steps.append(ExactImageDedup())
    if "phash" in columns:
        global_steps.append(NearDupImages() if max_distance is None else NearDupImages(max_distance=max_distance))
    if "embedding" in columns:  # semantic clusters across slices (DanQing: after merging its batches)
        global_steps.append(_semantic_dedup(pipelines[0]))
    if not global_steps:
        raise ValueError(f"slices have none of the columns the merge deduplicates by (url, caption, sha256, phash): "
                         f"{sorted(columns)}")
    previous_stats = Stats.merged(Stats.load(f / "stats.json") for f in folders)
    previous = dict(pipelines[0])
    previous["crawls"] = sorted({c for p in pipelines for c in p.get("crawls", [])})
    job = StageJob(global_steps=global_steps, stage="merge", dataset_name=previous.get("name") or "waon",
                   card_note=previous.get("note", ""))
    return run_sharded([SourceFile(str(p), "") for p in files], output, job, executor=executor, overwrite=overwrite,
                       previous_stats=previous_stats, previous_pipeline=previous)


def _semantic_dedup(pipeline: dict):
    """The slices' own ``semantic_dedup`` settings (from pipeline.json), else its defaults."""
    from waon_hf.steps.semantic_dedup import SemanticDedup

    configs = [g.get("config", {}) for st in pipeline["stages"] for g in st.get("global_steps", [])
               if g.get("name") == SemanticDedup.name]
    known = {f.name for f in dataclasses.fields(SemanticDedup)}
    return SemanticDedup(**{k: v for k, v in (configs[-1] if configs else {}).items() if k in known})


def merge_slices(slices: list[str | os.PathLike], output: str | os.PathLike, *, executor=None, overwrite: bool = False,
                 max_distance: int | None = None) -> Stats:
    """Merge finished slices into one dataset folder (see the module docstring for what is merged)."""
    folders = [Path(s) for s in slices]
    if not folders:
        raise ValueError("no slice to merge")
    output = Path(output)
    for f in folders:
        if f.resolve() == output.resolve():
            raise ValueError(f"write the merge to a new folder (-o), not over the slice {f}")
    if len({f.resolve() for f in folders}) != len(folders):
        raise ValueError("a slice is given twice")
    states = [_slice_state(f) for f in folders]
    pipelines = [p for p, _ in states]
    stage_names = {tuple(st["stage"] for st in p["stages"]) for p in pipelines}
    if len(stage_names) != 1:
        raise ValueError(f"slices come from different pipelines: {sorted(stage_names)}")
    differing = [str(f) for f, p in zip(folders, pipelines, strict=True) if p["stages"] != pipelines[0]["stages"]]
    if differing:
        raise ValueError(f"slices were built with other settings than {folders[0]}: {', '.join(differing)} "
                         "(compare their pipeline.json)")
    if next(iter(stage_names)) == ("extract",):
        return _merge_extract_slices(folders, pipelines, [m for _, m in states], output, overwrite=overwrite)
    return _merge_later_stage_slices(folders, pipelines, output, executor=executor, overwrite=overwrite,
                                     max_distance=max_distance)
