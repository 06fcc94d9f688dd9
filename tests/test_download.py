"""The image download step against scripted HTTP servers on 127.0.0.1 (and a WARC, with no server).

Every failure mode ends in its exact ``status`` within its time bound. The SSRF tests never let a
request leave the machine: blocked URLs are loopback ones, and the tests assert the server saw
nothing.
"""

from __future__ import annotations

import io
import pickle
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import datasets
import pytest
from PIL import Image

from waon_hf.funnel import funnel_markdown
from waon_hf.sources.warc_images import WarcImageIndex
from waon_hf.stats import Stats
from waon_hf.steps.base import build_step
from waon_hf.steps.download import (
    OUTPUT_COLUMNS,
    RESIZE_MODES,
    STATUSES,
    DownloadImages,
    GuardedResolver,
    ImageOptions,
    RobotsRules,
    address_allowed,
    embedded_ipv4,
    retryable,
    status_counts,
    transcode,
    user_agent_token,
    x_robots_refuses,
)
from waon_hf.steps.download.fetcher import interleaved_by_host
from waon_hf.testing.synthetic import encode_item, synthetic_image, warc_image_response, warc_response, write_warc

JPEG = synthetic_image(1, 800, 600)
PNG = synthetic_image(2, 300, 200, fmt="PNG")
HTML = b"<!doctype html><html><body>not an image</body></html>"

Handler = Callable[[BaseHTTPRequestHandler], None]


# --------------------------------------------------------------------------------------------
# A scripted server: path -> handler, request log, in-flight tracking
# --------------------------------------------------------------------------------------------

class Server:
    """Threaded HTTP/1.0 server on 127.0.0.1: routes by path, logs requests, tracks concurrency."""

    def __init__(self, routes: dict[str, Handler], max_requests: int = 300, tracker: Tracker | None = None):
        self.routes = routes
        self.requests: list[str] = []
        self.arrivals: list[float] = []  # time.monotonic() of each request, in the server's own log
        self.headers: list[dict[str, str]] = []
        self.max_requests = max_requests
        self.tracker = tracker or Tracker()
        self.lock = threading.Lock()
        server = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server._handle(self)

        class Quiet(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # socketserver's 5 drops a burst of new connections (a 1 s SYN retry)

            def handle_error(self, request, client_address):  # clients hanging up on slow answers
                pass

        self.httpd = Quiet(("127.0.0.1", 0), H)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def count(self, path: str) -> int:
        return sum(1 for p in self.requests if p == path)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.requests.append(h.path)
            self.arrivals.append(time.monotonic())
            self.headers.append(dict(h.headers))
            over = len(self.requests) > self.max_requests
        if over:
            h.send_error(503, "test server request budget exhausted")
            return
        handler = self.routes.get(h.path.split("?", 1)[0])
        if handler is None:
            h.send_error(404)
            return
        with self.tracker:
            handler(h)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Tracker:
    """Counts requests in flight (possibly across servers) and remembers the peak."""

    def __init__(self):
        self.lock = threading.Lock()
        self.now = self.peak = 0

    def __enter__(self):
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *exc):
        with self.lock:
            self.now -= 1


def send(data: bytes, content_type: str = "image/jpeg", status: int = 200, headers=(), delay: float = 0.0,
         length: bool = True) -> Handler:
    def handler(h):
        if delay:
            time.sleep(delay)
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        if length:
            h.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)
    return handler


def error(status: int, headers=()) -> Handler:
    return send(b"error", "text/plain", status, headers)


def redirect(location: str, status: int = 302) -> Handler:
    return send(b"", "text/plain", status, [("Location", location)])


def drip(data: bytes, every: float) -> Handler:
    """Headers at once, then one byte every ``every`` seconds (a read timeout never fires)."""
    def handler(h):
        h.send_response(200)
        h.send_header("Content-Type", "image/jpeg")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        for i in range(len(data)):
            h.wfile.write(data[i:i + 1])
            h.wfile.flush()
            time.sleep(every)
    return handler


