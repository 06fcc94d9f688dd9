"""Reference implementation of the ``<img>`` extraction rules, used to compute ``expected_pairs``.

The rules (before caption filtering, without NFKC):

1. url candidates, in order: ``data-src``, ``data-original``, ``data-lazy-src``, ``src``, best
   ``srcset`` entry, best ``data-srcset`` entry (largest ``w``/``x`` descriptor, none = 1x);
   the first one that is non-empty and not a ``data:`` URI wins;
2. it is resolved with ``urllib.parse.urljoin`` against ``<base href>`` (itself resolved against
   the page url) or the page url; the fragment is removed; only http/https are kept;
3. skipped when ``width`` or ``height`` is numeric and < 10 (``"100%"`` is not numeric), or when
   the last path segment (lowercased) is a spacer name (spacer.gif, pixel.gif, ...) or ends in
   .svg/.svgz/.ico;
4. caption = whitespace-collapsed text of the ``<figcaption>`` of the nearest enclosing
   ``<figure>`` when non-empty, else the whitespace-collapsed, entity-decoded ``alt``
   (``" ".join(s.split())``, which also collapses U+3000 and the U+00A0 of ``&nbsp;``); empty
   captions are skipped.

Attribute values are entity-decoded before all this (``src="a.php?x=1&amp;y=2"`` gives
``...?x=1&y=2``); urls are not percent-encoded or otherwise normalised.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urljoin, urlsplit

SPACER_NAMES = ("spacer.gif", "pixel.gif", "blank.gif", "1x1.gif", "transparent.gif", "clear.gif")
SKIPPED_EXTENSIONS = (".svg", ".svgz", ".ico")


def srcset_best(srcset: str) -> str:
    """Url of the srcset candidate with the largest ``w``/``x`` descriptor (none = 1x); first wins ties."""
    best_url, best_value = "", -1.0
    for part in srcset.split(","):
        tokens = part.split()
        if not tokens:
            continue
        value = 1.0
        if len(tokens) > 1 and tokens[1][-1:] in ("w", "x"):
            try:
                value = float(tokens[1][:-1])
            except ValueError:
                continue
        if value > best_value:
            best_url, best_value = tokens[0], value
    return best_url


def _is_small(value: str | None) -> bool:
    if value is None:
        return False
    try:
        return float(value.strip()) < 10
    except ValueError:
        return False


def expected_pair(
    attrs: Mapping[str, str], base_url: str, figcaption: str | None = None
) -> tuple[str, str] | None:
    """Apply the extraction rules to one ``<img>`` (decoded attribute values, lowercase names).

    ``base_url`` is the page url, or the ``<base href>`` already resolved against it;
    ``figcaption`` is the raw text of the nearest enclosing figure's figcaption, if any.
    """
    candidates = [attrs.get(name) for name in ("data-src", "data-original", "data-lazy-src", "src")]
    candidates.append(srcset_best(attrs["srcset"]) if "srcset" in attrs else None)
    candidates.append(srcset_best(attrs["data-srcset"]) if "data-srcset" in attrs else None)
    raw = next((c for c in candidates if c and c.strip() and not c.strip().lower().startswith("data:")), None)
    if raw is None:
        return None
    url = urljoin(base_url, raw.strip()).split("#", 1)[0]
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https"):
        return None
    if _is_small(attrs.get("width")) or _is_small(attrs.get("height")):
        return None
    name = parsed.path.rsplit("/", 1)[-1].lower()
    if name in SPACER_NAMES or name.endswith(SKIPPED_EXTENSIONS):
        return None
    caption = " ".join((figcaption or "").split()) or " ".join(attrs.get("alt", "").split())
    return (url, caption) if caption else None
