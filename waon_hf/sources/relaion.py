"""ReLAION(-2B) metadata as a source: its column names mapped to ours.

ReLAION (the re-released LAION-5B subsets: ``relaion2B-en-research-safe``, ``relaion2B-multi-...``)
ships parquet metadata with LAION's names, in upper or lower case depending on the release: ``URL``,
``TEXT`` (``caption`` in some re-exports), ``WIDTH``, ``HEIGHT``, ``similarity``, ``punsafe``,
``pwatermark``, ``LANGUAGE`` (multilingual set only) and ``hash``/``key``. :func:`map_relaion_batch`
renames them to this package's columns (matching names case-insensitively), fills the ones a file
lacks with ``None``, drops the rest and adds ``source = "relaion"``.

``similarity`` becomes ``clip_similarity``, not our ``similarity``: LAION's is the cosine of
OpenAI CLIP ViT-B/32 embeddings of the image and the *English or original* caption, computed when
LAION was built; our ``similarity`` is SigLIP2's score of the image and the *Japanese* caption,
computed by our scoring step. Different models, scales and captions: one column for both would make
thresholds meaningless and let a later scoring step silently overwrite the provenance value.
For the same reason LAION's ``punsafe``/``pwatermark`` become ``laion_punsafe``/``laion_pwatermark``:
our NSFW step writes its own ``punsafe``.

For the English set (``english=True``) the caption goes to ``caption_en``: ``caption`` is reserved
for the Japanese translation that a later step writes.

For the sharded runner: :func:`list_relaion_files` (local parquet, or a Hub repository's files as
``hf://`` paths) and :func:`plan_relaion_shards` (``--limit`` as per-file row counts, decided before
any shard runs); the shard job is :class:`waon_hf.jobs.relaion.RelaionReadJob`.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Sequence
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from waon_hf.sources.remote import check_resolves

logger = logging.getLogger(__name__)

SOURCE_NAME = "relaion"

# ReLAION name (lower-cased) -> ours. "caption" is renamed to "caption_en" for the English set.
# Where two ReLAION names map to one of ours, the first present (in this order) wins.
RELAION_COLUMNS: dict[str, str] = {
    "url": "url",
    "text": "caption",
    "caption": "caption",
    "width": "original_width",
    "height": "original_height",
    "similarity": "clip_similarity",
    "punsafe": "laion_punsafe",
    "pwatermark": "laion_pwatermark",
    "language": "language",
    "key": "source_id",
    "hash": "source_id",
    "sample_id": "source_id",
}

_TYPES: dict[str, str] = {
    "url": "string", "caption": "string", "caption_en": "string", "original_width": "int64",
    "original_height": "int64", "clip_similarity": "float64", "laion_punsafe": "float64", "laion_pwatermark": "float64",
    "language": "string", "source_id": "string", "source": "string",
}


def relaion_columns(english: bool) -> list[str]:
    """Our output columns, in order."""
    caption = "caption_en" if english else "caption"
    ours = dict.fromkeys(caption if v == "caption" else v for v in RELAION_COLUMNS.values())
    return [*ours, "source"]


def relaion_features(english: bool) -> datasets.Features:
    return datasets.Features({name: datasets.Value(_TYPES[name]) for name in relaion_columns(english)})


def _convert(name: str, values: list[Any]) -> list[Any]:
    kind = _TYPES[name]
    if kind == "string":
        return [None if v is None else str(v) for v in values]
    if kind == "int64":
        return [None if v is None else int(v) for v in values]
    return [None if v is None else float(v) for v in values]


def map_relaion_batch(batch: dict[str, list[Any]], english: bool) -> dict[str, list[Any]]:
    """A batch (dict of lists) with ReLAION's columns -> one with ours (see :func:`relaion_columns`).

    Names match case-insensitively; columns a batch lacks are ``None``-filled; unknown ones dropped.
    """
    n = len(next(iter(batch.values()))) if batch else 0
    by_lower: dict[str, str] = {}
    for name in batch:
        by_lower.setdefault(name.lower(), name)
    out: dict[str, list[Any]] = {}
    for theirs, ours in RELAION_COLUMNS.items():
        if ours == "caption" and english:
            ours = "caption_en"
        if ours in out or theirs not in by_lower:
            continue
        out[ours] = _convert(ours, list(batch[by_lower[theirs]]))
    result = {name: out.get(name, [None] * n) for name in relaion_columns(english)}
    result["source"] = [SOURCE_NAME] * n
    return result


def _data_files(path_or_id: str | os.PathLike | Sequence[str]) -> list[str] | None:
    """Local parquet files for a file, a directory, a glob or a list of those; None for a Hub id."""
    if isinstance(path_or_id, (list, tuple)):
        return [f for p in path_or_id for f in (_data_files(p) or [])]
    path = os.fspath(path_or_id)
    if path.startswith("hf://"):  # one file of a Hub dataset, read through HfFileSystem
        return [path]
    if os.path.isdir(path):
        return sorted(glob.glob(os.path.join(path, "**", "*.parquet"), recursive=True))
    if os.path.isfile(path):
        return [path]
    if glob.has_magic(path):
        return sorted(glob.glob(path, recursive=True))
    return None


def _no_rows():
    yield from ()


def iter_relaion(
    path_or_id: str | os.PathLike | Sequence[str], split: str = "train", streaming: bool = True,
    language: str | None = None, limit: int | None = None, english: bool | None = None,
) -> datasets.IterableDataset | datasets.Dataset:
    """ReLAION metadata in our columns, from a Hub dataset id or local parquet files.

    ``language`` keeps rows whose ``language`` equals it (case-insensitive; ``"ja"`` for the
    Japanese part of the multilingual set). ``english`` (caption -> ``caption_en``) defaults to True
    unless a language other than ``en`` is asked for. ``limit`` caps the rows returned. With
    ``streaming`` (the default) nothing is downloaded up front and an ``IterableDataset`` comes back.
    """
    if english is None:
        english = language is None or language.lower() == "en"
    files = _data_files(path_or_id)
    if files is not None:
        if not files:
            raise FileNotFoundError(f"no parquet files at {path_or_id!r}")
        # A file with no rows (a valid parquet, e.g. an empty part of an export) makes datasets' parquet
        # reader fail with ArrowInvalid "BatchSize must be greater than 0": it contributes nothing.
        files = [f for f in files if f.startswith("hf://") or pq.ParquetFile(f).metadata.num_rows > 0]
        if not files:
            if streaming:
                return datasets.IterableDataset.from_generator(_no_rows, features=relaion_features(english))
            return datasets.Dataset.from_dict({name: [] for name in relaion_features(english)},
                                              features=relaion_features(english))
        ds = datasets.load_dataset("parquet", data_files={split: files}, split=split, streaming=streaming)
    else:
        ds = datasets.load_dataset(os.fspath(path_or_id), split=split, streaming=streaming)
    features = relaion_features(english)
    kwargs = {} if streaming else {"keep_in_memory": True}
    if ds.column_names is not None:
        ds = ds.map(map_relaion_batch, batched=True, fn_kwargs={"english": english},
                    remove_columns=ds.column_names, features=features, **kwargs)
    else:  # a streamed Hub dataset whose columns are unknown until read
        ds = ds.map(map_relaion_batch, batched=True, fn_kwargs={"english": english})
        ds = ds.select_columns(list(features)).cast(features)
    if language is not None:
        wanted = language.lower()
        ds = ds.filter(lambda langs: [(lang or "").strip().lower() == wanted for lang in langs],
                       batched=True, input_columns="language", **kwargs)
    if limit is not None:
        ds = ds.take(limit) if streaming else ds.select(range(min(limit, len(ds))))
    return ds


# --- sharded, resumable reading: one source parquet file = one shard ------------------------------

def list_relaion_files(path_or_id: str | os.PathLike | Sequence[str]) -> list[str]:
    """The parquet files of a source, in order: local files (a file, a directory, a glob, a list), or
    every ``*.parquet`` of a Hub dataset repository as ``hf://datasets/<id>/<path>`` (listed with
    ``huggingface_hub``; needs the network)."""
    files = _data_files(path_or_id)
    if files is None:
        from huggingface_hub import HfApi, constants

        repo_id = os.fspath(path_or_id)
        if not constants.HF_HUB_OFFLINE:
            check_resolves(constants.ENDPOINT)  # no network: say so now, not after the Hub client's retries
        names = HfApi().list_repo_files(repo_id, repo_type="dataset")
        files = [f"hf://datasets/{repo_id}/{name}" for name in sorted(names) if name.endswith(".parquet")]
    if not files:
        raise FileNotFoundError(f"no parquet files at {path_or_id!r}")
    return files


def open_parquet(location: str) -> pq.ParquetFile:
    """A local path, or an ``hf://`` path read through ``HfFileSystem`` (footer and row groups on demand)."""
    if location.startswith("hf://"):
        from huggingface_hub import HfFileSystem

        return pq.ParquetFile(HfFileSystem().open(location, "rb"))
    return pq.ParquetFile(location)


