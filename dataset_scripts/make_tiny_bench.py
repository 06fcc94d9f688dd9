"""Write the tiny synthetic zero-shot benchmark shipped in ``samples/tiny_bench/``.

    python dataset_scripts/make_tiny_bench.py -o samples/tiny_bench

Eight Japanese classes, one per WAON-Bench category, three small drawn images each (PIL shapes
and colours; PNG and JPEG, square and not), in WAON-Bench's columns (``class``, ``category``,
``url``) plus an embedded ``image`` (``datasets.Image``) so that nothing needs downloading. The
``url`` values use the reserved ``.invalid`` domain. A README with ``configs:`` makes
``load_dataset("samples/tiny_bench", split="test")`` work. Output is deterministic for a seed.
"""

from __future__ import annotations

import argparse
import io
import math
import random
from pathlib import Path

# class name, category, drawing function name
CLASSES = (
    ("金魚", "animal", "goldfish"),
    ("鳥居", "building", "torii"),
    ("花火", "event", "fireworks"),
    ("和傘", "everyday", "umbrella"),
    ("抹茶", "food", "matcha"),
    ("桜", "nature", "sakura"),
    ("富士山", "scenery", "fuji"),
    ("だるま", "tradition", "daruma"),
)
SIZES = ((96, 96), (128, 80), (80, 112))  # (width, height) of the three images of a class

README = """---
configs:
  - config_name: default
    data_files:
      - split: test
        path: tiny_bench.parquet
license: cc0-1.0
language:
  - ja
task_categories:
  - zero-shot-image-classification
pretty_name: waon_hf tiny zero-shot benchmark
---

# tiny_bench

A synthetic stand-in for WAON-Bench used by the tests and the demo of `waon_hf`: {n_classes} Japanese
classes (one per WAON-Bench category) x {per_class} drawn images = {n_rows} rows, with WAON-Bench's
columns (`class`, `category`, `url`) and the image embedded in `image`. Regenerate with
`python dataset_scripts/make_tiny_bench.py -o samples/tiny_bench`. The numbers a model gets on it
mean nothing about Japanese culture; they only exercise the evaluation code.
"""


def _jitter(rng: random.Random, colour: tuple[int, int, int], amount: int = 24) -> tuple[int, int, int]:
    return tuple(max(0, min(255, c + rng.randint(-amount, amount))) for c in colour)


