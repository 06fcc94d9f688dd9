"""WARC/1.0 records as bytes, and a writer with one gzip member per record (like Common Crawl).

Record dates and ids are derived from their arguments, and gzip headers carry no time, so the same
records give the same file bytes. :class:`Garbage` and :class:`Truncated` items let a test place
bytes that a robust reader must survive.
"""

from __future__ import annotations

import base64
import datetime as _dt
import gzip
import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_DATE = "2024-02-20T12:00:00Z"
_EPOCH = _dt.datetime(2024, 2, 20, 12, 0, 0, tzinfo=_dt.UTC)
HttpHeaders = Mapping[str, str] | Sequence[tuple[str, str]]


def record_date(offset_s: int) -> str:
    return (_EPOCH + _dt.timedelta(seconds=offset_s)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _record_id(*parts: object) -> str:
    key = ":".join(map(str, parts))
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'waon-synthetic:' + key)}>"


def _sha1(data: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode()


def warc_record(
    warc_type: str,
    block: bytes,
    content_type: str,
    url: str | None = None,
    record_id: str | None = None,
    date: str = DEFAULT_DATE,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """Raw bytes of one WARC/1.0 record (header, block, trailing CRLFCRLF)."""
    headers = [("WARC-Type", warc_type), ("WARC-Date", date),
               ("WARC-Record-ID", record_id or _record_id(warc_type, url or "", date))]
    if url is not None:
        headers.append(("WARC-Target-URI", url))
    headers += list(extra_headers)
    headers += [("WARC-Block-Digest", _sha1(block)), ("Content-Type", content_type),
                ("Content-Length", str(len(block)))]
    head = "WARC/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return head.encode("utf-8") + block + b"\r\n\r\n"


def http_response_block(status: int, headers: HttpHeaders, body: bytes, reason: str | None = None) -> bytes:
    items = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    reason = reason or {200: "OK", 301: "Moved Permanently", 404: "Not Found"}.get(status, "Unknown")
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in items) + "\r\n"
    return head.encode("latin-1") + body


def warc_response(
    url: str,
    http_headers: HttpHeaders,
    body: bytes,
    record_id: str | None = None,
    date: str = DEFAULT_DATE,
    status: int = 200,
    reason: str | None = None,
) -> bytes:
    """A ``response`` record (``application/http; msgtype=response``) with payload digest."""
    block = http_response_block(status, http_headers, body, reason)
    return warc_record("response", block, "application/http; msgtype=response", url,
                       record_id or _record_id("response", url), date,
                       [("WARC-Payload-Digest", _sha1(body)), ("WARC-IP-Address", "192.0.2.1")])


def warc_request(url: str, record_id: str | None = None, date: str = DEFAULT_DATE) -> bytes:
    parsed = urlparse(url)
    target = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    block = (f"GET {target or '/'} HTTP/1.1\r\nHost: {parsed.netloc}\r\n"
             "User-Agent: CCBot/2.0 (https://commoncrawl.org/faq/)\r\nAccept: text/html\r\n\r\n").encode()
    return warc_record("request", block, "application/http; msgtype=request", url,
                       record_id or _record_id("request", url), date)


def warc_metadata(
    url: str, fields: HttpHeaders, record_id: str | None = None, date: str = DEFAULT_DATE
) -> bytes:
    items = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
    block = "".join(f"{k}: {v}\r\n" for k, v in items).encode("utf-8")
    return warc_record("metadata", block, "application/warc-fields", url,
                       record_id or _record_id("metadata", url), date)


def warcinfo(filename: str, fields: HttpHeaders = (), date: str = DEFAULT_DATE) -> bytes:
    items = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
    # The software name is part of the file bytes: the shipped samples were written with this value.
    items = [("software", "waon_hf.synthetic"), ("format", "WARC File Format 1.0"), *items]
    block = "".join(f"{k}: {v}\r\n" for k, v in items).encode("utf-8")
    return warc_record("warcinfo", block, "application/warc-fields", None, _record_id("warcinfo", filename),
                       date, [("WARC-Filename", filename)])


@dataclass(frozen=True)
class Garbage:
    """Bytes written verbatim between records (never gzipped)."""

    data: bytes


@dataclass(frozen=True)
class Truncated:
    """A record whose (gzipped, for .gz files) bytes are cut to ``keep`` of their length."""

    record: bytes
    keep: float = 0.5


WarcItem = bytes | Garbage | Truncated


def encode_item(item: WarcItem, gz: bool, compresslevel: int = 6) -> bytes:
    """Bytes of one item as written to a file (a gzip member per record when ``gz``)."""
    if isinstance(item, Garbage):
        return item.data
    raw = item.record if isinstance(item, Truncated) else item
    data = gzip.compress(raw, compresslevel, mtime=0) if gz else raw
    if isinstance(item, Truncated):
        data = data[: max(1, int(len(data) * item.keep))]
    return data


def write_warc(path: str | Path, records: Iterable[WarcItem], compresslevel: int = 6) -> None:
    """Write records; one gzip member per record when ``path`` ends in ``.gz`` (like Common Crawl)."""
    gz = str(path).endswith(".gz")
    with open(path, "wb") as fh:
        for rec in records:
            fh.write(encode_item(rec, gz, compresslevel))


def warc_image_response(
    url: str, data: bytes, content_type: str = "image/jpeg", extra_headers: HttpHeaders = (), status: int = 200,
) -> bytes:
    """A WARC ``response`` record serving ``data`` as an image (as Common Crawl stores fetched images)."""
    items = list(extra_headers.items()) if isinstance(extra_headers, Mapping) else list(extra_headers)
    headers = [("Content-Type", content_type), ("Content-Length", str(len(data))), *items]
    return warc_response(url, headers, data, status=status)

