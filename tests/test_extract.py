import pytest

from waon_hf.steps.extract import ExtractConfig, PageExtractor, _best_srcset

JA_TEXT = (
    "<p>昨年の秋に家族で京都を訪れました。紅葉がとてもきれいで、写真をたくさん撮りました。"
    "清水寺から見た景色は忘れられません。次は春に桜を見に行きたいと思っています。</p>"
)
PAGE_URL = "https://www.example.jp/blog/2024/kyoto.html"


def ja_page(images: str, head: str = "") -> bytes:
    return (f"<html><head><meta charset='utf-8'><title> 京都旅行の記録 </title>{head}</head>"
            f"<body>{JA_TEXT}{images}<script>var x = 'ignored';</script></body></html>").encode()


def extract(html: bytes, url: str = PAGE_URL, **config):
    return PageExtractor(ExtractConfig(**config)).extract(html, url, "text/html")


def test_alt_figcaption_and_title():
    result = extract(ja_page(
        '<img src="/img/a.jpg" alt="清水寺の紅葉">'
        '<figure><div><img src="b.jpg" alt="代替テキスト"></div><figcaption> 嵐山の\n竹林 </figcaption></figure>'
        '<figure><img src="c.jpg" alt="金閣寺の写真"><figcaption>  </figcaption></figure>'
    ))
    assert result.language == "ja"
    assert result.title == "京都旅行の記録"
    assert result.pairs == [
        ("https://www.example.jp/img/a.jpg", "清水寺の紅葉", "alt"),
        ("https://www.example.jp/blog/2024/b.jpg", "嵐山の 竹林", "figcaption"),
        ("https://www.example.jp/blog/2024/c.jpg", "金閣寺の写真", "alt"),  # empty figcaption: alt
    ]


def test_nearest_figure_wins():
    result = extract(ja_page(
        '<figure><figure><img src="in.jpg" alt="a"><figcaption>内側の説明</figcaption></figure>'
        '<img src="out.jpg" alt="b"><figcaption>外側の説明</figcaption></figure>'
    ))
    assert [p[1] for p in result.pairs] == ["内側の説明", "外側の説明"]


def test_lazy_loading_srcset_and_base():
    result = extract(ja_page(
        '<img src="data:image/gif;base64,R0lGOD" data-src="lazy.jpg" alt="遅延読み込み">'
        '<img src="placeholder.jpg" data-original="//cdn.example.jp/orig.png#frag" alt="オリジナル">'
        '<img srcset="s.jpg 320w, l.jpg 1024w, m.jpg 640w" alt="レスポンシブ">'
        '<img srcset="x1.jpg, x2.jpg 2x" alt="高解像度">',
        head='<base href="/static/">',
    ))
    assert [p[0] for p in result.pairs] == [
        "https://www.example.jp/static/lazy.jpg",
        "https://cdn.example.jp/orig.png",
        "https://www.example.jp/static/l.jpg",
        "https://www.example.jp/static/x2.jpg",
    ]


def test_skips_are_counted():
    result = extract(ja_page(
        '<img src="data:image/png;base64,AAAA" alt="データURI">'
        '<img src="javascript:void(0)" alt="スクリプト">'
        '<img src="ftp://example.jp/a.jpg" alt="FTP">'
        '<img src="http://[::1/broken.jpg" alt="壊れたURL">'
        '<img src="/t.gif" width="1" height="1" alt="トラッカー">'
        '<img src="/images/spacer.gif" alt="スペーサー">'
        '<img src="/logo.svg" alt="ロゴ">'
        '<img src="/favicon.ICO" alt="アイコン">'
        '<img src="/nocaption.jpg">'
        '<img alt="URLなし">'
        '<img src="/ok.jpg" width="300" alt="正常な画像">'
    ))
    assert result.pairs == [("https://www.example.jp/ok.jpg", "正常な画像", "alt")]
    c = result.counts
    assert (c["img_data_uri"], c["img_bad_scheme"], c["img_bad_url"]) == (1, 2, 1)
    assert (c["img_tracker"], c["img_icon"], c["img_no_caption"], c["img_no_url"]) == (2, 2, 1, 1)
    assert c["img_tags"] == 11 and c["pairs"] == 1


