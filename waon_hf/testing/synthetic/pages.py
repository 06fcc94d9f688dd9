"""One synthetic web page (:func:`make_page`): its HTML bytes, declared charset and expected pairs.

Page kinds
----------
* **Japanese** (``lang="ja"``): sentences from a hand-written pool (hiragana, katakana, kanji,
  some ASCII). Encodings cycle through utf-8, shift_jis, cp932, euc-jp and iso-2022-jp.
  cp932 pages contain characters that exist only in cp932 (①, ㈱, 髙, №, Ⅲ) and are declared
  with WHATWG *Shift_JIS* labels (``Shift_JIS``, ``Windows-31J``, ``MS932``, ``x-sjis``): a correct
  decoder maps that whole label family to cp932 (``windows-31j``/``x-sjis`` are unknown to Python).
  The charset is declared in one of several ways (``charset_in``):

  - ``header``: only in the HTTP ``Content-Type`` header;
  - ``meta``: ``<meta charset=...>`` in the first 1024 bytes, header without charset;
  - ``http-equiv``: ``<meta http-equiv="Content-Type" content="text/html; charset=...">``;
  - ``bom``: UTF-8 byte order mark, no declaration (utf-8 only);
  - ``none``: no declaration at all, the detector must find it (used for utf-8, shift_jis, euc-jp);
  - ``conflict``: header charset is right, ``<meta charset>`` is wrong: the header must win.

* **Chinese** (``lang="zh"``): simplified (utf-8 or gb18030, declared as GB18030/GBK/gb2312) or
  traditional (big5 or utf-8) text written in hanzi only; one zh page in seven contains a single
  katakana word, so a "has kana" pre-check alone cannot separate ja from zh.
* **Korean** (``lang="ko"``): hangul (utf-8 or euc-kr), some hanja and English words.
* **English** (``lang="en"``): ASCII (utf-8 or windows-1252), never any kana.

Characters that the page encoding cannot represent (emoji in shift_jis pages, ...) are written
as numeric character references, as real sites do.

Every page has ``n_images`` image snippets taken in rotation from ``IMAGE_KINDS`` (see
:mod:`~waon_hf.testing.synthetic.snippets`); every sixth page has a ``<base href>``. Pages also
contain decoy ``<img>`` markup inside ``<script>`` strings and HTML comments, which is not an
element and must not be extracted. ``expected_pairs`` follows the rules of
:mod:`~waon_hf.testing.synthetic.rules`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from urllib.parse import urljoin

from waon_hf.testing.synthetic.rules import expected_pair
from waon_hf.testing.synthetic.snippets import IMAGE_KINDS, SNIPPET_BUILDERS, SnippetContext, esc
from waon_hf.testing.synthetic.text import ZH_KANA_SENTENCES, bytes_per_char, lines, paragraphs
from waon_hf.testing.synthetic.text_ja import JA_CP932_SENTENCES

JA_ENCODINGS = ("utf-8", "shift_jis", "cp932", "euc-jp", "iso-2022-jp")
CHARSET_MODES = ("header", "meta", "http-equiv", "none", "bom", "conflict")

# Charset labels written in pages (WHATWG labels), cycled deterministically per page.
_LABELS = {
    "utf-8": ("UTF-8", "utf-8", "utf8"),
    "shift_jis": ("Shift_JIS", "shift_jis", "SJIS"),
    "cp932": ("Shift_JIS", "Windows-31J", "MS932", "x-sjis"),
    "euc-jp": ("EUC-JP", "euc-jp", "x-euc-jp"),
    "iso-2022-jp": ("ISO-2022-JP", "iso-2022-jp", "csISO2022JP"),
    "gb18030": ("GB18030", "GBK", "gb2312"),
    "big5": ("Big5", "big5"),
    "euc-kr": ("EUC-KR", "euc-kr"),
    "cp1252": ("windows-1252", "ISO-8859-1"),
}

_DEFAULT_ENCODINGS = {
    "ja": JA_ENCODINGS,
    "zh-hans": ("utf-8", "gb18030"),
    "zh-hant": ("big5", "utf-8"),
    "ko": ("utf-8", "euc-kr"),
    "en": ("utf-8", "cp1252"),
}


_HEADINGS = {
    "ja": ("お知らせ", "春のおすすめスポット", "新商品のご案内", "旅行記", "今日のごはん", "イベントレポート",
           "よくあるご質問", "スタッフブログ", "季節の便り", "開発日誌", "アクセス", "店舗情報"),
    "zh-hans": ("最新动态", "新品推荐", "旅行日记", "今日美食", "活动回顾", "常见问题", "公司简介",
                "联系方式"),
    "zh-hant": ("最新消息", "新品推薦", "旅遊日記", "今日美食", "活動回顧", "常見問題", "公司簡介",
                "聯絡方式"),
    "ko": ("공지사항", "신상품 안내", "여행 후기", "오늘의 메뉴", "행사 소식", "자주 묻는 질문", "회사 소개",
           "오시는 길"),
    "en": ("News", "New arrivals", "Travel notes", "Today's menu", "Event report", "FAQ", "About us",
           "Access"),
}

_SITES = {
    "ja": ("さくら日記", "山田商店", "まちあるき通信", "暮らしのメモ帳", "東京グルメ探訪", "テックノート",
           "ひだまり写真館", "みどり工務店"),
    "zh-hans": ("生活日记", "美食天下", "旅行笔记", "科技资讯", "家居生活馆"),
    "zh-hant": ("生活日記", "美食天地", "旅遊筆記", "科技新知", "小城故事"),
    "ko": ("여행 일기", "맛집 탐방", "생활 정보", "테크 뉴스", "우리 동네 소식"),
    "en": ("Daily Notes", "Green Kitchen", "Travel Journal", "Tech Corner", "City Guide"),
}

_NAV = {
    "ja": ("ホーム", "新着情報", "商品一覧", "会社概要", "ブログ", "アクセス", "お問い合わせ"),
    "zh-hans": ("首页", "新闻中心", "产品展示", "关于我们", "联系我们", "帮助中心"),
    "zh-hant": ("首頁", "最新消息", "產品介紹", "關於我們", "聯絡我們", "常見問題"),
    "ko": ("홈", "공지사항", "상품 목록", "회사 소개", "고객센터", "자주 묻는 질문"),
    "en": ("Home", "News", "Products", "About us", "Contact", "FAQ"),
}

_FOOTER = {
    "ja": ("プライバシーポリシー", "利用規約", "サイトマップ", "特定商取引法に基づく表記"),
    "zh-hans": ("隐私政策", "使用条款", "网站地图", "版权所有"),
    "zh-hant": ("隱私權政策", "使用條款", "網站地圖", "版權所有"),
    "ko": ("개인정보처리방침", "이용약관", "사이트맵", "제휴 문의"),
    "en": ("Privacy Policy", "Terms of Use", "Sitemap", "Careers"),
}

_HOSTS = {
    "ja": ("www.sakura-nikki.example.jp", "blog.yamada-shoten.example.co.jp", "tabi.example.ne.jp",
           "news.example.or.jp", "shop.example.jp"),
    "zh-hans": ("www.example.cn", "blog.example.com.cn", "news.example.cn"),
    "zh-hant": ("www.example.com.tw", "blog.example.tw", "www.example.com.hk"),
    "ko": ("www.example.co.kr", "blog.example.kr", "news.example.kr"),
    "en": ("www.example.com", "blog.example.org", "news.example.net"),
}


_CSS = (
    "body{margin:0;font-family:sans-serif;line-height:1.8;color:#333}\n"
    ".site-header{background:#fff;border-bottom:1px solid #ddd;padding:8px 16px}\n"
    "img{max-width:100%;height:auto}\n.entry-content p{margin:0 0 1.5em}\n"
    "@media (max-width:600px){.sidebar{display:none}}",
    ".nav li{display:inline-block;margin-right:12px}\nfigure{margin:0 0 24px}\n"
    "figcaption{font-size:12px;color:#666}\n.footer{background:#222;color:#eee}",
)

_JS_HEAD = (
    "window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments);}\n"
    "gtag('js',new Date());gtag('config','G-EXAMPLE01');",
    "var _paq=window._paq=window._paq||[];_paq.push(['trackPageView']);\n"
    "(function(){var u='https://stats.example.com/';_paq.push(['setSiteId','3']);})();",
)

# Decoy: <img> markup inside a script string is text, not an element.
_JS_BODY = (
    "document.addEventListener('DOMContentLoaded',function(){\n"
    "  var imgs=document.querySelectorAll('img[data-src]');\n"
    "  for(var i=0;i<imgs.length;i++){imgs[i].src=imgs[i].getAttribute('data-src');}\n"
    "  var adTpl='<img src=\"/ads/banner-728x90.jpg\" alt=\"advertisement\" width=\"728\" height=\"90\">';\n"
    "  if(window.showAds){document.getElementById('ad').innerHTML=adTpl;}\n"
    "});",
    "(function(d){var s=d.createElement('script');s.async=true;\n"
    "  s.src='https://platform.example.com/widgets.js';d.body.appendChild(s);})(document);",
)


@dataclass
class SyntheticPage:
    url: str
    lang: str
    encoding: str
    html: bytes
    http_charset: str | None
    expected_pairs: list[tuple[str, str]]
    charset_in: str = "header"
    meta_charset: str | None = None  # charset written in a <meta> (may be wrong in "conflict")
    base_href: str | None = None
    tests: list[str] = field(default_factory=list)  # what this page exercises

    def content_type(self) -> str:
        if self.http_charset is None:
            return "text/html"
        return f"text/html; charset={self.http_charset}"

    def meta(self) -> dict:
        """JSON-friendly description without the html bytes."""
        return {
            "url": self.url, "lang": self.lang, "encoding": self.encoding, "http_charset": self.http_charset,
            "meta_charset": self.meta_charset, "charset_in": self.charset_in, "base_href": self.base_href,
            "n_bytes": len(self.html), "tests": list(self.tests),
            "expected_pairs": [list(p) for p in self.expected_pairs],
        }


def _variant(lang: str, encoding: str | None, index: int) -> str:
    if lang != "zh":
        return lang
    if encoding == "gb18030":
        return "zh-hans"
    if encoding == "big5":
        return "zh-hant"
    return ("zh-hans", "zh-hant")[index % 2]


def _page_url(rng: random.Random, index: int, variant: str) -> str:
    host = rng.choice(_HOSTS[variant])
    scheme = "https" if index % 3 else "http"
    path = (f"/blog/2023/{index % 12 + 1:02d}/entry-{index}.html", f"/news/{index}/",
            f"/products/item.php?id={index}&lang={variant[:2]}", f"/articles/{index}")[index % 4]
    return f"{scheme}://{host}{path}"


def _base_href(index: int) -> str | None:
    # Every sixth page has a <base>; half absolute, half relative to the page url.
    if index % 6 != 5:
        return None
    return "https://static.example.jp/base/" if index % 12 == 5 else f"/assets/v{index % 4 + 1}/"


def _charset_decl(mode: str, label: str, encoding: str) -> tuple[str | None, str | None, str]:
    """(http charset, meta charset, head markup) for a declaration mode."""
    if mode == "header":
        return label, None, ""
    if mode == "meta":
        return None, label, f'<meta charset="{label}">'
    if mode == "http-equiv":
        return None, label, f'<meta http-equiv="Content-Type" content="text/html; charset={label}">'
    if mode in ("none", "bom"):
        return None, None, ""
    if mode == "conflict":
        wrong = "Shift_JIS" if encoding == "utf-8" else "ISO-8859-1"
        return label, wrong, f'<meta charset="{wrong}">'
    raise ValueError(f"unknown charset_in {mode!r}")


def _nav(variant: str) -> str:
    items = "".join(f'<li><a href="/{i}/">{esc(t)}</a></li>' for i, t in enumerate(_NAV[variant]))
    return f'<header class="site-header">\n<nav class="nav"><ul>{items}</ul></nav>\n</header>'


def _footer(variant: str, site: str) -> str:
    links = " | ".join(f'<a href="/page/{i}">{esc(t)}</a>' for i, t in enumerate(_FOOTER[variant]))
    return (f'<footer class="footer">\n<p>{links}</p>\n'
            f"<p>Copyright &copy; 2024 {esc(site)} All Rights Reserved.</p>\n</footer>")


def make_page(
    rng: random.Random,
    index: int,
    lang: str,
    encoding: str | None = None,
    n_images: int = 18,
    target_bytes: int = 20_000,
    charset_in: str = "header",
) -> SyntheticPage:
    """Build one page; ``expected_pairs`` follows :mod:`~waon_hf.testing.synthetic.rules`.

    ``encoding`` defaults to a per-language cycle driven by ``index``; ``charset_in`` is one of
    ``CHARSET_MODES``. Zh pages are simplified for gb18030, traditional for big5, alternate for utf-8.
    """
    variant = _variant(lang, encoding, index)
    encs = _DEFAULT_ENCODINGS[variant]
    encoding = encoding or encs[index % len(encs)]
    if charset_in == "bom" and encoding != "utf-8":
        raise ValueError("a BOM is only used for utf-8 pages")
    labels = _LABELS.get(encoding, (encoding,))
    label = labels[index % len(labels)]
    http_charset, meta_charset, decl = _charset_decl(charset_in, label, encoding)
    url = _page_url(rng, index, variant)
    base_href = _base_href(index)
    base_url = urljoin(url, base_href) if base_href else url
    site = rng.choice(_SITES[variant])
    heading = rng.choice(_HEADINGS[variant])
    tests = [f"charset:{charset_in}", f"encoding:{encoding}"]
    if base_href:
        tests.append("base-href")

    ctx = SnippetContext(rng, index, lang, variant, encoding)
    kinds = [IMAGE_KINDS[(index * n_images + j) % len(IMAGE_KINDS)] for j in range(n_images)]
    snippets = [SNIPPET_BUILDERS[k](ctx) for k in kinds]
    imgs = [img for _, group in snippets for img in group]
    pairs = [p for img in imgs if (p := expected_pair(img.decoded(), base_url, img.figcaption))]
    tests += sorted(set(kinds))

    extra: list[str] = []
    if encoding == "cp932":
        extra += rng.sample(lines(JA_CP932_SENTENCES), 2)
        tests.append("cp932-only-chars")
    if lang == "zh" and index % 7 == 3:
        extra.append(ZH_KANA_SENTENCES[variant])
        tests.append("zh-with-katakana")

    title = f"{heading} | {site}"
    decoy = ""
    if index % 3 == 0:  # an <img> inside a comment is not an element
        decoy = f'<!-- <img src="/old/header-{index}.jpg" alt="{esc(ctx.pool.captions[1])}"> -->\n'
        tests.append("decoy-comment")
    head = "\n".join(filter(None, [
        decl, '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>", f'<base href="{base_href}">' if base_href else "",
        '<link rel="stylesheet" href="/css/style.css">',
        f"<style>\n{_CSS[index % len(_CSS)]}\n</style>",
        f"<script>\n{_JS_HEAD[index % len(_JS_HEAD)]}\n</script>",
    ]))
    top = (f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n{head}\n</head>\n<body>\n{_nav(variant)}\n'
           f'<main>\n<article class="entry-content">\n<h1>{esc(heading)}</h1>\n{decoy}')
    bottom = (f"</article>\n</main>\n{_footer(variant, site)}\n"
              f"<script>\n{_JS_BODY[index % len(_JS_BODY)]}\n</script>\n</body>\n</html>\n")
    skeleton = top + bottom + "\n".join(s for s, _ in snippets)
    bpc = bytes_per_char(variant, encoding)
    fixed = len(skeleton.encode(encoding, "xmlcharrefreplace"))
    n_chars = max(0, int((target_bytes - fixed) / bpc))
    paras = paragraphs(rng, variant, n_chars, extra)

    # Interleave images between paragraphs, with a sub-heading now and then.
    body: list[str] = []
    per = max(1, len(paras) // max(1, len(snippets)))
    s_iter = iter(snippets)
    for i, p in enumerate(paras):
        if i and i % 7 == 0:
            body.append(f"<h2>{esc(ctx.pool.captions[i % len(ctx.pool.captions)])}</h2>")
        body.append(f"<p>{p}</p>")  # pool text has no markup characters (a test checks)
        if i % per == per - 1:
            body.append(next(s_iter, ("", []))[0])
    body.extend(s for s, _ in s_iter)
    text = top + "\n".join(filter(None, body)) + "\n" + bottom
    data = text.encode(encoding, "xmlcharrefreplace")
    if charset_in == "bom":
        data = b"\xef\xbb\xbf" + data
    return SyntheticPage(url=url, lang=lang, encoding=encoding, html=data, http_charset=http_charset,
                         expected_pairs=pairs, charset_in=charset_in, meta_charset=meta_charset,
                         base_href=base_href, tests=tests)
