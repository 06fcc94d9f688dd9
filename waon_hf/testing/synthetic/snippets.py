"""The ``<img>`` snippet kinds written into synthetic pages, each with the tags it contains.

``SNIPPET_BUILDERS`` maps a kind name to a function of a :class:`SnippetContext` (the page's
random generator, language and text pool) that returns the snippet's HTML and its
:class:`ImgTag` s. ``IMAGE_KINDS`` is the rotation pages take their snippets from: it covers every
extraction rule (relative/absolute/protocol-relative urls, figure/figcaption, lazy-loading
attributes, srcset, skipped data:/javascript:/ftp: urls, trackers, spacers, icons, missing alt,
entities, odd captions), with plain kinds interleaved so that most images yield a pair. The
expected pair of a tag comes from :func:`~waon_hf.testing.synthetic.rules.expected_pair`.
"""

from __future__ import annotations

import base64
import html as _html
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass

from waon_hf.testing.synthetic.rules import SPACER_NAMES
from waon_hf.testing.synthetic.text import lines, text_pool
from waon_hf.testing.synthetic.text_ja import JA_CP932_CAPTIONS

_CDN_HOSTS = {
    "ja": "cdn.example.jp", "zh-hans": "img.example.cn", "zh-hant": "img.example.tw",
    "ko": "img.example.kr", "en": "cdn.example.com",
}

_GIF_1X1 = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
_PNG_DATA = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR").decode()


# Caption variants for the special caption kinds, per language family.
_SPECIAL_CAPTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    # raw HTML attribute sources (entities are decoded by the parser)
    "entities": {
        "ja": ("トム&amp;ジェリー展 &lt;特別編&gt;", "&quot;限定&quot;モデル", "価格&nbsp;1,980円",
               "&#x2605;人気No.1&#x2605;", "Q&amp;A コーナー"),
        "zh": ("汤姆&amp;杰瑞 &lt;特别版&gt;", "&quot;限量&quot;款式", "价格&nbsp;99元"),
        "zh-hant": ("湯姆&amp;傑利 &lt;特別版&gt;", "&quot;限量&quot;款式", "價格&nbsp;99元"),
        "ko": ("톰&amp;제리 &lt;특별편&gt;", "&quot;한정&quot; 모델", "가격&nbsp;9,900원"),
        "en": ("Tom &amp; Jerry &lt;special&gt;", "&quot;Limited&quot; edition", "Price&nbsp;$19"),
    },
    "whitespace": {
        "ja": ("\n      春の\n      新作\t コレクション\n    ", "  まぐろ　丼  ", "\n 駅前の\n\n 風景 "),
        "zh": ("\n    春季\n    新品  上市\n  ", "  西湖  风景  "),
        "zh-hant": ("\n    春季\n    新品  上市\n  ", "  日月潭  風景  "),
        "ko": ("\n    봄\n    신상품   컬렉션\n  ", "  남산   타워  "),
        "en": ("\n    Spring\n    collection   2024\n  ", "  Old   town  "),
    },
    "fullwidth": {
        "ja": ("ＮＥＷ！春の新作コレクション", "ＳＡＬＥ　最大５０％ＯＦＦ", "ＴＯＫＹＯ　２０２４",
               "ＣＡＦＥ ＭＥＮＵ"),
        "zh": ("ＮＥＷ新品上市", "ＳＡＬＥ５０％"),
        "ko": ("ＮＥＷ 신상품", "ＳＡＬＥ５０％"),
        "en": ("ＮＥＷ ＡＲＲＩＶＡＬＳ",),
    },
    "repeated": {
        "ja": ("ああああああああああああああああ", "！！！！！！！！！！！！", "ーーーーーーーーーーーーーー",
               "wwwwwwwwwwwwwwwwwwww", "★★★★★★★★★★★★"),
        "zh": ("哈哈哈哈哈哈哈哈哈哈哈哈哈哈", "！！！！！！！！！！"),
        "ko": ("ㅋㅋㅋㅋㅋㅋㅋㅋㅋㅋㅋㅋㅋㅋ", "!!!!!!!!!!!!!!!!"),
        "en": ("aaaaaaaaaaaaaaaaaaaaaa", "!!!!!!!!!!!!!!!!!!"),
    },
    "emoji": {
        "ja": ("かわいい猫😺🐾", "今日のランチ🍜✨", "お花見🌸🌸🌸", "🎉祝！開店🎉"),
        "zh": ("可爱的猫咪😺", "今天的午餐🍜"),
        "zh-hant": ("可愛的貓咪😺", "今天的午餐🍜"),
        "ko": ("귀여운 고양이😺", "오늘의 점심🍜"),
        "en": ("Cute cat 😺", "Lunch time 🍜"),
    },
    "other-lang": {
        "ja": ("Tokyo skyline at night", "Cherry blossoms in Ueno Park"),
        "zh": ("Shanghai skyline", "West Lake"),
        "ko": ("Seoul at night", "Jeju beach"),
        "en": ("Vue de la tour Eiffel la nuit", "Playa de la Barceloneta"),  # no kana on en pages
    },
}


