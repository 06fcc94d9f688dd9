"""The Japanese sentence splitter and the merge rule for sentences without content."""

from pathlib import Path

from selectolax.lexbor import LexborHTMLParser

from waon_hf.text.main_content import Block, ImageItem, main_content
from waon_hf.text.sentences import has_content, merge_contentless, split_raw, split_sentences

PAGES = Path(__file__).parent / "data" / "ja_pages"


def test_split_at_terminators_with_closing_brackets():
    assert split_raw("今日は晴れ。明日は雨！本当？") == ["今日は晴れ。", "明日は雨！", "本当？"]
    assert split_raw("彼は「行く。」と言った。次。") == ["彼は「行く。」と言った。", "次。"]
    assert split_raw("終わり…。次の文！？ そして") == ["終わり…。", "次の文！？", "そして"]
    assert split_raw("一行目\n二行目") == ["一行目", "二行目"]


def test_unclosed_bracket_stops_suppressing_after_a_while():
    text = "（" + "あ" * 250 + "。" + "次の文。"
    assert len(split_raw(text)) == 2
    assert len(split_raw("（短い。まだ括弧の中。")) == 1


def test_contentless_sentences_merge_into_previous():
    assert has_content("abc") and has_content("１２") and has_content("漢") and not has_content("★→！")
    assert merge_contentless(["はい。", "★★★", "次。"]) == ["はい。★★★", "次。"]
    assert merge_contentless(["→", "次。"]) == ["→次。"]
    assert merge_contentless(["♪♪"]) == ["♪♪"]
    assert split_sentences("良い。！！！ 次へ。") == ["良い。！！！", "次へ。"]


def test_real_page_main_text_matches_the_hand_made_body():
    html = (PAGES / "lhpat-tm.html").read_bytes()
    items = main_content(LexborHTMLParser(html))
    text = "".join(i.text for i in items if isinstance(i, Block)).replace(" ", "")
    expected = (PAGES / "lhpat-tm.expected.txt").read_text(encoding="utf-8")
    expected = "".join(expected.split())
    assert text == expected
    sentences = [s for i in items if isinstance(i, Block) for s in split_sentences(i.text)]
    assert sentences[0].startswith("先日、不正に改造したiPhone") and sentences[0].endswith("耳にしました。")
    assert len(sentences) == 16


def test_real_page_keeps_the_story_and_its_picture_not_the_site_links():
    items = main_content(LexborHTMLParser((PAGES / "hukumusume.html").read_bytes()))
    texts = [i.text for i in items if isinstance(i, Block)]
    assert any("肉をくわえたイヌが、橋を渡っていました。" in t for t in texts)
    assert not any("福娘童話集 >" in t for t in texts)  # the breadcrumb
    images = [i.attrs["src"] for i in items if isinstance(i, ImageItem)]
    story = next(k for k, i in enumerate(items) if isinstance(i, Block) and "肉をくわえた" in i.text)
    picture = next(k for k, i in enumerate(items) if isinstance(i, ImageItem) and "aesop052" in i.attrs["src"])
    assert picture < story and "../../../gazou/pc_gazou/aesop/aesop052.jpg" in images


def test_boilerplate_and_link_lists_are_not_main_text():
    html = ("<html><body><nav>メニュー項目です。ホームへ。</nav><div class='sidebar'>関連記事の一覧です。</div>"
            "<div id='content'><p>本文の最初の文です。ここは記事の中身です。</p><img src='a.jpg'>"
            "<p>二つ目の段落です。</p><ul><li><a href='/x'>リンクだけの行です。</a></li></ul></div>"
            "<footer>著作権表示です。</footer></body></html>")
    items = main_content(LexborHTMLParser(html))
    assert items == [Block("本文の最初の文です。ここは記事の中身です。"), ImageItem({"src": "a.jpg"}),
                     Block("二つ目の段落です。")]


def test_space_between_inline_elements_is_kept():
    html = ("<html><body><div><p>アプリ <a href='/k'>Kindle</a> <b>for</b> PCに関する話です。本文の文章です。</p>"
            "</div></body></html>")
    assert main_content(LexborHTMLParser(html)) == [Block("アプリ Kindle for PCに関する話です。本文の文章です。")]
