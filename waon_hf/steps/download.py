"""Download, validate, resize and re-encode images: the ``download`` step.

:class:`DownloadImages` is a :class:`~waon_hf.steps.base.MapStep` over a ``url`` column. Each call
of ``process_batch`` downloads its batch concurrently (asyncio + aiohttp, an event loop and an HTTP
session per call, so nothing open survives pickling) and adds one value per row to each of
:data:`OUTPUT_COLUMNS`. A failure is a value, not an exception: every row gets a ``status`` from
the closed set below and a human-readable ``error``; failed rows have null ``image``, sizes and
``sha256``.

Statuses (:data:`STATUSES`; retryable ones, see :func:`retryable`, marked R)
-------------------------------------------------------------------------
``ok``                      image stored
``invalid_url``             not an absolute http(s) URL, or unparsable (also a bad redirect Location)
``blocked_private_address`` the host is (or resolves only to) a non-public address (SSRF guard)
``robots_disallowed``       robots.txt disallows our user agent
``robots_unreachable`` R    robots.txt answered 429 or 5xx (RFC 9309: assume disallow)
``x_robots_tag``            the response carries ``X-Robots-Tag: noai|noimageai|noindex|noimageindex``
``too_many_redirects``      more than ``max_redirects`` redirects (a loop, usually)
``http_403``, ``http_404`` (also 410), ``http_4xx`` (other 4xx), ``http_other`` (1xx, 204, 3xx
without Location...) and ``http_429`` R, ``http_5xx`` R: the HTTP status; ``error`` has the code
``timeout`` R               connect, read or total timeout, or the batch deadline
``connection_error`` R      DNS failure, refused, reset, TLS error, body cut short
``too_large``               body (declared or read) over ``max_bytes``
``not_image``               the bytes are not an image in :data:`DECODE_FORMATS` (html, svg, json...)
``too_many_pixels``         declared width x height over ``max_pixels`` (a decompression bomb)
``decode_error``            an image format was recognised but the data does not decode (truncated...)
``not_in_archive``          ``offline=True`` and the URL is in none of ``warc_sources``
``unexpected_error``        a bug or an exotic exception; logged with its traceback

Request policy
--------------
* **Concurrency**: at most ``concurrency`` requests in flight per process (the step runs one batch
  at a time per process), at most ``per_host`` per host, and, with ``per_host_rate``, at most that
  many requests per second per host. A "host" is the URL's origin (``scheme://host[:port]``), the
  key that robots.txt is scoped to. A task waits for its host slot before it takes a global slot, so a
  batch dominated by one site does not starve the others. Connections are reused (keep-alive) within
  a batch; DNS answers are cached for 5 minutes.
* **Timeouts**: ``timeout_connect`` (TCP + TLS), ``timeout_read`` (between two reads) and
  ``timeout_total`` (one request, headers to last byte, so a server dripping bytes cannot hold a
  slot). ``batch_timeout_s`` is a backstop for the whole call: rows still unfinished then get
  ``timeout`` ("batch deadline"), so a batch never hangs at its tail.
* **Retries**: failures whose status is retryable are retried ``retries`` times in the same call,
  after ``backoff_s * 2**attempt`` (x0.8-1.2 jitter) or the server's ``Retry-After`` when it is
  longer; a wait over ``max_backoff_s`` ends the retries (the row keeps its retryable status). Other
  failures are final. :meth:`DownloadImages.retry_failed` re-fetches only retryable rows of an
  already downloaded batch; :meth:`DownloadImages.apply_retry_failed` does it on a dataset.
* **Redirects** are followed by hand (``allow_redirects=False``): at most ``max_redirects``; every
  hop is checked again (scheme, SSRF guard, robots.txt of the new host, host slot).
* **Size**: a ``Content-Length`` over ``max_bytes`` is refused before the body is read, and a body is
  never read past ``max_bytes``. We ask for ``Accept-Encoding: identity``.
* **Identity**: ``user_agent`` is sent on every request. The default names this project; a crawl
  run by you should set it to something like ``"mycrawl/1.0 (+https://example.org/crawl-info)"``,
  a page saying who you are, why you crawl and how to opt out. Its first product token (the text
  before the first ``/`` or space, lowercased) is the token matched against robots.txt groups and
  against ``X-Robots-Tag: <token>: ...`` lines.

Consent
-------
* **robots.txt** (``respect_robots``): fetched once per origin (``scheme://host[:port]``) per step
  instance per process (the last 100,000 origins are cached on the instance across batches and
  dropped when pickled; concurrent rows of the same host wait for one fetch), with
  ``urllib.robotparser`` rules (first matching group line wins; no ``*``/``$`` wildcards) for our
  token. 2xx: parsed (first 512 KiB). 4xx other than 429, too many
  redirects, or a redirect to a refused address: no robots.txt, everything allowed. 429, 5xx, a
  timeout or a connection error: **everything disallowed** for that host for the rest of the
  process (RFC 9309 section 2.3.1.4 says a crawler MUST assume complete disallow when robots.txt is
  unreachable; Google does the same for 5xx, temporarily). Those rows get ``robots_unreachable``
  (429/5xx), or ``timeout``/``connection_error`` when the host itself cannot be reached, with the
  robots.txt failure in ``error``; all three are retryable, so a ``--retry-failed`` run asks again.
  (They are not retried within the call: the answer is cached.)
* **X-Robots-Tag** (``respect_x_robots_tag``): img2dataset's rule. Each header value is
  ``[token:] directive, directive...``; a value with no token, or with our token, that contains one
  of :data:`X_ROBOTS_DIRECTIVES` refuses the image before its body is read. Archived responses
  (``warc_sources``) are checked against their stored headers too.

SSRF guard (``allow_private=False``, the default)
-----------------------------------------------
A URL may point anywhere, including the machine running the crawl or its network (cloud metadata at
169.254.169.254, an admin page on 10.0.0.1...). Only public addresses are contacted:
``ipaddress``'s ``is_global`` and not multicast (which refuses private, loopback, link-local,
shared 100.64/10, reserved, documentation, unspecified and IPv4-mapped forms of those), unless the
address is in ``allowed_networks``. The check happens in two places that together see every
connection: IP-literal hosts are checked before any request (aiohttp does not resolve them), and
host names are resolved by a :class:`GuardedResolver` plugged into the aiohttp connector, which
drops refused addresses from the answer before aiohttp connects. Because the connector connects to
exactly the addresses the guarded resolver returned, a DNS answer that changes between check and
connect (DNS rebinding) cannot slip through: there is no second lookup. Redirects go through the
same checks at every hop, proxies from the environment are ignored (``trust_env=False``), and
cookies are not kept.

Images
------
Decoding uses Pillow restricted to :data:`DECODE_FORMATS` (so no exotic or external decoders such as
EPS/Ghostscript run on web input). Width x height is checked against ``max_pixels`` from the header,
before any pixel is decoded. The first frame is used, EXIF orientation applied, transparency
composited onto white, and the image converted to RGB. JPEGs are decoded straight at a reduced
scale (libjpeg's DCT scaling by 1/2, 1/4 or 1/8, through Pillow's ``draft``) as long as the result is
still at least the target size: most of the decoding cost of a large photo is skipped, and the DCT
scaling is itself a low-pass filter. Resize modes (:data:`RESIZE_MODES`, img2dataset's semantics):

* ``no``: keep the size; ``keep_ratio`` (default): the smaller side becomes ``image_size``;
* ``keep_ratio_largest``: the larger side becomes ``image_size``;
* ``center_crop``: ``keep_ratio``, then the central ``image_size`` square;
* ``border``: ``keep_ratio_largest``, then padded with white to an ``image_size`` square.

With ``resize_only_if_bigger``, images already within the target are not upscaled (``border`` still
pads). Interpolation follows img2dataset's defaults: ``downscale_interpolation="area"`` (Pillow's
box filter, an area average like OpenCV's ``INTER_AREA``) and ``upscale_interpolation="lanczos"``;
other names: :data:`INTERPOLATIONS`.
The result is re-encoded with :data:`ENCODERS` (``jpeg`` quality ``encode_quality`` by default).
``original_width``/``original_height`` are the decoded image's size after EXIF orientation, before
resizing; ``width``/``height`` the stored image's; ``sha256`` is the hex SHA-256 **of the stored
(re-encoded) bytes**, i.e. of ``image["bytes"]``, so it identifies what the dataset holds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import email.utils
import functools
import hashlib
import io
import ipaddress
import logging
import math
import os
import random
import socket
import threading
import time
import urllib.robotparser
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urljoin

import datasets

from waon_hf.stats import Stats
from waon_hf.steps.base import Batch, MapStep, register

logger = logging.getLogger(__name__)

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
X_ROBOTS_DIRECTIVES = frozenset({"noai", "noimageai", "noindex", "noimageindex"})
DECODE_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "AVIF")  # JPEG includes MPO
DEFAULT_USER_AGENT = "waon_hf/0.1 (+https://github.com/waon-hf/waon_hf)"
ROBOTS_MAX_BYTES = 512 * 1024
ROBOTS_CACHE_MAX = 100_000  # hosts whose robots.txt one step instance remembers, per process
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


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


# --------------------------------------------------------------------------------------------
# Addresses (SSRF guard)
# --------------------------------------------------------------------------------------------

class BlockedAddressError(OSError):
    """A host resolved only to addresses the SSRF guard refuses."""


def address_allowed(address: str, allowed_networks: Iterable[ipaddress._BaseNetwork] = ()) -> bool:
    """True for public unicast addresses, or addresses inside ``allowed_networks``."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip.version == net.version and ip in net for net in allowed_networks):
        return True
    return ip.is_global and not ip.is_multicast


