"""Images: decode, check, resize and re-encode (pure functions, run in worker threads).

Decode formats, the JPEG draft shortcut, the resize modes and interpolations, and what
``original_width``/``sha256`` refer to: ``docs/download.md`` ("Images").
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import math
from collections.abc import Callable
from typing import Any

from waon_hf.images import composite_rgb
from waon_hf.steps.download.statuses import Failure, failure_row

DECODE_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "AVIF")  # JPEG includes MPO


def _scale_smaller(w: int, h: int, size: int) -> float:
    return size / min(w, h)


def _scale_larger(w: int, h: int, size: int) -> float:
    return size / max(w, h)


# img2dataset's interpolation names -> Pillow filters. Pillow's BOX filter is an area average when
# downscaling, like OpenCV's INTER_AREA (img2dataset's default for downscaling).
INTERPOLATIONS: dict[str, int] = {
    "nearest": 0, "area": 4, "box": 4, "bilinear": 2, "linear": 2, "bicubic": 3, "cubic": 3, "lanczos": 1,
}


def _resized(img, scale: float, opts: ImageOptions):
    if scale == 1 or (opts.resize_only_if_bigger and scale >= 1):
        return img
    w, h = img.size
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    if new == img.size:
        return img
    name = opts.downscale_interpolation if scale < 1 else opts.upscale_interpolation
    return img.resize(new, INTERPOLATIONS[name])


def _mode_no(img, size: int, opts: ImageOptions):
    return img


def _mode_keep_ratio(img, size: int, opts: ImageOptions):
    return _resized(img, _scale_smaller(*img.size, size), opts)


def _mode_keep_ratio_largest(img, size: int, opts: ImageOptions):
    return _resized(img, _scale_larger(*img.size, size), opts)


def _mode_center_crop(img, size: int, opts: ImageOptions):
    img = _mode_keep_ratio(img, size, opts)
    w, h = img.size
    cw, ch = min(w, size), min(h, size)
    left, top = (w - cw) // 2, (h - ch) // 2
    return img.crop((left, top, left + cw, top + ch)) if (cw, ch) != (w, h) else img


def _mode_border(img, size: int, opts: ImageOptions):
    from PIL import Image

    img = _mode_keep_ratio_largest(img, size, opts)
    if img.size == (size, size):
        return img
    canvas = Image.new("RGB", (max(size, img.width), max(size, img.height)), (255, 255, 255))
    canvas.paste(img, ((canvas.width - img.width) // 2, (canvas.height - img.height) // 2))
    return canvas


# name -> (resize function, scale function used to pick a JPEG draft size; None: full decode)
RESIZE_MODES: dict[str, tuple[Callable, Callable[[int, int, int], float] | None]] = {
    "no": (_mode_no, None),
    "keep_ratio": (_mode_keep_ratio, _scale_smaller),
    "keep_ratio_largest": (_mode_keep_ratio_largest, _scale_larger),
    "center_crop": (_mode_center_crop, _scale_smaller),
    "border": (_mode_border, _scale_larger),
}

# name -> (Pillow format, save options given the quality)
ENCODERS: dict[str, tuple[str, Callable[[int], dict]]] = {
    "jpeg": ("JPEG", lambda q: {"quality": q}),
    "png": ("PNG", lambda q: {"compress_level": 6}),
    "webp": ("WEBP", lambda q: {"quality": q}),
}
_SWAPPED_ORIENTATIONS = frozenset({5, 6, 7, 8})


@dataclasses.dataclass(frozen=True)
class ImageOptions:
    """The image half of the step's options: small, frozen, handed to the decode threads."""

    image_size: int = 256
    resize_mode: str = "keep_ratio"
    resize_only_if_bigger: bool = False
    encode_format: str = "jpeg"
    encode_quality: int = 95
    max_pixels: int = 89_478_485
    downscale_interpolation: str = "area"
    upscale_interpolation: str = "lanczos"


def transcode(data: bytes, opts: ImageOptions) -> dict[str, Any]:
    """Decode, check, resize and re-encode one image; returns an output row (never raises)."""
    try:
        return _transcode(data, opts)
    except Failure as f:
        return failure_row(f.status, f.error)
    except MemoryError:
        return failure_row("too_many_pixels", "out of memory while decoding")
    except Exception as e:  # Pillow raises OSError, ValueError, SyntaxError, struct.error... on bad data
        return failure_row("decode_error", f"{type(e).__name__}: {e}")


def _transcode(data: bytes, opts: ImageOptions) -> dict[str, Any]:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data), formats=_decode_formats())
    except UnidentifiedImageError:
        raise Failure("not_image", f"not a {'/'.join(DECODE_FORMATS)} image ({_sniff(data)})") from None
    except Image.DecompressionBombError as e:
        raise Failure("too_many_pixels", str(e)) from None
    w, h = img.size
    if w * h > opts.max_pixels:
        raise Failure("too_many_pixels", f"{w}x{h} = {w * h} pixels > max_pixels={opts.max_pixels}")
    if w < 1 or h < 1:
        raise Failure("decode_error", f"empty image {w}x{h}")
    orientation = img.getexif().get(0x0112, 1) if img.format in ("JPEG", "MPO", "WEBP", "TIFF") else 1
    original = (h, w) if orientation in _SWAPPED_ORIENTATIONS else (w, h)
    resize, scale_of = RESIZE_MODES[opts.resize_mode]
    if scale_of is not None and img.format in ("JPEG", "MPO"):
        scale = scale_of(w, h, opts.image_size)  # libjpeg scales by 1/2, 1/4 or 1/8 while >= the target
        if scale < 1:
            img.draft(None, (math.ceil(w * scale), math.ceil(h * scale)))
    img.load()
    if orientation != 1:
        img = ImageOps.exif_transpose(img)
    img = composite_rgb(img)
    img = resize(img, opts.image_size, opts)
    fmt, options = ENCODERS[opts.encode_format]
    out = io.BytesIO()
    img.save(out, format=fmt, **options(opts.encode_quality))
    stored = out.getvalue()
    return {"image": {"bytes": stored, "path": None}, "status": "ok", "error": "",
            "width": img.width, "height": img.height, "original_width": original[0],
            "original_height": original[1], "sha256": hashlib.sha256(stored).hexdigest()}


@functools.cache
def _decode_formats() -> tuple[str, ...]:
    """:data:`DECODE_FORMATS` that this Pillow build can open (AVIF needs Pillow >= 11.3)."""
    from PIL import Image

    Image.init()
    return tuple(f for f in DECODE_FORMATS if f in Image.OPEN)


def _sniff(data: bytes) -> str:
    head = data[:256].lstrip().lower()
    if not data:
        return "empty body"
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "html"
    if head.startswith(b"<?xml") or b"<svg" in head:
        return "xml/svg"
    if head[:1] in (b"{", b"["):
        return "json?"
    return f"starts with {data[:8]!r}"