Attr = tuple[str, str | None]  # (name, raw HTML source of the value or None for a bare attribute)


@dataclass
class ImgTag:
    """One ``<img>`` tag as written into a page, with what the extraction rules need to know of it."""

    attrs: list[Attr]
    figcaption: str | None = None  # decoded figcaption text of the enclosing figure
    upper: bool = False  # write tag and attribute names in upper case
    unquoted: bool = False

    def html(self) -> str:
        parts = ["IMG" if self.upper else "img"]
        for name, value in self.attrs:
            name = name.upper() if self.upper else name
            if value is None:
                parts.append(name)
            elif self.unquoted:
                parts.append(f"{name}={value}")
            else:
                parts.append(f'{name}="{value}"')
        return "<" + " ".join(parts) + ">"

    def decoded(self) -> dict[str, str]:
        return {name.lower(): _html.unescape(value or "") for name, value in self.attrs}


def esc(text: str) -> str:
    """HTML-escape text for an element or a quoted attribute value."""
    return _html.escape(text, quote=True)


class SnippetContext:
    """Per-page state shared by the image kinds."""

    def __init__(self, rng: random.Random, index: int, lang: str, variant: str, encoding: str) -> None:
        self.rng = rng
        self.index = index
        self.lang = lang
        self.variant = variant
        self.encoding = encoding
        self.pool = text_pool(variant)
        self.cdn = _CDN_HOSTS[variant]
        self._serial = itertools.count(1)
        self._cp932_pending = encoding == "cp932"

    def slug(self) -> str:
        n = next(self._serial)
        prefix = ("photo", "img", "pic", "entry", "item", "thumb")[(self.index + n) % 6]
        return f"{prefix}-{self.index}-{n:02d}"

    def caption(self) -> str:
        if self._cp932_pending:  # first caption of a cp932 page uses cp932-only characters
            self._cp932_pending = False
            return self.rng.choice(lines(JA_CP932_CAPTIONS))
        return self.rng.choice(self.pool.captions)

    def alt(self) -> Attr:
        return ("alt", esc(self.caption()))

    def special(self, kind: str) -> str:
        table = _SPECIAL_CAPTIONS[kind]
        return self.rng.choice(table.get(self.variant) or table.get(self.lang) or table["en"])

    def size(self) -> list[Attr]:
        w = self.rng.choice((320, 480, 640, 800, 1200))
        return [("width", str(w)), ("height", str(w * 3 // 4))]


Snippet = tuple[str, list[ImgTag]]
SNIPPET_BUILDERS: dict[str, Callable[[SnippetContext], Snippet]] = {}


def _kind(name: str) -> Callable[[Callable[[SnippetContext], Snippet]], Callable[[SnippetContext], Snippet]]:
    def register(fn: Callable[[SnippetContext], Snippet]) -> Callable[[SnippetContext], Snippet]:
        SNIPPET_BUILDERS[name] = fn
        return fn

    return register


def _single(img: ImgTag, wrap_p: bool = True) -> Snippet:
    return (f"<p>{img.html()}</p>" if wrap_p else img.html()), [img]


@_kind("rel-root")
def _k_rel_root(c: SnippetContext) -> Snippet:
    return _single(ImgTag([("src", f"/wp-content/uploads/2023/{c.index % 12 + 1:02d}/{c.slug()}.jpg"),
                         c.alt(), *c.size()]))


@_kind("rel-path")
def _k_rel_path(c: SnippetContext) -> Snippet:
    return _single(ImgTag([("src", f"images/{c.slug()}.png"), c.alt()]))


@_kind("rel-dotdot")
def _k_rel_dotdot(c: SnippetContext) -> Snippet:
    return _single(ImgTag([("class", "thumb"), ("src", f"../img/{c.slug()}.jpeg"), c.alt()]))


@_kind("absolute")
def _k_absolute(c: SnippetContext) -> Snippet:
    return _single(ImgTag([("src", f"https://{c.cdn}/media/{c.slug()}.webp"), c.alt(), *c.size()]))


@_kind("protocol-relative")
def _k_proto(c: SnippetContext) -> Snippet:
    return _single(ImgTag([("src", f"//{c.cdn}/p/{c.slug()}.jpg"), c.alt(), ("loading", "lazy")]))


@_kind("query-amp")
def _k_query(c: SnippetContext) -> Snippet:
    return _single(ImgTag([("src", f"/thumb.php?id={c.slug()}&amp;size=large"), c.alt()]))


@_kind("fragment")
def _k_fragment(c: SnippetContext) -> Snippet:
    return _single(ImgTag([("src", f"/img/{c.slug()}.JPG#main"), c.alt()]))


@_kind("uppercase")
def _k_upper(c: SnippetContext) -> Snippet:
    return _single(ImgTag([("src", f"/IMAGES/{c.slug()}.GIF"), c.alt()], upper=True))


@_kind("unquoted")
def _k_unquoted(c: SnippetContext) -> Snippet:
    cap = "".join(c.caption().split())
    if any(ch in cap for ch in "\"'=<>`&"):
        cap = c.pool.captions[0].replace(" ", "")
    return _single(ImgTag([("src", f"/img/{c.slug()}.jpg"), ("alt", cap)], unquoted=True))


@_kind("percent-encoded")
def _k_percent(c: SnippetContext) -> Snippet:
    # %E5%86%99%E7%9C%9F is 写真 in UTF-8; urljoin keeps it as is.
    return _single(ImgTag([("src", f"/uploads/%E5%86%99%E7%9C%9F-{c.slug()}.jpg"), c.alt()]))


def _figure(inner: str, figcaption_html: str) -> str:
    return f'<figure class="wp-block-image">\n{inner}\n<figcaption>{figcaption_html}</figcaption>\n</figure>'


@_kind("figure")
def _k_figure(c: SnippetContext) -> Snippet:
    text = c.rng.choice(c.pool.figcaptions)
    img = ImgTag([("src", f"/wp-content/uploads/{c.slug()}.jpg"), c.alt(), *c.size()], figcaption=text)
    return _figure(img.html(), esc(text)), [img]


@_kind("figure-no-alt")
def _k_figure_noalt(c: SnippetContext) -> Snippet:
    text = c.rng.choice(c.pool.figcaptions)
    img = ImgTag([("src", f"/photos/{c.slug()}.jpg")], figcaption=text)
    return _figure(img.html(), esc(text)), [img]


@_kind("figure-empty-caption")
def _k_figure_empty(c: SnippetContext) -> Snippet:
    img = ImgTag([("src", f"/photos/{c.slug()}.png"), c.alt()], figcaption=" \n ")
    return _figure(img.html(), " \n "), [img]


@_kind("figure-nested")
def _k_figure_nested(c: SnippetContext) -> Snippet:
    # figcaption before the img, markup inside it, img wrapped in a link; separators are whitespace
    # so the collapsed text does not depend on how the extractor joins text nodes.
    head, body = c.rng.choice(c.pool.figcaptions), c.caption()
    img = ImgTag([("src", f"/gallery/{c.slug()}.jpg"), c.alt()], figcaption=f"{head} {body}")
    html = (f'<figure>\n<figcaption>\n  <strong>{esc(head)}</strong>\n'
            f'  <span class="note">{esc(body)}</span>\n</figcaption>\n'
            f'<a href="/gallery/large/{c.index}.jpg">{img.html()}</a>\n</figure>')
    return html, [img]


@_kind("figure-two-images")
def _k_figure_two(c: SnippetContext) -> Snippet:
    text = c.rng.choice(c.pool.figcaptions)
    imgs = [ImgTag([("src", f"/gallery/{c.slug()}.jpg"), c.alt()], figcaption=text) for _ in range(2)]
    return _figure("\n".join(i.html() for i in imgs), esc(text)), imgs


@_kind("figure-no-figcaption")
def _k_figure_nocap(c: SnippetContext) -> Snippet:
    img = ImgTag([("src", f"/photos/{c.slug()}.jpg"), c.alt()])
    return f"<figure>{img.html()}</figure>", [img]


@_kind("lazy-data-src")
def _k_lazy_data_src(c: SnippetContext) -> Snippet:
    return _single(ImgTag([("src", _GIF_1X1), ("data-src", f"/uploads/{c.slug()}.jpg"), ("class", "lazyload"),
                         c.alt()]))


@_kind("lazy-data-original")
def _k_lazy_original(c: SnippetContext) -> Snippet:
    return _single(ImgTag([("src", "/common/img/loading.gif"), ("data-original", f"/uploads/{c.slug()}.jpg"),
                         c.alt()]))


@_kind("lazy-data-lazy-src")
def _k_lazy_lazy_src(c: SnippetContext) -> Snippet:
    return _single(ImgTag([("src", _PNG_DATA), ("data-lazy-src", f"https://{c.cdn}/lazy/{c.slug()}.png"),
                         c.alt()]))


@_kind("lazy-empty-data-src")
def _k_lazy_empty(c: SnippetContext) -> Snippet:
    return _single(ImgTag([("data-src", ""), ("src", f"/uploads/{c.slug()}.jpg"), c.alt()]))


@_kind("lazy-data-uri-data-src")
def _k_lazy_data_uri(c: SnippetContext) -> Snippet:
    return _single(ImgTag([("data-src", _GIF_1X1), ("src", f"/uploads/{c.slug()}.jpg"), c.alt()]))


@_kind("srcset-w")
def _k_srcset_w(c: SnippetContext) -> Snippet:
    s = c.slug()
    srcset = f"/img/{s}-480.jpg 480w,\n  /img/{s}-1200.jpg 1200w, /img/{s}-800.jpg 800w"
    return _single(ImgTag([("srcset", srcset), ("sizes", "(max-width: 600px) 480px, 800px"), c.alt()]))


@_kind("srcset-x")
def _k_srcset_x(c: SnippetContext) -> Snippet:
    s = c.slug()
    return _single(ImgTag([("srcset", f"/img/{s}.png, /img/{s}-3x.png 3x, /img/{s}-2x.png 2x"), c.alt()]))


@_kind("src-and-srcset")
def _k_src_srcset(c: SnippetContext) -> Snippet:
    s = c.slug()
    return _single(ImgTag([("src", f"/img/{s}-small.jpg"), ("srcset", f"/img/{s}-large.jpg 2x"), c.alt()]))


@_kind("data-srcset")
def _k_data_srcset(c: SnippetContext) -> Snippet:
    s = c.slug()
    srcset = f"/img/{s}-640.jpg 640w, /img/{s}-1280.jpg 1280w"
    return _single(ImgTag([("src", _GIF_1X1), ("data-srcset", srcset), c.alt()]))


@_kind("skip-data-only")
def _k_skip_data(c: SnippetContext) -> Snippet:
    return _single(ImgTag([("src", _PNG_DATA), c.alt()]))


@_kind("skip-scheme")
def _k_skip_scheme(c: SnippetContext) -> Snippet:
    src = ("javascript:void(0)", "mailto:info@example.jp", f"ftp://ftp.example.jp/pub/{c.slug()}.jpg",
           "about:blank")[c.index % 4]
    return _single(ImgTag([("src", src), c.alt()]))


@_kind("skip-tracker-1x1")
def _k_skip_tracker(c: SnippetContext) -> Snippet:
    return _single(ImgTag([("src", f"https://stats.example.com/t.gif?p={c.slug()}"), ("width", "1"),
                         ("height", "1"), ("alt", "tracker"), ("style", "display:none")]), wrap_p=False)


@_kind("skip-small-width")
def _k_skip_small(c: SnippetContext) -> Snippet:
    return _single(ImgTag([("src", f"/img/{c.slug()}.png"), ("width", "5"), c.alt()]))


@_kind("skip-spacer")
def _k_skip_spacer(c: SnippetContext) -> Snippet:
    name = SPACER_NAMES[c.index % len(SPACER_NAMES)]
    if c.index % 4 == 1:
        name = name.capitalize().replace(".gif", ".GIF")
    return _single(ImgTag([("src", f"/common/img/{name}"), c.alt()]), wrap_p=False)


@_kind("skip-icon")
def _k_skip_icon(c: SnippetContext) -> Snippet:
    name = ("logo.svg", "favicon.ico", "icon-mail.SVG", "badge.svgz")[c.index % 4]
    return _single(ImgTag([("src", f"/assets/{name}"), c.alt()]))


@_kind("skip-no-alt")
def _k_skip_noalt(c: SnippetContext) -> Snippet:
    return _single(ImgTag([("src", f"/img/{c.slug()}.jpg"), *c.size()]))


@_kind("skip-empty-alt")
def _k_skip_emptyalt(c: SnippetContext) -> Snippet:
    return _single(ImgTag([("src", f"/img/{c.slug()}.jpg"), ("alt", ("", "  \n  ")[c.index % 2])]))


@_kind("caption-entities")
def _k_cap_entities(c: SnippetContext) -> Snippet:
    return _single(ImgTag([("src", f"/img/{c.slug()}.jpg"), ("alt", c.special("entities"))]))


@_kind("caption-whitespace")
def _k_cap_ws(c: SnippetContext) -> Snippet:
    return _single(ImgTag([("src", f"/img/{c.slug()}.jpg"), ("alt", esc(c.special("whitespace")))]))


@_kind("caption-fullwidth")
def _k_cap_fw(c: SnippetContext) -> Snippet:
    return _single(ImgTag([("src", f"/img/{c.slug()}.jpg"), ("alt", esc(c.special("fullwidth")))]))


@_kind("caption-filename")
def _k_cap_filename(c: SnippetContext) -> Snippet:
    n = c.rng.randrange(10000)
    cap = (f"IMG_{n:04d}.JPG", f"DSC{n:05d}.jpg", f"P10{n:05d}.JPG", f"image{n % 100:03d}.png")[c.index % 4]
    return _single(ImgTag([("src", f"/img/{c.slug()}.jpg"), ("alt", cap)]))


@_kind("caption-hash")
def _k_cap_hash(c: SnippetContext) -> Snippet:
    cap = f"{c.rng.getrandbits(128):032x}"
    return _single(ImgTag([("src", f"/img/{cap[:8]}-{c.slug()}.jpg"), ("alt", cap)]))


@_kind("caption-repeated")
def _k_cap_repeated(c: SnippetContext) -> Snippet:
    return _single(ImgTag([("src", f"/img/{c.slug()}.jpg"), ("alt", esc(c.special("repeated")))]))


@_kind("caption-emoji")
def _k_cap_emoji(c: SnippetContext) -> Snippet:
    return _single(ImgTag([("src", f"/img/{c.slug()}.jpg"), ("alt", esc(c.special("emoji")))]))


@_kind("caption-long")
def _k_cap_long(c: SnippetContext) -> Snippet:
    cap = c.pool.joiner.join(c.rng.choices(c.pool.sentences, k=5))
    return _single(ImgTag([("src", f"/img/{c.slug()}.jpg"), ("alt", esc(cap))]))


@_kind("caption-other-language")
def _k_cap_other(c: SnippetContext) -> Snippet:
    return _single(ImgTag([("src", f"/img/{c.slug()}.jpg"), ("alt", esc(c.special("other-lang")))]))


def _rotation() -> tuple[str, ...]:
    """All kinds, with plain ones interleaved so that most images yield a pair."""
    plain = ("rel-root", "absolute", "figure", "lazy-data-src")
    special = [k for k in SNIPPET_BUILDERS if k not in plain]
    out: list[str] = []
    for i, name in enumerate(special):
        out.append(plain[i % len(plain)])
        out.append(name)
    return tuple(out)


IMAGE_KINDS: tuple[str, ...] = _rotation()
