"""`waon translate`'s job: English captions translated into Japanese, shard by shard, resumable mid-shard.

A shard is translated in chunks (``chunk_rows``); each finished chunk (captions + final/first drop
reason + retry/clean flags) is written to ``.waon/shards/NNNNN.translate/chunk-KKKKK.parquet``. A
re-run skips finished chunks; the shard's counters are computed from the chunk files at the end,
so they are exact after any number of resumes. The chunk folder is removed once the shard is
written.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections import Counter
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from waon_hf.io import write_atomically
from waon_hf.jobs.relaion import RelaionReadJob
from waon_hf.pipeline.contract import ShardContext, ShardJob, step_summary
from waon_hf.stats import Stats
from waon_hf.steps.dedup import ExactDedup
from waon_hf.steps.translation_filters import TranslationQuality
from waon_hf.translate import Backend, TranslationConfig, generation_settings, make_backend, translate_captions

logger = logging.getLogger(__name__)

CHUNK_COLUMNS = {"caption": pa.string(), "__reason": pa.string(), "__first_reason": pa.string(),
                  "__retried": pa.bool_(), "__cleaned": pa.bool_(), "__reused": pa.bool_(),
                  "__reasoning": pa.string()}
CHUNK_SCHEMA = pa.schema(list(CHUNK_COLUMNS.items()))


@dataclasses.dataclass
class TranslateJob(ShardJob):
    """Translate ``caption_en`` into ``caption`` shard by shard.

    With ``reader`` each shard is a raw ReLAION file read by :class:`RelaionReadJob` (its counters join
    the funnel); without it, a parquet file that already has ``caption_en``. Output: the input columns
    with ``caption`` (placed after ``url``) and ``translation_model``; rows whose translation stays bad
    after the retry are dropped, counted as ``translation_quality.dropped_<reason>``.
    """

    stage = "translate"

    translation: TranslationConfig | None = None
    reader: RelaionReadJob | None = None
    quality: TranslationQuality = dataclasses.field(default_factory=TranslationQuality)
    chunk_rows: int = 1024  # rows per persisted chunk: the unit of mid-shard resume
    dataset_name: str = "relaion-en-ja"

    def __post_init__(self) -> None:
        if self.translation is None:
            raise ValueError("TranslateJob needs a translation config")
        if self.chunk_rows < 1:
            raise ValueError("chunk_rows must be >= 1")
        # Exact URL then (Japanese) caption dedup over every shard, as for Common Crawl pairs.
        self.global_steps = [ExactDedup()]
        super().__post_init__()

    def describe(self) -> dict:
        t = self.translation
        config = {"model": t.model, "backend": t.backend, "max_new_tokens": t.max_new_tokens,
                  "temperature": t.temperature, "custom_prompt": t.instruction is not None,
                  "generation": generation_settings(t), "generate_kwargs": dict(t.generate_kwargs),
                  "chat_template_kwargs": {"given": dict(t.chat_template_kwargs),
                                           "default": "enable_thinking=False where the template reads it"}}
        steps = [{"name": "translate", "config": config}, {"name": "clean_translation", "config": {}},
                 {"name": "translation_quality", "config": {f.name: getattr(self.quality, f.name)
                                                            for f in dataclasses.fields(self.quality)}}]
        if self.reader is not None:
            steps = [*self.reader.describe()["steps"], *steps]
        return {"stage": self.stage, "steps": steps, "global_steps": [step_summary(g) for g in self.global_steps]}

    def backend(self) -> Backend:
        backend = self.__dict__.get("_cache_backend")
        if backend is None:
            backend = self.__dict__["_cache_backend"] = make_backend(self.translation)
        return backend

    def chunk_dir(self, layout, index: int) -> Path:
        return layout.shards / f"{index:05d}.translate"

    def read(self, ctx: ShardContext, stats: Stats) -> pa.Table:
        if self.reader is not None:
            table, counts = self.reader.read_file(ctx.index, ctx.source.location)
            stats.add_stage(self.reader.stage, counts)
        else:
            table = pq.read_table(ctx.source.location)
        if "caption_en" not in table.column_names:
            raise ValueError(f"{ctx.source.location} has no caption_en column (expected ReLAION-en rows)")
        return table

    def transform(self, rows: datasets.Dataset, ctx: ShardContext, stats: Stats) -> datasets.Dataset:
        table = rows.data.table
        chunks = self._translate_chunks(ctx.index, table, ctx.layout, ctx.show_progress)
        result = pa.concat_tables([pq.read_table(p, schema=CHUNK_SCHEMA) for p in chunks]) if chunks \
            else CHUNK_SCHEMA.empty_table()
        self._count(result, stats)
        return datasets.Dataset(self._output(table, result))

    def cleanup(self, ctx: ShardContext) -> None:
        shutil.rmtree(self.chunk_dir(ctx.layout, ctx.index), ignore_errors=True)  # the shard file now holds them

    def _translate_chunks(self, index: int, table: pa.Table, layout, show_progress: bool) -> list[Path]:
        folder = self.chunk_dir(layout, index)
        folder.mkdir(parents=True, exist_ok=True)
        starts = range(0, table.num_rows, self.chunk_rows)
        paths = [folder / f"chunk-{k:05d}.parquet" for k in range(len(starts))]
        todo = [(k, start) for k, start in enumerate(starts) if not chunk_ok(paths[k], table.num_rows, start,
                                                                                self.chunk_rows)]
        if len(todo) < len(paths):
            logger.info("shard %d: resuming, %d of %d chunks already translated", index, len(paths) - len(todo),
                        len(paths))
        if show_progress:
            todo = tqdm(todo, desc=f"shard {index} translate", unit="chunk", leave=False)
        for k, start in todo:
            sources = table.column("caption_en").slice(start, self.chunk_rows).to_pylist()
            done = translate_captions(sources, self.backend(), config=self.translation, quality=self.quality)
            part = pa.table({"caption": done.captions, "__reason": done.reasons, "__first_reason": done.first_reasons,
                             "__retried": done.retried, "__cleaned": done.cleaned, "__reused": done.reused,
                             "__reasoning": done.reasoning},
                            schema=CHUNK_SCHEMA)
            write_atomically(paths[k], lambda tmp, part=part: pq.write_table(part, tmp))
        return paths

    def _count(self, result: pa.Table, stats: Stats) -> None:
        n = result.num_rows
        reasons = result.column("__reason").to_pylist()
        first = result.column("__first_reason").to_pylist()
        retried = result.column("__retried").to_pylist()
        stats.add_stage("translate", {
            "in": n, "kept": n,
            "retried": sum(retried),
            "retry_fixed": sum(1 for r, final in zip(retried, reasons, strict=True) if r and final is None),
            "chatter_removed": sum(result.column("__cleaned").to_pylist()),
            "reused_duplicate_source": sum(result.column("__reused").to_pylist()),
            **{f"reasoning_{kind}": c for kind, c in sorted(Counter(
                r for r in result.column("__reasoning").to_pylist() if r).items())},
            **{f"first_{reason}": c for reason, c in sorted(Counter(r for r in first if r).items())},
        })
        drops = Counter(r for r in reasons if r is not None)
        stats.add_stage("translation_quality", {"in": n, "kept": n - sum(drops.values()),
                                                **{f"dropped_{r}": c for r, c in sorted(drops.items())}})

    def _output(self, table: pa.Table, result: pa.Table) -> pa.Table:
        import pyarrow.compute as pc

        if "caption" in table.column_names:
            table = table.drop_columns(["caption"])
        names = table.column_names
        at = names.index("url") + 1 if "url" in names else 0
        table = table.add_column(at, "caption", result.column("caption"))
        table = table.append_column("translation_model",
                                    pa.array([self.translation.model] * table.num_rows, pa.string()))
        return table.filter(pc.is_null(result.column("__reason"))) if result.num_rows else table


def chunk_ok(path: Path, total: int, start: int, size: int) -> bool:
    """A finished chunk: present, with the rows it should hold (a changed input re-translates it) and
    every column this version writes (a chunk left by an older version is translated again)."""
    if not path.exists():
        return False
    try:
        chunk = pq.ParquetFile(path)
        return (chunk.metadata.num_rows == min(size, total - start)
                and set(CHUNK_SCHEMA.names) <= set(chunk.schema_arrow.names))
    except (OSError, pa.ArrowInvalid):
        return False


