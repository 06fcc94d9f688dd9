"""Image URL resolution as a browser does it (WHATWG URL), with a string-only fast path.

Browsers parse an ``<img src>`` with the WHATWG URL rules, which differ from RFC 3986 and
``urllib.parse`` where it matters for a crawl: ASCII tab and newline are removed anywhere, leading
and trailing C0 controls and spaces are stripped, a backslash is a slash in http(s) URLs
(``\\\\evil.example\\x.jpg`` names the host ``evil.example``), and a URL whose host or port is invalid
(port 99999, a space or control character in the host, ``1.2.3.256``, ``foo.123``) is no URL at all.
Such references are counted as ``img_bad_url``. Validity is decided by ada (``ada_url``, a WHATWG
URL parser); the URL kept is the resolved reference as written (fragment removed, scheme
lower-cased, spaces and control characters percent-encoded), not ada's normalised form, so that
pairs stay as they were.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

from ada_url import check_url

_C0_AND_SPACE = "".join(chr(c) for c in range(0x21))
# Anything that makes a reference leave the string-only fast path.
_SLOW_CHARS_RE = re.compile(r"[\x00-\x20\x7f\\]")
_TAB_NEWLINE_RE = re.compile(r"[\t\n\r]")
_ENCODE_RE = re.compile(r"[\x00-\x20\x7f]")


def _percent_encode(match: re.Match) -> str:
    return f"%{ord(match.group()):02X}"


class UrlResolver:
    """Resolves image URLs against one base; the common shapes skip URL parsing entirely.

    Root-relative ``/path`` and plain directory-relative ``dir/file.jpg`` references without spaces,
    controls or backslashes are joined with string operations (the base is checked once); absolute
    and protocol-relative ones are joined the same way and their host and port checked by ada;
    anything else (dot segments, queries, other schemes) goes through ``urljoin``. Results equal
    ``urldefrag(urljoin(base, ref))`` with the scheme lower-cased, for every reference a browser
    accepts.
    """

    def __init__(self, base: str):
        self.base = base
        try:
            parts = urlsplit(base)
        except ValueError:
            parts = None
        if parts is not None and parts.scheme in ("http", "https") and parts.netloc and check_url(base):
            path = parts.path or "/"
            self.scheme = parts.scheme
            self.origin = f"{parts.scheme}://{parts.netloc}"
            self.directory = self.origin + path[: path.rfind("/") + 1]
        else:
            self.scheme = self.origin = self.directory = ""
        # A http(s) URL fails to parse only for its authority (host, port): the answer is cached per
        # scheme + authority, a page's absolute image URLs come from a few hosts.
        self._valid: dict[str, bool] = {}

    def resolve(self, ref: str) -> tuple[str, str | None]:
        """``(absolute url, None)`` or ``("", counter name of the problem)``."""
        # Three C-level tests are faster than one regex search; the clean-up itself is rare.
        if (" " in ref or "\\" in ref or not ref.isprintable()) and _SLOW_CHARS_RE.search(ref):
            ref = _TAB_NEWLINE_RE.sub("", ref.strip(_C0_AND_SPACE)).replace("\\", "/")
            ref = _ENCODE_RE.sub(_percent_encode, ref)
        if "#" in ref:
            ref = ref[: ref.index("#")]
        first = ref[:1]
        if self.origin and "/." not in ref:
            if first == "/":
                if ref[1:2] != "/":
                    return self.origin + ref, None
                return self._check(f"{self.scheme}:{ref}")
            if first not in ("", ".", "?") and ":" not in ref.split("/", 1)[0]:
                return self.directory + ref, None
        lowered = ref[:8].lower()
        if lowered.startswith(("http://", "https://")):
            return self._check(ref)
        try:
            url = urljoin(self.base, ref)
        except ValueError:
            return "", "img_bad_url"
        return self._check(url)

    def _check(self, url: str) -> tuple[str, str | None]:
        scheme_end = url.find("://")
        scheme = url[:scheme_end].lower() if scheme_end > 0 else url.split(":", 1)[0].lower()
        if scheme not in ("http", "https"):
            return "", "img_data_uri" if scheme == "data" else "img_bad_scheme"
        end = len(url)
        for sep in "/?":
            at = url.find(sep, scheme_end + 3)
            if 0 <= at < end:
                end = at
        origin = url[:end]
        valid = self._valid.get(origin)
        if valid is None:  # host (forbidden code points, IPv4/IPv6 syntax, IDNA) and port range
            valid = self._valid[origin] = check_url(origin)
        if not valid:
            return "", "img_bad_url"
        if scheme != url[:scheme_end]:
            url = scheme + url[scheme_end:]
        return url, None
