"""Semantic redundancy removal (DanQing's "visual diversification"), over every shard of a stage.

Images whose embeddings are closer than ``max_distance`` in cosine distance (``1 - cos``) are linked;
the links are closed transitively (union-find: connected components) and one image is kept per
component, the first in input order. The search is faiss's range search on inner products of
L2-normalised vectors (``cos > 1 - max_distance``):

* ``index: flat`` is exact (every pair compared, BLAS): the result equals a brute-force reference.
* ``index: ivf`` (inverted lists, ``nlist`` k-means cells trained on the first ``train_size`` rows,
  ``nprobe`` cells searched per query) compares a query only with the vectors of its nearest cells;
  a near copy (cosine > 0.9) almost always shares a cell with its original, so recall stays near 1
  at a fraction of the cost (BENCHMARKS.md: time and recall against ``flat``).
* ``index: auto`` (default) is ``flat`` up to ``flat_max_rows`` embeddings, ``ivf`` above.

Memory: the index holds the vectors (``rows x dim x 4`` bytes: 3 GB for 10^6 x 768); the shards are
read one at a time, to add and then to query, so nothing else grows with the dataset except the
pairs found. ``parts > 1`` splits the database into that many indexes searched one after the other:
the unit of the distributed route (one part per Ray worker, each query batch sent to every part,
pairs unioned), simulated in one process; its result equals ``parts: 1``.

Rows without an embedding (null, or a different length) are kept and counted (``no_embedding``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from waon_hf.neardup import connected_components
from waon_hf.steps.global_steps import GlobalStep, register_global

logger = logging.getLogger(__name__)

INDEX_KINDS = ("auto", "flat", "ivf")


def read_embeddings(path: str | Path, column: str = "embedding", dim: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``(vectors float32 (valid rows x dim), row numbers of those rows)`` of one parquet file."""
    col = pq.read_table(path, columns=[column]).column(0).combine_chunks()
    if len(col) == 0:
        return np.zeros((0, dim or 0), dtype=np.float32), np.zeros(0, dtype=np.int64)
    lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
    lengths = np.where(pc.is_null(col).to_numpy(zero_copy_only=False), -1, lengths)
    if dim is None:
        present = lengths[lengths > 0]
        dim = int(present[0]) if len(present) else 0
    rows = np.flatnonzero(lengths == dim) if dim else np.zeros(0, dtype=np.int64)
    if not len(rows):
        return np.zeros((0, dim), dtype=np.float32), rows.astype(np.int64)
    picked = col.take(pa.array(rows))
    values = pc.list_flatten(picked).to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return values.reshape(len(rows), dim), rows.astype(np.int64)


def normalized(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero: they match nothing)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.where(norms > 0, norms, 1), dtype=np.float32)


