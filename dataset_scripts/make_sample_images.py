"""Write ``samples/sample-images.warc.gz``: the images behind the sample's pairs, as WARC responses.

    python dataset_scripts/make_sample_images.py

Extracts ``samples/sample.warc.gz`` (as ``make demo`` does), then writes one image response per
kept image URL so that `waon download --warc-source ... --offline` needs no network. The images
are synthetic and chosen so that every image stage has something to do, deterministically:

* most are photo-like pictures of 280-360 px (kept);
* some are too small (120 x 90), too wide (3:1), or flat (a few colours): dropped by the filters;
* some repeat an earlier image byte for byte (exact duplicates) or re-encode it at another size
  and quality (pHash near-duplicates);
* some carry ``X-Robots-Tag: noai`` (refused), and some are missing from the archive
  (``not_in_archive`` offline).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import pyarrow.parquet as pq  # noqa: E402
from PIL import Image  # noqa: E402

from waon_hf.config import load_job  # noqa: E402
from waon_hf.jobs.extract import run_extract  # noqa: E402
from waon_hf.sources.commoncrawl import SourceFile  # noqa: E402
from waon_hf.testing.synthetic import synthetic_image, warc_image_response, write_warc  # noqa: E402


def flat_image(seed: int, size: int = 300) -> bytes:
    img = Image.new("RGB", (size, size), ((seed * 53) % 256, (seed * 97) % 256, (seed * 31) % 256))
    img.paste((255, 255, 255), (size // 4, size // 4, size // 2, size // 2))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def image_for(i: int, previous: dict[int, bytes]) -> tuple[bytes | None, str, list[tuple[str, str]]]:
    """(bytes or None when absent from the archive, content type, extra headers) of the i-th URL."""
    kind = i % 10
    if i % 20 == 0:
        return None, "", []
    if kind == 3:
        return synthetic_image(i, 120, 90, quality=70), "image/jpeg", []
    if kind == 5:
        return synthetic_image(i, 600, 200, quality=70), "image/jpeg", []
    if kind == 7:
        return flat_image(i), "image/png", []
    if kind == 8 and i - 2 in previous:
        return previous[i - 2], "image/jpeg", []  # the same bytes as URL i-2 (a kept photo)
    if kind == 9 and i - 3 in previous:  # URL i-3's picture scaled and re-encoded: a pHash near-duplicate
        img = Image.open(io.BytesIO(previous[i - 3]))
        buf = io.BytesIO()
        img.resize((img.width * 9 // 10, img.height * 9 // 10), Image.LANCZOS).save(buf, format="JPEG", quality=50)
        return buf.getvalue(), "image/jpeg", []
    headers = [("X-Robots-Tag", "noai")] if i % 17 == 4 else []
    side = 280 + (i * 13) % 80
    return synthetic_image(i, side, side, quality=70), "image/jpeg", headers


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=Path, default=Path("samples/sample.warc.gz"))
    ap.add_argument("--config", type=Path, default=Path("configs/sample.yaml"))
    ap.add_argument("-o", "--output", type=Path, default=Path("samples/sample-images.warc.gz"))
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        run_extract([SourceFile(str(args.pages), "")], tmp, load_job(str(args.config)))
        urls = [u for p in sorted((Path(tmp) / "data").glob("*.parquet")) for u in pq.read_table(p)["url"].to_pylist()]

    records, previous = [], {}
    for i, url in enumerate(urls):
        data, content_type, headers = image_for(i, previous)
        if data is None:
            continue
        previous[i] = data
        records.append(warc_image_response(url, data, content_type, headers))
    write_warc(args.output, records, compresslevel=9)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1024:.0f} KB): "
          f"{len(records)} images for {len(urls)} pair URLs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
