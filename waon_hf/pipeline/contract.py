"""The shard-job contract: what every stage's job is, and the one way a shard is processed.

A job is a picklable description of a stage (config only; models load lazily in the worker). The
runner hands it one shard at a time, wherever the executor runs it; :meth:`ShardJob.run_shard` is
the template every job shares::

    rows = job.read(ctx, stats)          # one source (a WARC file, a parquet file) -> a table
    rows = job.transform(rows, ctx, stats)   # the per-shard steps, in order
    layout.write_shard(...)              # parquet, then the stats file that marks the shard done
    job.cleanup(ctx)                     # e.g. drop a resumable job's partial results

After every shard is done, the runner runs :attr:`ShardJob.global_steps` over all of them
(:class:`~waon_hf.steps.global_steps.GlobalStep`) and writes the dataset. A job never writes
markers or the dataset itself, so resume and failure handling are the runner's alone.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, ClassVar

import datasets
import pyarrow as pa

from waon_hf.pipeline.layout import FinishedShard, ShardLayout
from waon_hf.sources.commoncrawl import SourceFile
from waon_hf.stats import Stats
from waon_hf.steps.base import Step, apply_steps
from waon_hf.steps.global_steps import GlobalStep


@dataclasses.dataclass(frozen=True)
class ShardContext:
    """What a job knows about the shard it is processing."""

    index: int
    source: SourceFile
    layout: ShardLayout
    show_progress: bool = False


def step_summary(step: Step | GlobalStep) -> dict:
    """A step's entry in ``pipeline.json``: its name and config (plain JSON values); a step that is not a
    dataclass of its config (a wrapper) describes itself with a ``summary()`` method."""
    if not dataclasses.is_dataclass(step):
        return step.summary()
    config = {f.name: getattr(step, f.name) for f in dataclasses.fields(step)}

    def plain(v):
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        return v if isinstance(v, (int, float, str, bool, type(None))) else repr(v)
    return {"name": step.name, "config": {k: plain(v) for k, v in config.items()}}


@dataclasses.dataclass
class ShardJob:
    """Base of every stage's job. Subclasses are dataclasses holding config and implement :meth:`read`.

    ``steps`` run inside each shard (through ``datasets.map``), ``global_steps`` over all shards at
    the end. ``dataset_name`` and ``card_note`` go to ``pipeline.json`` and the dataset card.
    """

    stage: ClassVar[str] = "stage"

    steps: list[Step] = dataclasses.field(default_factory=list)
    global_steps: list[GlobalStep] = dataclasses.field(default_factory=list)
    dataset_name: str = "waon"
    card_note: str = ""  # shown at the top of the dataset card (e.g. "built from the synthetic sample")
    batch_size: int = 10_000  # rows per datasets.map batch for the steps

    def __post_init__(self) -> None:
        for step in self.steps:
            if not isinstance(step, Step):
                raise TypeError(f"{self.stage}: {step!r} is not a per-shard step")
        for step in self.global_steps:
            if not isinstance(step, GlobalStep):
                raise TypeError(f"{self.stage}: {step!r} is not a global step")

    # -- what a subclass provides ------------------------------------------------------------------
    def read(self, ctx: ShardContext, stats: Stats) -> datasets.Dataset | pa.Table | FinishedShard:
        """The shard's rows from its source (counting what is skipped into ``stats``)."""
        raise NotImplementedError

    def transform(self, rows: datasets.Dataset, ctx: ShardContext, stats: Stats) -> datasets.Dataset:
        """The per-shard steps, in order (override to add work around them); each step's wall time is
        counted as ``<step>.milliseconds`` (the funnel shows each step's share of the shards' time)."""
        for step in self.steps:
            started = time.perf_counter()
            rows = apply_steps([step], rows, stats, batch_size=self.batch_size)
            stats.add(f"{step.name}.milliseconds", int((time.perf_counter() - started) * 1000))
        return rows

    def cleanup(self, ctx: ShardContext) -> None:
        """Called once the shard is written (nothing by default)."""

    def describe(self) -> dict:
        """This stage's entry in ``pipeline.json`` (rendered into the card)."""
        return {"stage": self.stage, "steps": [step_summary(s) for s in self.steps],
                "global_steps": [step_summary(g) for g in self.global_steps]}

    # -- the template ------------------------------------------------------------------------------
    def run_shard(self, index: int, source: SourceFile, layout: ShardLayout, show_progress: bool = False) -> Stats:
        """Process one source into its shard parquet + stats: the unit of work and of recovery."""
        ctx = ShardContext(index, source, layout, show_progress)
        started = time.monotonic()
        stats = Stats()
        rows = self.read(ctx, stats)
        if isinstance(rows, FinishedShard):
            return layout.adopt_shard(index, rows)
        if isinstance(rows, pa.Table):
            rows = datasets.Dataset(rows)
        rows = self.transform(rows, ctx, stats)
        layout.write_shard(index, source, rows, stats, started)
        self.cleanup(ctx)
        return stats

    # Lazily loaded resources live in attributes starting with "_cache"; they never travel in pickles.
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_cache")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
