"""Open local paths and remote URLs as binary streams, with retries for HTTP.

HTTP(S) streams survive transient failures mid-file: on a connection error, a timeout, or a
429/5xx, the stream reconnects with ``Range: bytes=<offset>-`` and carries on from the byte it had
reached, with exponential backoff and jitter (:class:`RetryPolicy`, the package's one policy for
remote reads: the crawl listing and every WARC/parquet read), up to ``max_retries`` consecutive
failures. Permanent errors (404, 403, ...) raise :class:`RemoteFileError` at once with the URL and
status, and so does a host name that does not resolve: retrying DNS for half a minute only delays the
message naming the offline alternatives (:data:`OFFLINE_ALTERNATIVES`).

``s3://commoncrawl/...`` is read over HTTPS from Common Crawl's public endpoint (anonymous, the
way Common Crawl recommends); other ``s3://`` and ``fsspec`` URLs go through ``fsspec`` when the
matching filesystem package is installed.
"""

from __future__ import annotations

import io
import logging
import os
import random
import re
import socket
import time
import urllib.parse
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "waon_hf (+https://github.com/waon-hf/waon_hf)"
COMMONCRAWL_HTTPS = "https://data.commoncrawl.org/"


OFFLINE_ALTERNATIVES = ("to work without this host: give local WARC files as INPUT, point --cc-base-url (or "
                        "WAON_CC_BASE_URL) at a reachable mirror, and set HF_HUB_OFFLINE=1 to use Hub files "
                        "already in the local cache")

# Query parameters that carry a credential: presigned S3 (X-Amz-Signature, X-Amz-Credential,
# X-Amz-Security-Token), GCS (X-Goog-*), CloudFront (Signature, Policy, Key-Pair-Id), Azure SAS
# (sig), and the usual token/key names. Compared case-insensitively; a name is secret when it is in
# SECRET_QUERY_PARAMS or starts with one of SECRET_QUERY_PREFIXES.
SECRET_QUERY_PARAMS = frozenset({
    "signature", "sig", "policy", "key-pair-id", "token", "access_token", "refresh_token", "id_token",
    "auth", "authorization", "api_key", "apikey", "api-key", "key", "password", "passwd", "secret",
    "client_secret", "credential", "credentials", "session_token", "security_token", "hf_token",
})
SECRET_QUERY_PREFIXES = ("x-amz-", "x-goog-")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_QUERY_PARAM_IN_TEXT = re.compile(r"(?<=[?&])([A-Za-z0-9_.%-]+)=([^&\s'\"#<>]*)")


def is_secret_param(name: str) -> bool:
    name = name.lower()
    return name in SECRET_QUERY_PARAMS or name.startswith(SECRET_QUERY_PREFIXES)


