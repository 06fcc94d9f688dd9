"""URL-only image-text tables (WAON, ReLAION, DanQing...) as the input of the download stage.

A published dataset of this kind is metadata only: a URL, a caption and scores. ``waon download``
reads it parquet file by parquet file (one file = one shard) and needs two things from each table:

* which columns hold the URL and the caption (:func:`resolve_columns`): given explicitly
  (``{"url": "URL", "caption": "TEXT"}``), or detected from the known layouts
  (:data:`URL_COLUMNS`, :data:`CAPTION_COLUMNS`, matched case-sensitively first, then ignoring case);
* which of its columns our pipeline computes again (:data:`RECOMPUTED`): the download writes
  ``sha256``, ``width``, ``height``, ``original_*``; the later stages ``phash``, ``similarity``,
  ``punsafe``. Those source values are kept under ``source_<name>`` (:func:`to_download_input`), so
  nothing published is lost or silently overwritten, and our ``sha256`` can be checked against the
  source's.

Every other column is carried through unchanged (``page_title``, ``page_url``, ...).
"""

from __future__ import annotations

import os

import pyarrow as pa

# Column names of the URL and caption in the layouts we know (WAON and ReLAION: url/caption;
# LAION-5B style: URL/TEXT; DanQing and other alt-text dumps: alt_text).
URL_COLUMNS = ("url", "URL", "image_url")
CAPTION_COLUMNS = ("caption", "TEXT", "alt_text", "text")
RECOMPUTED = ("sha256", "phash", "similarity", "punsafe", "width", "height", "original_width", "original_height",
              "image", "status", "error")
SOURCE_PREFIX = "source_"


def parse_column_map(value: str | None) -> dict[str, str]:
    """``"url=URL,caption=TEXT"`` -> ``{"url": "URL", "caption": "TEXT"}``."""
    out: dict[str, str] = {}
    for item in (s.strip() for s in (value or "").split(",")):
        if not item:
            continue
        ours, sep, theirs = item.partition("=")
        if not sep or ours.strip() not in ("url", "caption") or not theirs.strip():
            raise ValueError(f"--columns: expected url=NAME and/or caption=NAME, got {item!r}")
        out[ours.strip()] = theirs.strip()
    return out


def _find(names: list[str], candidates: tuple[str, ...]) -> str | None:
    for c in candidates:
        if c in names:
            return c
    lower = {n.lower(): n for n in names}
    return next((lower[c.lower()] for c in candidates if c.lower() in lower), None)


def resolve_columns(names: list[str], mapping: dict[str, str] | None = None) -> dict[str, str | None]:
    """``{"url": source column, "caption": source column or None}`` for a table with columns ``names``."""
    mapping = mapping or {}
    out: dict[str, str | None] = {}
    for ours, candidates in (("url", URL_COLUMNS), ("caption", CAPTION_COLUMNS)):
        theirs = mapping.get(ours) or _find(names, candidates)
        if theirs is not None and theirs not in names:
            raise ValueError(f"column {theirs!r} (for {ours}) not in the source's columns {names}")
        out[ours] = theirs
    if out["url"] is None:
        raise ValueError(f"no URL column: expected one of {list(URL_COLUMNS)} (or --columns url=NAME), "
                         f"found {names}")
    return out


def to_download_input(table: pa.Table, columns: dict[str, str | None]) -> pa.Table:
    """The table with ``url``/``caption`` named ours and every recomputed column moved to ``source_<name>``."""
    renamed = []
    for name in table.column_names:
        if name == columns["url"]:
            renamed.append("url")
        elif name == columns.get("caption"):
            renamed.append("caption")
        elif name in RECOMPUTED:
            renamed.append(SOURCE_PREFIX + name)
        else:
            renamed.append(name)
    clash = {n for n in renamed if renamed.count(n) > 1}
    if clash:
        raise ValueError(f"columns {sorted(clash)} would appear twice after renaming {table.column_names}")
    return table.rename_columns(renamed)


def list_source_files(source: str | os.PathLike, fs=None) -> list[str]:
    """The parquet files of a source, in order: local files (file, folder, glob), a Hub dataset id,
    one ``hf://`` parquet file, or an ``hf://datasets/<id>[/<folder>]`` folder (listed with
    ``HfFileSystem``, or ``fs``: anything with its ``glob``)."""
    from waon_hf.sources.relaion import list_relaion_files

    path = os.fspath(source)
    if path.startswith("hf://") and not path.endswith(".parquet"):
        if fs is None:
            from huggingface_hub import HfFileSystem

            fs = HfFileSystem()
        found = sorted(fs.glob(path.removeprefix("hf://").rstrip("/") + "/**/*.parquet"))
        if not found:
            raise FileNotFoundError(f"no parquet files under {path}")
        return [f"hf://{p}" for p in found]
    return list_relaion_files(path)
