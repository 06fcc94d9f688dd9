"""Column names and ``datasets.Features`` per stage.

Names follow the published WAON release (``url, caption, page_title, page_url, ...``) so that users
of WAON can switch; provenance columns are ours.
"""

from __future__ import annotations

import datasets
import pyarrow as pa

# Columns written by `waon extract` (one row per (image, caption) pair), in output order.
PAIR_COLUMNS: dict[str, str] = {
    "url": "absolute image URL (resolved against <base href> / the page URL, fragment removed)",
    "caption": "figcaption text of the enclosing <figure>, else the alt text; NFKC + whitespace-normalised",
    "caption_source": "'figcaption' or 'alt'",
    "page_url": "URL of the page the image appears on (WARC-Target-URI)",
    "page_title": "text of the page's <title>",
    "crawl": "Common Crawl id (e.g. CC-MAIN-2025-18), or '' for files outside a crawl",
    "warc_file": "the WARC file (path or URL as given) the page came from",
    "warc_record_id": "WARC-Record-ID of the page's response record",
}

# Columns added by the later stages (download, image filters, scoring); documented in the card.
STAGE_COLUMNS: dict[str, str] = {
    "image": "the image, resized and re-encoded, embedded as bytes (datasets.Image)",
    "status": "download status: 'ok' or why the image is missing",
    "error": "download error detail ('' when ok)",
    "width": "stored image width in pixels",
    "height": "stored image height in pixels",
    "original_width": "width of the image as served",
    "original_height": "height of the image as served",
    "sha256": "SHA-256 of the stored image bytes",
    "phash": "64-bit perceptual hash, 16 hex characters (imagededup PHash, or imagehash.phash: see pipeline.json)",
    "punsafe": "probability that the image is unsafe (NSFW classifier)",
    "similarity": "cosine similarity of image and caption embeddings (SigLIP2)",
}
COLUMN_DOCS: dict[str, str] = {**PAIR_COLUMNS, **STAGE_COLUMNS}

PAIR_FEATURES = datasets.Features({name: datasets.Value("string") for name in PAIR_COLUMNS})
PAIR_ARROW_SCHEMA: pa.Schema = PAIR_FEATURES.arrow_schema


def empty_pairs() -> dict[str, list]:
    return {name: [] for name in PAIR_COLUMNS}
