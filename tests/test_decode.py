import codecs

import pytest

from waon_hf.text.decode import codec_for_label, decode_html, detect_encoding

TEXT = "春の京都で撮った桜の写真です。カメラはフィルムを使いました。"
CP932_ONLY = "①髙橋㈱の新商品"  # NEC/IBM extensions: not in plain Shift_JIS
SHORT_JAPANESE = (  # 65 short page texts: titles, menu items, captions
    "こんにちは", "ありがとう", "さようなら", "おはようございます", "東京タワー", "京都の紅葉", "富士山の写真",
    "猫の写真", "犬と散歩", "春の桜", "夏祭り", "秋の夕暮れ", "冬の雪景色", "新商品のお知らせ", "会社概要",
    "お問い合わせ", "アクセス", "トップページ", "ブログ", "ニュース", "商品一覧", "ショッピングカート", "ログイン",
    "会員登録", "よくある質問", "プライバシーポリシー", "利用規約", "サイトマップ", "採用情報", "店舗案内",
    "営業時間", "定休日", "地図", "電話番号", "料金表", "メニュー", "ランチ", "ディナー", "予約", "空室状況",
    "温泉旅館", "露天風呂", "朝食付き", "駅から徒歩五分", "駐車場あり", "写真集", "動画", "日記", "旅行記",
    "料理のレシピ", "手作りケーキ", "野菜の育て方", "庭の花", "子供の運動会", "入学式", "卒業式", "結婚式",
    "誕生日", "お正月", "年賀状", "お中元", "お歳暮", "送料無料", "期間限定", "新着情報",
)


# Python codec names that are not WHATWG labels; each made decode_html raise, or decode what no browser does.
HOSTILE_LABELS = ("punycode", "idna", "undefined", "base64", "hex", "zlib", "bz2", "quopri", "rot_13", "uu",
                  "utf-7", "unicode_escape", "raw_unicode_escape", "cp037", "utf-32", "mbcs")


def page(body: str, head: str = "") -> str:
    return f"<html><head>{head}<title>テスト</title></head><body><p>{body}</p></body></html>"


@pytest.mark.parametrize("label, codec", [
    ("Shift_JIS", "cp932"), ("x-sjis", "cp932"), ("Windows-31J", "cp932"), ("EUC-JP", "euc_jp"),
    ("ISO-2022-JP", "iso2022_jp_ext"), ("iso-8859-1", "cp1252"), ("GB2312", "gb18030"), ("EUC-KR", "cp949"),
    ("utf-16", "utf-8"), ("\"UTF-8\"", "utf-8"), ("no-such-charset", None),
    ("koi8-r", "koi8-r"), ("x-mac-cyrillic", "mac-cyrillic"), ("iso-2022-kr", "replacement"),
    # Python codecs that are no web encoding: transforms that raise on any input, and decoders no browser has
    *[(name, None) for name in HOSTILE_LABELS],
])
def test_labels_map_like_browsers(label, codec):
    assert codec_for_label(label) == codec


@pytest.mark.parametrize("label, encoding", [("shift_jis", "shift_jis"), ("windows-31j", "cp932"),
                                             ("EUC-JP", "euc_jp"), ("iso-2022-jp", "iso2022_jp"), ("utf-8", "utf-8")])
def test_http_charset(label, encoding):
    html = page(TEXT)
    decoded = decode_html(html.encode(encoding), f"text/html; charset={label}")
    assert decoded.text == html
    assert decoded.source == "http"


@pytest.mark.parametrize("label", ["cp932", "euc_jp", "iso2022_jp"])
def test_python_codec_names_are_not_web_labels(label):
    """Browsers know "windows-31j", not "cp932": such a header is no declaration, and detection decodes the page."""
    html = page(TEXT * 3)
    decoded = decode_html(html.encode(label), f"text/html; charset={label}")
    assert decoded.text == html and decoded.source == "detected"


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


@pytest.mark.parametrize("where", ["meta", "header"])
@pytest.mark.parametrize("label", HOSTILE_LABELS)
@pytest.mark.parametrize("body", ["ascii", "invalid_utf8", "japanese"])
def test_non_web_labels_are_undeclared(label, where, body):
    """Unknown labels are ignored as a browser ignores them: the page decodes as if undeclared, never raises."""
    text = {"ascii": "plain text", "invalid_utf8": TEXT, "japanese": TEXT}[body]
    html = page(text, f'<meta charset="{label}">' if where == "meta" else "")
    data = html.encode("utf-8")
    if body == "invalid_utf8":
        data = data.replace("桜".encode(), b"\xff")  # one byte that is no UTF-8
    decoded = decode_html(data, f"text/html; charset={label}" if where == "header" else "text/html")
    assert decoded.source in ("detected", "replaced")
    if body != "invalid_utf8":
        assert decoded.text == html


def test_replacement_encoding_and_x_user_defined():
    assert decode_html(b"<p>\x1b$)Cabc</p>", "text/html; charset=iso-2022-kr").text == "\ufffd"
    decoded = decode_html(b"<p>a\x80\xff</p>", "text/html; charset=x-user-defined")
    assert decoded.text == "<p>a\uf780\uf7ff</p>"


def euc_jp_page(text: str) -> str:
    return f"<html><head><title>{text}</title></head><body><p>{text}</p></body></html>"


@pytest.mark.parametrize("encoding", ["euc_jp", "cp932"])
def test_short_undeclared_pages_decode_right(encoding):
    """CP932 reads EUC-JP bytes A1-DF as half-width katakana; those must not make the wrong decode look Japanese."""
    wrong = [text for text in SHORT_JAPANESE
             if decode_html(euc_jp_page(text).encode(encoding), "text/html").text != euc_jp_page(text)]
    assert len(SHORT_JAPANESE) == 65
    assert wrong == []
