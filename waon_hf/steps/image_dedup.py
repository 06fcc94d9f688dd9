"""Image hashes and image deduplication: per-row ``sha256`` / ``phash`` steps, and global steps over
all shards (exact SHA-256 dedup, pHash near-duplicate dedup, evaluation-set decontamination).

Per-row map steps (run inside a shard, like the filters):

* :class:`ImageSha256` (``sha256``): fills the ``sha256`` column (hex SHA-256 of the stored image
  bytes) where it is missing or null; values the downloader already wrote are kept.
* :class:`PHashStep` (``phash``): writes ``phash``, a 64-bit perceptual hash as 16 hex characters
  (``None`` for a null or undecodable image), by one of two algorithms (:data:`PHASH_ALGORITHMS`) that
  give different bits for the same image (typically 1-5 apart, up to ~56 on symmetric images):

  - ``algorithm="imagededup"`` (default): imagededup's PHash. ``backend="builtin"`` runs its exact
    recipe (RGB via RGBA, Lanczos 32x32, grey, 2-D DCT-II, top-left 8x8 >= median of the 63 AC terms)
    without importing imagededup, whose import pulls in torch (6-7 s and several hundred MB per worker
    process); the tests check the hex equals ``imagededup.methods.PHash`` on the same images.
    ``backend="imagededup"`` calls ``PHash().encode_image(image_array=...)`` itself.
  - ``algorithm="imagehash"``: ``str(imagehash.phash(img))`` (grey first, then Lanczos 32x32, 8x8 DCT
    corner > its median), the ``phash`` column of WAON's release.

  The algorithm is part of the step's config, so it is recorded in ``pipeline.json`` and the card;
  :func:`phash_algorithm_of` reads it back from a dataset folder, and the global steps below refuse to
  compare hashes of two algorithms (:func:`check_phash_algorithm`).

Global steps (``keep_rows(shard_paths, tmp_dir) -> (iterator of (shard index, kept rows), counts)``,
the shape of :class:`~waon_hf.steps.dedup.ExactDedup`; shards are read in order, so "first" means
first by shard index, then row):

* :class:`ExactImageDedup` (``sha256_dedup``): :class:`ExactDedup` on ``sha256``.
* :class:`NearDupImages` (``phash_dedup``): rows whose pHashes are joined by chains of pairs within
  ``max_distance`` form a group; the group's first row is kept (:mod:`waon_hf.neardup`).
* :class:`Decontaminate` (``decontaminate``): drops rows within ``max_distance`` of any image of the
  evaluation sets in ``against``, and writes a report of every drop.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import logging
import os
import re
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image

from waon_hf.images import DECODE_ERRORS, image_bytes, open_image, to_rgb
from waon_hf.io import atomic_write, write_json_atomic
from waon_hf.neardup import hex_to_uint64, near_duplicate_groups, nearest_targets, uint64_to_hex
from waon_hf.steps.base import Batch, MapStep, register
from waon_hf.steps.dedup import ExactDedup
from waon_hf.steps.global_steps import GlobalStep, register_global
from waon_hf.steps.image_filters import ImageColumnStep

logger = logging.getLogger(__name__)

_HEX16 = "^[0-9a-fA-F]{16}$"
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".jfif"})
HASH_LIST_EXTENSIONS = frozenset({".txt", ".tsv", ".csv", ".hashes"})


# ------------------------------------------------------------------------------------------ pHash
PHASH_ALGORITHMS = ("imagededup", "imagehash")
DEFAULT_PHASH_ALGORITHM = "imagededup"  # what every phash column was before the algorithm was recorded


class PHashAlgorithmMismatch(ValueError):
    """Hashes of two pHash algorithms were about to be compared (their distances mean nothing)."""


def check_phash_algorithm(expected: str, found: str | None, what: str) -> None:
    """Raise :class:`PHashAlgorithmMismatch` when ``found`` (the algorithm of ``what``'s hashes; ``None``:
    not recorded, nothing to check) is not ``expected``."""
    if found is not None and found != expected:
        raise PHashAlgorithmMismatch(
            f"{what} holds {found} pHashes, but these hashes are {expected}: Hamming distances between two "
            f"algorithms are meaningless. Hash both with one algorithm (PHashStep(algorithm=...), the "
            f"phash_algorithm option of the dedup steps)")


def _check_algorithm(algorithm: str) -> None:
    if algorithm not in PHASH_ALGORITHMS:
        raise ValueError(f"phash algorithm must be one of {PHASH_ALGORITHMS}, got {algorithm!r}")


def phash_algorithm_of(folder: str | os.PathLike) -> str | None:
    """The pHash algorithm recorded in a dataset folder's ``pipeline.json`` (the last stage with a
    ``phash`` step; a config without ``algorithm`` predates the option: imagededup). ``None`` when the
    folder has no ``pipeline.json`` or no ``phash`` step (e.g. a dataset made elsewhere)."""
    import json

    path = Path(folder) / "pipeline.json"
    if not path.is_file():
        return None
    found = None
    for stage in json.loads(path.read_text(encoding="utf-8")).get("stages", []):
        for step in stage.get("steps", []):
            if step.get("name") == "phash":
                found = (step.get("config") or {}).get("algorithm", DEFAULT_PHASH_ALGORITHM)
    return found


def imagehash_phash_hex(img) -> str:
    """``str(imagehash.phash(img))``: the pHash of WAON's ``phash`` column (imagehash 4.3.x)."""
    import imagehash

    return str(imagehash.phash(img))


