"""Step base classes: a step is its config plus one method.

* :class:`MapStep` implements ``process_batch(batch) -> batch`` (a dict of equal-length lists).
* :class:`FilterStep` implements ``drop_reasons(batch) -> list[str | None]``: ``None`` keeps the row,
  a string drops it and names why.

The base owns the loop, the counters (``in``, ``kept``, ``dropped_<reason>``) and the ``datasets``
plumbing. A step can run on a plain dict of lists (:meth:`Step.apply_batch`, used by tests and by
small in-memory jobs) or on a ``datasets.Dataset`` (:meth:`Step.apply`, ``map(batched=True)`` /
``filter``); both paths call the same method, so they agree by construction.

Counting in :meth:`Step.apply` reads the drop reasons back from the data rather than from state
mutated inside ``map``, so it stays right with ``num_proc > 1``.

Steps hold configuration only. Anything heavy (a model, a socket, a big word set) is loaded lazily
and dropped when pickled, so steps travel to worker processes cheaply.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections import Counter
from collections.abc import Mapping
from typing import Any, ClassVar

import datasets
import pyarrow.compute as pc

from waon_hf.stats import Stats

Batch = dict[str, list[Any]]

_DROP_COLUMN = "__waon_drop_reason"

STEP_REGISTRY: dict[str, type[Step]] = {}


def register(cls: type[Step]) -> type[Step]:
    """Class decorator: make a per-shard step constructible by name from a config file."""
    if not (isinstance(cls, type) and issubclass(cls, (MapStep, FilterStep))):
        raise TypeError(f"{cls!r} is not a MapStep or FilterStep (global steps use register_global)")
    STEP_REGISTRY[cls.name] = cls
    return cls


def build_step(name: str, **config: Any) -> Step:
    try:
        cls = STEP_REGISTRY[name]
    except KeyError:
        from waon_hf.steps.global_steps import GLOBAL_STEP_REGISTRY

        if name in GLOBAL_STEP_REGISTRY:
            raise ValueError(f"{name!r} is a global step (it runs over all shards at the end of a stage), not a "
                             "per-shard step; it cannot be listed under steps:") from None
        raise ValueError(f"unknown step {name!r}; known steps: {', '.join(sorted(STEP_REGISTRY))}") from None
    field_names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(config) - field_names
    if unknown:
        raise ValueError(f"step {name!r} has no option(s) {sorted(unknown)}; options: {sorted(field_names)}")
    return cls(**config)


def batch_len(batch: Batch) -> int:
    return len(next(iter(batch.values()))) if batch else 0


@dataclasses.dataclass
class Step:
    """Common interface; subclass :class:`MapStep` or :class:`FilterStep`.

    Hooks a subclass sets instead of re-implementing :meth:`apply` (the base reads them):

    * :meth:`input_columns` / :meth:`optional_columns`: what ``map`` hands the step (optional ones
      only where the dataset has them); the other columns stay in Arrow.
    * :meth:`image_columns`: ``datasets.Image`` columns read undecoded (``{"bytes", "path"}``), so a
      row is decoded at most once, by the step, and a bad image is a counted row, not an exception.
    * :meth:`output_columns` (map steps): the only columns handed back to ``map``, so a step that
      adds one column does not write the image bytes back.
    * ``spill_to_disk``: the output is written to an Arrow file as it is produced (memory-mapped
      after), for steps whose output is large (downloaded images).
    * ``needs_rank``: ``map(with_rank=True)``; :meth:`MapStep.process_batch_ranked` gets the rank.
    * :meth:`finish`: called once at the end of :meth:`apply` with the stage's counters, for what a
      step measured on the side (the downloader's per-host outcomes).
    """

    name: ClassVar[str] = "step"
    spill_to_disk: ClassVar[bool] = False
    needs_rank: ClassVar[bool] = False

    def input_columns(self) -> list[str]:
        """Columns the step reads; ``apply`` hands only these to the step (the rest stay in Arrow)."""
        column = getattr(self, "column", None)
        columns = getattr(self, "columns", None)
        return list(columns) if columns else [column] if column else []

    def optional_columns(self) -> list[str]:
        """Columns read when the dataset has them (e.g. sizes a filter can take instead of decoding)."""
        return []

    def image_columns(self) -> list[str]:
        """Image columns read as encoded bytes rather than decoded PIL images."""
        return []

    def output_features(self) -> dict[str, Any]:
        """Types of the columns a map step adds or rewrites (e.g. ``{"image": datasets.Image()}``);
        empty lets ``datasets`` infer them."""
        return {}

    def finish(self, stats: Stats | None) -> None:
        """Add what the step measured besides its rows to ``stats`` (nothing by default)."""

    def columns_for(self, column_names) -> list[str]:
        """The columns ``map`` passes to the step for a dataset with ``column_names``."""
        present = set(column_names)
        extra = [c for c in self.optional_columns() if c in present]
        return list(dict.fromkeys([*self.input_columns(), *extra]))

    def apply_batch(self, batch: Batch) -> tuple[Batch, dict[str, int]]:
        raise NotImplementedError

    def apply(
        self, ds: datasets.Dataset, stats: Stats | None = None, *, num_proc: int | None = None,
        batch_size: int = 10_000,
    ) -> datasets.Dataset:
        raise NotImplementedError

    def _undecoded(self, ds: datasets.Dataset) -> tuple[datasets.Dataset, dict[str, Any]]:
        """``ds`` with :meth:`image_columns` cast to ``Image(decode=False)``, and the features to restore."""
        restore = {}
        for column in self.image_columns():
            feature = ds.features.get(column)
            if isinstance(feature, datasets.Image) and feature.decode:
                restore[column] = feature
                ds = ds.cast_column(column, datasets.Image(decode=False))
        return ds, restore

    @staticmethod
    def _redecoded(ds: datasets.Dataset, restore: dict[str, Any]) -> datasets.Dataset:
        for column, feature in restore.items():
            if column in ds.column_names:
                ds = ds.cast_column(column, feature)
        return ds

    def _map(self, ds: datasets.Dataset, fn, names: list[str], features, *, num_proc, batch_size,
             with_rank: bool = False) -> datasets.Dataset:
        """``ds.map(fn)`` over ``names`` with this step's storage policy (in memory, or spilled to disk)."""
        storage: dict[str, Any] = {"keep_in_memory": True}
        if self.spill_to_disk:
            from datasets.fingerprint import get_temporary_cache_files_directory

            storage = {"cache_file_name": os.path.join(get_temporary_cache_files_directory(),
                                                       f"{self.name}-{uuid.uuid4().hex}.arrow"),
                       "writer_batch_size": batch_size}
        return ds.map(fn, batched=True, batch_size=batch_size, num_proc=num_proc, with_rank=with_rank,
                      input_columns=names or None, features=features, new_fingerprint=uuid.uuid4().hex,
                      desc=self.name, **storage)

    # Lazily loaded resources live in attributes starting with "_cache"; they never travel in pickles.
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_cache")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


@dataclasses.dataclass
class MapStep(Step):
    """A step that rewrites columns and keeps every row."""

    def process_batch(self, batch: Batch) -> Batch:
        raise NotImplementedError

    def process_batch_ranked(self, batch: Batch, rank: int | None) -> Batch:
        """:meth:`process_batch` for steps with ``needs_rank`` (``rank``: the ``map`` process, or None)."""
        return self.process_batch(batch)

    def output_columns(self) -> list[str] | None:
        """The columns the step adds or rewrites, when it is only those (``None``: the whole batch)."""
        return None

    def apply_batch(self, batch: Batch) -> tuple[Batch, dict[str, int]]:
        n = batch_len(batch)
        out = self.process_batch(dict(batch))
        return out, {"in": n, "kept": n}

    def apply(self, ds, stats=None, *, num_proc=None, batch_size=10_000):
        ds, restore = self._undecoded(ds)
        added = self.output_features()
        features = datasets.Features({**ds.features, **added}) if added else None
        if len(ds) == 0:  # map() adds no column to an empty dataset: keep every shard's schema the same
            out = datasets.Dataset.from_dict({name: [] for name in features}, features=features) if added else ds
        else:
            names = self.columns_for(ds.column_names)
            outputs = self.output_columns()

            def call(*values):
                *columns, rank = values if self.needs_rank else (*values, None)
                batch = dict(zip(names, columns, strict=True)) if names else dict(columns[0])
                out = self.process_batch_ranked(batch, rank)
                return out if outputs is None else {k: out[k] for k in outputs}
            out = self._map(ds, call, names, features, num_proc=num_proc, batch_size=batch_size,
                            with_rank=self.needs_rank)
        out = self._redecoded(out, restore)
        if stats is not None:
            stats.add_stage(self.name, {"in": len(ds), "kept": len(out)})
        self.finish(stats)
        return out


@dataclasses.dataclass
class FilterStep(Step):
    """A step that keeps or drops rows, giving a reason for every drop."""

    def drop_reasons(self, batch: Batch) -> list[str | None]:
        raise NotImplementedError

    def apply_batch(self, batch: Batch) -> tuple[Batch, dict[str, int]]:
        reasons = self.drop_reasons(batch)
        keep = [r is None for r in reasons]
        out = {k: [v for v, ok in zip(vals, keep, strict=True) if ok] for k, vals in batch.items()}
        return out, drop_counts(len(reasons), Counter(r for r in reasons if r is not None))

    def apply(self, ds, stats=None, *, num_proc=None, batch_size=10_000):
        if len(ds) == 0:  # map() adds no column to an empty dataset
            if stats is not None:
                stats.add_stage(self.name, drop_counts(0, Counter()))
            return ds
        original = ds
        ds, restore = self._undecoded(ds)
        names = self.columns_for(ds.column_names)

        def tag(*values):
            batch = dict(zip(names, values, strict=True)) if names else dict(values[0])
            return {_DROP_COLUMN: self.drop_reasons(batch)}
        features = datasets.Features({**ds.features, _DROP_COLUMN: datasets.Value("string")})
        tagged = self._map(ds, tag, names, features, num_proc=num_proc, batch_size=batch_size)
        table = tagged.with_format("arrow")[:]  # honours an indices mapping, if the input had one
        reasons_col = table.column(_DROP_COLUMN)
        drops = Counter()
        if reasons_col.null_count < len(reasons_col):
            for item in pc.value_counts(reasons_col.drop_null()).to_pylist():
                drops[item["values"]] = item["counts"]
        # Select the kept rows with one Arrow filter. ``Dataset.filter`` would leave a scattered
        # indices mapping, over which the next step's map gathers row by row: 50x slower, measured.
        kept = table.filter(pc.is_null(reasons_col)) if drops else table
        out = datasets.Dataset(kept.drop_columns([_DROP_COLUMN]), info=ds.info.copy())
        out = self._redecoded(out, restore) if restore else out
        if stats is not None:
            stats.add_stage(self.name, drop_counts(len(original), drops))
        self.finish(stats)
        return out


def drop_counts(n_in: int, drops: Mapping[str, int]) -> dict[str, int]:
    """The counters of a filter: ``in``, ``kept`` and ``dropped_<reason>`` (sorted by reason)."""
    counts = {"in": n_in, "kept": n_in - sum(drops.values())}
    for reason in sorted(drops):
        counts[f"dropped_{reason}"] = drops[reason]
    return counts


def apply_steps_to_batch(steps: list[Step], batch: Batch, stats: Stats | None = None) -> Batch:
    """Run steps in order on a dict of lists (no ``datasets`` involved)."""
    for step in steps:
        batch, counts = step.apply_batch(batch)
        if stats is not None:
            stats.add_stage(step.name, counts)
    return batch


def apply_steps(steps: list[Step], ds: datasets.Dataset, stats: Stats | None = None, **kwargs) -> datasets.Dataset:
    """Run steps in order on a ``datasets.Dataset`` through ``map``/``filter``."""
    for step in steps:
        ds = step.apply(ds, stats, **kwargs)
    return ds