def _ip_literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]").split("%", 1)[0]))
    except ValueError:
        return None


try:
    from aiohttp.abc import AbstractResolver as _AbstractResolver
except ImportError:  # the images extra is missing: the step says so when it runs
    _AbstractResolver = object


class GuardedResolver(_AbstractResolver):
    """An aiohttp resolver that drops the addresses ``allow(address)`` refuses.

    aiohttp connects to exactly the addresses its resolver returns, so filtering here, rather than
    looking the host up a second time to check it, leaves no window for DNS rebinding.
    """

    def __init__(self, allow: Callable[[str], bool]):
        import aiohttp

        self._inner = aiohttp.DefaultResolver()
        self._allow = allow

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET):
        answers = await self._inner.resolve(host, port, family)
        allowed = [a for a in answers if self._allow(a["host"])]
        if not allowed:
            refused = sorted({a["host"] for a in answers})
            raise BlockedAddressError(f"{host} resolves to non-public address(es) {', '.join(refused)}")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


# --------------------------------------------------------------------------------------------
# Images: decode, check, resize, encode (pure functions, run in worker threads)
# --------------------------------------------------------------------------------------------

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


class Failure(Exception):
    """A row's failure: a status from :data:`STATUSES` plus a human-readable detail."""

    def __init__(self, status: str, error: str, retry_after: float | None = None, final: bool = False):
        super().__init__(f"{status}: {error}")
        self.status, self.error, self.retry_after = status, error, retry_after
        self.final = final  # not worth retrying within this call (e.g. a cached robots.txt failure)


