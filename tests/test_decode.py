import codecs

import pytest

from waon_hf.text.decode import codec_for_label, decode_html, detect_encoding

TEXT = "春の京都で撮った桜の写真です。カメラはフィルムを使いました。"
CP932_ONLY = "①髙橋㈱の新商品"  # NEC/IBM extensions: not in plain Shift_JIS


def page(body: str, head: str = "") -> str:
    return f"<html><head>{head}<title>テスト</title></head><body><p>{body}</p></body></html>"


@pytest.mark.parametrize("label, codec", [
    ("Shift_JIS", "cp932"), ("x-sjis", "cp932"), ("Windows-31J", "cp932"), ("EUC-JP", "euc_jp"),
    ("ISO-2022-JP", "iso2022_jp_ext"), ("iso-8859-1", "cp1252"), ("GB2312", "gb18030"), ("EUC-KR", "cp949"),
    ("utf-16", "utf-8"), ("\"UTF-8\"", "utf-8"), ("no-such-charset", None),
])
def test_labels_map_like_browsers(label, codec):
    assert codec_for_label(label) == codec


@pytest.mark.parametrize("encoding", ["shift_jis", "cp932", "euc_jp", "iso2022_jp", "utf-8"])
def test_http_charset(encoding):
    html = page(TEXT)
    decoded = decode_html(html.encode(encoding), f"text/html; charset={encoding}")
    assert decoded.text == html
    assert decoded.source == "http"


@pytest.mark.parametrize("head", [
    '<meta charset="shift_jis">',
    '<meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS">',
    "<META HTTP-EQUIV=content-type CONTENT='text/html;charset=x-sjis'>",
])
def test_meta_prescan(head):
    html = page(TEXT + CP932_ONLY, head)
    decoded = decode_html(html.encode("cp932"), "text/html")
    assert decoded.text == html
    assert decoded.source == "meta"
    assert CP932_ONLY in decoded.text  # Shift_JIS label decodes as Windows-31J, no mojibake


def test_bom_wins_over_everything():
    html = page(TEXT, '<meta charset="euc-jp">')
    decoded = decode_html(codecs.BOM_UTF8 + html.encode("utf-8"), "text/html; charset=shift_jis")
    assert decoded.text == html and decoded.source == "bom"


def test_http_charset_wins_over_meta():
    html = page(TEXT, '<meta charset="utf-8">')
    decoded = decode_html(html.encode("euc_jp"), "text/html; charset=EUC-JP")
    assert decoded.text == html and decoded.source == "http"


def test_latin1_server_default_yields_to_meta():
    html = page(TEXT, '<meta charset="shift_jis">')
    decoded = decode_html(html.encode("cp932"), "text/html; charset=ISO-8859-1")
    assert decoded.text == html and decoded.source == "meta"


def test_mislabelled_utf8_is_recovered():
    html = page(TEXT, '<meta charset="euc-jp">')
    decoded = decode_html(html.encode("utf-8"), None)
    assert decoded.text == html and decoded.source == "fallback_utf8"


@pytest.mark.parametrize("encoding", ["shift_jis", "cp932", "euc_jp", "iso2022_jp", "utf-8"])
def test_undeclared_japanese_is_detected(encoding):
    html = page(TEXT * 3)
    decoded = decode_html(html.encode(encoding), "text/html")
    assert decoded.text == html
    assert decoded.source == "detected"


def test_detect_prefers_plausible_japanese():
    data = (TEXT * 5).encode("euc_jp")
    codec, text = detect_encoding(data)
    assert codec == "euc_jp" and text == TEXT * 5


def test_undecodable_bytes_never_raise():
    junk = bytes(range(128, 256)) * 20
    decoded = decode_html(junk, "text/html; charset=utf-8")
    assert isinstance(decoded.text, str) and len(decoded.text) > 0
