"""Image quality filters: WAON's rules, plus optional blur and entropy checks (DanQing-style).

WAON keeps an image when both sides are >= 150 px, the aspect ratio (width / height) is within
0.5-2, and it has >= 32 distinct colours once resized to 64x64. Every check here is also a step of
its own, and :class:`ImageQuality` runs any set of them with **one decode per row** (the one to put
in a pipeline).

Input
    ``image``: a ``datasets.Image`` column. :meth:`apply` reads it undecoded (it casts the column to
    ``Image(decode=False)`` for the duration of the step and back afterwards), so each batch value
    is ``{"bytes": ..., "path": ...}`` and every row is decoded at most once, by PIL, only when a
    pixel check needs it. :meth:`apply_batch` / :meth:`drop_reasons` also accept PIL images, raw
    ``bytes`` and ``None``.
    Sizes come from columns when present, first non-null of ``width_columns`` / ``height_columns``
    (default: ``original_width`` then ``width``): WAON's size and aspect rules are about the image as
    served, and the stored copy may have been resized. Without those columns, the size is read from
    the image header (no pixel decode).

Reasons
    ``no_image`` (null: failed download), ``undecodable`` (PIL cannot read it), ``too_small``,
    ``bad_aspect_ratio``, ``few_colors``, ``flat_intensity`` (grey std below ``min_pixel_std``), ``blurry``,
    ``low_entropy``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from waon_hf.images import DECODE_ERRORS, is_missing, open_image, to_rgb
from waon_hf.steps.base import Batch, FilterStep, register

logger = logging.getLogger(__name__)

class ImageRow:
    """One row's image, decoded at most once; the size comes from the columns when they have it."""

    __slots__ = ("value", "_size", "_img", "_rgb")

    def __init__(self, value: Any, size: tuple[int, int] | None = None):
        self.value = value
        self._size = size
        self._img: Image.Image | None = None
        self._rgb: Image.Image | None = None

    @property
    def missing(self) -> bool:
        return is_missing(self.value)

    def _opened(self) -> Image.Image:
        if self._img is None:
            self._img = open_image(self.value)
        return self._img

    def size(self) -> tuple[int, int]:
        if self._size is None:
            self._size = self._opened().size  # header only
        return self._size

    def rgb(self) -> Image.Image:
        if self._rgb is None:
            self._rgb = to_rgb(self._opened())
            self._rgb.load()
        return self._rgb


# ---------------------------------------------------------------------------------------- checks
def distinct_colors(img: Image.Image, size: int = 64, at_most: int | None = None) -> int:
    """Distinct RGB colours after a bicubic resize to ``size x size``; stops counting past ``at_most``."""
    small = img.resize((size, size), Image.Resampling.BICUBIC)
    limit = size * size if at_most is None else at_most
    colors = small.getcolors(maxcolors=limit)
    return limit + 1 if colors is None else len(colors)


def laplacian_variance(img: Image.Image) -> float:
    """Variance of the 4-neighbour Laplacian of the grey image (OpenCV ``Laplacian(ksize=1)``): low is blurry."""
    grey = np.asarray(img.convert("L"), dtype=np.float32)
    if grey.shape[0] < 3 or grey.shape[1] < 3:
        return 0.0
    lap = (grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:]) - 4.0 * grey[1:-1, 1:-1]
    return float(lap.var())


def pixel_std(img: Image.Image) -> float:
    """Standard deviation of the grey intensities (0-255): near 0 for a blank or single-colour image."""
    return float(np.asarray(img.convert("L"), dtype=np.float32).std())


def grey_entropy(img: Image.Image) -> float:
    """Shannon entropy (bits, 0-8) of the grey-level histogram."""
    return float(img.convert("L").entropy())


# ----------------------------------------------------------------------------------------- steps
class ImageColumnStep:
    """Mixin for steps that read one ``datasets.Image`` column (``column``) undecoded."""

    column: str = "image"

    def image_columns(self) -> list[str]:
        return [self.column]

    def input_columns(self) -> list[str]:
        return [self.column]


@dataclasses.dataclass
class ImageFilter(ImageColumnStep, FilterStep):
    """Base of the image filters: rows are checked in order, the first failing check names the drop."""

    name = "image_filter"
    column: str = "image"
    width_columns: tuple[str, ...] = ("original_width", "width")
    height_columns: tuple[str, ...] = ("original_height", "height")

    def checks(self) -> list[Callable[[ImageRow], str | None]]:
        raise NotImplementedError

    def optional_columns(self) -> list[str]:
        return [*self.width_columns, *self.height_columns]

    def _sizes(self, batch: Batch, n: int) -> list[tuple[int, int] | None]:
        def first_present(names):
            out = [None] * n
            for name in names:
                values = batch.get(name)
                if values is not None:
                    out = [o if o is not None else v for o, v in zip(out, values, strict=True)]
            return out
        widths, heights = first_present(self.width_columns), first_present(self.height_columns)
        return [(w, h) if w is not None and h is not None else None for w, h in zip(widths, heights, strict=True)]

    def drop_reasons(self, batch: Batch) -> list[str | None]:
        values = batch[self.column]
        sizes = self._sizes(batch, len(values))
        checks = self.checks()
        reasons = []
        for value, size in zip(values, sizes, strict=True):
            row = ImageRow(value, size)
            reasons.append(_first_reason(row, checks))
        return reasons


