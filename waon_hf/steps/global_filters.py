"""Global filters of the seeds' recipes: exact over every shard of a stage, in DuckDB (spills to disk).

* :class:`CaptionFrequency` (``caption_frequency``): every row whose caption occurs ``min_count`` or
  more times in the whole stage is removed (VILA-jp: alt-texts seen >= 10 times, boilerplate such
  as "画像" or "商品画像").
* :class:`PHashCaptionDedup` (``phash_caption_dedup``): one pair per ``(phash, caption)``, the first in
  input order (VILA-jp's COYO-style pairs). Rows with a null pHash or caption are never merged.
* :class:`ScoreQuantile` (``score_quantile``): each score column divided by its median over the
  whole stage, the normalised scores averaged, and the lowest ``drop_fraction`` of rows dropped
  (VILA-jp: two models, bottom 30%). Median and cut are exact (DuckDB ``median`` over all rows and a
  full ordering), not sketched: no error bound to state. Ties are broken by input order (of rows
  with equal scores the earlier is kept), so the result depends on the rows only.

Every row is keyed ``(shard << 32) | row`` as in :class:`~waon_hf.steps.dedup.ExactDedup`, so
"first" means first in input order whatever the number of workers.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa

from waon_hf.steps.global_steps import GlobalStep, register_global

logger = logging.getLogger(__name__)


def quote(name: str) -> str:
    """A DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def load_rows(shard_paths: list[Path], tmp_dir: Path, columns: tuple[str, ...], *, memory_limit: str,
              threads: int, db_name: str) -> tuple[duckdb.DuckDBPyConnection, Path]:
    """A DuckDB file database with table ``rows(k, <columns>)``, ``k = (shard << 32) | row``."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    db_path = tmp_dir / db_name
    db_path.unlink(missing_ok=True)
    con = duckdb.connect(str(db_path))
    con.execute(f"SET memory_limit='{memory_limit}'")
    con.execute(f"SET temp_directory='{tmp_dir / 'spill'}'")
    con.execute(f"SET threads={int(threads)}")
    con.execute("SET preserve_insertion_order=false")
    con.execute("CREATE TABLE files(path VARCHAR, shard BIGINT)")
    con.executemany("INSERT INTO files VALUES (?, ?)", [(str(p), i) for i, p in enumerate(shard_paths)])
    cols = ", ".join(f"p.{quote(c)}" for c in columns)
    con.execute(
        f"CREATE TABLE rows AS SELECT (f.shard << 32) | p.file_row_number AS k, {cols} "
        "FROM read_parquet($paths, filename=true, file_row_number=true) p JOIN files f ON p.filename = f.path",
        {"paths": [str(p) for p in shard_paths]},
    )
    return con, db_path


def iter_kept(con: duckdb.DuckDBPyConnection, db_path: Path, table: str) -> Iterator[tuple[int, pa.Array]]:
    """``(shard, kept rows ascending)`` from a table of kept keys ``k``; closes and removes the database."""
    try:
        con.execute(f"CREATE TABLE kept_rows AS SELECT k >> 32 AS shard, k & 4294967295 AS row FROM {table}")
        shards = [r[0] for r in con.execute("SELECT DISTINCT shard FROM kept_rows ORDER BY shard").fetchall()]
        for shard in shards:
            rows = con.sql("SELECT row FROM kept_rows WHERE shard = $s ORDER BY row", params={"s": shard})
            yield int(shard), rows.to_arrow_table().column(0).combine_chunks().cast(pa.int64())
    finally:
        con.close()
        db_path.unlink(missing_ok=True)


def _count(con, sql: str) -> int:
    return int(con.execute(sql).fetchone()[0])


@register_global
@dataclasses.dataclass
class CaptionFrequency(GlobalStep):
    """Remove every row whose caption occurs ``min_count`` or more times over all shards."""

    name = "caption_frequency"
    min_count: int = 10
    column: str = "caption"
    memory_limit: str = "2GB"
    threads: int = 2

    def __post_init__(self):
        if isinstance(self.min_count, bool) or not isinstance(self.min_count, int) or self.min_count < 2:
            raise ValueError(f"min_count must be an integer >= 2 (1 would remove every row), got {self.min_count!r}")

    def keep_rows(self, shard_paths: list[Path], tmp_dir: Path) -> tuple[Iterator[tuple[int, pa.Array]], dict]:
        con, db = load_rows(shard_paths, tmp_dir, (self.column,), memory_limit=self.memory_limit,
                            threads=self.threads, db_name="caption_frequency.duckdb")
        c = quote(self.column)
        con.execute(f"CREATE TABLE frequent AS SELECT {c} AS v FROM rows WHERE {c} IS NOT NULL "
                    f"GROUP BY {c} HAVING count(*) >= {int(self.min_count)}")
        con.execute(f"CREATE TABLE kept AS SELECT k FROM rows WHERE {c} IS NULL OR {c} NOT IN (SELECT v FROM frequent)")
        n_in, kept = _count(con, "SELECT count(*) FROM rows"), _count(con, "SELECT count(*) FROM kept")
        counts = {"in": n_in, "kept": kept, "dropped_frequent_caption": n_in - kept,
                  "frequent_captions": _count(con, "SELECT count(*) FROM frequent")}
        return iter_kept(con, db, "kept"), counts


@register_global
@dataclasses.dataclass
class PHashCaptionDedup(GlobalStep):
    """One row per ``(phash, caption)``, the first in input order; nulls are never merged."""

    name = "phash_caption_dedup"
    columns: tuple[str, ...] = ("phash", "caption")
    memory_limit: str = "2GB"
    threads: int = 2

    def __post_init__(self):
        self.columns = tuple(self.columns)
        if not self.columns:
            raise ValueError("columns: name at least one column")

    def keep_rows(self, shard_paths: list[Path], tmp_dir: Path) -> tuple[Iterator[tuple[int, pa.Array]], dict]:
        con, db = load_rows(shard_paths, tmp_dir, self.columns, memory_limit=self.memory_limit,
                            threads=self.threads, db_name="phash_caption_dedup.duckdb")
        cols = ", ".join(quote(c) for c in self.columns)
        any_null = " OR ".join(f"{quote(c)} IS NULL" for c in self.columns)
        con.execute(f"CREATE TABLE kept AS SELECT k FROM rows WHERE {any_null} "
                    f"UNION ALL SELECT min(k) FROM rows WHERE NOT ({any_null}) GROUP BY {cols}")
        n_in, kept = _count(con, "SELECT count(*) FROM rows"), _count(con, "SELECT count(*) FROM kept")
        return iter_kept(con, db, "kept"), {"in": n_in, "kept": kept, "dropped_duplicate_pair": n_in - kept}


@register_global
@dataclasses.dataclass
class ScoreQuantile(GlobalStep):
    """Drop the lowest ``drop_fraction`` of rows by the mean of median-normalised scores (exact).

    ``normalize``: ``median`` (each column divided by its median over all scored rows; the median
    must be positive, else dividing would invert the order) or ``none`` (raw mean). Rows with a null
    or NaN score are dropped as ``dropped_missing_score`` and do not enter the medians or the cut.
    """

    name = "score_quantile"
    columns: tuple[str, ...] = ("similarity",)
    drop_fraction: float = 0.3
    normalize: str = "median"
    memory_limit: str = "2GB"
    threads: int = 2

    def __post_init__(self):
        self.columns = tuple(self.columns)
        if not self.columns:
            raise ValueError("columns: name at least one score column")
        if not 0 <= self.drop_fraction < 1:
            raise ValueError(f"drop_fraction must be in [0, 1), got {self.drop_fraction!r}")
        if self.normalize not in ("median", "none"):
            raise ValueError(f"normalize must be 'median' or 'none', got {self.normalize!r}")

    def keep_rows(self, shard_paths: list[Path], tmp_dir: Path) -> tuple[Iterator[tuple[int, pa.Array]], dict]:
        con, db = load_rows(shard_paths, tmp_dir, self.columns, memory_limit=self.memory_limit,
                            threads=self.threads, db_name="score_quantile.duckdb")
        valid = " AND ".join(f"{quote(c)} IS NOT NULL AND NOT isnan({quote(c)})" for c in self.columns)
        con.execute(f"CREATE TABLE scored AS SELECT * FROM rows WHERE {valid}")
        n_in, n_scored = _count(con, "SELECT count(*) FROM rows"), _count(con, "SELECT count(*) FROM scored")
        counts: dict = {"in": n_in, "dropped_missing_score": n_in - n_scored}
        terms = []
        for c in self.columns:
            if self.normalize == "median" and n_scored:
                median = float(con.execute(f"SELECT median({quote(c)}) FROM scored").fetchone()[0])
                if not median > 0:
                    con.close()
                    db.unlink(missing_ok=True)
                    raise ValueError(f"score_quantile: the median of {c!r} is {median}; median normalisation needs "
                                     "a positive median (use normalize: none for signed scores)")
                counts[f"median_{c}_x1e6"] = round(median * 1e6)
                terms.append(f"{quote(c)} / {median!r}")
            else:
                terms.append(quote(c))
        n_drop = math.floor(self.drop_fraction * n_scored)
        score = "(" + " + ".join(terms) + f") / {len(terms)}"
        con.execute(f"CREATE TABLE kept AS SELECT k FROM (SELECT k, {score} AS s FROM scored) "
                    f"ORDER BY s, k DESC OFFSET {n_drop}")
        counts["dropped_low_score"] = n_drop
        counts["kept"] = n_scored - n_drop
        return iter_kept(con, db, "kept"), counts
