"""Calibrate the blur (Laplacian variance) and image-entropy thresholds on real photographs.

    .venv/bin/python benchmarks/calibrate_image_checks.py --git-dir /work/.mirror/scikit-image+scikit-image/repo

Reads scikit-image's sample images (``src/_skimage2/data/``, BSD-licensed, mostly photographs) straight
from a git mirror (nothing is copied into this repository) and prints, per image: grey pixel std,
Laplacian variance and grey entropy (our ``image_filters`` functions), measured on the image as our
download step stores it (shorter side resized to 256 px, ``keep_ratio``) and on a Gaussian-blurred
copy (radius 2 px at 256 px: visibly out of focus), plus what the checks at the given thresholds keep.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from waon_hf.steps.image_filters import grey_entropy, laplacian_variance, pixel_std  # noqa: E402

PHOTOS = ["astronaut.png", "camera.png", "chelsea.png", "coffee.png", "coins.png", "moon.png",
          "motorcycle_left.png", "rocket.jpg", "retina.jpg", "hubble_deep_field.jpg", "grass.png", "gravel.png",
          "brick.png", "horse.png", "page.png", "text.png", "clock_motion.png"]


def resized(img: Image.Image, side: int = 256) -> Image.Image:
    w, h = img.size
    scale = side / min(w, h)
    return img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--git-dir", required=True)
    ap.add_argument("--folder", default="src/_skimage2/data")
    ap.add_argument("--blur", type=float, default=1000.0)
    ap.add_argument("--entropy", type=float, default=3.0)
    args = ap.parse_args()
    print("| image | size | std | Laplacian var | entropy | blurred: Laplacian var | blurred: entropy |")
    print("|---|---|---:|---:|---:|---:|---:|")
    sharp_kept = blurred_kept = n = 0
    for name in PHOTOS:
        try:
            data = subprocess.run(["git", "--git-dir", args.git_dir, "show", f"HEAD:{args.folder}/{name}"],
                                  capture_output=True, check=True).stdout
        except subprocess.CalledProcessError:
            continue
        img = Image.open(io.BytesIO(data)).convert("RGB")
        small = resized(img)
        blurred = small.filter(ImageFilter.GaussianBlur(2))
        lv, en, lvb, enb = laplacian_variance(small), grey_entropy(small), laplacian_variance(blurred), \
            grey_entropy(blurred)
        n += 1
        sharp_kept += lv >= args.blur and en >= args.entropy
        blurred_kept += lvb >= args.blur and enb >= args.entropy
        print(f"| {name} | {img.size[0]}x{img.size[1]} | {pixel_std(small):.1f} | {lv:,.0f} | {en:.2f} | "
              f"{lvb:,.0f} | {enb:.2f} |")
    print(f"\nthresholds blur >= {args.blur:g}, entropy >= {args.entropy:g}: {sharp_kept}/{n} images kept, "
          f"{blurred_kept}/{n} blurred copies kept")


if __name__ == "__main__":
    main()