def phash_hex(img) -> str:
    """imagededup's PHash of a PIL image, as its 16-hex-character string, without importing imagededup."""
    from scipy.fftpack import dct  # the DCT imagededup uses; scipy comes with imagededup

    small = to_rgb(img).resize((32, 32), Image.Resampling.LANCZOS).convert("L")
    pixels = np.array(small).astype("uint8")
    coef = dct(dct(pixels, axis=0), axis=1)[:8, :8]
    bits = coef >= np.median(coef.flatten()[1:])
    return np.packbits(bits).tobytes().hex()


@register
@dataclasses.dataclass
class PHashStep(ImageColumnStep, MapStep):
    """Add ``phash`` (16 hex chars, the ``algorithm``'s pHash) from the ``image`` column; null if none/unreadable."""

    name = "phash"
    column: str = "image"
    output_column: str = "phash"
    backend: str = "builtin"  # imagededup algorithm only: "builtin" (same bits, no torch import) or "imagededup"
    algorithm: str = DEFAULT_PHASH_ALGORITHM  # "imagededup" or "imagehash" (WAON's column)

    def __post_init__(self):
        if self.backend not in ("builtin", "imagededup"):
            raise ValueError(f"phash backend must be 'builtin' or 'imagededup', got {self.backend!r}")
        _check_algorithm(self.algorithm)

    def output_features(self) -> dict[str, Any]:
        return {self.output_column: datasets.Value("string")}

    def output_columns(self) -> list[str]:
        return [self.output_column]

    @cached_property
    def _cache_encoder(self):
        if self.algorithm == "imagehash":
            return imagehash_phash_hex
        if self.backend == "builtin":
            return phash_hex
        from imagededup.methods import PHash as ImagededupPHash

        encoder = ImagededupPHash(verbose=False)
        return lambda img: encoder.encode_image(image_array=np.asarray(to_rgb(img)))

    def hash_value(self, value: Any) -> str | None:
        try:
            img = open_image(value)
            return None if img is None else self._cache_encoder(img)
        except DECODE_ERRORS as e:
            logger.debug("phash: undecodable image: %s", e)
            return None

    def process_batch(self, batch: Batch) -> Batch:
        batch[self.output_column] = [self.hash_value(v) for v in batch[self.column]]
        return batch


