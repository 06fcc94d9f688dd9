"""Serve images out of WARC files, so that downloads can be replayed with no network.

Common Crawl (and any crawler that writes WARC) stores the images it fetched as ``response``
records: an HTTP header block (``Content-Type: image/jpeg`` ...) followed by the bytes.
:class:`WarcImageIndex` maps each such image URL to where its record starts, and reads the bytes
back on demand; :class:`waon_hf.steps.download.DownloadImages` consults it (option
``warc_sources``) before going to the network, which is how the embedded sample and offline users
get images.

What is indexed: ``response`` records with HTTP status 200, a ``Content-Type`` of ``image/*`` and a
``WARC-Target-URI``. The first capture of a URL wins (later duplicates are counted, not indexed).
Everything else is skipped and counted (``non_response``, ``non_image``, ``http_status_other``,
``no_target_uri``, ``duplicates``, ``read_errors``).

Local files are indexed by ``(path, offset)`` (the record's offset in the file: for ``.warc.gz`` the
offset of its gzip member, which FastWARC can start reading from), so an index of many images
costs a few bytes per URL and each image is read when asked for. Remote archives (``http(s)://``,
``s3://``) cannot be seeked cheaply, so their image payloads are held in memory: meant for small
archives only.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from fastwarc.warc import ArchiveIterator, WarcRecordType

from waon_hf.sources.remote import open_binary

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArchivedImage:
    """One image response read back from an archive."""

    url: str
    data: bytes
    content_type: str
    x_robots_tag: tuple[str, ...] = ()
    truncated: bool = False  # the record ended before its declared length (a cut-off archive)


def _is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def _local_path(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


def _image_record(record, counts: Counter) -> tuple[str, str, tuple[str, ...]] | None:
    """(url, content type, X-Robots-Tag values) when ``record`` is a 200 image response."""
    if record.record_type != WarcRecordType.response:
        counts["non_response"] += 1
        return None
    headers = record.http_headers if record.is_http else None
    if headers is None or headers.status_code != 200:
        counts["http_status_other"] += 1
        return None
    content_type = (headers.get("Content-Type") or "").strip()
    if not content_type.split(";", 1)[0].strip().lower().startswith("image/"):
        counts["non_image"] += 1
        return None
    url = (record.headers.get("WARC-Target-URI") or "").strip().strip("<>")
    if not url:
        counts["no_target_uri"] += 1
        return None
    tags = tuple(value for key, value in headers if key.lower() == "x-robots-tag")
    return url, content_type, tags


def _read_payload(record, url: str, content_type: str, tags: tuple[str, ...]) -> ArchivedImage:
    data = record.reader.read()
    return ArchivedImage(url, data, content_type, tags, truncated=len(data) < record.content_length)


class WarcImageIndex:
    """``url -> image`` over the image responses of some WARC files.

    >>> index = WarcImageIndex.build(["images.warc.gz"])   # doctest: +SKIP
    >>> index.get("https://example.jp/a.jpg").data[:3]      # doctest: +SKIP
    b'\\xff\\xd8\\xff'
    """

    def __init__(self) -> None:
        self._offsets: dict[str, tuple[str, int]] = {}
        self._inline: dict[str, ArchivedImage] = {}
        self.counts: Counter = Counter()

    @classmethod
    def build(cls, paths: Iterable[str | os.PathLike]) -> WarcImageIndex:
        """Scan ``paths`` (local files or URLs) once and index their image responses."""
        index = cls()
        for path in paths:
            index.add(os.fspath(path))
        return index

    def add(self, path: str) -> None:
        try:
            if _is_local(path):
                self._add_local(_local_path(path))
            else:
                self._add_remote(path)
        except OSError:
            raise
        except Exception as e:  # FastWARC reports damage as ValueError/RuntimeError: keep what was read
            self.counts["read_errors"] += 1
            logger.warning("%s: unreadable after %d images (%s)", path, len(self), e)

    def _add_local(self, path: str) -> None:
        with open(path, "rb") as stream:
            for record, found in self._new_images(stream):
                self._offsets[found[0]] = (path, record.stream_pos)  # read again on demand

    def _add_remote(self, path: str) -> None:
        with open_binary(path) as stream:
            for record, found in self._new_images(stream):
                self._inline[found[0]] = _read_payload(record, *found)  # a stream cannot seek back

    def _new_images(self, stream):
        """Image records of a stream whose URL is not indexed yet; counts images and duplicates."""
        for record in ArchiveIterator(stream, parse_http=True, auto_decode="all", quirks_mode=True):
            found = _image_record(record, self.counts)
            if found is None:
                continue
            if found[0] in self:
                self.counts["duplicates"] += 1
                continue
            self.counts["images"] += 1
            yield record, found

    def __len__(self) -> int:
        return len(self._offsets) + len(self._inline)

    def __contains__(self, url: object) -> bool:
        return url in self._offsets or url in self._inline

    def urls(self) -> Iterator[str]:
        yield from self._offsets
        yield from self._inline

    def get(self, url: str) -> ArchivedImage | None:
        """The archived image for ``url``, or ``None`` when the archives do not hold it."""
        if url in self._inline:
            return self._inline[url]
        where = self._offsets.get(url)
        if where is None:
            return None
        path, offset = where
        with open(path, "rb") as stream:
            stream.seek(offset)
            for record in ArchiveIterator(stream, parse_http=True, auto_decode="all", quirks_mode=True):
                found = _image_record(record, Counter())
                if found is None or found[0] != url:  # the file changed since it was indexed
                    return None
                return _read_payload(record, *found)
        return None
