"""Exact, global deduplication over every shard, in an embedded engine that spills to disk.

WAON deduplicated URLs and captions with Bloom filters (about 1% of unique rows dropped by false
positives). Here the keys themselves are compared, so nothing unique is ever dropped, and the
first occurrence in input order (shard index, then row index) is the one kept, whatever the
number of workers or the order shards finished in.

The columns are deduplicated one after the other (URL first, then caption among the URL
survivors), each with its own drop counter. DuckDB runs the ``GROUP BY ... min(key)`` with a memory
limit and a temporary directory, so inputs larger than memory spill instead of failing.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from waon_hf.steps.global_steps import GlobalStep, register_global

logger = logging.getLogger(__name__)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@register_global
@dataclasses.dataclass
class ExactDedup(GlobalStep):
    """Keep the first row (input order) for each distinct value of each column, in sequence."""

    name = "exact_dedup"
    columns: tuple[str, ...] = ("url", "caption")
    memory_limit: str = "2GB"
    threads: int = 2

    def keep_rows(self, shard_paths: list[Path], tmp_dir: Path) -> tuple[Iterator[tuple[int, pa.Array]], dict]:
        """Compute which rows survive; returns ``(iterator of (shard index, kept row numbers), counts)``.

        Row numbers are sorted ascending within each shard; shards with no survivors are skipped.
        """
        tmp_dir.mkdir(parents=True, exist_ok=True)
        db_path = tmp_dir / "dedup.duckdb"
        db_path.unlink(missing_ok=True)
        con = duckdb.connect(str(db_path))
        con.execute(f"SET memory_limit='{self.memory_limit}'")
        con.execute(f"SET temp_directory='{tmp_dir / 'spill'}'")
        con.execute(f"SET threads={int(self.threads)}")
        con.execute("SET preserve_insertion_order=false")
        con.execute("CREATE TABLE files(path VARCHAR, shard BIGINT)")
        con.executemany("INSERT INTO files VALUES (?, ?)", [(str(p), i) for i, p in enumerate(shard_paths)])
        cols = ", ".join(f"p.{_ident(c)}" for c in self.columns)
        con.execute(
            f"CREATE TABLE rows_0 AS SELECT (f.shard << 32) | p.file_row_number AS k, {cols} "
            "FROM read_parquet($paths, filename=true, file_row_number=true) p JOIN files f ON p.filename = f.path",
            {"paths": [str(p) for p in shard_paths]},
        )
        n_in = con.execute("SELECT count(*) FROM rows_0").fetchone()[0]
        counts = {"in": n_in}
        previous, n_prev = "rows_0", n_in
        for i, column in enumerate(self.columns, start=1):
            con.execute(
                f"CREATE TABLE rows_{i} AS SELECT * FROM {previous} WHERE k IN "
                f"(SELECT min(k) FROM {previous} GROUP BY {_ident(column)})"
            )
            con.execute(f"DROP TABLE {previous}")
            previous = f"rows_{i}"
            n_now = con.execute(f"SELECT count(*) FROM {previous}").fetchone()[0]
            counts[f"dropped_duplicate_{column}"] = n_prev - n_now
            n_prev = n_now
        counts["kept"] = n_prev
        con.execute(
            f"CREATE TABLE kept AS SELECT k >> 32 AS shard, k & 4294967295 AS row FROM {previous} ORDER BY k"
        )
        con.execute(f"DROP TABLE {previous}")
        return self._iter_kept(con, db_path), counts

    @staticmethod
    def _iter_kept(con, db_path: Path) -> Iterator[tuple[int, pa.Array]]:
        try:
            shards = [r[0] for r in con.execute("SELECT DISTINCT shard FROM kept ORDER BY shard").fetchall()]
            for shard in shards:
                query = con.sql("SELECT row FROM kept WHERE shard = $s ORDER BY row", params={"s": shard})
                rows = query.to_arrow_table()
                yield int(shard), rows.column(0).combine_chunks()
        finally:
            con.close()
            db_path.unlink(missing_ok=True)


def write_kept(shard_path: Path, rows: pa.Array, out_path: Path) -> int:
    """Write the kept rows of one shard (in their original order) to ``out_path``."""
    table = pq.read_table(shard_path)
    kept = table.take(rows)
    pq.write_table(kept, out_path)
    return kept.num_rows