@dataclasses.dataclass(frozen=True)
class ImageOptions:
    image_size: int = 256
    resize_mode: str = "keep_ratio"
    resize_only_if_bigger: bool = False
    encode_format: str = "jpeg"
    encode_quality: int = 95
    max_pixels: int = 89_478_485
    downscale_interpolation: str = "area"
    upscale_interpolation: str = "lanczos"


def failure_row(status: str, error: str) -> dict[str, Any]:
    return {"image": None, "status": status, "error": error, "width": None, "height": None,
            "original_width": None, "original_height": None, "sha256": None}


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
    img = _to_rgb(img)
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


def _to_rgb(img):
    from PIL import Image

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


# --------------------------------------------------------------------------------------------
# Politeness helpers
# --------------------------------------------------------------------------------------------

def user_agent_token(user_agent: str) -> str:
    """``"mycrawl/1.0 (+https://...)"`` -> ``"mycrawl"``: the name robots.txt groups are matched on."""
    return user_agent.strip().split("/", 1)[0].split(" ", 1)[0].lower() or "*"


def x_robots_refuses(values: Iterable[str], token: str, directives: Iterable[str] = X_ROBOTS_DIRECTIVES) -> bool:
    """img2dataset's X-Robots-Tag rule: ``[token:] d1, d2`` values with no token or our token count."""
    wanted = set(directives)
    for value in values:
        parts = value.split(":", 1)
        agent = parts[0].strip().lower() if len(parts) == 2 else None
        found = {d.strip().lower() for d in parts[-1].split(",")}
        if (agent is None or agent == token) and found & wanted:
            return True
    return False


@dataclasses.dataclass
class RobotsRules:
    """What one host's robots.txt says; ``unreachable`` means "disallow everything, retry later"."""

    parser: urllib.robotparser.RobotFileParser | None = None  # None: no robots.txt, all allowed
    unreachable: str | None = None
    status: str = "robots_unreachable"  # or timeout / connection_error when the host itself is down

    @classmethod
    def parse(cls, text: str) -> RobotsRules:
        parser = urllib.robotparser.RobotFileParser()
        parser.parse(text.splitlines())
        return cls(parser)

    def allows(self, token: str, url: str) -> bool:
        return self.parser is None or self.parser.can_fetch(token, url)


