"""URL-only benchmarks served from a local folder: WAON-Bench's and Recruit's published layouts.

``write_url_benchmark(root, base_url, layout)`` copies the images of ``samples/tiny_bench`` into
``root/www/`` (the folder a :class:`tests.http_server.FileServer` or any static server serves at
``base_url``) and writes the benchmark table that points at them, in the published format:

* ``waon-bench``: one parquet file with ``class``, ``url``, ``category`` (the columns of
  ``llm-jp/WAON-Bench``, split ``train``; see https://huggingface.co/datasets/llm-jp/WAON-Bench,
  README ``dataset_info``), no image;
* ``recruit``: one CSV per subset (``jafood101.csv`` ...), an unnamed index column first, the class
  name in ``category`` and the image as ``url`` (the layout of
  ``recruit-jp/japanese-image-classification-evaluation-dataset``: its ``image_downloader.py``
  reads ``item["url"]`` and ``item["category"]``; files listed at
  https://huggingface.co/datasets/recruit-jp/japanese-image-classification-evaluation-dataset/tree/main).

Some rows are broken on purpose (``FAULTS``): two point at files that do not exist (404), one
under ``/private/``, which ``robots.txt`` disallows, and one at an HTML page (not an image).
"""

from __future__ import annotations

import csv
from pathlib import Path

TINY_BENCH = Path(__file__).resolve().parents[2] / "samples" / "tiny_bench"
ROBOTS_TXT = "User-agent: *\nDisallow: /private/\n"
FAULTS = {0: "http_404", 1: "http_404", 2: "robots_disallowed", 3: "not_image"}
RECRUIT_SUBSETS = ("jafood101", "jaflower30", "jafacility20", "jalandmark10")


def tiny_rows() -> list[dict]:
    """The tiny bench's rows: ``class``, ``category``, ``image`` bytes, ``ext``."""
    import datasets

    ds = datasets.load_dataset(str(TINY_BENCH), split="test").cast_column("image", datasets.Image(decode=False))
    rows = []
    for row in ds:
        data = row["image"]["bytes"]
        rows.append({"class": row["class"], "category": row["category"], "image": data,
                     "ext": "png" if data[:4] == b"\x89PNG" else "jpg"})
    return rows


def _serve_rows(rows: list[dict], www: Path, base_url: str, prefix: str, faults: dict[int, str]) -> list[str]:
    """Write each row's image under ``www`` and return its URL (broken as ``faults`` says)."""
    www.mkdir(parents=True, exist_ok=True)
    (www / "robots.txt").write_text(ROBOTS_TXT, encoding="utf-8")
    (www / "private").mkdir(exist_ok=True)
    base = base_url.rstrip("/") + "/"
    urls = []
    for i, row in enumerate(rows):
        name = f"{prefix}{i:04d}.{row['ext']}"
        fault = faults.get(i)
        if fault == "http_404":
            urls.append(base + "gone/" + name)
            continue
        if fault == "robots_disallowed":
            (www / "private" / name).write_bytes(row["image"])
            urls.append(base + "private/" + name)
            continue
        if fault == "not_image":
            (www / f"{prefix}{i:04d}.html").write_text("<html><body>not an image</body></html>", encoding="utf-8")
            urls.append(base + f"{prefix}{i:04d}.html")
            continue
        (www / name).write_bytes(row["image"])
        urls.append(base + name)
    return urls


def write_url_benchmark(root: str | Path, base_url: str, layout: str = "waon-bench",
                        faults: dict[int, str] | None = None) -> Path:
    """Write ``root/www/`` (to be served at ``base_url``) and the benchmark table; returns the table's
    path (``waon-bench``: a parquet file; ``recruit``: the folder of the four CSVs)."""
    root = Path(root)
    rows = tiny_rows()
    faults = FAULTS if faults is None else faults
    if layout == "waon-bench":
        import datasets

        urls = _serve_rows(rows, root / "www", base_url, "wb", faults)
        table = root / "waon_bench.parquet"
        datasets.Dataset.from_dict({"class": [r["class"] for r in rows], "url": urls,
                                    "category": [r["category"] for r in rows]}).to_parquet(str(table))
        return table
    if layout == "recruit":
        folder = root / "recruit"
        folder.mkdir(parents=True, exist_ok=True)
        per = len(rows) // len(RECRUIT_SUBSETS)
        for k, subset in enumerate(RECRUIT_SUBSETS):
            part = rows[k * per:(k + 1) * per]
            urls = _serve_rows(part, root / "www", base_url, f"{subset}-", faults if k == 0 else {})
            with (folder / f"{subset}.csv").open("w", encoding="utf-8", newline="") as f:
                w = csv.writer(f)
                w.writerow(["", "category", "url"])
                for i, (row, url) in enumerate(zip(part, urls, strict=True)):
                    w.writerow([i, row["class"], url])
        return folder
    raise ValueError(f"unknown layout {layout!r}: waon-bench or recruit")
