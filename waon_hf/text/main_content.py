"""The main content of an HTML page as an ordered list of text blocks and images.

A rule on the selectolax tree the extractor already builds (no second parser), in three steps:

1. Boilerplate is removed: ``nav``, ``header``, ``footer``, ``aside``, ``form``, scripts, and elements
   whose ``id``/``class`` names a menu, sidebar, breadcrumb, footer, share bar, comment list, ad,
   ranking or related-articles box.
2. Every text node scores its wide (CJK) characters (+3 per ``。`` / ``、``, the mark of running
   prose; link text scores nothing) to its nearest block ancestor, that block's parent, and half to
   the grandparent (readability's scheme). The best-scoring element is the main container (deepest on
   a tie); siblings scoring at least ``sibling_ratio`` of it join (an article split in boxes).
3. The container is walked in document order: text grouped by nearest block ancestor, ``<br>`` ends a
   block, blocks whose text is mostly links (``max_link_density``) are dropped, and each ``<img>``
   is an item at its place.

Measured against the hand-made expected outputs of real pages in BENCHMARKS.md (readability /
scrapinghub test pages) next to trafilatura.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BOILERPLATE_TAGS = ("script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form",
                    "iframe", "rt", "rp", "button", "select", "textarea", "svg", "canvas", "video", "audio", "object")
_BOILERPLATE_NAME_RE = re.compile(
    r"(?:^|[-_\s])(?:nav|navi|navigation|menu|gnav|globalnav|sidebar|side|sidenav|breadcrumbs?|pankuzu|topicpath|"
    r"footer|foot|header|masthead|share|sns|social|comments?|ads?|advert\w*|banner|sponsor\w*|pr|widget|"
    r"ranking|related|recommend\w*|pager|pagination|copyright|cookie\w*|modal|popup)(?:$|[-_\s\d])",
    re.IGNORECASE)
BLOCK_TAGS = frozenset({"p", "div", "td", "th", "li", "dd", "dt", "section", "article", "main", "h1", "h2", "h3",
                        "h4", "h5", "h6", "pre", "blockquote", "figure", "figcaption", "table", "tr", "ul", "ol",
                        "dl", "body", "center", "address", "caption", "summary", "details"})


def wide_chars(text: str) -> int:
    """Characters of U+0800 and above (kana, kanji, full-width forms), counted from the UTF-8 length in C.

    Exact for text without U+0080..U+07FF (Latin accents, Greek, Cyrillic count half) and without
    characters above U+FFFF (counted 1.5): a score, not a count, so the approximation is harmless.
    """
    return (len(text.encode("utf-8", "surrogatepass")) - len(text)) // 2


@dataclass(frozen=True)
class Block:
    """A run of text (one block element's direct text)."""

    text: str


@dataclass(frozen=True)
class ImageItem:
    """An ``<img>`` in the main content; ``attrs`` are its attributes."""

    attrs: dict


def _is_boilerplate(node) -> bool:
    attrs = node.attributes
    for key in ("id", "class", "role"):
        value = attrs.get(key)
        if value and _BOILERPLATE_NAME_RE.search(value):
            return node.tag not in ("body", "html", "main", "article")
    return False


def strip_boilerplate(root) -> int:
    """Remove boilerplate elements from the tree under ``root``; returns how many were removed."""
    removed = 0
    for tag in BOILERPLATE_TAGS:
        for node in root.css(tag):
            node.decompose()
            removed += 1
    for node in root.css("[id], [class], [role]"):
        if _is_boilerplate(node):
            node.decompose()
            removed += 1
    return removed


def _block_of(node):
    """(nearest block ancestor, whether a link encloses the node below that block)."""
    link = False
    parent = node.parent
    while parent is not None and parent.tag not in BLOCK_TAGS:
        if parent.tag == "a":
            link = True
        parent = parent.parent
    return parent, link


def _score(root) -> tuple[dict, dict]:
    scores: dict[int, float] = {}
    nodes: dict[int, object] = {}
    for node in root.traverse(include_text=True):
        if node.tag != "-text":
            continue
        text = node.text_content
        if not text or text.isspace():
            continue
        block, link = _block_of(node)
        if block is None or link:
            continue
        s = wide_chars(text) + 3 * (text.count("。") + text.count("、"))
        if not s:
            continue
        for target, weight in ((block, 1.0), (block.parent, 1.0), (block.parent.parent if block.parent else None, 0.5)):
            if target is None or target.tag in ("html", "-undef"):
                continue
            scores[target.mem_id] = scores.get(target.mem_id, 0.0) + weight * s
            nodes[target.mem_id] = target
    return scores, nodes


def _depth(node) -> int:
    d = 0
    while node.parent is not None:
        node, d = node.parent, d + 1
    return d


def main_containers(root, sibling_ratio: float = 0.2) -> list:
    """The main-content element(s) under ``root`` (boilerplate already stripped), in document order."""
    scores, nodes = _score(root)
    if not scores:
        return []
    top = max(scores.values())
    best_id = max((k for k, v in scores.items() if v == top), key=lambda k: _depth(nodes[k]))  # deepest on a tie
    best = nodes[best_id]
    parent = best.parent
    if parent is None:
        return [best]
    chosen = []
    for child in parent.iter():
        if child.mem_id == best_id or scores.get(child.mem_id, 0.0) >= max(10.0, sibling_ratio * top):
            chosen.append(child)
    return chosen


def _items(container, max_link_density: float, out: list) -> None:
    current_block = None
    parts: list[str] = []
    linked = [0]

    def flush() -> None:
        if not parts:
            return
        text = " ".join("".join(parts).split())
        if text and linked[0] <= max_link_density * len(text):
            out.append(Block(text))
        parts.clear()
        linked[0] = 0

    for node in container.traverse(include_text=True):
        tag = node.tag
        if tag == "img":
            flush()
            out.append(ImageItem(dict(node.attributes)))
            continue
        if tag == "br":
            flush()
            continue
        if tag != "-text":
            continue
        text = node.text_content
        if not text:
            continue
        if text.isspace():  # the space between two inline elements ("<a>Kindle</a> <b>for</b>") is kept
            if parts:
                parts.append(" ")
            continue
        block, link = _block_of(node)
        key = block.mem_id if block is not None else None
        if key != current_block:
            flush()
            current_block = key
        parts.append(text)
        if link:
            linked[0] += len(text.strip())
    flush()


def main_content(tree, *, sibling_ratio: float = 0.2, max_link_density: float = 0.5) -> list[Block | ImageItem]:
    """Text blocks and images of the page's main content, in document order (the tree is modified)."""
    root = tree.body or tree.root
    if root is None:
        return []
    strip_boilerplate(root)
    out: list[Block | ImageItem] = []
    for container in main_containers(root, sibling_ratio):
        _items(container, max_link_density, out)
    return out
