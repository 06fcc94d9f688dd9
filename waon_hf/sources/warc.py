"""Stream HTML responses out of a WARC file with FastWARC, counting everything skipped.

Policy for bad input (each a counter of the ``warc`` stage; the run goes on):
* non-response records (``request``, ``metadata``, ``warcinfo``...): ``non_response``;
* responses without parseable HTTP headers: ``no_http_headers``; HTTP status other than 200:
  ``http_status_other``; not ``text/html``/``application/xhtml+xml``: ``non_html``;
  no ``WARC-Target-URI``: ``no_target_uri``;
* payloads larger than ``max_payload_bytes`` are not read at all: ``oversized``;
* a record cut short by the end of the file (FastWARC yields it with a short payload):
  ``truncated``;
* damage in the compressed stream (garbage between gzip members, a corrupt or truncated member):
  ``read_errors``, then a second pass resynchronises past it (see :func:`iter_html_responses`);
  garbage inside the plain WARC stream is skipped by FastWARC's ``quirks_mode``.

* a file that is no WARC at all (random bytes, gzipped text, an HTML page; detected when no record
  was read and the file's first bytes, gunzipped, do not start with ``WARC/``): ``not_warc``, with
  a warning naming the file. Not an error: a failed shard is retried on every re-run and keeps the
  whole run from finishing, and a file that is not a WARC will never become one; a crawl of
  100,000 files should not stop for one bad download. A WARC cut short stays ``truncated`` /
  ``read_errors``.

A remote source that fails for good (:class:`RemoteFileError`, after retries) is not damage in the
file: it propagates, the shard is not marked done, and a re-run retries it.
"""

from __future__ import annotations

import logging
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from fastwarc.warc import ArchiveIterator, WarcRecordType

from waon_hf.sources.gzip_resync import ResyncGzipReader
from waon_hf.sources.remote import RemoteFileError, open_binary

logger = logging.getLogger(__name__)

HTML_TYPES = ("text/html", "application/xhtml+xml")
DEFAULT_MAX_PAYLOAD_BYTES = 5 * 1024 * 1024
WARC_MAGIC = b"WARC/"
_HEAD_BYTES = 64 * 1024


@dataclass
class HtmlResponse:
    url: str
    record_id: str
    content_type: str | None
    body: bytes


def iter_html_responses(
    location: str, counts: Counter, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
) -> Iterator[HtmlResponse]:
    """Yield the HTML responses of one WARC file (local path or URL); update ``counts`` in place.

    The file is read with FastWARC's own decompression. If that fails part-way (garbage between
    gzip members, a corrupt or truncated member), the file is read again through
    :class:`ResyncGzipReader`, which skips the damage, and iteration resumes after the records
    already seen; the damage is counted (``read_errors`` plus the ``gzip_*`` counters).
    """
    seen = 0
    with open_binary(location) as stream:
        try:
            for record in ArchiveIterator(stream, parse_http=True, auto_decode="all", quirks_mode=True):
                seen += 1
                page = _html_response(record, counts, max_payload_bytes)
                if page is not None:
                    yield page
            counts["records"] += seen
            if seen == 0:
                _check_is_warc(location, counts)
            return
        except RemoteFileError:
            raise  # the source went away: fail the shard so a re-run retries it whole
        except Exception as e:  # FastWARC signals damage as OSError/ValueError/RuntimeError
            counts["read_errors"] += 1
            logger.warning("%s: damaged after %d records (%s); re-reading with resync", location, seen, e)
    yield from _resync_pass(location, counts, max_payload_bytes, skip=seen)


def file_head(location: str, n: int = 512) -> bytes:
    """The first ``n`` bytes of a file's content (gunzipped when it is gzip), as far as they can be read."""
    with open_binary(location) as stream:
        raw = stream.read(_HEAD_BYTES)
    if raw[:2] != b"\x1f\x8b":
        return raw[:n]
    try:
        return zlib.decompressobj(31).decompress(raw, n)
    except zlib.error:
        return b""


def _check_is_warc(location: str, counts: Counter) -> None:
    """Count and warn about a file that gave no record because it is not a WARC file at all."""
    head = file_head(location)
    if head.lstrip(b"\r\n").startswith(WARC_MAGIC):
        return
    counts["not_warc"] += 1
    logger.warning("%s is not a WARC file (%s): no record read from it. Expected a WARC/1.0 or WARC/1.1 file, "
                   "plain or gzip-compressed (.warc.gz)", location,
                   f"its content starts with {head[:24]!r}" if head else "empty")


def _resync_pass(location: str, counts: Counter, max_payload_bytes: int, skip: int) -> Iterator[HtmlResponse]:
    n = 0
    with open_binary(location) as raw:
        records = ArchiveIterator(ResyncGzipReader(raw, counts), parse_http=True, auto_decode="all",
                                  quirks_mode=True)
        try:
            for record in records:
                n += 1
                if n <= skip:
                    continue
                page = _html_response(record, counts, max_payload_bytes)
                if page is not None:
                    yield page
        except RemoteFileError:
            raise
        except Exception as e:
            counts["read_errors"] += 1
            logger.warning("%s: unreadable after %d records even with resync (%s); keeping what was read",
                           location, n, e)
    counts["records"] += max(n, skip)
    if max(n, skip) == 0:
        _check_is_warc(location, counts)


def _html_response(record, counts: Counter, max_payload_bytes: int) -> HtmlResponse | None:
    if record.record_type != WarcRecordType.response:
        counts["non_response"] += 1
        return None
    headers = record.http_headers if record.is_http else None
    if headers is None or headers.status_code is None:
        counts["no_http_headers"] += 1
        return None
    if headers.status_code != 200:
        counts["http_status_other"] += 1
        return None
    content_type = headers.get("Content-Type")
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime not in HTML_TYPES:
        counts["non_html"] += 1
        return None
    url = record.headers.get("WARC-Target-URI")
    if not url:
        counts["no_target_uri"] += 1
        return None
    if record.content_length > max_payload_bytes:
        counts["oversized"] += 1
        return None
    try:
        body = record.reader.read(max_payload_bytes + 1)
    except Exception as e:
        counts["read_errors"] += 1
        logger.warning("payload of %s unreadable: %s", url, e)
        return None
    if len(body) > max_payload_bytes:
        counts["oversized"] += 1
        return None
    if len(body) < record.content_length:  # the file ended inside this record (a truncated download)
        counts["truncated"] += 1
        return None
    counts["html_responses"] += 1
    return HtmlResponse(url.strip("<>"), record.record_id or "", content_type, body)