def cut(data: bytes) -> Handler:
    """Declares the full length, sends half, closes: the body is cut short."""
    def handler(h):
        h.send_response(200)
        h.send_header("Content-Type", "image/jpeg")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data[: len(data) // 2])
        h.wfile.flush()
        h.close_connection = True
        h.connection.shutdown(socket.SHUT_RDWR)
    return handler


def sequence(*handlers: Handler) -> Handler:
    """The i-th request gets the i-th handler (the last one repeats)."""
    calls = iter(handlers)
    last = [handlers[-1]]

    def handler(h):
        last[0] = next(calls, last[0])
        last[0](h)
    return handler


def step(**kw) -> DownloadImages:
    """Test defaults: loopback allowed, small timeouts, no retries, no back-off."""
    options = {"allow_private": True, "timeout_connect": 1.0, "timeout_read": 1.0, "timeout_total": 1.0,
               "retries": 0, "backoff_s": 0.01, "concurrency": 8}
    options.update(kw)
    return DownloadImages(**options)


def fetch_one(s: DownloadImages, url: str, within: float) -> dict:
    t0 = time.monotonic()
    [row] = s.fetch([url])
    elapsed = time.monotonic() - t0
    assert elapsed < within, f"{row['status']} took {elapsed:.2f}s (bound {within}s)"
    assert row["status"] in STATUSES
    if row["status"] == "ok":
        assert row["image"]["bytes"] and row["error"] == ""
    else:
        assert row["image"] is None and row["width"] is None and row["sha256"] is None and row["error"]
    return row


def png_declaring(width: int, height: int) -> bytes:
    """A valid PNG header declaring ``width`` x ``height`` with almost no pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


# --------------------------------------------------------------------------------------------
# Success and images
# --------------------------------------------------------------------------------------------

def test_ok_image_has_sizes_hash_and_stored_bytes():
    with Server({"/a.jpg": send(JPEG)}) as srv:
        row = fetch_one(step(), srv.url("/a.jpg"), within=2)
    assert row["status"] == "ok"
    assert (row["original_width"], row["original_height"]) == (800, 600)
    assert (row["width"], row["height"]) == (341, 256)  # keep_ratio: smaller side to 256
    stored = row["image"]["bytes"]
    import hashlib
    assert row["sha256"] == hashlib.sha256(stored).hexdigest()
    img = Image.open(io.BytesIO(stored))
    assert img.format == "JPEG" and img.size == (341, 256) and img.mode == "RGB"
    assert srv.headers[-1]["User-Agent"].startswith("waon_hf/")


@pytest.mark.parametrize("mode, size, only_if_bigger, src, expected", [
    ("no", 256, False, (800, 600), (800, 600)),
    ("keep_ratio", 256, False, (800, 600), (341, 256)),
    ("keep_ratio", 256, False, (600, 800), (256, 341)),
    ("keep_ratio", 256, False, (100, 80), (320, 256)),  # upscaled, like img2dataset
    ("keep_ratio", 256, True, (100, 80), (100, 80)),
    ("keep_ratio_largest", 256, False, (800, 600), (256, 192)),
    ("center_crop", 256, False, (800, 600), (256, 256)),
    ("center_crop", 64, False, (90, 300), (64, 64)),
    ("border", 256, False, (800, 600), (256, 256)),
    ("border", 256, True, (100, 80), (256, 256)),  # not upscaled, still padded
])
def test_resize_modes(mode, size, only_if_bigger, src, expected):
    row = transcode(synthetic_image(3, *src), ImageOptions(size, mode, only_if_bigger))
    assert row["status"] == "ok", row["error"]
    assert (row["width"], row["height"]) == expected
    assert (row["original_width"], row["original_height"]) == src
    assert Image.open(io.BytesIO(row["image"]["bytes"])).size == expected
    assert set(RESIZE_MODES) == {"no", "keep_ratio", "keep_ratio_largest", "center_crop", "border"}


def test_border_pads_with_white_and_alpha_goes_on_white():
    row = transcode(synthetic_image(4, 400, 100), ImageOptions(128, "border"))
    img = Image.open(io.BytesIO(row["image"]["bytes"])).convert("RGB")
    assert img.getpixel((64, 2)) >= (250, 250, 250)  # top border
    rgba = Image.new("RGBA", (50, 40), (255, 0, 0, 0))  # fully transparent red
    buf = io.BytesIO()
    rgba.save(buf, "PNG")
    row = transcode(buf.getvalue(), ImageOptions(50, "no", encode_format="png"))
    assert Image.open(io.BytesIO(row["image"]["bytes"])).getpixel((10, 10)) == (255, 255, 255)


def test_exif_orientation_is_applied_and_original_size_is_as_displayed():
    img = Image.open(io.BytesIO(synthetic_image(5, 200, 100)))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    row = transcode(buf.getvalue(), ImageOptions(64, "keep_ratio"))
    assert (row["original_width"], row["original_height"]) == (100, 200)
    assert (row["width"], row["height"]) == (64, 128)


def test_encode_formats_and_png_input():
    for fmt, pil in (("jpeg", "JPEG"), ("png", "PNG"), ("webp", "WEBP")):
        row = transcode(PNG, ImageOptions(100, "keep_ratio", encode_format=fmt))
        assert row["status"] == "ok" and Image.open(io.BytesIO(row["image"]["bytes"])).format == pil
    with pytest.raises(ValueError):
        DownloadImages(encode_format="tiff")
    with pytest.raises(ValueError):
        DownloadImages(resize_mode="stretch")


# --------------------------------------------------------------------------------------------
# Failure modes, each with its exact status and a time bound
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("code, status", [(404, "http_404"), (410, "http_404"), (403, "http_403"),
                                          (400, "http_4xx"), (500, "http_5xx"), (503, "http_5xx"),
                                          (429, "http_429")])
def test_http_errors(code, status):
    with Server({"/x": error(code)}) as srv:
        row = fetch_one(step(retries=1), srv.url("/x"), within=2)
        assert row["status"] == status and str(code) in row["error"]
        assert srv.count("/x") == (2 if retryable(status) else 1)  # only transient failures are retried


def test_transient_failure_is_retried_with_backoff_then_succeeds():
    with Server({"/x": sequence(error(503), error(429, [("Retry-After", "0")]), send(JPEG))}) as srv:
        t0 = time.monotonic()
        row = fetch_one(step(retries=2, backoff_s=0.1), srv.url("/x"), within=3)
        assert row["status"] == "ok" and srv.count("/x") == 3
        assert time.monotonic() - t0 >= 0.1 + 0.2 * 0.8  # two back-offs: 0.1 and 0.2 (x0.8-1.2)


def test_retry_after_too_long_ends_retries():
    with Server({"/x": error(429, [("Retry-After", "3600")])}) as srv:
        row = fetch_one(step(retries=3), srv.url("/x"), within=2)
        assert row["status"] == "http_429" and srv.count("/x") == 1


def test_slow_headers_time_out():
    with Server({"/slow": send(JPEG, delay=3)}) as srv:
        row = fetch_one(step(timeout_total=0.5, timeout_read=0.5), srv.url("/slow"), within=1.5)
    assert row["status"] == "timeout"


def test_dripping_body_hits_the_total_timeout():
    """One byte every 0.1 s never trips the read timeout (1 s); the total timeout (0.6 s) ends it."""
    with Server({"/drip": drip(JPEG, 0.1)}) as srv:
        row = fetch_one(step(timeout_total=0.6, timeout_read=1.0), srv.url("/drip"), within=1.5)
    assert row["status"] == "timeout"


def test_batch_deadline_bounds_the_tail():
    with Server({"/slow": send(JPEG, delay=3), "/a.jpg": send(JPEG)}) as srv:
        s = step(timeout_total=10, timeout_read=10, batch_timeout_s=0.7)
        t0 = time.monotonic()
        rows = s.fetch([srv.url("/a.jpg"), srv.url("/slow")])
        assert time.monotonic() - t0 < 1.5
    assert [r["status"] for r in rows] == ["ok", "timeout"]
    assert "batch deadline" in rows[1]["error"]


def test_deadline_during_a_robots_fetch_does_not_poison_the_cache():
    slow_robots = send(b"User-agent: *\nAllow: /\n", "text/plain", delay=2)
    with Server({"/robots.txt": sequence(slow_robots, error(404)), "/a.jpg": send(JPEG)}) as srv:
        s = step(timeout_total=5, timeout_read=5, batch_timeout_s=0.5)
        assert fetch_one(s, srv.url("/a.jpg"), within=1.5)["status"] == "timeout"
        assert fetch_one(s, srv.url("/a.jpg"), within=1.5)["status"] == "ok"  # robots.txt asked again
        assert srv.count("/robots.txt") == 2


def test_redirect_loop():
    with Server({"/loop": redirect("/loop")}) as srv:
        row = fetch_one(step(max_redirects=3), srv.url("/loop"), within=2)
        assert row["status"] == "too_many_redirects"
        assert srv.count("/loop") == 4  # the request and 3 redirects followed, no more


def test_redirects_are_followed_relative_and_absolute():
    with Server({"/a": redirect("/b", 301), "/b": redirect("c", 307), "/c": send(JPEG)}) as srv:
        srv.routes["/b"] = redirect(srv.url("/c"), 308)
        row = fetch_one(step(), srv.url("/a"), within=2)
    assert row["status"] == "ok"


@pytest.mark.parametrize("body, content_type, status", [
    (HTML, "text/html; charset=utf-8", "not_image"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml", "not_image"),
    (b"", "image/jpeg", "not_image"),
    (JPEG, "application/octet-stream", "ok"),  # the bytes decide, not the label
    (JPEG, "text/plain", "ok"),
])
def test_content_types(body, content_type, status):
    with Server({"/x": send(body, content_type)}) as srv:
        row = fetch_one(step(), srv.url("/x"), within=2)
    assert row["status"] == status, row["error"]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("width, height", [(100_000, 100_000), (12_000, 9_000)])
def test_decompression_bomb(width, height):
    with Server({"/bomb.png": send(png_declaring(width, height), "image/png")}) as srv:
        row = fetch_one(step(), srv.url("/bomb.png"), within=2)
    assert row["status"] == "too_many_pixels"


def test_max_pixels_is_configurable():
    row = transcode(JPEG, ImageOptions(max_pixels=100_000))
    assert row["status"] == "too_many_pixels" and "800x600" in row["error"]


def test_truncated_jpeg_is_a_decode_error():
    with Server({"/t.jpg": send(JPEG[: len(JPEG) // 2])}) as srv:
        row = fetch_one(step(), srv.url("/t.jpg"), within=2)
    assert row["status"] == "decode_error"


def test_too_large_by_header_and_by_body():
    big = JPEG * 3
    with Server({"/declared": send(big), "/undeclared": send(big, length=False)}) as srv:
        s = step(max_bytes=len(JPEG))
        assert fetch_one(s, srv.url("/declared"), within=2)["status"] == "too_large"
        assert fetch_one(s, srv.url("/undeclared"), within=2)["status"] == "too_large"


def test_max_bytes_equal_to_the_robots_cap_still_refuses_a_longer_body():
    """Only robots.txt is cut at 512 KiB; an image body over max_bytes is refused whatever max_bytes is."""
    body = JPEG + b"\0" * (600 * 1024 - len(JPEG))  # decodes fine if cut at 512 KiB
    with Server({"/big": send(body, length=False)}) as srv:
        assert fetch_one(step(max_bytes=512 * 1024), srv.url("/big"), within=2)["status"] == "too_large"


@pytest.mark.parametrize("url", ["", "ftp://example.jp/a.jpg", "http://", "javascript:alert(1)", "/relative.jpg"])
def test_invalid_urls(url):
    row = fetch_one(step(), url, within=1)
    assert row["status"] == "invalid_url"


def test_body_cut_short_is_a_retryable_connection_error():
    with Server({"/x": cut(JPEG), "/y": sequence(cut(JPEG), send(JPEG))}) as srv:
        row = fetch_one(step(), srv.url("/x"), within=2)
        assert row["status"] == "connection_error" and retryable(row["status"])
        assert fetch_one(step(retries=1), srv.url("/y"), within=2)["status"] == "ok"


def test_connection_refused():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    row = fetch_one(step(respect_robots=False), f"http://127.0.0.1:{port}/a.jpg", within=2)
    assert row["status"] == "connection_error"
    row = fetch_one(step(), f"http://127.0.0.1:{port}/a.jpg", within=2)  # the robots.txt fetch fails first
    assert row["status"] == "connection_error" and "robots.txt" in row["error"]


# --------------------------------------------------------------------------------------------
# Politeness and consent
# --------------------------------------------------------------------------------------------

ROBOTS = b"User-agent: *\nDisallow: /private/\n\nUser-agent: otherbot\nDisallow: /\n"


def test_robots_disallow_and_one_fetch_per_host_across_batches():
    routes = {"/robots.txt": send(ROBOTS, "text/plain"), "/private/a.jpg": send(JPEG)}
    routes.update({f"/public/{i}.jpg": send(JPEG, delay=0.05) for i in range(10)})
    with Server(routes) as srv:
        s = step()
        rows = s.fetch([srv.url("/private/a.jpg")] + [srv.url(f"/public/{i}.jpg") for i in range(5)])
        rows += s.fetch([srv.url(f"/public/{i}.jpg") for i in range(5, 10)])  # a second batch
        assert rows[0]["status"] == "robots_disallowed"
        assert [r["status"] for r in rows[1:]] == ["ok"] * 10
        assert srv.count("/robots.txt") == 1
        assert srv.count("/private/a.jpg") == 0
        # the cache is per process: dropped from pickles, so a worker fetches again
        assert "_cache_robots" not in pickle.loads(pickle.dumps(s)).__dict__
        row = fetch_one(step(respect_robots=False), srv.url("/private/a.jpg"), within=2)
        assert row["status"] == "ok"


def test_robots_agent_specific_group():
    with Server({"/robots.txt": send(ROBOTS, "text/plain"), "/a.jpg": send(JPEG)}) as srv:
        row = fetch_one(step(user_agent="otherbot/2.0 (+https://example.org/bot)"), srv.url("/a.jpg"), within=2)
    assert row["status"] == "robots_disallowed"
    assert user_agent_token("otherbot/2.0 (+https://example.org/bot)") == "otherbot"


# RFC 9309 matching: wildcards, end anchors, the longest match wins (urllib.robotparser got each wrong).
RFC9309_ROBOTS = b"""User-agent: *
Disallow: /*.jpg$
Disallow: /*/private/
Disallow: /img/
Allow: /img/public/
"""


@pytest.mark.parametrize("path, status", [
    ("/a/photo.jpg", "robots_disallowed"),  # "*" matches any run of characters, "$" the end
    ("/a/photo.jpg?size=2", "ok"),  # the query is part of the match: not at the end
    ("/a/photo.png", "ok"),
    ("/u/private/x.png", "robots_disallowed"),  # "*" inside the path
    ("/private/x.png", "ok"),  # "/*/" needs a first segment
    ("/img/public/x.png", "ok"),  # the longer Allow beats the shorter Disallow listed before it
    ("/img/x.png", "robots_disallowed"),
])
def test_robots_rfc9309_matching(path, status):
    with Server({"/robots.txt": send(RFC9309_ROBOTS, "text/plain"), path.split("?")[0]: send(PNG, "image/png")}) as srv:
        row = fetch_one(step(), srv.url(path), within=2)
        assert row["status"] == status, row["error"]
        assert srv.count(path) == (1 if status == "ok" else 0)


def test_robots_rules_longest_match_and_ties():
    rules = RobotsRules.parse("User-agent: *\nAllow: /p\nDisallow: /p/\nAllow: /p/ok/\nDisallow: /*.gif\n"
                              "Allow: /same\nDisallow: /same\n")
    assert rules.allows("waon_hf", "http://h/p/x.png") is False  # /p/ (3) beats /p (2)
    assert rules.allows("waon_hf", "http://h/p/ok/x.png") is True  # /p/ok/ (6) beats /p/ (3)
    assert rules.allows("waon_hf", "http://h/p/ok/x.gif") is True  # /p/ok/ and /*.gif both 6 long: a tie, Allow
    assert rules.allows("waon_hf", "http://h/q/x.gif") is False
    assert rules.allows("waon_hf", "http://h/same") is True  # equal length: Allow wins (RFC 9309 2.2.2)
    assert RobotsRules().allows("waon_hf", "http://h/anything") is True


def gaps(arrivals: list[float]) -> list[float]:
    return [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]


@pytest.mark.parametrize("limits", [{}, {"per_host": 4}], ids=["adaptive (default)", "fixed"])
def test_crawl_delay_spaces_every_request_to_the_host_across_batches(limits):
    """``Crawl-delay: 1``: the server's own log never shows two requests less than a second apart,
    robots.txt included and across two batches; another host in the same batch is not slowed."""
    delayed_routes = {"/robots.txt": send(b"User-agent: *\nCrawl-delay: 1\n", "text/plain")}
    delayed_routes.update({f"/{i}.png": send(PNG, "image/png") for i in range(3)})
    fast_routes = {f"/{i}.png": send(PNG, "image/png") for i in range(6)}
    with Server(delayed_routes) as slow, Server(fast_routes) as fast:
        s = step(timeout_total=5, **limits)
        t0 = time.monotonic()
        rows = s.fetch([slow.url("/0.png"), slow.url("/1.png")] + [fast.url(f"/{i}.png") for i in range(6)])
        fast_done = max(fast.arrivals) - t0
        rows += s.fetch([slow.url("/2.png")])  # a second batch: the delay still holds
        assert [r["status"] for r in rows] == ["ok"] * 9
        assert slow.requests[0] == "/robots.txt" and len(slow.requests) == 4
        assert min(gaps(slow.arrivals)) >= 1.0, gaps(slow.arrivals)
        assert fast_done < 1.0  # the other host's requests did not queue behind the delay


def test_crawl_delay_is_capped_and_can_be_ignored():
    routes = {"/robots.txt": send(b"User-agent: *\nCrawl-delay: 86400\n", "text/plain")}
    routes.update({f"/{i}.png": send(PNG, "image/png") for i in range(3)})
    with Server(routes) as srv:
        rows = step(max_crawl_delay=0.3).fetch([srv.url(f"/{i}.png") for i in range(3)])
        assert [r["status"] for r in rows] == ["ok"] * 3
        assert 0.3 <= min(gaps(srv.arrivals)) < 2.0
    with Server(routes) as srv:
        rows = step(respect_crawl_delay=False, per_host=1).fetch([srv.url(f"/{i}.png") for i in range(3)])
        assert [r["status"] for r in rows] == ["ok"] * 3
        assert srv.arrivals[-1] - srv.arrivals[0] < 1.0


def test_crawl_delay_past_the_batch_deadline_is_a_timeout():
    routes = {"/robots.txt": send(b"User-agent: *\nCrawl-delay: 30\n", "text/plain"), "/a.png": send(PNG, "image/png")}
    with Server(routes) as srv:
        t0 = time.monotonic()
        [row] = step(batch_timeout_s=0.5).fetch([srv.url("/a.png")])
        assert time.monotonic() - t0 < 1.5
        assert row["status"] == "timeout" and "Crawl-delay: 10s" in row["error"]  # capped at max_crawl_delay
        assert srv.requests == ["/robots.txt"]


@pytest.mark.parametrize("robots, status", [
    (error(404), "ok"),  # no robots.txt: everything allowed
    (error(403), "ok"),
    (error(500), "robots_unreachable"),  # RFC 9309: unreachable means disallow
    (error(429), "robots_unreachable"),
    (send(b"User-agent: *\nDisallow: /\n", "text/plain", delay=3), "timeout"),
])
def test_robots_failures(robots, status):
    with Server({"/robots.txt": robots, "/a.jpg": send(JPEG)}) as srv:
        row = fetch_one(step(timeout_total=0.5), srv.url("/a.jpg"), within=1.5)
        assert row["status"] == status
        assert srv.count("/a.jpg") == (1 if status == "ok" else 0)
    assert retryable(status) == (status != "ok")


@pytest.mark.parametrize("tags, status", [
    (["noai"], "x_robots_tag"),
    (["noindex, nofollow"], "x_robots_tag"),
    (["NoImageAI"], "x_robots_tag"),
    (["waon_hf: noimageindex"], "x_robots_tag"),
    (["otherbot: noai"], "ok"),
    (["nofollow", "unavailable_after: 25 Jun 2030 15:00:00 PST"], "ok"),
])
def test_x_robots_tag(tags, status):
    with Server({"/a.jpg": send(JPEG, headers=[("X-Robots-Tag", t) for t in tags])}) as srv:
        row = fetch_one(step(), srv.url("/a.jpg"), within=2)
        assert row["status"] == status
        assert fetch_one(step(respect_x_robots_tag=False), srv.url("/a.jpg"), within=2)["status"] == "ok"
    assert x_robots_refuses(tags, "waon_hf") == (status != "ok")


def test_per_host_concurrency_is_never_exceeded():
    n, per_host = 16, 3
    routes = {f"/{i}.jpg": send(PNG, "image/png", delay=0.1) for i in range(n)}
    with Server(routes) as srv:
        rows = step(per_host=per_host, concurrency=32, respect_robots=False).fetch(
            [srv.url(f"/{i}.jpg") for i in range(n)])
    assert all(r["status"] == "ok" for r in rows)
    assert srv.tracker.peak == per_host  # reached, never exceeded


def test_global_concurrency_across_hosts():
    tracker = Tracker()
    routes = {f"/{i}.jpg": send(PNG, "image/png", delay=0.1) for i in range(8)}
    with Server(routes, tracker=tracker) as a, Server(routes, tracker=tracker) as b:
        urls = [srv.url(f"/{i}.jpg") for i in range(8) for srv in (a, b)]
        rows = step(per_host=4, concurrency=5, respect_robots=False).fetch(urls)
    assert all(r["status"] == "ok" for r in rows)
    assert tracker.peak == 5


def test_per_host_rate_limit():
    routes = {f"/{i}.jpg": send(PNG, "image/png") for i in range(6)}
    with Server(routes) as srv:
        t0 = time.monotonic()
        rows = step(per_host_rate=10.0, respect_robots=False).fetch([srv.url(f"/{i}.jpg") for i in range(6)])
        elapsed = time.monotonic() - t0
    assert all(r["status"] == "ok" for r in rows)
    assert 0.5 <= elapsed < 2.0  # 6 requests at 10/s: the last one starts 0.5 s after the first


def test_identical_urls_in_a_batch_are_fetched_once():
    with Server({"/a.jpg": send(JPEG)}) as srv:
        rows = step(respect_robots=False).fetch([srv.url("/a.jpg")] * 3)
        assert srv.count("/a.jpg") == 1
    assert [r["sha256"] for r in rows] == [rows[0]["sha256"]] * 3


# --------------------------------------------------------------------------------------------
# Adaptive per-host concurrency, DNS cache, host interleaving, per-host outcomes
# --------------------------------------------------------------------------------------------

class Tolerant:
    """A handler that serves ``tolerance`` requests at a time (``latency`` s each) and answers 429 at once
    to any request beyond that; its log has (event, time, requests in flight) at every arrival ("in") and
    departure ("out")."""

    def __init__(self, tolerance: int, latency: float, retry_after: str | None = None):
        self.tolerance, self.latency, self.retry_after = tolerance, latency, retry_after
        self.lock = threading.Lock()
        self.inflight = 0
        self.log: list[tuple[str, float, int]] = []
        self.codes: list[int] = []

    def __call__(self, h):
        with self.lock:
            self.inflight += 1
            self.log.append(("in", time.monotonic(), self.inflight))
            refuse = self.inflight > self.tolerance
        try:
            if refuse:
                headers = [("Retry-After", self.retry_after)] if self.retry_after else []
                send(b"slow down", "text/plain", 429, headers)(h)
            else:
                send(PNG, "image/png", delay=self.latency)(h)
        finally:
            with self.lock:
                self.inflight -= 1
                self.log.append(("out", time.monotonic(), self.inflight))
                self.codes.append(429 if refuse else 200)

    def excursions(self) -> list[float]:
        """Durations of the periods in which more than ``tolerance`` requests were in flight."""
        spans, start = [], None
        for _, t, n in self.log:
            if n > self.tolerance and start is None:
                start = t
            elif n <= self.tolerance and start is not None:
                spans.append(t - start)
                start = None
        return spans


def many(handler, n: int) -> dict[str, Handler]:
    return {f"/{i}.png": handler for i in range(n)}


def test_adaptive_limit_grows_on_a_fast_clean_host():
    with Server(many(send(PNG, "image/png", delay=0.03), 60)) as srv:
        rows = step(per_host_start=1, per_host_max=10, concurrency=32, respect_robots=False).fetch(
            [srv.url(f"/{i}.png") for i in range(60)])
        assert all(r["status"] == "ok" for r in rows), [(r["status"], r["error"]) for r in rows if r["status"] != "ok"]
        assert 6 <= srv.tracker.peak <= 10  # grew from 1, never past per_host_max
    with Server(many(send(PNG, "image/png", delay=0.03), 10)) as srv:
        step(per_host=1, concurrency=32, respect_robots=False).fetch([srv.url(f"/{i}.png") for i in range(10)])
        assert srv.tracker.peak == 1  # per_host alone stays a fixed cap


def test_adaptive_limit_backs_off_a_host_that_throttles():
    """The host tolerates 2 requests at a time and answers 429 above that: after the first 429 it sees
    more than 2 only briefly (less than one request's time, the adjustment period), and rarely."""
    host = Tolerant(tolerance=2, latency=0.03)
    with Server(many(host, 60)) as srv:
        s = step(per_host_start=2, per_host_max=32, concurrency=32, retries=4, backoff_s=0.05, respect_robots=False)
        rows = s.fetch([srv.url(f"/{i}.png") for i in range(60)])
    assert [r["status"] for r in rows] == ["ok"] * 60  # the refused ones were retried
    assert host.codes.count(429) <= 12  # one probe every few rounds, not a flood
    assert max(host.excursions(), default=0) < 0.03
    [state] = s.host_states().values()
    assert 1 <= state.limit < 4
    fixed = Tolerant(tolerance=2, latency=0.03)
    with Server(many(fixed, 30)) as srv:
        step(per_host=8, concurrency=32, respect_robots=False).fetch([srv.url(f"/{i}.png") for i in range(30)])
    assert fixed.codes.count(429) > 12  # a fixed cap above the tolerance keeps getting refused


def test_default_settings_keep_a_throttling_host_at_its_tolerance():
    """Out of the box (adaptive, starting at 4 per host) a host that tolerates 2 at a time is above its
    tolerance only for moments shorter than one of its answers (the adjustment period), in its own log."""
    host = Tolerant(tolerance=2, latency=0.05)
    with Server(many(host, 80)) as srv:
        s = DownloadImages(allow_private=True, respect_robots=False, retries=4, backoff_s=0.05)
        rows = s.fetch([srv.url(f"/{i}.png") for i in range(80)])
    assert [r["status"] for r in rows] == ["ok"] * 80
    assert max(host.excursions(), default=0) < 0.05
    assert host.codes.count(429) <= 16  # the first burst over the start of 4, then a probe now and then


def test_adaptive_limit_pauses_a_host_for_its_retry_after():
    host = Tolerant(tolerance=1, latency=0.05, retry_after="1")
    with Server(many(host, 6)) as srv:
        rows = step(per_host_start=2, per_host_max=8, retries=2, respect_robots=False).fetch(
            [srv.url(f"/{i}.png") for i in range(6)])
    assert [r["status"] for r in rows] == ["ok"] * 6
    departures = [t for event, t, _ in host.log if event == "out"]
    first_429 = next(t for t, code in zip(departures, host.codes, strict=True) if code == 429)
    later = [t for event, t, _ in host.log if event == "in" and t > first_429]  # arrivals after the refusal
    assert later and min(later) - first_429 >= 0.9


def test_latency_rise_backs_off_unless_it_is_our_own_loop_lag():
    from waon_hf.steps.download.hosts import CLEAN, THROTTLED, HostState

    def after_slow_answers(lag_s: float) -> float:
        state = HostState(limit=8.0, slow_start=False)
        t = time.monotonic()
        for _ in range(5):
            state.observe(CLEAN, t - 1, 0.1, 16, 200)  # the host at rest: 100 ms
        for i in range(5):
            state.observe(CLEAN, t + i, 0.5, 16, 200, lag_s=lag_s)  # 500 ms, each started after the last cut
        return state.limit

    assert after_slow_answers(0.0) < 8.0  # the host got slower: cut
    assert after_slow_answers(0.4) > 8.0  # the 400 ms were this loop's: the host kept growing

    started_at_4 = HostState(limit=8.0, start=4.0, slow_start=False)
    t = time.monotonic()
    for _ in range(5):
        started_at_4.observe(CLEAN, t - 1, 0.1, 16, 200)
    for i in range(20):
        started_at_4.observe(CLEAN, t + i, 2.0, 16, 200)  # ever slower
    assert started_at_4.limit == 4.0  # latency alone stops at the start...
    started_at_4.observe(THROTTLED, t + 30, None, 16, 429)
    assert started_at_4.limit == 2.0  # ...the host's own 429 goes below it


def test_loop_lag_measures_a_blocked_loop():
    import asyncio

    from waon_hf.steps.download.hosts import LoopLag

    async def scenario():
        lag = LoopLag(period_s=0.01)
        lag.start()
        await asyncio.sleep(0.05)
        calm = lag.lag_s
        time.sleep(0.2)  # what a GIL-holding decode burst does to the loop
        await asyncio.sleep(0.005)  # the lag task wakes ~0.19 s late (then decays by 30% per period)
        blocked = lag.lag_s
        await lag.stop()
        return calm, blocked

    calm, blocked = asyncio.run(scenario())
    assert calm < 0.05 and blocked > 0.1


def test_dns_answers_are_cached_across_batches_and_still_guarded(monkeypatch):
    import aiohttp

    lookups = []

    class Loopback(ScriptedResolver):
        async def resolve(self, host, port=0, family=socket.AF_INET):
            lookups.append(host)
            return await super().resolve(host, port, family)

    monkeypatch.setattr(aiohttp, "DefaultResolver", lambda: Loopback(["127.0.0.1"]))
    with Server(many(send(PNG, "image/png"), 4)) as srv:
        s = DownloadImages(allowed_networks=("127.0.0.0/8",), respect_robots=False, timeout_total=2)
        for i in range(3):  # three batches, one connector each
            assert fetch_one(s, srv.url(f"/{i}.png", host="img.example"), within=2)["status"] == "ok"
        assert lookups == ["img.example"]
        # the cached answer is filtered again on use: an instance without the allowance refuses it
        strict = DownloadImages(respect_robots=False, timeout_total=2)
        strict.__dict__["_cache_dns"] = s.dns_cache()
        assert fetch_one(strict, srv.url("/3.png", host="img.example"), within=2)["status"] == "blocked_private_address"
        assert srv.requests == ["/0.png", "/1.png", "/2.png"] and lookups == ["img.example"]
        expired = DownloadImages(allowed_networks=("127.0.0.0/8",), respect_robots=False, dns_ttl_s=0)
        for i in range(2):
            fetch_one(expired, srv.url(f"/{i}.png", host="img.example"), within=2)
        assert lookups == ["img.example"] * 3


def test_hosts_are_interleaved_within_a_batch():
    assert interleaved_by_host(["http://a/1", "http://a/2", "http://a/3", "http://b/1", "bad", "http://b/2"]) == [
        "http://a/1", "http://b/1", "bad", "http://a/2", "http://b/2", "http://a/3"]
    routes = many(send(PNG, "image/png", delay=0.03), 6)
    with Server(routes) as a, Server(routes) as b:
        urls = sorted([a.url(f"/{i}.png") for i in range(6)] + [b.url(f"/{i}.png") for i in range(6)])
        step(per_host=6, concurrency=2, respect_robots=False).fetch(urls)
        first, second = sorted([a, b], key=lambda srv: srv.url("/"))  # the host sorted first
        assert second.arrivals[0] < first.arrivals[2]  # the other host did not wait for all of the first


def test_priority_gate_serves_the_most_work_first_and_skips_the_cancelled():
    import asyncio

    from waon_hf.steps.download.schedule import PriorityGate

    async def scenario() -> tuple[list[str], int]:
        gate, order = PriorityGate(1), []
        await gate.acquire()  # held: everyone below queues

        async def waiter(name: str, priority: float) -> None:
            async with gate.slot(priority):
                order.append(name)
                await asyncio.sleep(0)

        tasks = {name: asyncio.ensure_future(waiter(name, p)) for name, p in
                 [("small", 1.0), ("big", 5.0), ("gone", 9.0), ("mid", 3.0), ("mid-later", 3.0)]}
        await asyncio.sleep(0)
        tasks["gone"].cancel()
        await asyncio.sleep(0)
        gate.release()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        return order, gate.inflight

    order, inflight = asyncio.run(scenario())
    assert order == ["big", "mid", "mid-later", "small"] and inflight == 0


def test_a_big_host_is_not_queued_behind_the_small_ones():
    """First come, first served would start the big host's second request after all ten one-URL hosts;
    the host with the most work left goes first."""
    import contextlib

    routes = many(send(PNG, "image/png", delay=0.1), 8)
    with contextlib.ExitStack() as stack:
        big = stack.enter_context(Server(routes))
        small = [stack.enter_context(Server(routes)) for _ in range(10)]
        urls = [big.url(f"/{i}.png") for i in range(8)] + [srv.url("/0.png") for srv in small]
        rows = step(per_host=2, concurrency=3, respect_robots=False).fetch(urls)
    assert all(r["status"] == "ok" for r in rows)
    assert big.arrivals[1] < sorted(srv.arrivals[0] for srv in small)[-3]
    assert big.arrivals[3] < max(srv.arrivals[0] for srv in small)


def test_decoding_does_not_hold_the_request_slots(monkeypatch):
    """One global slot, a decode that takes a while: the next request goes out before the decode is done."""
    from waon_hf.steps.download import fetcher

    decodes: list[tuple[float, float]] = []
    real = fetcher.transcode

    def slow_transcode(data, opts):
        began = time.monotonic()
        time.sleep(0.3)
        row = real(data, opts)
        decodes.append((began, time.monotonic()))
        return row

    monkeypatch.setattr(fetcher, "transcode", slow_transcode)
    with Server(many(send(PNG, "image/png"), 3)) as srv:
        urls = [srv.url(f"/{i}.png") for i in range(3)]
        rows = step(concurrency=1, decode_threads=2, respect_robots=False).fetch(urls)
    assert [r["status"] for r in rows] == ["ok"] * 3
    first_decode_done = min(end for _, end in decodes)
    assert srv.arrivals[1] < first_decode_done  # the slot was free while the first image decoded


def test_per_host_outcomes_in_the_stage_stats():
    throttling = Tolerant(tolerance=1, latency=0.05)
    with Server(many(send(PNG, "image/png"), 4) | {"/gone.png": error(404), "/down.png": error(503)}) as a, \
            Server(many(throttling, 6)) as b:
        urls = [a.url(f"/{i}.png") for i in range(4)] + [a.url("/gone.png"), a.url("/down.png")]
        urls += [b.url(f"/{i}.png") for i in range(6)]
        stats = Stats()
        s = step(per_host_start=3, per_host_max=8, respect_robots=False)
        s.apply(datasets.Dataset.from_dict({"url": urls}), stats)
        hosts = stats.stage("download_hosts")
        origin_a, origin_b = a.url("").rstrip("/"), b.url("").rstrip("/")
        assert {k: hosts[f"{origin_a}.{k}"] for k in ("requests", "ok", "http_5xx", "http_429")} == {
            "requests": 6, "ok": 4, "http_5xx": 1, "http_429": 0}
        assert hosts[f"{origin_b}.requests"] == 6 and hosts[f"{origin_b}.http_429"] == throttling.codes.count(429) > 0
        assert hosts[f"{origin_b}.final_limit"] < 3 and hosts[f"{origin_a}.answered"] == 6
        assert 0 < hosts[f"{origin_a}.latency_ms_total"] < 6 * 1000
        again = Stats()
        s.apply(datasets.Dataset.from_dict({"url": urls[:1]}), again)  # each apply reports its own requests
        assert again.stage("download_hosts") [f"{origin_a}.requests"] == 1
    assert "after download" in funnel_markdown(stats) and "download_hosts" not in funnel_markdown(stats)


# --------------------------------------------------------------------------------------------
# SSRF guard
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("address, allowed", [
    ("8.8.8.8", True), ("2001:4860:4860::8888", True), ("93.184.216.34", True),
    ("127.0.0.1", False), ("::1", False), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("fe80::1", False), ("fe80::1%eth0", False), ("fc00::1", False),
    ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False), ("240.0.0.1", False),
    ("255.255.255.255", False), ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", False), ("192.0.2.1", False),
    ("not an address", False),
])
def test_address_predicate(address, allowed):
    assert address_allowed(address) is allowed  # a pure function: nothing is contacted


def test_ssrf_guard_refuses_loopback_without_connecting():
    with Server({"/a.jpg": send(JPEG), "/robots.txt": error(404)}) as srv:
        s = DownloadImages(timeout_total=1)  # the production default: allow_private=False
        for url in (srv.url("/a.jpg"), srv.url("/a.jpg", host="localhost"), srv.url("/a.jpg", host="[::1]"),
                    srv.url("/a.jpg", host="[::ffff:127.0.0.1]")):
            row = fetch_one(s, url, within=1)
            assert row["status"] == "blocked_private_address", (url, row["error"])
        assert srv.requests == []  # nothing reached the server, robots.txt included
        # host names go through the guarded resolver; allowed_networks opens it explicitly
        ok = DownloadImages(timeout_total=1, allowed_networks=("127.0.0.0/8", "::1/128"))
        assert fetch_one(ok, srv.url("/a.jpg", host="localhost"), within=2)["status"] == "ok"


def test_ssrf_guard_checks_every_redirect():
    """127.0.0.1 is allowed explicitly; a redirect from it to another loopback address is refused."""
    with Server({"/a.jpg": redirect("http://[::1]:1/secret"), "/robots.txt": error(404)}) as srv:
        s = DownloadImages(timeout_total=1, allowed_networks=("127.0.0.1/32",))
        row = fetch_one(s, srv.url("/a.jpg"), within=2)
        assert row["status"] == "blocked_private_address" and "::1" in row["error"]
        assert srv.count("/a.jpg") == 1


# IPv6 forms that embed an IPv4 address: the embedded address decides.
EMBEDDED_LOOPBACK = [
    "::127.0.0.1",  # IPv4-compatible
    "::ffff:0:7f00:1",  # IPv4-translated (SIIT)
    "64:ff9b::7f00:1",  # NAT64 well-known prefix
    "64:ff9b:1::7f00:1",  # NAT64 local-use prefix (refused as a whole)
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254 (cloud metadata)
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
]


@pytest.mark.parametrize("address", EMBEDDED_LOOPBACK + ["64:ff9b::a00:1", "::ffff:0:a9fe:a9fe", "::10.0.0.1"])
def test_address_predicate_unwraps_embedded_ipv4(address):
    assert address_allowed(address) is False


@pytest.mark.parametrize("address", ["64:ff9b::808:808", "2002:808:808::1"])
def test_embedded_public_ipv4_stays_allowed(address):
    assert address_allowed(address) is True  # NAT64 / 6to4 of 8.8.8.8: a public destination


def test_embedded_ipv4_is_decoded():
    import ipaddress

    v4 = ipaddress.IPv4Address
    assert embedded_ipv4(ipaddress.IPv6Address("64:ff9b::c000:221")) == (v4("192.0.2.33"),)
    assert embedded_ipv4(ipaddress.IPv6Address("2002:c000:221::1")) == (v4("192.0.2.33"),)
    assert embedded_ipv4(ipaddress.IPv6Address("2001:0:4136:e378:8000:63bf:3fff:fdd2")) == (
        v4("65.54.227.120"), v4("192.0.2.45"))  # RFC 4380's example: server, de-obfuscated client
    assert embedded_ipv4(ipaddress.IPv6Address("2001:4860:4860::8888")) == ()
    # allowed_networks opens the embedded address too, as it does for IPv4-mapped forms
    assert address_allowed("64:ff9b::7f00:1", [ipaddress.ip_network("127.0.0.0/8")])


def test_ssrf_guard_refuses_embedded_ipv4_literals_without_connecting():
    with Server({"/a.jpg": send(JPEG), "/robots.txt": error(404)}) as srv:
        s = DownloadImages(timeout_total=1)
        for address in EMBEDDED_LOOPBACK:
            row = fetch_one(s, srv.url("/a.jpg", host=f"[{address}]"), within=1)
            assert row["status"] == "blocked_private_address", (address, row["error"])
        assert srv.requests == []


class ScriptedResolver:
    """Stands in for aiohttp's resolver: every host name resolves to ``addresses``."""

    def __init__(self, addresses):
        self.addresses = addresses

    async def resolve(self, host, port=0, family=socket.AF_INET):
        return [{"hostname": host, "host": a, "port": port, "family": socket.AF_INET6 if ":" in a else socket.AF_INET,
                 "proto": 0, "flags": socket.AI_NUMERICHOST} for a in self.addresses]

    async def close(self):
        pass


def test_ssrf_guard_refuses_host_names_resolving_to_embedded_ipv4(monkeypatch):
    """A DNS answer made only of IPv4-embedding forms of loopback is refused before any connection."""
    import aiohttp

    monkeypatch.setattr(aiohttp, "DefaultResolver", lambda: ScriptedResolver(EMBEDDED_LOOPBACK))
    with Server({"/a.jpg": send(JPEG), "/robots.txt": error(404)}) as srv:
        row = fetch_one(DownloadImages(timeout_total=1), srv.url("/a.jpg", host="images.example"), within=1)
        assert row["status"] == "blocked_private_address", row["error"]
        assert "64:ff9b::7f00:1" in row["error"]
        assert srv.requests == []


def test_guarded_resolver_keeps_only_allowed_answers():
    import asyncio

    answers = ScriptedResolver(["2002:7f00:1::1", "8.8.8.8", "64:ff9b::7f00:1"])
    guarded = GuardedResolver(address_allowed, inner=answers)
    assert [a["host"] for a in asyncio.run(guarded.resolve("mixed.example", 80))] == ["8.8.8.8"]


# --------------------------------------------------------------------------------------------
# datasets integration, retries of failed rows, counters
# --------------------------------------------------------------------------------------------

def test_apply_on_a_dataset_round_trips_the_image_column(tmp_path):
    routes = {f"/{i}.jpg": send(synthetic_image(10 + i, 300 + 40 * i, 200)) for i in range(4)}
    routes["/gone.jpg"] = error(404)
    with Server(routes) as srv:
        urls = [srv.url(f"/{i}.jpg") for i in range(4)] + [srv.url("/gone.jpg")]
        ds = datasets.Dataset.from_dict({"url": urls, "caption": [f"写真{i}" for i in range(5)]})
        stats = Stats()
        s = build_step("download", allow_private=True, image_size=64, timeout_total=2)
        out = s.apply(ds, stats, num_proc=2, batch_size=2)  # pickled to two worker processes
    assert isinstance(out.features["image"], datasets.Image)
    assert out.cache_files  # written to disk batch by batch, not held in memory
    assert out["caption"] == ds["caption"] and out["url"] == urls
    assert out["status"] == ["ok"] * 4 + ["http_404"]
    assert out[0]["image"].size == (96, 64) and out[4]["image"] is None
    assert stats.stage("download") == {"in": 5, "kept": 5}
    assert status_counts(out) == {"ok": 4, "http_404": 1}
    out.to_parquet(tmp_path / "d.parquet")  # embedded bytes survive a parquet round trip
    back = datasets.Dataset.from_parquet(str(tmp_path / "d.parquet"))
    assert back.features["image"] == datasets.Image() and back[1]["image"].size == out[1]["image"].size
    assert set(OUTPUT_COLUMNS) <= set(out.column_names)


def test_retry_failed_refetches_only_retryable_rows():
    routes = {"/ok.jpg": send(JPEG), "/flaky.jpg": sequence(error(503), send(PNG, "image/png")),
              "/gone.jpg": error(404), "/slow.jpg": sequence(send(JPEG, delay=2), send(JPEG))}
    with Server(routes) as srv:
        urls = [srv.url(p) for p in ("/ok.jpg", "/flaky.jpg", "/gone.jpg", "/slow.jpg")]
        s = step(respect_robots=False, timeout_total=0.5)
        first = s.apply(datasets.Dataset.from_dict({"url": urls}))
        assert first["status"] == ["ok", "http_5xx", "http_404", "timeout"]
        stats = Stats()
        second = s.apply_retry_failed(first, stats)
        assert second["status"] == ["ok", "ok", "http_404", "ok"]
        assert [srv.count(p) for p in ("/ok.jpg", "/flaky.jpg", "/gone.jpg", "/slow.jpg")] == [1, 2, 1, 2]
    assert second.features["image"] == datasets.Image()
    assert second.with_format("arrow")["image"][0] == first.with_format("arrow")["image"][0]  # untouched bytes
    assert second[1]["image"].size == (384, 256)
    assert stats.stage("download_retry") == {"in": 4, "kept": 4, "retried": 2}
    batch = {"url": urls[:1], **{c: [None] for c in OUTPUT_COLUMNS}}
    batch["status"] = ["http_404"]
    assert s.retry_failed(batch)["status"] == ["http_404"]  # nothing to do, no request


def test_empty_dataset():
    out = step().apply(datasets.Dataset.from_dict({"url": []}, features=datasets.Features(
        {"url": datasets.Value("string")})))
    assert len(out) == 0 and set(OUTPUT_COLUMNS) <= set(out.column_names)


def test_retryable_statuses():
    assert {s for s in STATUSES if retryable(s)} == {"timeout", "connection_error", "http_429", "http_5xx",
                                                      "robots_unreachable"}
    assert not retryable(None) and not retryable("ok")


# --------------------------------------------------------------------------------------------
# Images out of WARC files: no server at all
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".warc.gz", ".warc"])
def test_warc_image_source_serves_without_network(tmp_path, suffix):
    path = tmp_path / f"images{suffix}"
    a, b = "https://img.example.jp/a.jpg", "https://img.example.jp/b.png"
    records = [
        warc_response("https://example.jp/page.html", [("Content-Type", "text/html")], HTML),
        warc_image_response(a, JPEG),
        warc_image_response(b, PNG, "image/png"),
        warc_image_response("https://img.example.jp/noai.jpg", JPEG, extra_headers=[("X-Robots-Tag", "noai")]),
        warc_image_response("https://img.example.jp/404.jpg", HTML, "text/html", status=404),
        warc_image_response(a, PNG, "image/png"),  # a later capture of a: the first one wins
    ]
    if suffix == ".warc.gz":
        write_warc(path, records)
    else:
        path.write_bytes(b"".join(encode_item(r, gz=False) for r in records))
    index = WarcImageIndex.build([path])
    assert sorted(index.urls()) == [a, b, "https://img.example.jp/noai.jpg"]
    assert index.get(a).data == JPEG and index.get(b).content_type == "image/png"
    assert index.counts["duplicates"] == 1 and index.get("https://nowhere.jp/x.jpg") is None

    s = DownloadImages(warc_sources=(str(path),), offline=True)  # default guard; no server exists
    t0 = time.monotonic()
    rows = s.fetch([a, b, "https://img.example.jp/noai.jpg", "https://img.example.jp/missing.jpg"])
    assert time.monotonic() - t0 < 2
    assert [r["status"] for r in rows] == ["ok", "ok", "x_robots_tag", "not_in_archive"]
    assert (rows[0]["original_width"], rows[0]["width"]) == (800, 341)
    assert "_cache_archive" not in pickle.loads(pickle.dumps(s)).__dict__


def test_warc_source_falls_back_to_the_network(tmp_path):
    path = tmp_path / "one.warc.gz"
    write_warc(path, [warc_image_response("https://img.example.jp/a.jpg", JPEG)])
    with Server({"/b.jpg": send(PNG, "image/png")}) as srv:
        s = step(warc_sources=(str(path),), respect_robots=False)
        rows = s.fetch(["https://img.example.jp/a.jpg", srv.url("/b.jpg")])
        assert [r["status"] for r in rows] == ["ok", "ok"] and srv.requests == ["/b.jpg"]