def _retry_after(value: str | None) -> float | None:
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


def _http_failure(code: int, reason: str | None, headers) -> Failure:
    detail = f"HTTP {code} {reason or ''}".strip()
    if code == 429 or code >= 500:
        status = "http_429" if code == 429 else "http_5xx"
        return Failure(status, detail, _retry_after(headers.get("Retry-After")))
    if code == 403:
        return Failure("http_403", detail)
    if code in (404, 410):
        return Failure("http_404", detail)
    if 400 <= code < 500:
        return Failure("http_4xx", detail)
    return Failure("http_other", detail)


# --------------------------------------------------------------------------------------------
# The network side: one _Fetcher per process_batch call
# --------------------------------------------------------------------------------------------

class _Host:
    """Per-host slots and request pacing."""

    def __init__(self, slots: int, rate: float | None):
        self.slots = asyncio.Semaphore(slots)
        self.interval = 1.0 / rate if rate else 0.0
        self.next_at = 0.0

    async def acquire(self) -> None:
        await self.slots.acquire()
        if not self.interval:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        wait = self.next_at - now
        self.next_at = max(now, self.next_at) + self.interval
        if wait > 0:
            try:
                await asyncio.sleep(wait)
            except BaseException:
                self.slots.release()
                raise


class _Fetcher:
    def __init__(self, step: DownloadImages, executor: concurrent.futures.Executor):
        import aiohttp

        self.step = step
        self.opts = step.image_options()
        self.token = step.agent_token()
        self.executor = executor
        self.loop = asyncio.get_running_loop()
        self.global_slots = asyncio.Semaphore(step.concurrency)
        self.hosts: dict[str, _Host] = {}
        self.robots = step._robots_cache()
        self.robots_pending: dict[str, asyncio.Future] = {}
        self.archive = step._archive()
        connector = aiohttp.TCPConnector(
            resolver=None if step.allow_private else GuardedResolver(step.address_allowed),
            limit=step.concurrency, limit_per_host=0, ttl_dns_cache=300, ssl=step.verify_tls,
        )
        self.http = aiohttp.ClientSession(
            connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=step.timeout_total, sock_connect=step.timeout_connect,
                                          sock_read=step.timeout_read),
            headers={"User-Agent": step.user_agent, "Accept": "image/*,*/*;q=0.8", "Accept-Encoding": "identity"},
        )

    async def close(self) -> None:
        await self.http.close()

    # -- one URL --------------------------------------------------------------------------------

    async def download(self, url: str) -> dict[str, Any]:
        try:
            if self.archive is not None and url in self.archive:
                return await self.loop.run_in_executor(self.executor, self.step.from_archive, url)
            if self.step.offline:
                raise Failure("not_in_archive", "offline and not in warc_sources")
            return await self._with_retries(url)
        except Failure as f:
            return failure_row(f.status, f.error)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            logger.exception("unexpected error downloading %s", url)
            return failure_row("unexpected_error", f"{type(e).__name__}: {e}")

    async def _with_retries(self, url: str) -> dict[str, Any]:
        step = self.step
        for attempt in range(step.retries + 1):
            try:
                return await self._attempt(url)
            except Failure as f:
                if attempt == step.retries or not retryable(f.status) or f.final:
                    raise
                delay = step.backoff_s * (2 ** attempt) * random.uniform(0.8, 1.2)
                if f.retry_after is not None:
                    delay = max(delay, f.retry_after)
                if delay > step.max_backoff_s:
                    raise
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _attempt(self, url: str) -> dict[str, Any]:
        current = url
        for _ in range(self.step.max_redirects + 1):
            target = self._target(current)
            if self.step.respect_robots:
                await self._check_robots(target)
            async with self._slot(target):
                location, data = await self._get(target)
                if location is None:
                    return await self.loop.run_in_executor(self.executor, transcode, data, self.opts)
            current = location
        raise Failure("too_many_redirects", f"more than {self.step.max_redirects} redirects (last: {current})")

    def _target(self, url: str):
        """Parse ``url``; refuse what is not http(s) or is an IP literal the guard refuses."""
        from yarl import URL

        if not url or not isinstance(url, str):
            raise Failure("invalid_url", "empty url")
        try:
            target = URL(url.strip())
            host = target.raw_host
        except (ValueError, TypeError, UnicodeError) as e:
            raise Failure("invalid_url", f"unparsable url: {e}") from None
        if target.scheme not in ("http", "https") or not host:
            raise Failure("invalid_url", f"not an absolute http(s) url: {url[:200]}")
        literal = _ip_literal(host)
        if literal is not None and not self.step.allow_private and not self.step.address_allowed(literal):
            raise Failure("blocked_private_address", f"{literal} is not a public address")
        return target

    @contextlib.asynccontextmanager
    async def _slot(self, target):
        key = _origin(target)
        host = self.hosts.get(key)
        if host is None:
            host = self.hosts[key] = _Host(self.step.per_host, self.step.per_host_rate)
        await host.acquire()
        try:
            async with self.global_slots:
                yield
        finally:
            host.slots.release()

    async def _request(self, target, body_limit: int, check_headers: Callable | None = None):
        """GET ``target`` -> (status, headers, redirect location or None, body); raises :class:`Failure`."""
        import aiohttp

        try:
            async with asyncio.timeout(self.step.timeout_total):
                async with self.http.get(target, allow_redirects=False) as resp:
                    if resp.status in REDIRECT_CODES and resp.headers.get("Location"):
                        try:
                            location = urljoin(str(target), resp.headers["Location"])
                        except ValueError as e:
                            raise Failure("invalid_url", f"bad redirect location: {e}") from None
                        return resp.status, resp.headers, location, b""
                    if check_headers is not None:
                        check_headers(resp)
                    return resp.status, resp.headers, None, await _read_capped(resp, body_limit)
        except Failure:
            raise
        except TimeoutError as e:
            raise Failure("timeout", f"{type(e).__name__} after at most {self.step.timeout_total}s") from None
        except aiohttp.ClientConnectorError as e:
            if isinstance(e.os_error, BlockedAddressError):
                raise Failure("blocked_private_address", str(e.os_error)) from None
            raise Failure("connection_error", f"{type(e).__name__}: {e}") from None
        except aiohttp.InvalidURL as e:
            raise Failure("invalid_url", f"{type(e).__name__}: {e}") from None
        except (aiohttp.ClientError, OSError, UnicodeError) as e:
            raise Failure("connection_error", f"{type(e).__name__}: {e}") from None

    async def _get(self, target) -> tuple[str | None, bytes]:
        """(redirect location, b"") or (None, body) for an image request."""
        status, headers, location, body = await self._request(target, self.step.max_bytes, self._check_image_response)
        return location, body

    def _check_image_response(self, resp) -> None:
        if not 200 <= resp.status < 300 or resp.status in (204, 205):
            raise _http_failure(resp.status, resp.reason, resp.headers)
        if self.step.respect_x_robots_tag:
            tags = resp.headers.getall("X-Robots-Tag", [])
            if tags and x_robots_refuses(tags, self.token):
                raise Failure("x_robots_tag", f"X-Robots-Tag: {'; '.join(tags)}")
        length = resp.content_length
        if length is not None and length > self.step.max_bytes:
            raise Failure("too_large", f"Content-Length {length} > max_bytes={self.step.max_bytes}")

    # -- robots.txt -----------------------------------------------------------------------------

    async def _check_robots(self, target) -> None:
        key = _origin(target)
        rules = self.robots.get(key)
        if rules is None:
            pending = self.robots_pending.get(key)
            if pending is None:
                pending = self.robots_pending[key] = asyncio.ensure_future(self._fetch_robots(key))
            rules = await asyncio.shield(pending)
        if rules.unreachable:
            raise Failure(rules.status, f"{key}/robots.txt: {rules.unreachable}", final=True)
        if not rules.allows(self.token, str(target)):
            raise Failure("robots_disallowed", f"{key}/robots.txt disallows {self.token}")

    async def _fetch_robots(self, key: str) -> RobotsRules:
        rules = await self._robots_rules(key + "/robots.txt")
        if len(self.robots) >= ROBOTS_CACHE_MAX:  # forget the oldest host (dicts keep insertion order)
            del self.robots[next(iter(self.robots))]
        self.robots[key] = rules
        return rules

    async def _robots_rules(self, url: str) -> RobotsRules:
        for _ in range(self.step.max_redirects + 1):
            try:
                target = self._target(url)
                async with self._slot(target):
                    code, _, location, body = await self._request(target, ROBOTS_MAX_BYTES, _robots_headers)
            except Failure as f:
                if f.status in ("invalid_url", "blocked_private_address", "http_other"):
                    return RobotsRules()  # unavailable: as if there were none
                if f.status in ("http_403", "http_404", "http_4xx"):
                    return RobotsRules()
                if f.status in ("timeout", "connection_error"):  # the host is down: say so
                    return RobotsRules(unreachable=f.error, status=f.status)
                return RobotsRules(unreachable=f.error)  # 429, 5xx, too large
            if location is None:
                if 200 <= code < 300:
                    return RobotsRules.parse(body.decode("utf-8", "replace"))
                return RobotsRules()
            url = location
        return RobotsRules()  # too many redirects: unavailable (RFC 9309 2.3.1.2)


