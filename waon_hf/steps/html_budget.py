"""How much work a page's markup asks of the HTML tree builder, estimated from the bytes before parsing.

Why: lexbor (like the HTML standard's tree builder) walks the stack of open elements at each start
tag of the block family (``<div>``, ``<figure>``, ``<p>``, ``<li>``, headings, ...: "close a p element
if one is in button scope"). Deeply nested markup makes that quadratic: 100,000 nested ``<div>``
(500 KB) take about 10-30 s to parse, and gzip squeezes a million of them into a few KB of a WARC
record. The parse cannot be interrupted from Python, so the cost is checked before it starts.

The estimate, :func:`nesting_work`, is the sum, over the block-family start tags, of the number of
elements open at that point. Open elements are tracked per tag name (an end tag closes only an open
element of its name, as a stray end tag is ignored by the parser, so ``</span>`` cannot hide an
open ``<div>``); void elements and those whose end tag is implied (``<p>``, ``<li>``, ``<td>``...) are
not counted as open. It only needs a scan for ``<`` and a few vector operations (numpy): about a
tenth of the parse time of the same bytes. A page with ``n`` tags cannot ask more than ``n²/2``,
so pages with few ``<`` (nearly all) are not scanned at all (:func:`within_budget`).
"""

from __future__ import annotations

import math

import numpy as np

# Never counted as open: void elements, and elements the parser closes implicitly at the next sibling.
_NOT_OPEN = (
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr", "param",
    "keygen", "frame", "basefont", "bgsound", "image", "p", "li", "dt", "dd", "option", "optgroup", "tr", "td",
    "th", "thead", "tbody", "tfoot", "rb", "rt", "rp", "rtc", "colgroup", "caption", "html", "head", "body",
)
# Start tags whose tree-builder step walks the stack of open elements.
_BLOCK = (
    "address", "article", "aside", "blockquote", "center", "details", "dialog", "dir", "div", "dl", "fieldset",
    "figcaption", "figure", "footer", "header", "hgroup", "main", "menu", "nav", "ol", "p", "search", "section",
    "summary", "ul", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "listing", "form", "li", "dd", "dt", "hr", "xmp",
    "plaintext", "table",
)
_NAME_BYTES = 16  # names are compared on their first 16 bytes, folded into one 64-bit key
_MIX = np.uint64(0x9E3779B97F4A7C15)
_LT, _SLASH = ord("<"), ord("/")


def _fold(names: np.ndarray) -> np.ndarray:
    """Rows of 16 name bytes -> one uint64 each (two 8-byte halves mixed; collisions are negligible)."""
    halves = np.ascontiguousarray(names).view(np.uint64)
    return halves[:, 0] ^ (halves[:, 1] * _MIX)


def _key(name: str) -> int:
    return int(_fold(np.frombuffer(name.encode("ascii").ljust(_NAME_BYTES, b"\0"), dtype=np.uint8)[None, :])[0])


_NOT_OPEN_KEYS = np.array(sorted(_key(n) for n in _NOT_OPEN), dtype=np.uint64)
_BLOCK_KEYS = np.array(sorted(_key(n) for n in _BLOCK), dtype=np.uint64)


def nesting_work(data: bytes) -> int:
    """Sum over block-family start tags of the elements open there (see the module docstring)."""
    arr = np.frombuffer(data, dtype=np.uint8)
    pos = np.flatnonzero(arr == _LT)
    if pos.size == 0:
        return 0
    window = np.concatenate([arr, np.zeros(_NAME_BYTES + 2, np.uint8)])[pos[:, None] + np.arange(1, _NAME_BYTES + 3)]
    close = window[:, 0] == _SLASH
    name = np.where(close[:, None], window[:, 1:], window[:, :-1])  # the bytes after "<" or "</"
    lower = name | 0x20  # ASCII letters to lower case; digits keep their value
    alpha = (lower >= ord("a")) & (lower <= ord("z"))
    in_name = np.logical_and.accumulate(alpha | ((name >= ord("0")) & (name <= ord("9"))), axis=1)
    is_tag = alpha[:, 0]
    keys = _fold(np.where(in_name, lower, 0)[:, :_NAME_BYTES].astype(np.uint8))
    keys = np.where(in_name[:, _NAME_BYTES], np.uint64(0), keys)  # a longer name is none of ours
    block_start = is_tag & ~close & np.isin(keys, _BLOCK_KEYS)
    counted = is_tag & ~np.isin(keys, _NOT_OPEN_KEYS)
    # Depth per tag name: a running sum of +1 (start) / -1 (end) that never goes below zero.
    idx = np.flatnonzero(counted)
    if idx.size == 0:
        return 0
    order = np.lexsort((idx, keys[idx]))  # by name, then document order
    events = idx[order]
    steps = np.where(close[events], -1, 1).astype(np.int64)
    group_start = np.r_[True, keys[events][1:] != keys[events][:-1]]
    group = np.cumsum(group_start) - 1
    total = np.cumsum(steps)
    total -= np.repeat(np.r_[0, total[:-1]][group_start], np.diff(np.r_[np.flatnonzero(group_start), total.size]))
    # Reflect at zero within each group: depth = sum - min(0, running min of sum); groups kept apart by offsets.
    big = 2 * total.size + 2
    shifted = np.minimum(total, 0) - group * big
    floor = np.minimum.accumulate(shifted) + group * big
    depth = total - np.minimum(floor, 0)
    change = np.empty_like(depth)
    change[order] = np.diff(np.r_[0, depth]) * ~group_start + depth * group_start
    open_total = np.zeros(pos.size, dtype=np.int64)
    open_total[idx] = change
    open_total = np.cumsum(open_total)
    return int(open_total[block_start].sum())


def within_budget(markup: bytes | str, max_work: int) -> bool:
    """Whether :func:`nesting_work` of ``markup`` is at most ``max_work``; scans only pages that could exceed it."""
    if isinstance(markup, bytes):  # numpy counts a byte three times faster than bytes.count
        n_lt = int(np.count_nonzero(np.frombuffer(markup, dtype=np.uint8) == _LT))
    else:
        n_lt = markup.count("<")
    if n_lt <= math.isqrt(2 * max_work):  # n tags ask at most n²/2
        return True
    data = markup if isinstance(markup, bytes) else markup.encode("utf-8", "surrogatepass")
    for tag in (b"div", b"DIV"):  # F <div> never closed ask at least F²/2: a megabyte of them is decided here
        unclosed = data.count(b"<" + tag) - data.count(b"</" + tag)
        if unclosed > 0 and unclosed * (unclosed + 1) // 2 > max_work:
            return False
    return nesting_work(data) <= max_work
