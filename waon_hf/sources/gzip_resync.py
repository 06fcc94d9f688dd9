"""Decompress a multi-member gzip stream (one member per WARC record), surviving damage.

Common Crawl writes each WARC record as its own gzip member. Plain gzip readers stop at the first
bytes that are not a gzip header, so garbage between two members, or one corrupt member, loses the
rest of a 1 GB file. This reader decompresses member by member; when the bytes after a member are
not a gzip header, or a member is corrupt, it scans forward to the next gzip header
(``1f 8b 08``) and carries on. What it skipped is counted:

* ``gzip_garbage_bytes``: bytes skipped between members;
* ``gzip_corrupt_members``: members that failed to decompress (the output resumes at the next one);
* ``gzip_truncated``: the stream ended inside a member.

The output is the concatenated plain WARC, which FastWARC reads in ``quirks_mode`` so that a
partial record left by a corrupt member is skipped up to the next ``WARC/`` header.
"""

from __future__ import annotations

import io
import zlib
from collections import Counter

_MAGIC = b"\x1f\x8b\x08"
_CHUNK = 1 << 16


class ResyncGzipReader(io.RawIOBase):
    def __init__(self, raw, counts: Counter):
        self.raw = raw
        self.counts = counts
        self._in = b""  # compressed bytes not yet consumed
        self._d = None  # decompressor of the current member
        self._out = memoryview(b"")
        self._eof = False
        self._pos = 0

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        """Bytes of decompressed output delivered so far (FastWARC asks once, at the start)."""
        return self._pos

    def readinto(self, buffer) -> int:
        while not self._out:
            if self._eof:
                return 0
            self._step()
        n = min(len(buffer), len(self._out))
        buffer[:n] = self._out[:n]
        self._out = self._out[n:]
        self._pos += n
        return n

    def _more_input(self) -> bool:
        chunk = self.raw.read(_CHUNK)
        if not chunk:
            return False
        self._in = self._in + chunk if self._in else chunk
        return True

    def _step(self) -> None:
        """Produce some output, or advance past damage, or reach the end."""
        if self._d is None and not self._start_member():
            return
        if not self._in and not self._more_input():
            if self._d is not None and not self._d.eof:
                self.counts["gzip_truncated"] += 1
            self._d = None
            self._eof = True
            return
        data, self._in = self._in, b""
        try:
            out = self._d.decompress(data)
        except zlib.error:
            self.counts["gzip_corrupt_members"] += 1
            self._d = None
            self._in = data[1:]  # resync after the bad member's first byte
            return
        if self._d.eof:
            self._in = self._d.unused_data
            self._d = None
        self._out = memoryview(out)

    def _start_member(self) -> bool:
        """Position at the next gzip header; False when the stream is exhausted."""
        while True:
            if len(self._in) < len(_MAGIC) and not self._more_input():
                if self._in:
                    self.counts["gzip_garbage_bytes"] += len(self._in)
                self._in = b""
                self._eof = True
                return False
            at = self._in.find(_MAGIC)
            if at == 0:
                self._d = zlib.decompressobj(wbits=31)
                return True
            if at < 0:  # keep a tail in case the header straddles two reads
                keep = len(_MAGIC) - 1
                self.counts["gzip_garbage_bytes"] += len(self._in) - keep
                self._in = self._in[-keep:]
                if not self._more_input():
                    self.counts["gzip_garbage_bytes"] += len(self._in)
                    self._in = b""
                    self._eof = True
                    return False
                continue
            self.counts["gzip_garbage_bytes"] += at
            self._in = self._in[at:]
