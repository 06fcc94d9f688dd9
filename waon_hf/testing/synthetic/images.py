"""Deterministic synthetic pictures, for the image steps' tests and the benchmarks.

Pillow and numpy are imported inside the functions, so that the page and WARC generators keep
working without the ``images`` extra.
"""

from __future__ import annotations

import random


def synthetic_image(seed: int, width: int, height: int, fmt: str = "JPEG", quality: int = 90) -> bytes:
    """Encoded bytes of a deterministic ``width`` x ``height`` RGB picture.

    A two-colour gradient at a random angle, a dozen random ellipses and rectangles, and mild
    noise: thousands of distinct colours, no two seeds alike (so colour-count filters and
    perceptual hashes see realistic input), and JPEG sizes close to photos of the same size.
    """
    import io

    import numpy as np
    from PIL import Image, ImageDraw

    rng = random.Random(f"waon-synthetic-image:{seed}")
    nrng = np.random.default_rng(rng.getrandbits(64))
    c0 = np.array([rng.randrange(256) for _ in range(3)], dtype=np.float32)
    c1 = np.array([rng.randrange(256) for _ in range(3)], dtype=np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = xs * np.cos(angle) / max(width, 1) + ys * np.sin(angle) / max(height, 1)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    pixels = c0 + t[..., None] * (c1 - c0)
    pixels += nrng.integers(-10, 11, size=pixels.shape, dtype=np.int16)
    img = Image.fromarray(pixels.clip(0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(6, 14)):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1 = min(width, x0 + rng.randint(1, max(2, width // 2)))
        y1 = min(height, y0 + rng.randint(1, max(2, height // 2)))
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    out = io.BytesIO()
    options = {"quality": quality} if fmt.upper() in ("JPEG", "WEBP") else {}
    img.save(out, format=fmt, **options)
    return out.getvalue()



def synthetic_jpegs(n: int, seed: int = 0, quality: int = 85) -> list[dict]:
    """``n`` blocky random JPEGs of 200-320 px as ``{"bytes", "path"}`` dicts (``datasets.Image`` values)."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    blobs = []
    for _ in range(n):
        w, h = int(rng.integers(200, 320)), int(rng.integers(200, 320))
        small = rng.integers(0, 256, size=(h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((w, h), Image.Resampling.NEAREST)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=quality)
        blobs.append({"bytes": buf.getvalue(), "path": None})
    return blobs