def range_pairs(index, queries: np.ndarray, query_ids: np.ndarray, db_ids: np.ndarray, min_cos: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(a, b)``, ``a < b`` global ids, with inner product > ``min_cos`` (faiss range search)."""
    lims, _, labels = index.range_search(queries, float(min_cos))
    counts = np.diff(lims).astype(np.int64)
    q = np.repeat(query_ids, counts)
    t = db_ids[labels]
    keep = q != t  # both directions kept (an approximate index need not be symmetric), as (low, high)
    return np.minimum(q[keep], t[keep]), np.maximum(q[keep], t[keep])


@register_global
@dataclasses.dataclass
class SemanticDedup(GlobalStep):
    """Keep one image per cluster of embeddings within ``max_distance`` (cosine), the first in input order."""

    name = "semantic_dedup"
    max_distance: float = 0.1
    column: str = "embedding"
    index: str = "auto"
    flat_max_rows: int = 50_000  # exact up to here (50k^2 x 768 multiply-adds: about a minute on 2 cores)
    nlist: int | None = None  # IVF cells; None: about 4 * sqrt(rows)
    nprobe: int = 8
    train_size: int | None = None  # None: 16 rows per cell (coarse cells are enough to find near copies)
    train_iterations: int = 5
    parts: int = 1
    query_batch: int = 16_384
    threads: int = 2

    def __post_init__(self):
        if not 0 < self.max_distance < 1:
            raise ValueError(f"max_distance must be in (0, 1) (cosine distance), got {self.max_distance!r}")
        if self.index not in INDEX_KINDS:
            raise ValueError(f"index must be one of {INDEX_KINDS}, got {self.index!r}")
        for name in ("nprobe", "train_iterations", "parts", "query_batch", "threads", "flat_max_rows"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("nlist", "train_size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer or null, got {value!r}")

    # -- the search ---------------------------------------------------------------------------------
    def _dim(self, shard_paths: list[Path]) -> int:
        for path in shard_paths:
            vectors, rows = read_embeddings(path, self.column)
            if len(rows):
                return int(vectors.shape[1])
        return 0

    def _iter_valid(self, shard_paths: list[Path], offsets: np.ndarray, dim: int):
        """``(normalised vectors, global row ids)`` shard by shard, in input order."""
        for s, path in enumerate(shard_paths):
            vectors, rows = read_embeddings(path, self.column, dim)
            if len(rows):
                yield normalized(vectors), rows + offsets[s]

    def _make_index(self, kind: str, dim: int, n_rows: int, shard_paths, offsets):
        import faiss

        if kind == "flat":
            return faiss.IndexFlatIP(dim)
        # 4 sqrt(n) cells balances the two costs of a query at nprobe ~ 8-16: nlist centroid
        # comparisons and nprobe * n / nlist list entries.
        nlist = self.nlist or max(1, min(int(4 * np.sqrt(n_rows)), n_rows // 16 or 1))
        train_size = self.train_size or 16 * nlist
        train, have = [], 0
        for vectors, _ in self._iter_valid(shard_paths, offsets, dim):  # the first rows, deterministic
            train.append(vectors[: train_size - have])
            have += len(train[-1])
            if have >= train_size:
                break
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = 1234
        index.cp.niter = self.train_iterations
        index.cp.min_points_per_centroid = 1  # 16 per cell on purpose (faiss warns below 39)
        index.train(np.concatenate(train))
        index.nprobe = min(self.nprobe, nlist)
        logger.info("semantic_dedup: IVF with %d cells (trained on %d rows), nprobe %d", nlist, have, index.nprobe)
        return index

    def pairs(self, shard_paths: list[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """``(a, b, offsets, info)``: linked global row ids and the shards' row offsets."""
        import faiss

        faiss.omp_set_num_threads(self.threads)
        sizes = [pq.ParquetFile(p).metadata.num_rows for p in shard_paths]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        dim = self._dim(shard_paths)
        empty = np.zeros(0, dtype=np.int64)
        if not dim:
            return empty, empty, offsets, {"no_embedding": int(offsets[-1]), "index": "none"}
        n = int(offsets[-1])  # rows, valid or not: sizes the index and the parts without a counting pass
        kind = self.index if self.index != "auto" else ("flat" if n <= self.flat_max_rows else "ivf")
        bounds = np.linspace(0, n, self.parts + 1).astype(np.int64)  # contiguous parts of the rows
        a_parts, b_parts, n_valid = [], [], 0
        template = self._make_index(kind, dim, n, shard_paths, offsets)  # trained once, shared by the parts
        for p in range(self.parts):
            index = faiss.clone_index(template)
            part_ids = []
            for vectors, ids in self._iter_valid(shard_paths, offsets, dim):
                inside = (ids >= bounds[p]) & (ids < bounds[p + 1])
                if inside.any():
                    index.add(vectors[inside])
                    part_ids.append(ids[inside])
            db_ids = np.concatenate(part_ids) if part_ids else empty
            for vectors, ids in self._iter_valid(shard_paths, offsets, dim):
                n_valid += len(ids) if p == 0 else 0
                for start in range(0, len(ids), self.query_batch):
                    a, b = range_pairs(index, vectors[start:start + self.query_batch],
                                       ids[start:start + self.query_batch], db_ids, 1.0 - self.max_distance)
                    a_parts.append(a)
                    b_parts.append(b)
            del index
        a = np.concatenate(a_parts) if a_parts else empty
        b = np.concatenate(b_parts) if b_parts else empty
        if len(a):  # each pair once
            packed = np.unique(a * np.int64(offsets[-1]) + b)
            a, b = packed // offsets[-1], packed % offsets[-1]
        return a, b, offsets, {"no_embedding": int(offsets[-1] - n_valid), "index": kind}

    def keep_rows(self, shard_paths: list[Path], tmp_dir: Path) -> tuple[Iterator[tuple[int, pa.Array]], dict]:
        a, b, offsets, info = self.pairs(shard_paths)
        n = int(offsets[-1])
        roots = connected_components(n, a, b)
        keep = roots == np.arange(n)
        n_kept = int(keep.sum())
        counts = {"in": n, "kept": n_kept, "dropped_semantic_duplicate": n - n_kept,
                  "no_embedding": info["no_embedding"], "linked_pairs": int(len(a))}
        if info["no_embedding"]:
            logger.warning("semantic_dedup: %d rows without a %d-value %s were kept", info["no_embedding"],
                           self._dim(shard_paths), self.column)
        logger.info("semantic_dedup: %s index, %d linked pairs, %d of %d rows kept", info["index"], len(a), n_kept, n)
        return _iter_kept(keep, offsets), counts


def _iter_kept(keep: np.ndarray, offsets: np.ndarray) -> Iterator[tuple[int, pa.Array]]:
    for shard in range(len(offsets) - 1):
        rows = np.flatnonzero(keep[offsets[shard]:offsets[shard + 1]])
        if len(rows):
            yield shard, pa.array(rows, type=pa.int64())