def draw(kind: str, size: tuple[int, int], rng: random.Random):
    from PIL import Image, ImageDraw

    w, h = size
    backgrounds = {
        "goldfish": (40, 110, 200), "torii": (150, 200, 240), "fireworks": (15, 20, 60), "umbrella": (235, 230, 215),
        "matcha": (225, 205, 170), "sakura": (170, 210, 250), "fuji": (120, 180, 240), "daruma": (245, 245, 240),
    }
    img = Image.new("RGB", size, _jitter(rng, backgrounds[kind]))
    d = ImageDraw.Draw(img)
    cx, cy = w // 2 + rng.randint(-8, 8), h // 2 + rng.randint(-8, 8)
    s = min(w, h) // 2 - rng.randint(4, 10)
    if kind == "goldfish":
        for _ in range(3):
            x, y = rng.randint(10, w - 30), rng.randint(10, h - 20)
            d.ellipse([x, y, x + 22, y + 12], fill=_jitter(rng, (250, 110, 20)))
            d.polygon([(x, y + 6), (x - 8, y), (x - 8, y + 12)], fill=_jitter(rng, (250, 80, 20)))
    elif kind == "torii":
        red = _jitter(rng, (210, 40, 30))
        d.rectangle([cx - s, cy - s, cx + s, cy - s + 8], fill=red)
        d.rectangle([cx - s + 6, cy - s + 16, cx + s - 6, cy - s + 21], fill=red)
        d.rectangle([cx - s + 10, cy - s, cx - s + 17, cy + s], fill=red)
        d.rectangle([cx + s - 17, cy - s, cx + s - 10, cy + s], fill=red)
    elif kind == "fireworks":
        for _ in range(2):
            x, y, r = rng.randint(20, w - 20), rng.randint(20, h - 20), rng.randint(12, 22)
            colour = _jitter(rng, rng.choice([(255, 200, 40), (255, 80, 160), (120, 255, 120)]), 10)
            for k in range(12):
                a = 2 * math.pi * k / 12
                d.line([(x, y), (x + r * math.cos(a), y + r * math.sin(a))], fill=colour, width=2)
    elif kind == "umbrella":
        d.pieslice([cx - s, cy - s, cx + s, cy + s], 180, 360, fill=_jitter(rng, (180, 30, 60)))
        d.line([(cx, cy), (cx, cy + s)], fill=(90, 60, 30), width=3)
    elif kind == "matcha":
        d.ellipse([cx - s, cy - s, cx + s, cy + s], fill=_jitter(rng, (60, 40, 30)))
        d.ellipse([cx - s + 6, cy - s + 6, cx + s - 6, cy + s - 6], fill=_jitter(rng, (110, 160, 60)))
    elif kind == "sakura":
        for _ in range(9):
            x, y, r = rng.randint(5, w - 5), rng.randint(5, h - 5), rng.randint(4, 8)
            d.ellipse([x - r, y - r, x + r, y + r], fill=_jitter(rng, (250, 180, 200), 12))
    elif kind == "fuji":
        base = h - rng.randint(2, 10)
        d.polygon([(cx - s - 10, base), (cx, cy - s + 4), (cx + s + 10, base)], fill=_jitter(rng, (70, 80, 140)))
        d.polygon([(cx - 12, cy - s + 22), (cx, cy - s + 4), (cx + 12, cy - s + 22)], fill=(250, 250, 250))
    elif kind == "daruma":
        d.ellipse([cx - s, cy - s, cx + s, cy + s], fill=_jitter(rng, (200, 20, 20)))
        d.ellipse([cx - s // 2, cy - s // 2, cx + s // 2, cy + s // 3], fill=(250, 235, 215))
        d.ellipse([cx - 8, cy - 8, cx - 3, cy - 3], fill=(0, 0, 0))
    return img


def encode(img, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.save(buf, format="JPEG", quality=80)
    else:
        img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def build_rows(seed: int = 0, per_class: int = 3) -> dict[str, list]:
    rng = random.Random(seed)
    rows: dict[str, list] = {"class": [], "category": [], "url": [], "image": []}
    for name, category, kind in CLASSES:
        for j in range(per_class):
            fmt = "JPEG" if j == 2 else "PNG"
            ext = "jpg" if fmt == "JPEG" else "png"
            rows["class"].append(name)
            rows["category"].append(category)
            rows["url"].append(f"https://tiny-bench.invalid/{kind}/{j}.{ext}")
            rows["image"].append({"bytes": encode(draw(kind, SIZES[j % len(SIZES)], rng), fmt), "path": None})
    return rows


def main(argv: list[str] | None = None) -> int:
    import datasets

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, default=Path("samples/tiny_bench"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-class", type=int, default=3)
    args = ap.parse_args(argv)

    rows = build_rows(args.seed, args.per_class)
    features = datasets.Features({"class": datasets.Value("string"), "category": datasets.Value("string"),
                                  "url": datasets.Value("string"), "image": datasets.Image()})
    ds = datasets.Dataset.from_dict(rows, features=features)
    args.output.mkdir(parents=True, exist_ok=True)
    out = args.output / "tiny_bench.parquet"
    ds.to_parquet(str(out))
    (args.output / "README.md").write_text(
        README.format(n_classes=len(CLASSES), per_class=args.per_class, n_rows=len(ds)), encoding="utf-8")
    print(f"wrote {out} ({out.stat().st_size / 1024:.1f} KB, {len(ds)} rows, {len(CLASSES)} classes) "
          f"and {args.output / 'README.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
