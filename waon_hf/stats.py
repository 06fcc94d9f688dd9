"""Counters: the funnel of a run.

A :class:`Stats` is an ordered mapping ``"<stage>.<counter>" -> int``. Shards produce one each;
they are merged by addition (first-seen order is kept, so the funnel reads in pipeline order) and
saved as JSON next to the shard they describe.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping

from waon_hf.io import write_json_atomic


class Stats(dict):
    """Ordered ``name -> count`` mapping with addition-based merge."""

    def add(self, name: str, n: int = 1) -> None:
        self[name] = self.get(name, 0) + int(n)

    def add_stage(self, stage: str, counts: Mapping[str, int]) -> None:
        for key, n in counts.items():
            self.add(f"{stage}.{key}", n)

    def merge(self, other: Mapping[str, int]) -> Stats:
        for key, n in other.items():
            self.add(key, n)
        return self

    @classmethod
    def merged(cls, parts: Iterable[Mapping[str, int]]) -> Stats:
        total = cls()
        for part in parts:
            total.merge(part)
        return total

    def stage(self, stage: str) -> dict[str, int]:
        prefix = stage + "."
        return {k[len(prefix):]: v for k, v in self.items() if k.startswith(prefix)}

    def stages(self) -> list[str]:
        seen: dict[str, None] = {}
        for key in self:
            seen.setdefault(key.split(".", 1)[0], None)
        return list(seen)

    def save(self, path: str | os.PathLike) -> None:
        write_json_atomic(path, dict(self))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Stats:
        with open(path, encoding="utf-8") as f:
            return cls(json.load(f))

