"""Global steps: run once per stage over every shard's rows, after all shards are done.

A per-shard step (:class:`~waon_hf.steps.base.Step`) sees one shard at a time; a global step sees
all of them (exact dedup, near-duplicate dedup, decontamination), so it cannot run inside a shard
and lives in its own registry: a config cannot list one among the per-shard steps, nor the other
way round.

The shape: :meth:`GlobalStep.keep_rows` gets the shards' parquet paths in input order and returns
``(iterator of (shard index, kept row numbers ascending), counts)``; the runner writes the
survivors of each shard for the next global step. "First" always means first in input order
(shard index, then row), so the result does not depend on how many workers ran the shards.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

GLOBAL_STEP_REGISTRY: dict[str, type[GlobalStep]] = {}


class GlobalStep(abc.ABC):
    """Base of the steps that run over all shards of a stage (subclasses are dataclasses of config)."""

    name: ClassVar[str] = "global_step"

    @abc.abstractmethod
    def keep_rows(self, shard_paths: list[Path], tmp_dir: Path) -> tuple[Iterator[tuple[int, pa.Array]], dict]:
        """Which rows of each shard survive, and the step's counters (``in``, ``kept``, ``dropped_*``)."""


def register_global(cls: type[GlobalStep]) -> type[GlobalStep]:
    """Class decorator: make a global step constructible by name from a config file."""
    if not (isinstance(cls, type) and issubclass(cls, GlobalStep)):
        raise TypeError(f"{cls!r} is not a GlobalStep")
    GLOBAL_STEP_REGISTRY[cls.name] = cls
    return cls


def build_global_step(name: str, **config: Any) -> GlobalStep:
    """A registered global step from its name and options (a clear error for anything else)."""
    from waon_hf.steps.base import STEP_REGISTRY

    cls = GLOBAL_STEP_REGISTRY.get(name)
    if cls is None:
        if name in STEP_REGISTRY:
            raise ValueError(f"{name!r} is a per-shard step, not a global step; list it under steps:")
        raise ValueError(f"unknown global step {name!r}; known: {', '.join(sorted(GLOBAL_STEP_REGISTRY))}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(config) - names
    if unknown:
        raise ValueError(f"global step {name!r} has no option(s) {sorted(unknown)}; options: {sorted(names)}")
    return cls(**config)
