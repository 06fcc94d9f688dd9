"""Write tiny offline stand-ins of the llm-jp-clip / WAON benchmarks in their Hub formats.

    python dataset_scripts/make_standins.py -o samples/standins

One folder per benchmark, a handful of drawn images each (PIL shapes; the numbers a model gets on
them mean nothing), with the columns and label names of the real dataset so that the loaders of
``waon_hf.eval`` are exercised offline:

* ``imagenet-1k``: ``image``, ``label`` (ClassLabel over 1,000 classes named by index, split
  ``validation``; the Japanese names are matched by index);
* ``cifar10`` / ``cifar100``: ``img`` + ``label`` / ``fine_label`` (split ``test``);
* ``food101``: ``image``, ``label`` (split ``validation``); ``caltech101``: ``image``, ``label``
  (split ``train``); label names as on the Hub (the keys of ``waon_hf/data/classnames``);
* ``xm3600``: ``image`` as a plain ``{bytes, path}`` struct and ``captions`` (a list of Japanese
  strings), split ``ja``, as floschne/xm3600;
* ``recruit``: ``jafood101.parquet`` ... with the published CSV's ``category`` and ``url`` plus
  an embedded ``image`` (the form ``waon bench-snapshot`` gives a URL-only benchmark).

Deterministic for a seed.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLASSNAMES = ROOT / "waon_hf" / "data" / "classnames"
PER_BENCH = 6
XM3600_CAPTIONS = (
    ("赤い丸が描かれた白い画像", "白地に赤い円"),
    ("青い四角形のある絵", "青い正方形"),
    ("緑の三角形が中央にある", "中央の緑の三角"),
    ("黄色い線が斜めに走っている", "斜めの黄色い線"),
    ("紫の楕円が二つ並んでいる", "並んだ紫の楕円"),
    ("灰色の背景に黒い点", "黒い点と灰色"),
)
RECRUIT = {"jafood101": ("寿司", "ラーメン"), "jaflower30": ("桜", "菊"), "jafacility20": ("神社", "駅"),
           "jalandmark10": ("東京タワー", "大阪城")}


def draw(rng: random.Random, size: int) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), tuple(rng.randint(0, 255) for _ in range(3)))
    d = ImageDraw.Draw(img)
    for _ in range(3):
        x0, y0 = rng.randint(0, size // 2), rng.randint(0, size // 2)
        box = (x0, y0, x0 + rng.randint(4, size // 2), y0 + rng.randint(4, size // 2))
        colour = tuple(rng.randint(0, 255) for _ in range(3))
        (d.ellipse if rng.random() < 0.5 else d.rectangle)(box, fill=colour)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


def label_names(stem: str) -> list[str]:
    return [n["en"] for n in json.loads((CLASSNAMES / f"{stem}.json").read_text(encoding="utf-8"))["names"]]


def write_split(folder: Path, split: str, ds) -> None:
    (folder / "data").mkdir(parents=True, exist_ok=True)
    ds.to_parquet(str(folder / "data" / f"{split}-00000-of-00001.parquet"))
    (folder / "README.md").write_text(
        f"---\nconfigs:\n  - config_name: default\n    data_files:\n      - split: {split}\n"
        f"        path: data/{split}-*\n---\n\nA generated stand-in (dataset_scripts/make_standins.py): the format "
        f"of the real benchmark, drawn images, {len(ds)} rows.\n", encoding="utf-8")


def labelled(out: Path, name: str, stem: str, split: str, image_col: str, label_col: str, rng, size: int) -> None:
    import datasets

    names = label_names(stem)
    if len(set(names)) < len(names):  # ImageNet's English names repeat (two "crane"s): index-keyed anyway
        names = [str(i) for i in range(len(names))]
    labels = [i * (len(names) // PER_BENCH) for i in range(PER_BENCH)]
    features = datasets.Features({image_col: datasets.Image(), label_col: datasets.ClassLabel(names=names)})
    ds = datasets.Dataset.from_dict({image_col: [{"bytes": draw(rng, size), "path": None} for _ in labels],
                                     label_col: labels}, features=features)
    write_split(out / name, split, ds)


def main(argv: list[str] | None = None) -> int:
    import datasets

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", type=Path, default=ROOT / "samples" / "standins")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    if args.output.exists():
        shutil.rmtree(args.output)
    labelled(args.output, "imagenet-1k", "imagenet1k", "validation", "image", "label", rng, 48)
    labelled(args.output, "cifar10", "cifar10", "test", "img", "label", rng, 32)
    labelled(args.output, "cifar100", "cifar100", "test", "img", "fine_label", rng, 32)
    labelled(args.output, "food101", "food101", "validation", "image", "label", rng, 48)
    labelled(args.output, "caltech101", "caltech101", "train", "image", "label", rng, 48)
    struct = datasets.Features({"bytes": datasets.Value("binary"), "path": datasets.Value("string")})
    xm = datasets.Dataset.from_dict(
        {"image": [{"bytes": draw(rng, 48), "path": f"{i:016x}.jpg"} for i in range(PER_BENCH)],
         "captions": [list(c) for c in XM3600_CAPTIONS]},
        features=datasets.Features({"image": struct, "captions": datasets.Sequence(datasets.Value("string"))}))
    write_split(args.output / "xm3600", "ja", xm)
    recruit = args.output / "recruit"
    recruit.mkdir(parents=True)
    for subset, classes in RECRUIT.items():
        rows = [(c, k) for c in classes for k in range(2)]
        datasets.Dataset.from_dict(
            {"category": [c for c, _ in rows],
             "url": [f"https://standin.invalid/{subset}/{i}.png" for i in range(len(rows))],
             "image": [{"bytes": draw(rng, 48), "path": None} for _ in rows]},
            features=datasets.Features({"category": datasets.Value("string"), "url": datasets.Value("string"),
                                        "image": datasets.Image()}),
        ).to_parquet(str(recruit / f"{subset}.parquet"))
    print(f"stand-ins written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
