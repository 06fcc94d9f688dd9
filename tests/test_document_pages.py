"""Page -> document: sentences, image URLs with their positions, the page-level skips."""

from collections import Counter

from waon_hf.steps.document_pages import DocumentConfig, DocumentExtractor, largest_srcset_candidate

PROSE = "".join(f"<p>これは{n}番目の文です。とても大切な内容が書かれています。</p>" for n in range(3))


def page(body: str, head: str = "") -> bytes:
    return (f"<html><head><meta charset='utf-8'><title> 題名 </title>{head}</head><body>"
            f"<nav>メニューです。ホーム</nav><div id='main'>{body}</div></body></html>").encode()


def test_images_keep_their_position_and_urls_follow_the_pair_rules():
    body = ("<p>最初の文です。次の文です。</p>"
            "<img src='/a.jpg'>"
            "<p>三つ目の文です。</p>"
            "<img data-src='lazy.jpg' src='data:image/gif;base64,R0lGOD'>"
            "<img srcset='s.jpg 300w, l.jpg 900w'>"
            "<img src='/a.jpg'>"  # repeated on the page
            "<img src='pixel.gif' width='1' height='1'>"  # spacer
            "<img src='logo.svg'>"  # icon
            "<img src='data:image/png;base64,xx'>"
            "<p>四つ目の文です。</p>" + PROSE)
    counts = Counter()
    doc = DocumentExtractor().extract(page(body, "<base href='http://cdn.example.jp/x/'>"),
                                      "http://www.example.jp/p/1.html", "text/html", counts)
    assert doc.title == "題名"
    assert doc.sentences[:4] == ["最初の文です。", "次の文です。", "三つ目の文です。", "四つ目の文です。"]
    assert doc.image_urls == ["http://cdn.example.jp/a.jpg", "http://cdn.example.jp/x/lazy.jpg",
                              "http://cdn.example.jp/x/l.jpg"]
    assert doc.image_positions == [2, 3, 3]
    assert counts["img_repeated_on_page"] == 1 and counts["img_tracker"] == 1 and counts["img_icon"] == 1
    assert counts["img_no_url"] == 1 and counts["images"] == 3
    assert not any("メニュー" in s for s in doc.sentences)


def test_pages_that_are_not_documents_are_counted():
    ex = DocumentExtractor(DocumentConfig(max_html_bytes=10_000))
    counts = Counter()
    assert ex.extract(b"\x00\x01binary", "http://e.jp/", "text/html", counts) is None
    assert ex.extract(b"<html><body><p>English only.</p></body></html>", "http://e.jp/", None, counts) is None
    assert ex.extract(page(PROSE * 100), "http://e.jp/", None, counts) is None
    chinese = "<p>" + "这是一个中文网页的内容，我们今天讨论经济发展和社会变化的问题。" * 5 + "の</p>"
    assert ex.extract(page(chinese), "http://e.jp/", None, counts) is None
    assert counts == Counter({"binary_payload": 1, "no_kana": 1, "html_too_large": 1, "not_japanese": 1})


def test_shift_jis_page_is_decoded():
    html = ("<html><head><meta charset='shift_jis'></head><body><div>" + PROSE + "</div></body></html>").encode("cp932")
    doc = DocumentExtractor().extract(html, "http://e.jp/", "text/html", Counter())
    assert doc.sentences[0] == "これは0番目の文です。"


def test_largest_srcset_candidate():
    assert largest_srcset_candidate("a.jpg 1x, b.jpg 2x") == "b.jpg"
    assert largest_srcset_candidate("a.jpg 300w, b.jpg 100w") == "a.jpg"
    assert largest_srcset_candidate("") is None


def test_shift_jis_mislabelled_utf8_is_decoded_not_rejected():
    html = ("<html><head><meta charset='utf-8'></head><body><div>" + PROSE + "</div></body></html>").encode("cp932")
    counts = Counter()
    doc = DocumentExtractor().extract(html, "http://e.jp/", "text/html; charset=utf-8", counts)
    assert doc is not None and doc.sentences[0] == "これは0番目の文です。"
    english = b"<html><head><meta charset='utf-8'></head><body><p>plain English page</p></body></html>"
    assert DocumentExtractor().extract(english, "http://e.jp/", None, counts) is None
    assert counts["no_kana"] == 1
