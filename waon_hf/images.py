"""Reading the values of an image column: the one set of helpers every image step uses.

Steps read ``datasets.Image`` columns undecoded (``{"bytes": ..., "path": ...}``), so a value is
decoded once, by PIL, only when a step needs pixels, and an undecodable image is a counted row
rather than an exception inside ``datasets``. :data:`DECODE_ERRORS` are the exceptions PIL raises
on bad data; callers turn them into a reason (``undecodable``) or a null score.
"""

from __future__ import annotations

import io
import logging
from typing import Any

from PIL import Image, UnidentifiedImageError

logger = logging.getLogger(__name__)

# What PIL raises on truncated, corrupt or hostile input (a decompression bomb included).
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError,
)


def image_bytes(value: Any) -> bytes | None:
    """The encoded bytes of an image value (``{"bytes", "path"}`` dict, ``bytes``), ``None`` if null."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, dict):
        if value.get("bytes") is not None:
            return bytes(value["bytes"])
        if value.get("path"):
            with open(value["path"], "rb") as f:
                return f.read()
        return None
    raise TypeError(f"need encoded image bytes, got {type(value).__name__} (read the column with Image(decode=False))")


def is_missing(value: Any) -> bool:
    """A null value, or a struct with neither bytes nor a path (a failed download)."""
    if value is None:
        return True
    return isinstance(value, dict) and value.get("bytes") is None and not value.get("path")


def open_image(value: Any) -> Image.Image | None:
    """A lazily loaded PIL image for a value (``None`` for a null); raises PIL's errors if unreadable."""
    if value is None:
        return None
    if isinstance(value, Image.Image):
        return value
    data = image_bytes(value)
    return None if data is None else Image.open(io.BytesIO(data))


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB the way imagededup loads files: other modes go through RGBA (alpha dropped, not composited).

    The perceptual hash and the colour count use this conversion so that hashes equal imagededup's.
    """
    return img if img.mode == "RGB" else img.convert("RGBA").convert("RGB")


def composite_rgb(img: Image.Image) -> Image.Image:
    """RGB for storage, as a browser shows the image: transparency composited onto white (not dropped, as
    :func:`to_rgb` does), 16-bit grey scaled to 8 bits."""
    if img.mode == "RGB":
        return img
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = img.point(lambda v: v * (1 / 256)).convert("L")
    return img.convert("RGB")


def plain_rgb(img: Image.Image) -> Image.Image:
    """PIL's own conversion to RGB (what the NSFW models were fitted on)."""
    return img if img.mode == "RGB" else img.convert("RGB")


def load_rgb(value: Any, *, who: str = "image", convert=plain_rgb) -> Image.Image | None:
    """A decoded RGB image (``convert``: :func:`plain_rgb` or :func:`to_rgb`), or ``None`` when the value
    is null or PIL cannot read it (logged at debug)."""
    try:
        img = open_image(value)
        if img is None:
            return None
        img = convert(img)
        img.load()
        return img
    except DECODE_ERRORS as e:
        logger.debug("%s: undecodable image (%s)", who, e)
        return None
