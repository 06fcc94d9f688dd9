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

For the English set (``english=True``) the caption goes to ``caption_en``: ``caption`` is reserved
for the Japanese translation that a later step writes.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from typing import Any

import datasets

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
    "punsafe": "punsafe",
    "pwatermark": "pwatermark",
    "language": "language",
    "key": "source_id",
    "hash": "source_id",
    "sample_id": "source_id",
}

_TYPES: dict[str, str] = {
    "url": "string", "caption": "string", "caption_en": "string", "original_width": "int64",
    "original_height": "int64", "clip_similarity": "float64", "punsafe": "float64", "pwatermark": "float64",
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
    if os.path.isdir(path):
        return sorted(glob.glob(os.path.join(path, "**", "*.parquet"), recursive=True))
    if os.path.isfile(path):
        return [path]
    if glob.has_magic(path):
        return sorted(glob.glob(path, recursive=True))
    return None


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