@register
@dataclasses.dataclass
class ImageSha256(ImageColumnStep, MapStep):
    """Fill ``sha256`` (hex SHA-256 of the stored bytes) where it is missing; existing values are kept."""

    name = "sha256"
    column: str = "image"
    output_column: str = "sha256"

    def optional_columns(self) -> list[str]:
        return [self.output_column]

    def output_features(self) -> dict[str, Any]:
        return {self.output_column: datasets.Value("string")}

    def output_columns(self) -> list[str]:
        return [self.output_column]

    def process_batch(self, batch: Batch) -> Batch:
        existing = batch.get(self.output_column) or [None] * len(batch[self.column])
        out = []
        for value, known in zip(batch[self.column], existing, strict=True):
            if known:
                out.append(known)
                continue
            data = image_bytes(value)
            out.append(None if data is None else hashlib.sha256(data).hexdigest())
        batch[self.output_column] = out
        return batch


# ----------------------------------------------------------------------------------- shard reading
def read_hash_column(path: str | os.PathLike, column: str = "phash") -> tuple[np.ndarray, np.ndarray]:
    """``(hashes, valid)`` of a parquet file's hex hash column: ``valid`` is False for nulls and
    malformed values (their hash is 0)."""
    col = pq.read_table(path, columns=[column]).column(0)
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        col = col.cast(pa.string())
    valid = pc.fill_null(pc.match_substring_regex(col, _HEX16), False)
    hashes = np.zeros(len(col), dtype=np.uint64)
    valid_np = valid.to_numpy(zero_copy_only=False).astype(bool)
    if valid_np.any():
        hashes[valid_np] = hex_to_uint64(col.filter(valid))
    return hashes, valid_np


def _read_shards(shard_paths: Sequence[Path], column: str):
    """All shards' hashes concatenated in input order, with validity and per-shard row offsets."""
    parts, valid_parts, offsets = [], [], [0]
    for path in shard_paths:
        hashes, valid = read_hash_column(path, column)
        parts.append(hashes)
        valid_parts.append(valid)
        offsets.append(offsets[-1] + len(hashes))
    hashes = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)
    valid = np.concatenate(valid_parts) if valid_parts else np.zeros(0, dtype=bool)
    return hashes, valid, np.asarray(offsets, dtype=np.int64)


def _check_distance(max_distance: int) -> None:
    # Two unrelated 64-bit hashes differ in 32 bits on average: a bound of half the bits or more would
    # call most of a dataset one image.
    if isinstance(max_distance, bool) or not isinstance(max_distance, int) or not 0 <= max_distance < 32:
        raise ValueError(f"max_distance must be an integer from 0 to 31 (Hamming bits of a 64-bit pHash), "
                         f"got {max_distance!r}")


def _iter_kept(keep: np.ndarray, offsets: np.ndarray) -> Iterator[tuple[int, pa.Array]]:
    for shard in range(len(offsets) - 1):
        rows = np.flatnonzero(keep[offsets[shard]:offsets[shard + 1]])
        if len(rows):
            yield shard, pa.array(rows, type=pa.int64())


# ---------------------------------------------------------------------------------- global steps
@register_global
@dataclasses.dataclass
class ExactImageDedup(ExactDedup):
    """Exact dedup on ``sha256`` across all shards, first occurrence kept (counter ``dropped_duplicate_sha256``).

    Rows with a null ``sha256`` form one group in ``GROUP BY``, so all but one of them would be dropped:
    run it after the image filters (which drop ``no_image`` rows) and :class:`ImageSha256`.
    """

    name = "sha256_dedup"
    columns: tuple[str, ...] = ("sha256",)


