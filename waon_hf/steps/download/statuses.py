"""The closed set of download outcomes, and the helpers that make, map and count them.

What each status means, and which are retryable: ``docs/download.md`` ("Statuses").
"""

from __future__ import annotations

import email.utils
import time
from collections import Counter
from typing import Any

import datasets

STATUSES: tuple[str, ...] = (
    "ok", "invalid_url", "blocked_private_address", "robots_disallowed", "robots_unreachable", "x_robots_tag",
    "too_many_redirects", "http_403", "http_404", "http_429", "http_4xx", "http_5xx", "http_other", "timeout",
    "connection_error", "too_large", "not_image", "too_many_pixels", "decode_error", "not_in_archive",
    "unexpected_error",
)
RETRYABLE_STATUSES = frozenset({"timeout", "connection_error", "http_429", "http_5xx", "robots_unreachable"})

OUTPUT_COLUMNS: tuple[str, ...] = (
    "image", "status", "error", "width", "height", "original_width", "original_height", "sha256",
)


def retryable(status: str | None) -> bool:
    """Whether a row with this status is worth fetching again later (transient failures only)."""
    return status in RETRYABLE_STATUSES


def status_counts(data: Any, column: str = "status") -> dict[str, int]:
    """``status -> rows``, most frequent first, for a ``datasets.Dataset``, a batch or a list."""
    if isinstance(data, datasets.Dataset):
        import pyarrow.compute as pc

        values = data.with_format("arrow")[column]
        counts = {item["values"]: item["counts"] for item in pc.value_counts(values).to_pylist()}
    else:
        counts = Counter(data[column] if isinstance(data, dict) else data)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0]))))


class Failure(Exception):
    """A row's failure: a status from :data:`STATUSES` plus a human-readable detail."""

    def __init__(self, status: str, error: str, retry_after: float | None = None, final: bool = False):
        super().__init__(f"{status}: {error}")
        self.status, self.error, self.retry_after = status, error, retry_after
        self.final = final  # not worth retrying within this call (e.g. a cached robots.txt failure)


def failure_row(status: str, error: str) -> dict[str, Any]:
    """The output row of a failed URL: ``status`` and ``error`` set, every other column null."""
    return {"image": None, "status": status, "error": error, "width": None, "height": None,
            "original_width": None, "original_height": None, "sha256": None}


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date) as seconds from now; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def http_failure(code: int, reason: str | None, headers) -> Failure:
    """The :class:`Failure` for an HTTP status that is not a success (with ``Retry-After`` if sent)."""
    detail = f"HTTP {code} {reason or ''}".strip()
    if code == 429 or code >= 500:
        status = "http_429" if code == 429 else "http_5xx"
        return Failure(status, detail, retry_after_seconds(headers.get("Retry-After")))
    if code == 403:
        return Failure("http_403", detail)
    if code in (404, 410):
        return Failure("http_404", detail)
    if 400 <= code < 500:
        return Failure("http_4xx", detail)
    return Failure("http_other", detail)


STATUS_COLUMN = "status"


def count_statuses(rows, prefix: str, stats) -> None:
    """``<prefix>.status_<value>`` for every download status in ``rows`` (img2dataset's status_dict)."""
    import pyarrow.compute as pc

    if STATUS_COLUMN not in rows.column_names:
        return
    for entry in pc.value_counts(rows.data.column(STATUS_COLUMN)).to_pylist():
        stats.add(f"{prefix}.status_{entry['values'] or 'missing'}", entry["counts"])