def _origin(target) -> str:
    """``scheme://host:port`` (no credentials): the key of per-host slots and of robots.txt."""
    return str(target.origin()).lower()


def _robots_headers(resp) -> None:
    if resp.status >= 400:
        raise _http_failure(resp.status, resp.reason, resp.headers)


async def _read_capped(resp, limit: int) -> bytes:
    """The body, or :class:`Failure` ``too_large`` as soon as it passes ``limit`` bytes."""
    chunks, total = [], 0
    async for chunk in resp.content.iter_any():
        total += len(chunk)
        if total > limit:
            if limit == ROBOTS_MAX_BYTES:  # robots.txt: keep the first 512 KiB, as Google does
                chunks.append(chunk[: len(chunk) - (total - limit)])
                break
            raise Failure("too_large", f"body over max_bytes={limit}")
        chunks.append(chunk)
    return b"".join(chunks)


# --------------------------------------------------------------------------------------------
# The step
# --------------------------------------------------------------------------------------------

@register
@dataclasses.dataclass
class DownloadImages(MapStep):
    """Download the images of ``column`` and add :data:`OUTPUT_COLUMNS` (see the module docstring).

    Columns in: ``column`` (default ``url``). Columns out (added; the input columns are kept):
    ``image`` (``datasets.Image``, embedded re-encoded bytes), ``status``, ``error`` (strings),
    ``width``, ``height``, ``original_width``, ``original_height`` (int32) and ``sha256`` (hex
    SHA-256 of the stored bytes); all but ``status``/``error`` are null on failure.
    """

    name = "download"
    column: str = "url"
    # image
    image_size: int = 256
    resize_mode: str = "keep_ratio"
    resize_only_if_bigger: bool = False
    downscale_interpolation: str = "area"
    upscale_interpolation: str = "lanczos"
    encode_format: str = "jpeg"
    encode_quality: int = 95
    max_pixels: int = 89_478_485  # Pillow's own default limit
    max_bytes: int = 20 * 1024 * 1024
    # network
    concurrency: int = 64
    per_host: int = 4
    per_host_rate: float | None = None
    timeout_connect: float = 5.0
    timeout_read: float = 10.0
    timeout_total: float = 20.0
    batch_timeout_s: float | None = None  # None: derived from the batch size, see batch_deadline()
    max_redirects: int = 5
    retries: int = 2
    backoff_s: float = 1.0
    max_backoff_s: float = 10.0
    verify_tls: bool = True
    decode_threads: int = 2
    # politeness, consent, safety
    user_agent: str = DEFAULT_USER_AGENT
    respect_robots: bool = True
    respect_x_robots_tag: bool = True
    allow_private: bool = False
    allowed_networks: tuple[str, ...] = ()
    # archives
    warc_sources: tuple[str, ...] = ()
    offline: bool = False

    def __post_init__(self) -> None:
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode {self.resize_mode!r} not in {sorted(RESIZE_MODES)}")
        for name in (self.downscale_interpolation, self.upscale_interpolation):
            if name not in INTERPOLATIONS:
                raise ValueError(f"interpolation {name!r} not in {sorted(INTERPOLATIONS)}")
        if self.encode_format not in ENCODERS:
            raise ValueError(f"encode_format {self.encode_format!r} not in {sorted(ENCODERS)}")
        for name in ("image_size", "concurrency", "per_host", "max_bytes", "max_pixels", "decode_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.retries < 0 or self.max_redirects < 0:
            raise ValueError("retries and max_redirects must be >= 0")
        self.warc_sources = tuple(self.warc_sources)
        self.allowed_networks = tuple(self.allowed_networks)
        self._networks = tuple(ipaddress.ip_network(n, strict=False) for n in self.allowed_networks)

    # -- configuration helpers ----------------------------------------------------------------

    def output_features(self) -> dict[str, Any]:
        int32 = datasets.Value("int32")
        return {"image": datasets.Image(), "status": datasets.Value("string"), "error": datasets.Value("string"),
                "width": int32, "height": int32, "original_width": int32, "original_height": int32,
                "sha256": datasets.Value("string")}

    def image_options(self) -> ImageOptions:
        return ImageOptions(**{f.name: getattr(self, f.name) for f in dataclasses.fields(ImageOptions)})

    def agent_token(self) -> str:
        return user_agent_token(self.user_agent)

    def address_allowed(self, address: str) -> bool:
        """The SSRF guard's predicate (``allow_private`` aside)."""
        return address_allowed(address, self._networks)

    def batch_deadline(self, n_urls: int) -> float:
        """Seconds one ``process_batch`` call may take: ``batch_timeout_s``, or a bound on honest work
        (every slot busy ``timeout_total`` per URL, plus one URL's retries and back-offs)."""
        if self.batch_timeout_s is not None:
            return self.batch_timeout_s
        waves = math.ceil(n_urls / self.concurrency) if n_urls else 0
        one_url = (self.retries + 1) * self.timeout_total + self.retries * self.max_backoff_s
        return waves * self.timeout_total + one_url + 2 * self.timeout_total

    # -- lazily built, per process (dropped from pickles) ---------------------------------------

    def _robots_cache(self) -> dict[str, RobotsRules]:
        cache = self.__dict__.get("_cache_robots")
        if cache is None:
            cache = self.__dict__["_cache_robots"] = {}
        return cache

    def _archive(self):
        if not self.warc_sources:
            return None
        index = self.__dict__.get("_cache_archive")
        if index is None:
            from waon_hf.sources.warc_images import WarcImageIndex

            index = self.__dict__["_cache_archive"] = WarcImageIndex.build(self.warc_sources)
        return index

    def from_archive(self, url: str) -> dict[str, Any]:
        """The output row for ``url`` served from ``warc_sources`` (no network)."""
        record = self._archive().get(url)
        if record is None:
            return failure_row("not_in_archive", "not in warc_sources")
        if self.respect_x_robots_tag and record.x_robots_tag and x_robots_refuses(record.x_robots_tag,
                                                                                   self.agent_token()):
            return failure_row("x_robots_tag", f"X-Robots-Tag: {'; '.join(record.x_robots_tag)} (archived)")
        if len(record.data) > self.max_bytes:
            return failure_row("too_large", f"archived body of {len(record.data)} bytes > max_bytes")
        return transcode(record.data, self.image_options())

    # -- running --------------------------------------------------------------------------------

    def fetch(self, urls: list[str]) -> list[dict[str, Any]]:
        """Output rows for ``urls`` (same order); identical URLs are fetched once."""
        if not urls:
            return []
        return _run_coroutine(lambda: self._fetch_all(urls))

    async def _fetch_all(self, urls: list[str]) -> list[dict[str, Any]]:
        unique = list(dict.fromkeys(urls))
        deadline = self.batch_deadline(len(unique))
        executor = concurrent.futures.ThreadPoolExecutor(self.decode_threads, thread_name_prefix="waon-decode")
        try:
            fetcher = _Fetcher(self, executor)
            try:
                tasks = {url: asyncio.ensure_future(fetcher.download(url)) for url in unique}
                done, pending = await asyncio.wait(tasks.values(), timeout=deadline)
                # Cancel stragglers, and robots.txt fetches nobody waits for any more (left running,
                # they would fail on the closed session and cache a bogus "unreachable").
                stragglers = [*pending, *(f for f in fetcher.robots_pending.values() if not f.done())]
                for task in stragglers:
                    task.cancel()
                await asyncio.gather(*stragglers, return_exceptions=True)
            finally:
                await fetcher.close()
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
        late = failure_row("timeout", f"batch deadline of {deadline:.0f}s exceeded")
        rows = {url: task.result() if task in done else late for url, task in tasks.items()}
        return [rows[url] for url in urls]

    def apply(self, ds, stats=None, *, num_proc=None, batch_size=1_000, cache_file_name=None):
        """``MapStep.apply``, but the output is written to an Arrow file as it is produced rather than
        kept in memory: a shard's images (about 20 KB each at 256 px) would otherwise all sit in RAM.

        ``cache_file_name`` defaults to a file in ``datasets``' temporary directory (deleted at
        exit); the returned dataset is memory-mapped from it. Memory per process is then about
        ``batch_size`` encoded images plus at most ``concurrency`` response bodies (each at most
        ``max_bytes``). The batch is smaller than the base's default because the tail of each batch
        waits for its slowest URL.
        """
        features = datasets.Features({**ds.features, **self.output_features()})
        out = _spilling_map(ds, self.process_batch, self.input_columns(), features, num_proc=num_proc,
                            batch_size=batch_size, cache_file_name=cache_file_name, desc=self.name)
        if stats is not None:
            stats.add_stage(self.name, {"in": len(ds), "kept": len(out)})
        return out

    def process_batch(self, batch: Batch) -> Batch:
        rows = self.fetch(list(batch[self.column]))
        for name in OUTPUT_COLUMNS:
            batch[name] = [row[name] for row in rows]
        return batch

    # -- retrying failures ----------------------------------------------------------------------

    def retry_failed(self, batch: Batch) -> Batch:
        """Re-fetch the rows whose ``status`` is retryable; every other row is returned untouched.

        ``batch`` holds ``column`` and all :data:`OUTPUT_COLUMNS` (a previous run's output).
        """
        todo = [i for i, status in enumerate(batch["status"]) if retryable(status)]
        rows = self.fetch([batch[self.column][i] for i in todo])
        for name in OUTPUT_COLUMNS:
            values = list(batch[name])
            for i, row in zip(todo, rows, strict=True):
                values[i] = row[name]
            batch[name] = values
        return batch

    def apply_retry_failed(
        self, ds: datasets.Dataset, stats: Stats | None = None, *, num_proc: int | None = None,
        batch_size: int = 1_000, cache_file_name: str | None = None,
    ) -> datasets.Dataset:
        """:meth:`retry_failed` over a downloaded dataset (the ``waon download --retry-failed`` path).

        Images of untouched rows pass through as stored bytes (the column is read undecoded).
        """
        missing = [c for c in (self.column, *OUTPUT_COLUMNS) if c not in ds.column_names]
        if missing:
            raise ValueError(f"not a downloaded dataset: columns {missing} missing")
        names = [self.column, *OUTPUT_COLUMNS]
        n_retry = sum(status_counts(ds).get(s, 0) for s in RETRYABLE_STATUSES)
        if n_retry == 0:
            if stats is not None:
                stats.add_stage(f"{self.name}_retry", {"in": len(ds), "kept": len(ds), "retried": 0})
            return ds
        raw = ds.cast_column("image", datasets.Image(decode=False))

        features = datasets.Features({**raw.features, **self.output_features(), "image": datasets.Image(decode=False)})
        out = _spilling_map(raw, self.retry_failed, names, features, num_proc=num_proc, batch_size=batch_size,
                            cache_file_name=cache_file_name, desc=f"{self.name} (retry)")
        out = out.cast_column("image", datasets.Image())
        if stats is not None:
            stats.add_stage(f"{self.name}_retry", {"in": len(ds), "kept": len(out), "retried": n_retry})
        return out


def _spilling_map(ds: datasets.Dataset, fn: Callable[[Batch], Batch], names: list[str], features, *, num_proc,
                  batch_size: int, cache_file_name: str | None, desc: str) -> datasets.Dataset:
    """``ds.map(fn)`` over ``names``, written batch by batch to an Arrow file (memory-mapped after)."""
    import uuid

    from datasets.fingerprint import get_temporary_cache_files_directory

    if len(ds) == 0:  # map() adds no column to an empty dataset
        return datasets.Dataset.from_dict({name: [] for name in features}, features=features)
    if cache_file_name is None:
        cache_file_name = os.path.join(get_temporary_cache_files_directory(), f"download-{uuid.uuid4().hex}.arrow")

    def call(*values):
        return fn(dict(zip(names, values, strict=True)))

    return ds.map(call, batched=True, batch_size=batch_size, num_proc=num_proc, input_columns=names,
                  cache_file_name=cache_file_name, writer_batch_size=batch_size, new_fingerprint=uuid.uuid4().hex,
                  features=features, desc=desc)


def _run_coroutine(make: Callable[[], Any]) -> Any:
    """``asyncio.run(make())``, also from a thread that already runs an event loop (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(make())
        except BaseException as e:  # re-raised in the caller's thread
            result["error"] = e

    thread = threading.Thread(target=target, name="waon-download")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]