@register_global
@dataclasses.dataclass
class NearDupImages(GlobalStep):
    """Keep one row per group of near-duplicate images (pHash Hamming distance <= ``max_distance``).

    Groups are connected components (a~b and b~c put a, b, c together even when a and c are further
    apart); the first row in input order (shard index, then row) represents the group. Rows with a
    null or malformed ``phash`` are kept and counted as ``no_phash``.
    """

    name = "phash_dedup"
    max_distance: int = 4
    column: str = "phash"
    algorithm: str = DEFAULT_PHASH_ALGORITHM  # that of the column's hashes (recorded; see check_phash_algorithm)

    def __post_init__(self):
        _check_distance(self.max_distance)
        _check_algorithm(self.algorithm)

    def keep_rows(self, shard_paths: list[Path], tmp_dir: Path) -> tuple[Iterator[tuple[int, pa.Array]], dict]:
        hashes, valid, offsets = _read_shards(shard_paths, self.column)
        keep = np.ones(len(hashes), dtype=bool)
        rows = np.flatnonzero(valid)
        reps = near_duplicate_groups(hashes[rows], self.max_distance)
        keep[rows] = reps == np.arange(len(rows))
        n_kept = int(keep.sum())
        counts = {"in": len(hashes), "kept": n_kept, "dropped_near_duplicate": len(hashes) - n_kept,
                  "no_phash": int(len(hashes) - len(rows))}
        if counts["no_phash"]:
            logger.warning("%s: %d rows without a valid %s were kept", self.name, counts["no_phash"], self.column)
        return _iter_kept(keep, offsets), counts


# ------------------------------------------------------------------------------- evaluation sets
@dataclasses.dataclass
class EvalSet:
    """Hashes of evaluation images with where each came from (``source`` file, ``item`` within it)."""

    hashes: np.ndarray
    sources: list[str]
    items: list[str]

    def __len__(self) -> int:
        return len(self.hashes)


_ITEM_COLUMNS = ("key", "id", "url", "file_name", "filename", "path")


def _parquet_eval(path: Path, phash: PHashStep, check_stored) -> tuple[list[str], list[str]]:
    names = pq.read_schema(path).names
    item_col = next((c for c in _ITEM_COLUMNS if c in names), None)
    if "phash" in names:
        check_stored(path)
        columns, hash_col = ["phash"], "phash"
    elif "image" in names:
        columns, hash_col = ["image"], "image"
    else:
        raise ValueError(f"{path}: an evaluation parquet needs a 'phash' or an 'image' column (has {names})")
    table = pq.read_table(path, columns=columns + ([item_col] if item_col else []))
    items = table.column(item_col).to_pylist() if item_col else [f"row {i}" for i in range(table.num_rows)]
    values = table.column(hash_col).to_pylist()
    hashes = [v if hash_col == "phash" else phash.hash_value(v) for v in values]
    return hashes, [str(i) for i in items]


_ALGORITHM_LINE = re.compile(r"^#\s*phash[_ ]algorithm\s*[:=]\s*(\S+)", re.IGNORECASE)


def _hash_list_eval(path: Path, algorithm: str) -> tuple[list[str], list[str]]:
    hashes, items = [], []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            line = line.strip()
            declared = _ALGORITHM_LINE.match(line)
            if declared:
                check_phash_algorithm(algorithm, declared.group(1).lower(), f"hash list {path}")
            if not line or line.startswith("#"):
                continue
            fields = line.replace(",", " ").replace("\t", " ").split(None, 1)
            if fields[0].lower() == "phash":  # a CSV header
                continue
            hashes.append(fields[0])
            items.append(fields[1].strip() if len(fields) > 1 else f"line {number}")
    return hashes, items


