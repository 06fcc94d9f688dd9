"""Image dedup for interleaved documents, on the image rows (one row per image of a document).

* Within a document (:class:`WithinDocumentDedup`, per shard: a document's images are all in its
  shard): images whose pHashes are within ``max_distance`` (Hamming, default 5) are one image,
  transitively; the copy with the most pixels (original size) is kept, the first on a tie.
* Across documents (:class:`FrequentImages`, a global step): an image whose pHash occurs in
  ``max_documents`` (default 10) or more distinct documents, over every shard, is dropped
  everywhere: icons, ads, placeholders. Exact: (pHash, document) pairs are counted with numpy
  (two uint64 per image: about 0.4 GB of peak memory for 10^7 images, see BENCHMARKS.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from waon_hf.steps.base import FilterStep, register
from waon_hf.steps.global_steps import GlobalStep, register_global


def phash_int(value: str | None) -> int | None:
    """A 16-hex-digit pHash as an int (None for a missing or malformed one)."""
    if not value:
        return None
    try:
        return int(value, 16)
    except ValueError:
        return None


def _find(parent: list[int], a: int) -> int:
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


def within_document_reasons(doc_ids: Sequence, hashes: Sequence[int | None], areas: Sequence[int | None],
                            max_distance: int = 5) -> list[str | None]:
    """Drop reason per image row: ``no_phash``, ``duplicate_in_document`` (a better copy is kept) or None."""
    reasons: list[str | None] = [None] * len(doc_ids)
    groups: dict = {}
    for i, (doc, h) in enumerate(zip(doc_ids, hashes, strict=True)):
        if h is None:
            reasons[i] = "no_phash"
        else:
            groups.setdefault(doc, []).append(i)
    for rows in groups.values():
        parent = list(range(len(rows)))
        for a in range(len(rows)):
            for b in range(a + 1, len(rows)):
                if (hashes[rows[a]] ^ hashes[rows[b]]).bit_count() <= max_distance:
                    parent[_find(parent, b)] = _find(parent, a)
        best: dict[int, int] = {}
        for k, row in enumerate(rows):
            root = _find(parent, k)
            keep = best.get(root)
            if keep is None or (areas[row] or 0) > (areas[keep] or 0):
                best[root] = row
        kept = set(best.values())
        for row in rows:
            if row not in kept:
                reasons[row] = "duplicate_in_document"
    return reasons


@register
@dataclasses.dataclass
class WithinDocumentDedup(FilterStep):
    """Near-duplicate images of one document are one image; the largest copy stays.

    Must see a document's image rows in one batch: the documents job runs it over the whole shard.
    """

    name = "within_document_dedup"
    document_column: str = "doc_id"
    column: str = "phash"
    max_distance: int = 5

    def input_columns(self) -> list[str]:
        return [self.document_column, self.column, "original_width", "original_height"]

    def drop_reasons(self, batch):
        hashes = [phash_int(h) for h in batch[self.column]]
        areas = [(w or 0) * (h or 0) for w, h in zip(batch["original_width"], batch["original_height"], strict=True)]
        return within_document_reasons(batch[self.document_column], hashes, areas, self.max_distance)


def hashes_as_uint64(values: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """``(uint64 hashes, valid mask)`` of a hex pHash column (nulls and malformed values invalid)."""
    out = np.zeros(len(values), dtype=np.uint64)
    valid = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values.to_pylist()):
        h = phash_int(v)
        if h is not None:
            out[i], valid[i] = h, True
    return out, valid


def frequent_hashes(hashes: np.ndarray, documents: np.ndarray, max_documents: int) -> np.ndarray:
    """The hashes (sorted uint64) that occur in ``max_documents`` or more distinct documents."""
    if len(hashes) == 0:
        return np.zeros(0, dtype=np.uint64)
    order = np.lexsort((documents, hashes))
    h, d = hashes[order], documents[order]
    first = np.ones(len(h), dtype=bool)
    first[1:] = (h[1:] != h[:-1]) | (d[1:] != d[:-1])  # one count per (hash, document)
    values, counts = np.unique(h[first], return_counts=True)
    return values[counts >= max_documents]


@register_global
@dataclasses.dataclass
class FrequentImages(GlobalStep):
    """Drop image rows whose pHash occurs in ``max_documents`` or more documents over all shards."""

    name = "cross_document_dedup"
    column: str = "phash"
    document_column: str = "doc_id"
    max_documents: int = 10

    def __post_init__(self):
        if self.max_documents < 2:
            raise ValueError("max_documents must be >= 2")

    def keep_rows(self, shard_paths: list[Path], tmp_dir: Path) -> tuple[Iterator[tuple[int, pa.Array]], dict]:
        all_hashes, all_docs, per_shard = [], [], []
        for shard, path in enumerate(shard_paths):
            table = pq.read_table(path, columns=[self.column, self.document_column])
            hashes, valid = hashes_as_uint64(table[self.column])
            docs = pc.dictionary_encode(table[self.document_column]).combine_chunks().indices
            doc_keys = (np.uint64(shard) << np.uint64(32)) | np.asarray(docs, dtype=np.uint64)
            all_hashes.append(hashes[valid])
            all_docs.append(doc_keys[valid])
            per_shard.append((hashes, valid))
        hashes = np.concatenate(all_hashes) if all_hashes else np.zeros(0, np.uint64)
        docs = np.concatenate(all_docs) if all_docs else np.zeros(0, np.uint64)
        frequent = frequent_hashes(hashes, docs, self.max_documents)
        del hashes, docs, all_hashes, all_docs
        kept_lists = []
        n_in = dropped = 0
        for shard, (h, valid) in enumerate(per_shard):
            drop = valid & np.isin(h, frequent)
            n_in += len(h)
            dropped += int(drop.sum())
            rows = np.flatnonzero(~drop)
            if len(rows):  # like the other global steps: an emptied shard is not written
                kept_lists.append((shard, pa.array(rows, pa.int64())))
        counts = {"in": n_in, "kept": n_in - dropped, "dropped_frequent_image": dropped,
                  "frequent_hashes": int(len(frequent))}
        return iter(kept_lists), counts