def test_entities_and_whitespace_in_alt():
    result = extract(ja_page('<img src="a.jpg" alt="  富士山 &amp; 湖\n\t夕暮れ &lt;絶景&gt; ">'))
    assert result.pairs[0][1] == "富士山 & 湖 夕暮れ <絶景>"


@pytest.mark.parametrize("text, lang", [
    ("这是一个关于北京旅游的网页。我们去了故宫和长城，拍了很多照片。天气很好，人也不多。", "zh"),
    ("이 페이지는 서울 여행에 관한 글입니다. 경복궁과 남산 타워를 방문했고 사진을 많이 찍었습니다.", "ko"),
])
def test_non_japanese_pages_yield_nothing(text, lang):
    html = f"<html><head><title>t</title></head><body><p>{text}</p><img src='a.jpg' alt='ノート'></body></html>"
    result = extract(html.encode("utf-8"), kana_precheck=False)
    assert result.pairs == []
    assert result.counts[f"lang_{lang}"] == 1


def test_kana_precheck_rejects_before_parse():
    html = b"<html><body><p>An English page about Tokyo.</p><img src='a.jpg' alt='Tokyo'></body></html>"
    result = extract(html)
    assert result.counts["no_kana"] == 1 and result.language == ""


def test_binary_payload_is_counted():
    result = extract(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    assert result.counts["binary_payload"] == 1 and result.pairs == []


def test_shift_jis_page_comes_out_as_text():
    html = ("<html><head><meta charset='Shift_JIS'><title>髙橋商店①</title></head><body>" + JA_TEXT
            + "<img src='a.jpg' alt='髙橋さんの店の外観です'></body></html>")
    result = PageExtractor().extract(html.encode("cp932"), PAGE_URL, "text/html")
    assert result.title == "髙橋商店①"
    assert result.pairs[0][1] == "髙橋さんの店の外観です"


def test_best_srcset_handles_junk():
    assert _best_srcset("a.jpg 100w, b.jpg 2000w") == "b.jpg"
    assert _best_srcset("a.jpg 1.5x, b.jpg 3x, c.jpg 2x") == "b.jpg"
    assert _best_srcset("a.jpg bogus, b.jpg") == "a.jpg"
    assert _best_srcset(" , ") is None


@pytest.mark.parametrize("base", ["https://www.example.jp/blog/2024/kyoto.html", "http://e.jp", "https://e.jp/a/b/",
                                  "https://e.jp/a/b.php?x=/1/2"])
@pytest.mark.parametrize("ref", [
    "a.jpg", "./a.jpg", "../a.jpg", "/a.jpg", "/a/../b.jpg", "//cdn.e.jp/x.png", "https://E.jp/x.jpg#frag",
    "HTTPS://e.jp/x.jpg", "?q=1", "/img/a b.jpg", "http://user@host.jp:8080/a.jpg", "/a.jpg?x=1#y",
    "img/a.jpg", "img/a.jpg?w=100", "a:b/c.jpg", "img:1.jpg", "日本語/画像.jpg", "%E7%94%BB.jpg", "a.jpg#x",
])
def test_url_resolver_matches_urljoin(base, ref):
    from urllib.parse import urldefrag, urljoin

    from waon_hf.steps.image_urls import UrlResolver

    url, problem = UrlResolver(base).resolve(ref)
    expected = urldefrag(urljoin(base, ref.replace(" ", "%20")))[0]
    scheme, rest = expected.split(":", 1)
    if scheme.lower() not in ("http", "https"):  # "a:b/c.jpg" is a URL with scheme "a"
        assert (url, problem) == ("", "img_bad_scheme")
    else:
        assert problem is None
        assert url == scheme.lower() + ":" + rest  # urljoin keeps "HTTPS:" when schemes differ; we normalise