def load_eval_hashes(paths: Sequence[str | os.PathLike], phash: PHashStep | None = None) -> EvalSet:
    """pHashes of evaluation sets: image folders (searched recursively; parquet files in them are
    read too), parquet files with a ``phash`` or ``image`` column, or hash lists (``.txt``/``.csv``:
    one 16-hex hash per line, optionally followed by an item name, and optionally a
    ``# phash_algorithm: imagehash`` line). Images are hashed with ``phash`` (default: imagededup);
    stored hashes whose recorded algorithm differs raise :class:`PHashAlgorithmMismatch`. Unreadable
    images are skipped with a warning."""
    phash = phash or PHashStep()

    def check_stored(parquet: Path, root: Path | None = None) -> None:
        """A parquet's stored hashes: their algorithm is that of the dataset folder holding it (the
        nearest ``pipeline.json`` up to ``root``, the folder given; a lone file: its folder, or the
        one above ``data/``)."""
        folders = [parquet.parent] + ([parquet.parent.parent] if parquet.parent.name == "data" else [])
        if root is not None:
            folders = [f for f in parquet.parents if f == root or root in f.parents]
        for folder in folders:
            recorded = phash_algorithm_of(folder)
            if recorded is not None:
                check_phash_algorithm(phash.algorithm, recorded, f"evaluation set {folder}")
                return
        logger.warning("evaluation set %s: no pipeline.json records its pHash algorithm; assuming %s",
                       parquet, phash.algorithm)
    all_hashes: list[str | None] = []
    sources: list[str] = []
    items: list[str] = []

    def add(source: Path, hashes: list[str | None], names: list[str]) -> None:
        all_hashes.extend(hashes)
        sources.extend([str(source)] * len(hashes))
        items.extend(names)

    for given in paths:
        path = Path(given)
        if path.is_dir():
            # hidden folders hold a run's work files (.waon/shards: the same rows again), not the set
            files = sorted(p for p in path.rglob("*") if p.is_file()
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            images = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
            if images:
                add(path, [phash.hash_value({"bytes": None, "path": str(p)}) for p in images],
                    [str(p.relative_to(path)) for p in images])
            for p in files:
                if p.suffix.lower() == ".parquet":
                    add(p, *_parquet_eval(p, phash, lambda f, root=path: check_stored(f, root)))
        elif path.suffix.lower() == ".parquet":
            add(path, *_parquet_eval(path, phash, check_stored))
        elif path.suffix.lower() in HASH_LIST_EXTENSIONS:
            add(path, *_hash_list_eval(path, phash.algorithm))
        elif path.suffix.lower() in IMAGE_EXTENSIONS:
            add(path.parent, [phash.hash_value({"bytes": None, "path": str(path)})], [path.name])
        else:
            raise ValueError(f"evaluation set {given!r}: not a folder, .parquet, hash list or image file")
    ok = [isinstance(h, str) and re.fullmatch(_HEX16, h) is not None for h in all_hashes]
    if not all(ok):
        logger.warning("%d evaluation items have no valid pHash (unreadable image or malformed hash) and are ignored",
                       ok.count(False))
    keep = [i for i, good in enumerate(ok) if good]
    return EvalSet(hex_to_uint64([all_hashes[i] for i in keep]), [sources[i] for i in keep], [items[i] for i in keep])


@register_global
@dataclasses.dataclass
class Decontaminate(GlobalStep):
    """Drop training rows whose pHash is within ``max_distance`` of an evaluation image.

    ``against`` lists evaluation sets (see :func:`load_eval_hashes`). Each shard is checked on its
    own against a block index of the evaluation hashes (cross search: only pairs of one training and
    one evaluation hash are ever formed), so memory does not grow with the dataset. ``report``
    (``.csv``, else JSON) lists every dropped row: shard index and file, row number, the
    ``key_columns`` present (default ``url``), its pHash, the closest evaluation item and the
    distance. Rows without a valid ``phash`` are kept.

    ``algorithm`` is that of the training rows' ``phash``: evaluation images are hashed with it, and
    evaluation hashes recorded with another algorithm (``pipeline.json`` of a dataset folder, a
    ``# phash_algorithm: NAME`` line of a hash list) are refused (:class:`PHashAlgorithmMismatch`).
    """

    name = "decontaminate"
    against: tuple[str, ...] = ()
    max_distance: int = 4
    report: str | None = None
    column: str = "phash"
    key_columns: tuple[str, ...] = ("url",)
    algorithm: str = DEFAULT_PHASH_ALGORITHM

    def __post_init__(self):
        _check_distance(self.max_distance)
        _check_algorithm(self.algorithm)
        self.against = (self.against,) if isinstance(self.against, (str, os.PathLike)) else tuple(self.against)
        self.key_columns = tuple(self.key_columns)

    def keep_rows(self, shard_paths: list[Path], tmp_dir: Path) -> tuple[Iterator[tuple[int, pa.Array]], dict]:
        if not self.against:
            raise ValueError("decontaminate: give at least one evaluation set in 'against'")
        evals = load_eval_hashes(self.against, PHashStep(algorithm=self.algorithm))
        logger.info("decontaminate: %d evaluation hashes from %d source(s)", len(evals), len(self.against))
        keep_parts, matches, n_in = [], [], 0
        offsets = [0]
        for shard, path in enumerate(shard_paths):
            hashes, valid = read_hash_column(path, self.column)
            rows = np.flatnonzero(valid)
            target, dist = nearest_targets(hashes[rows], evals.hashes, self.max_distance)
            hit = target >= 0
            keep = np.ones(len(hashes), dtype=bool)
            keep[rows[hit]] = False
            keep_parts.append(keep)
            offsets.append(offsets[-1] + len(hashes))
            n_in += len(hashes)
            if hit.any():
                matches.extend(self._report_rows(shard, Path(path), rows[hit], hashes[rows[hit]], target[hit],
                                                 dist[hit], evals))
        keep = np.concatenate(keep_parts) if keep_parts else np.zeros(0, dtype=bool)
        n_kept = int(keep.sum())
        counts = {"in": n_in, "kept": n_kept, "dropped_eval_match": n_in - n_kept}
        if self.report:
            self._write_report(matches, evals, n_in)
        return _iter_kept(keep, np.asarray(offsets, dtype=np.int64)), counts

    def _report_rows(self, shard, path, rows, hashes, targets, dists, evals: EvalSet) -> list[dict]:
        names = pq.read_schema(path).names
        keys = [c for c in self.key_columns if c in names]
        key_values = {}
        if keys:
            table = pq.read_table(path, columns=keys).take(pa.array(rows, type=pa.int64()))
            key_values = {c: table.column(c).to_pylist() for c in keys}
        out = []
        hex_rows, hex_eval = uint64_to_hex(hashes), uint64_to_hex(evals.hashes[targets])
        for i, (row, target, dist) in enumerate(zip(rows.tolist(), targets.tolist(), dists.tolist(), strict=True)):
            entry = {"shard": shard, "file": str(path), "row": row}
            entry.update({c: key_values[c][i] for c in keys})
            entry.update({"phash": hex_rows[i], "eval_source": evals.sources[target], "eval_item": evals.items[target],
                          "eval_phash": hex_eval[i], "distance": dist})
            out.append(entry)
        return out

    def _write_report(self, matches: list[dict], evals: EvalSet, n_in: int) -> None:
        path = Path(self.report)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".csv":
            fields = ["shard", "file", "row", *self.key_columns, "phash", "eval_source", "eval_item", "eval_phash",
                      "distance"]
            with atomic_write(path, "w", encoding="utf-8", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(matches)
        else:
            write_json_atomic(path, {"max_distance": self.max_distance, "against": list(self.against),
                                     "eval_hashes": len(evals), "rows_checked": n_in, "dropped": len(matches),
                                     "matches": matches})
        logger.info("decontaminate: %d rows dropped, report in %s", len(matches), path)


def default_image_dedup(max_distance: int = 4) -> list:
    """The global image steps in order: exact SHA-256 dedup, then pHash near-duplicate dedup."""
    return [ExactImageDedup(), NearDupImages(max_distance=max_distance)]