def redact_url(url: str) -> str:
    """``url`` without credentials, the form recorded anywhere (columns, manifest, logs, errors).

    Drops the userinfo (``user:pass@``) and every secret query parameter (:func:`is_secret_param`);
    the rest (scheme, host, path, other parameters, fragment) is kept as written. Local paths and
    URLs without credentials come back unchanged. The real URL is still the one that is opened.
    """
    if "://" not in url:
        return url
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # not parseable as a URL (e.g. a bad port): keep scheme and host only
        return url.split("://", 1)[0] + "://" + url.split("://", 1)[1].split("/", 1)[0].rpartition("@")[2]
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query:
        kept = [p for p in query.split("&") if p and not is_secret_param(urllib.parse.unquote_plus(p.split("=")[0]))]
        query = "&".join(kept)
    if netloc == parts.netloc and query == parts.query:
        return url
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """A message (an exception, a log line) with the credentials of every URL in it removed, and the
    value of any secret query parameter left in it (e.g. a path without its scheme) masked."""
    text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    return _QUERY_PARAM_IN_TEXT.sub(lambda m: f"{m.group(1)}=***" if is_secret_param(m.group(1)) else m.group(0), text)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message with :func:`redact_text` (for loggers that print request URLs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


# urllib3 logs every request line at DEBUG ("GET /x.warc.gz?X-Amz-Signature=... HTTP/1.1"): -vv must not
# print a presigned URL's signature.
logging.getLogger("urllib3.connectionpool").addFilter(RedactingFilter())


class RemoteFileError(IOError):
    """A remote file could not be read (permanent HTTP error or retries exhausted)."""


class HostNotFoundError(RemoteFileError):
    """The host name of a URL does not resolve (no network, a typo, no DNS on this node): not retried."""


@dataclass
class RetryPolicy:
    """How every remote read retries: exponential backoff with jitter, so that a thousand array tasks
    that failed together do not all come back in the same second."""

    max_retries: int = 5
    backoff_s: float = 1.0  # first wait; doubles each time
    max_backoff_s: float = 60.0
    jitter: float = 0.5  # each wait is scaled by a random factor in [1 - jitter, 1 + jitter]
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.backoff_s < 0 or self.max_backoff_s < 0 or not 0 <= self.jitter <= 1:
            raise ValueError(f"retry policy out of range: {self}")

    def wait(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry ``attempt + 1``."""
        base = min(self.max_backoff_s, self.backoff_s * (2 ** attempt))
        return base * (rng or random).uniform(1 - self.jitter, 1 + self.jitter)


def is_name_resolution_error(error: BaseException) -> bool:
    """Whether ``error`` comes from a host name that does not resolve (through requests' and urllib3's
    wrappers: ``ConnectionError(MaxRetryError(reason=NameResolutionError(...gaierror)))``)."""
    seen: set[int] = set()
    todo: list = [error]
    while todo:
        e = todo.pop()
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, socket.gaierror) or type(e).__name__ == "NameResolutionError":
            return True
        todo += [e.__cause__, e.__context__, getattr(e, "reason", None), *e.args]
    return False


def check_resolves(url: str) -> None:
    """Raise :class:`HostNotFoundError` at once when the host of ``url`` does not resolve: for callers
    whose client library would otherwise retry a DNS failure for half a minute (the Hub's)."""
    host = urlsplit(url).hostname
    if not host:
        return
    try:
        socket.getaddrinfo(host, None)
    except socket.gaierror as e:
        raise host_not_found(url, e) from None


def host_not_found(url: str, error: BaseException) -> HostNotFoundError:
    host = urlsplit(url).hostname or url
    return HostNotFoundError(f"{url}: the host {host} does not resolve (no network or DNS here?); "
                             f"{OFFLINE_ALTERNATIVES}")


class HTTPRangeStream(io.RawIOBase):
    """A forward-only binary stream over an HTTP(S) URL that resumes after transient failures."""

    def __init__(self, url: str, policy: RetryPolicy | None = None, session: requests.Session | None = None):
        self.url = url
        self.public_url = redact_url(url)  # what messages show
        self.policy = policy or RetryPolicy()
        self._session = session or requests.Session()
        self._pos = 0
        self._resp = None
        self._raw = None
        self._eof = False
        self._end: int | None = None
        self.retries = 0
        self._connect()

    def _connect(self) -> None:
        attempt = 0
        while True:
            headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
            if self._pos:
                headers["Range"] = f"bytes={self._pos}-"
            try:
                resp = self._session.get(
                    self.url, headers=headers, stream=True,
                    timeout=(self.policy.connect_timeout_s, self.policy.read_timeout_s),
                )
            except (requests.ConnectionError, requests.Timeout) as e:
                if is_name_resolution_error(e):
                    raise host_not_found(self.url, e) from None
                attempt = self._backoff(attempt, f"connection failed: {e}")
                continue
            if resp.status_code in RETRYABLE_STATUS:
                resp.close()
                attempt = self._backoff(attempt, f"HTTP {resp.status_code}")
                continue
            if resp.status_code == 416 and self._pos:
                resp.close()
                self._eof = True
                return
            if resp.status_code not in (200, 206):
                resp.close()
                raise RemoteFileError(f"{self.public_url}: HTTP {resp.status_code} {resp.reason}")
            if self._pos and resp.status_code == 200:
                # The server ignored Range: skip what was already consumed.
                self._skip(resp.raw, self._pos)
            self._resp, self._raw = resp, resp.raw
            self._end = _total_length(resp)
            return

    @staticmethod
    def _skip(raw, n: int) -> None:
        while n > 0:
            chunk = raw.read(min(n, 1 << 20))
            if not chunk:
                raise RemoteFileError("server ignored Range and returned a shorter body")
            n -= len(chunk)

    def _backoff(self, attempt: int, why: str) -> int:
        why = redact_text(why)
        if attempt >= self.policy.max_retries:
            raise RemoteFileError(f"{self.public_url}: giving up after {attempt} retries ({why})")
        delay = self.policy.wait(attempt)
        logger.warning("%s at byte %d: %s; retry %d in %.1fs", self.public_url, self._pos, why, attempt + 1, delay)
        self.retries += 1
        time.sleep(delay)
        return attempt + 1

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._eof:
            return 0
        attempt = 0
        while True:
            try:
                n = self._raw.readinto(buffer)
            except Exception as e:  # urllib3 raises a zoo of types for a dropped connection
                self._resp.close()
                attempt = self._backoff(attempt, f"read failed: {type(e).__name__}: {e}")
                self._connect()
                if self._eof:
                    return 0
                continue
            if n == 0:
                if self._end is not None and self._pos < self._end:
                    self._resp.close()
                    attempt = self._backoff(attempt, f"connection closed at byte {self._pos} of {self._end}")
                    self._connect()
                    continue
                self._eof = True
            self._pos += n
            return n

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        if self._resp is not None:
            self._resp.close()
        super().close()


def _total_length(resp: requests.Response) -> int | None:
    """Total size of the remote file, from Content-Range (206) or Content-Length (200)."""
    content_range = resp.headers.get("Content-Range", "")
    total = content_range.rsplit("/", 1)[-1]
    if total.isdigit():
        return int(total)
    length = resp.headers.get("Content-Length", "")
    return int(length) if resp.status_code == 200 and length.isdigit() else None


def to_http_url(url: str) -> str:
    """``s3://commoncrawl/<key>`` -> the public HTTPS URL of the same object; others unchanged."""
    if url.startswith("s3://commoncrawl/"):
        base = os.environ.get("WAON_CC_BASE_URL", COMMONCRAWL_HTTPS)
        return base.rstrip("/") + "/" + url[len("s3://commoncrawl/"):]
    return url


def open_binary(location: str, policy: RetryPolicy | None = None):
    """Open a local path, http(s) URL or fsspec URL for buffered binary reading."""
    location = to_http_url(location)
    if location.startswith(("http://", "https://")):
        return io.BufferedReader(HTTPRangeStream(location, policy), buffer_size=1 << 20)
    if "://" in location:
        try:
            import fsspec
            return fsspec.open(location, "rb").open()
        except ImportError as e:  # e.g. s3fs missing for s3://
            raise RemoteFileError(f"cannot open {redact_url(location)}: {e}") from e
    return open(location, "rb", buffering=1 << 20)