def _language_column(schema: pa.Schema) -> str | None:
    return next((name for name in schema.names if name.lower() == "language"), None)


def matching_rows(location: str, language: str | None) -> int:
    """Rows of one file that pass the language filter: the footer's row count when there is no filter,
    else a count over the language column alone (the other columns are not read)."""
    pf = open_parquet(location)
    if language is None:
        return pf.metadata.num_rows
    column = _language_column(pf.schema_arrow)
    if column is None:
        raise ValueError(f"{location} has no language column; --language needs ReLAION's multilingual set")
    wanted = language.lower()
    values = pf.read(columns=[column]).column(column).to_pylist()
    return sum(1 for v in values if (v or "").strip().lower() == wanted)


def plan_relaion_shards(files: Sequence[str], limit: int | None, language: str | None) -> list[tuple[str, int | None]]:
    """``(file, rows to take)`` per shard, for ``limit`` = the first N rows, in file order, that pass the
    language filter. Computed before any shard runs so that shards stay independent (any order, any
    number of workers, resumable): a file wholly inside the limit takes ``None`` (all), the file the
    limit ends in takes the rest, and files after it are not shards at all."""
    if limit is None:
        return [(f, None) for f in files]
    if limit < 0:
        raise ValueError(f"--limit must be >= 0, got {limit}")
    plan, remaining = [], limit
    for location in files:
        if remaining == 0:
            break
        n = matching_rows(location, language)
        plan.append((location, None if n <= remaining else remaining))
        remaining -= min(n, remaining)
    return plan