def _first_reason(row: ImageRow, checks) -> str | None:
    if row.missing:
        return "no_image"
    try:
        for check in checks:
            reason = check(row)
            if reason is not None:
                return reason
    except DECODE_ERRORS as e:
        logger.debug("undecodable image: %s", e)
        return "undecodable"
    return None


def _min_side_check(min_side: int):
    def check(row: ImageRow) -> str | None:
        return "too_small" if min(row.size()) < min_side else None
    return check


def _aspect_check(min_aspect: float, max_aspect: float):
    def check(row: ImageRow) -> str | None:
        width, height = row.size()
        if height <= 0 or not min_aspect <= width / height <= max_aspect:
            return "bad_aspect_ratio"
        return None
    return check


def _colors_check(min_colors: int, size: int):
    def check(row: ImageRow) -> str | None:
        return "few_colors" if distinct_colors(row.rgb(), size, at_most=min_colors) < min_colors else None
    return check


def _blur_check(min_variance: float):
    def check(row: ImageRow) -> str | None:
        return "blurry" if laplacian_variance(row.rgb()) < min_variance else None
    return check


def _pixel_std_check(min_std: float):
    def check(row: ImageRow) -> str | None:
        return "flat_intensity" if pixel_std(row.rgb()) < min_std else None
    return check


def _entropy_check(min_entropy: float):
    def check(row: ImageRow) -> str | None:
        return "low_entropy" if grey_entropy(row.rgb()) < min_entropy else None
    return check


@register
@dataclasses.dataclass
class MinSide(ImageFilter):
    """Drop images whose shorter side is below ``min_side`` px (WAON: 150). Reason ``too_small``."""

    name = "min_side"
    min_side: int = 150

    def checks(self):
        return [_min_side_check(self.min_side)]


@register
@dataclasses.dataclass
class AspectRatio(ImageFilter):
    """Keep ``min_aspect <= width / height <= max_aspect`` (WAON: 0.5-2). Reason ``bad_aspect_ratio``."""

    name = "aspect_ratio"
    min_aspect: float = 0.5
    max_aspect: float = 2.0

    def checks(self):
        return [_aspect_check(self.min_aspect, self.max_aspect)]


@register
@dataclasses.dataclass
class DistinctColors(ImageFilter):
    """Keep images with >= ``min_colors`` distinct colours at ``size x size`` (WAON: 32 at 64x64).
    Reason ``few_colors`` (icons, flat banners, spacer GIFs)."""

    name = "distinct_colors"
    min_colors: int = 32
    size: int = 64

    def checks(self):
        return [_colors_check(self.min_colors, self.size)]


@register
@dataclasses.dataclass
class Blur(ImageFilter):
    """Drop images whose Laplacian variance is below ``min_variance``. Reason ``blurry``.

    Calibrated on 17 scikit-image photographs at the stored size (shorter side 256 px): sharp ones
    measure >= 103, the same with a 2-px Gaussian blur <= 22 (BENCHMARKS.md), hence 50. Flat images
    (few colours) also score low.
    """

    name = "blur"
    min_variance: float = 50.0

    def checks(self):
        return [_blur_check(self.min_variance)]


@register
@dataclasses.dataclass
class Entropy(ImageFilter):
    """Drop images whose grey-level histogram entropy is below ``min_entropy`` bits (0-8). Reason
    ``low_entropy``. Photographs measure >= 4.35 (BENCHMARKS.md), a two-tone silhouette 1.6, hence 3."""

    name = "entropy"
    min_entropy: float = 3.0

    def checks(self):
        return [_entropy_check(self.min_entropy)]


@register
@dataclasses.dataclass
class ImageQuality(ImageFilter):
    """WAON's image rules in one step with one decode per row; blur and entropy checks when set.

    Checks run cheapest first (size and aspect from the columns or the header, then pixels), and the
    first failing one names the drop.
    """

    name = "image_quality"
    min_side: int | None = 150
    min_aspect: float | None = 0.5
    max_aspect: float | None = 2.0
    min_colors: int | None = 32
    colors_size: int = 64
    min_laplacian_variance: float | None = None
    min_entropy: float | None = None
    min_pixel_std: float | None = None  # DanQing: 2

    def checks(self):
        checks = []
        if self.min_side is not None:
            checks.append(_min_side_check(self.min_side))
        if self.min_aspect is not None or self.max_aspect is not None:
            lo = 0.0 if self.min_aspect is None else self.min_aspect
            hi = float("inf") if self.max_aspect is None else self.max_aspect
            checks.append(_aspect_check(lo, hi))
        if self.min_colors is not None:
            checks.append(_colors_check(self.min_colors, self.colors_size))
        if self.min_pixel_std is not None:
            checks.append(_pixel_std_check(self.min_pixel_std))
        if self.min_laplacian_variance is not None:
            checks.append(_blur_check(self.min_laplacian_variance))
        if self.min_entropy is not None:
            checks.append(_entropy_check(self.min_entropy))
        return checks


def default_image_filters() -> list[ImageFilter]:
    """WAON's image-quality stage: sizes, aspect ratio and distinct colours in one pass."""
    return [ImageQuality()]


@register
@dataclasses.dataclass
class KeepDownloaded(FilterStep):
    """Drop rows whose download failed; the drop reason is the download status (``download_http_404``...)."""

    name = "downloaded"
    column: str = "status"

    def drop_reasons(self, batch):
        return [None if s == "ok" else f"download_{s or 'missing'}" for s in batch[self.column]]
