"""Write the small synthetic sample WARC shipped in ``samples/`` and its manifest.

    python dataset_scripts/make_sample_warc.py -o samples/sample.warc.gz

About 120 pages (60 % Japanese in every encoding and charset declaration style, plus Chinese,
Korean and English pages), ~3.2 KB each with 8 images, and the broken records of
``generate_corpus(broken=True)``. Short HTML compresses poorly (one gzip member per record), so
pages are kept small to keep the file under 300 KB. The manifest (``<name>.manifest.json`` next
to the WARC) lists every page with its expected (image url, caption) pairs. Output is deterministic
for a seed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from waon_hf.testing.synthetic import generate_corpus  # noqa: E402


def manifest_path(warc: Path) -> Path:
    name = warc.name
    for suffix in (".warc.gz", ".warc"):
        if name.endswith(suffix):
            return warc.with_name(name[: -len(suffix)] + ".manifest.json")
    return warc.with_name(name + ".manifest.json")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, default=Path("samples/sample.warc.gz"))
    ap.add_argument("--pages", type=int, default=120)
    ap.add_argument("--ja-fraction", type=float, default=0.6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target-bytes", type=int, default=3200, help="approximate HTML size per page")
    ap.add_argument("--n-images", type=int, default=8)
    ap.add_argument("--oversized-bytes", type=int, default=3_000_000, help="size of the oversized page")
    ap.add_argument("--no-broken", action="store_true", help="omit the broken records")
    ap.add_argument("--compresslevel", type=int, default=9)
    args = ap.parse_args(argv)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    manifest = generate_corpus(
        args.output, n_pages=args.pages, ja_fraction=args.ja_fraction, seed=args.seed,
        broken=not args.no_broken, target_bytes=args.target_bytes, n_images=args.n_images,
        oversized_bytes=args.oversized_bytes, compresslevel=args.compresslevel, workers=1,
    )
    out = manifest_path(args.output)
    out.write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    size_kb = args.output.stat().st_size / 1024
    print(f"wrote {args.output} ({size_kb:.0f} KB, {manifest['n_records']} records, "
          f"{manifest['n_japanese_html']} Japanese pages, {manifest['n_expected_pairs_ja']} expected pairs) "
          f"and {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
