"""Tests of the synthetic page/WARC generator itself (waon_hf.testing.synthetic)."""

from __future__ import annotations

import gzip
import importlib.util
import random
import re
import zlib
from collections import Counter
from pathlib import Path
from urllib.parse import urljoin

import pytest
from fastwarc.warc import ArchiveIterator, WarcRecordType
from selectolax.lexbor import LexborHTMLParser

from waon_hf.testing import synthetic as S
from waon_hf.testing.synthetic.text import ZH_KANA_SENTENCES, lines, text_pool
from waon_hf.testing.synthetic.text_ja import JA_CP932_SENTENCES

ROOT = Path(__file__).resolve().parents[1]

KANA = re.compile(r"[\u3041-\u309f\u30a0-\u30ff]")
# WHATWG label -> Python codec (the Shift_JIS family is decoded as cp932, like browsers do).
WHATWG = {
    "utf-8": "utf-8", "utf8": "utf-8", "shift_jis": "cp932", "sjis": "cp932", "windows-31j": "cp932",
    "ms932": "cp932", "x-sjis": "cp932", "euc-jp": "euc_jp", "x-euc-jp": "euc_jp",
    "iso-2022-jp": "iso2022_jp", "csiso2022jp": "iso2022_jp", "gb18030": "gb18030", "gbk": "gb18030",
    "gb2312": "gb18030", "big5": "big5", "euc-kr": "cp949", "windows-1252": "cp1252", "iso-8859-1": "cp1252",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A clean corpus and the (url -> record) view fastwarc gives of it."""
    path = tmp_path_factory.mktemp("synthetic") / "clean.warc.gz"
    manifest = S.generate_corpus(path, n_pages=90, ja_fraction=0.6, seed=7, target_bytes=3000, n_images=12)
    records = {}
    with open(path, "rb") as fh:
        for rec in ArchiveIterator(fh, parse_http=True):
            if rec.record_type == WarcRecordType.response:
                content_type = rec.http_headers.get("Content-Type")
                records[rec.headers["WARC-Target-URI"]] = (content_type, rec.reader.read())
    return path, manifest, records


def _reference_pairs(html: bytes, encoding: str, page_url: str) -> list[tuple[str, str]]:
    """DOM-level check of the generator's markup: parse with lexbor, apply the same rules."""
    tree = LexborHTMLParser(html.decode(encoding))
    base = tree.css_first("base[href]")
    base_url = urljoin(page_url, base.attributes["href"]) if base is not None else page_url
    pairs = []
    for img in tree.css("img"):
        attrs = {k.lower(): v or "" for k, v in img.attributes.items()}
        figcaption, node = None, img.parent
        while node is not None and node.tag != "figure":
            node = node.parent
        if node is not None and (cap := node.css_first("figcaption")) is not None:
            figcaption = cap.text(deep=True)
        if pair := S.expected_pair(attrs, base_url, figcaption):
            pairs.append(pair)
    return pairs


def test_same_seed_same_bytes(tmp_path):
    kwargs = dict(n_pages=25, ja_fraction=0.6, seed=3, broken=True, target_bytes=2500, n_images=6,
                  oversized_bytes=200_000)
    paths = [tmp_path / d / "x.warc.gz" for d in ("a", "b")]
    for p in paths:
        p.parent.mkdir()
    a, b = (S.generate_corpus(p, **kwargs) for p in paths)
    assert a == b
    assert paths[0].read_bytes() == paths[1].read_bytes()
    other = S.generate_corpus(tmp_path / "c.warc.gz", **{**kwargs, "seed": 4})
    assert other["pages"] != a["pages"]
    page1 = S.make_page(random.Random(5), 3, "ja", "euc-jp")
    page2 = S.make_page(random.Random(5), 3, "ja", "euc-jp")
    assert page1 == page2


def test_workers_do_not_change_output(tmp_path):
    kwargs = dict(n_pages=40, ja_fraction=0.5, seed=9, target_bytes=2000, n_images=4)
    S.generate_corpus(tmp_path / "x.warc", workers=1, **kwargs)
    serial = (tmp_path / "x.warc").read_bytes()
    S.generate_corpus(tmp_path / "x.warc", workers=2, **kwargs)
    assert (tmp_path / "x.warc").read_bytes() == serial


def test_fastwarc_reads_every_record(corpus):
    path, manifest, records = corpus
    with open(path, "rb") as fh:
        is_response = [r.record_type == WarcRecordType.response for r in ArchiveIterator(fh, parse_http=True)]
    types = Counter(is_response)
    assert sum(types.values()) == manifest["n_records"] == 91
    assert types[True] == manifest["n_response_records"] == 90
    assert set(records) == {p["url"] for p in manifest["pages"]}
    assert manifest["counts_by_lang"] == {"ja": 54, "zh": 12, "ko": 12, "en": 12}
    with gzip.open(path, "rb") as fh:  # one gzip member per record, readable as a single stream too
        assert fh.read().count(b"WARC/1.0\r\n") == 91


def test_page_sizes_follow_target(corpus):
    _, manifest, _ = corpus
    sizes = [p["n_bytes"] for p in manifest["pages"]]
    assert 2500 < sum(sizes) / len(sizes) < 3800


def test_japanese_pages_decode_and_contain_kana(corpus):
    _, manifest, records = corpus
    ja = [p for p in manifest["pages"] if p["lang"] == "ja"]
    assert {p["encoding"] for p in ja} == set(S.JA_ENCODINGS)
    assert {p["charset_in"] for p in ja} == set(S.CHARSET_MODES)
    for p in ja:
        content_type, body = records[p["url"]]
        text = body.decode(p["encoding"])  # strict
        assert len(KANA.findall(text)) > 50, p["url"]
        assert "&#" not in text.split("<body>")[0]  # the head needs no character references
        if p["encoding"] == "cp932":  # characters that exist only in cp932
            assert re.search("[①②㈱髙№Ⅱ\u2162]", text)
            with pytest.raises(UnicodeDecodeError):
                body.decode("shift_jis")


def test_charset_declarations(corpus):
    _, manifest, records = corpus
    for p in manifest["pages"]:
        content_type, body = records[p["url"]]
        head = body[:1024].decode("ascii", "replace").lower()
        declared = p["http_charset"] or p["meta_charset"]
        mode = p["charset_in"]
        assert (p["http_charset"] is not None) == (mode in ("header", "conflict"))
        assert ("charset=" in content_type.lower()) == (mode in ("header", "conflict"))
        assert body.startswith(b"\xef\xbb\xbf") == (mode == "bom")
        if mode in ("none", "bom"):
            assert "charset" not in head and declared is None
            continue
        if mode in ("meta", "http-equiv", "conflict"):
            assert p["meta_charset"].lower() in head  # within the 1024-byte prescan window
        if mode == "conflict":
            assert WHATWG[p["meta_charset"].lower()] != WHATWG[p["http_charset"].lower()]
            declared = p["http_charset"]  # the header wins
        # the declared label decodes the page exactly like the true encoding
        assert body.decode(WHATWG[declared.lower()]) == body.decode(p["encoding"]), (p["url"], declared)


def test_chinese_pages_mostly_have_no_kana(corpus):
    _, manifest, records = corpus
    zh = [p for p in manifest["pages"] if p["lang"] == "zh"]
    with_kana = [p for p in zh if KANA.search(records[p["url"]][1].decode(p["encoding"]))]
    assert zh and len(with_kana) <= len(zh) // 4
    # ... but some do contain a katakana word, so a kana pre-check alone cannot tell ja from zh
    page = S.make_page(random.Random(0), 3, "zh", "utf-8")
    assert "zh-with-katakana" in page.tests and KANA.search(page.html.decode("utf-8"))
    for p in manifest["pages"]:
        if p["lang"] in ("ko", "en"):
            assert not KANA.search(records[p["url"]][1].decode(p["encoding"]))


def test_expected_pairs_match_the_markup(corpus):
    _, manifest, records = corpus
    for p in manifest["pages"]:
        got = _reference_pairs(records[p["url"]][1], p["encoding"], p["url"])
        assert got == [tuple(x) for x in p["expected_pairs"]], p["url"]


def test_every_image_kind_is_used_and_skips_are_skipped(corpus):
    _, manifest, _ = corpus
    kinds = {t for p in manifest["pages"] for t in p["tests"]}
    assert set(S.IMAGE_KINDS) <= kinds
    pairs = [tuple(x) for p in manifest["pages"] for x in p["expected_pairs"]]
    urls = [u for u, _ in pairs]
    captions = [c for _, c in pairs]
    assert all(u.startswith(("http://", "https://")) and "#" not in u for u in urls)
    assert not any(re.search(r"(spacer|pixel|blank|1x1|transparent|clear)\.gif$|\.(svgz?|ico)$", u.lower())
                   for u in urls)
    assert not any("stats.example.com" in u or "ftp.example" in u for u in urls)
    assert any("%E5%86%99" in u for u in urls) and any("&size=large" in u for u in urls)
    assert any(u.startswith("https://static.example.jp/") for u in urls)  # <base href>
    assert any(u.endswith("-1200.jpg") for u in urls) and any(u.endswith("-3x.png") for u in urls)
    assert all(c == " ".join(c.split()) and c for c in captions)
    assert any("&" in c for c in captions) and any("<" in c for c in captions)
    assert any(re.fullmatch(r"[0-9a-f]{32}", c) for c in captions)
    assert any(ord(ch) > 0xFFFF for c in captions for ch in c)  # emoji
    assert any("Ｎ" in c or "ＳＡＬＥ" in c for c in captions)  # full-width ASCII


def test_rules_on_handmade_tags():
    assert S.srcset_best("a.jpg 320w, b.jpg 1024w, c.jpg 640w") == "b.jpg"
    assert S.srcset_best("a.png, b.png 3x, c.png 2x") == "b.png"
    base = "https://example.jp/dir/page.html"
    pair = S.expected_pair({"src": "x.jpg", "alt": " a\n b "}, base)
    assert pair == ("https://example.jp/dir/x.jpg", "a b")
    assert S.expected_pair({"src": "data:image/gif;base64,AAAA", "data-src": "", "alt": "a"}, base) is None
    assert S.expected_pair({"src": "data:,x", "data-srcset": "/s.jpg 1x, /l.jpg 2x", "alt": "a"}, base) == (
        "https://example.jp/l.jpg", "a")
    assert S.expected_pair({"src": "/x.jpg", "alt": "a", "width": "1"}, base) is None
    assert S.expected_pair({"src": "/x.jpg", "alt": "a", "width": "100%"}, base) is not None
    assert S.expected_pair({"src": "/Spacer.GIF", "alt": "a"}, base) is None
    assert S.expected_pair({"src": "/x.jpg", "alt": "alt"}, base, "  図の\n説明 ") == (
        "https://example.jp/x.jpg", "図の 説明")
    assert S.expected_pair({"src": "/x.jpg", "alt": "alt"}, base, " ") == ("https://example.jp/x.jpg", "alt")
    assert S.expected_pair({"src": "//cdn.example.jp/x.jpg#f", "alt": "a"}, base)[0] == "https://cdn.example.jp/x.jpg"


def test_broken_corpus(tmp_path):
    path = tmp_path / "broken.warc.gz"
    manifest = S.generate_corpus(path, n_pages=30, ja_fraction=0.6, seed=1, broken=True, target_bytes=2500,
                                 n_images=6, oversized_bytes=150_000)
    kinds = [b["kind"] for b in manifest["broken_records"]]
    assert sorted(kinds) == sorted([*S.BROKEN_KINDS, "truncated_last_member"])
    assert kinds[-1] == "truncated_last_member"
    assert manifest["n_japanese_html"] == manifest["counts_by_lang"]["ja"] == 18
    data = path.read_bytes()
    garbage_at = data.index(b"GARBAGE\x00")
    with pytest.raises(zlib.error):  # garbage is not a gzip member
        zlib.decompressobj(31).decompress(data[garbage_at:])
    # the last member is cut: decompressing it never reaches the end of the stream
    last = data.rindex(b"\x1f\x8b\x08")
    dec = zlib.decompressobj(31)
    dec.decompress(data[last:])
    assert not dec.eof
    # records before the garbage are all readable
    seen = []
    with open(path, "rb") as fh, pytest.raises(OSError):
        for rec in ArchiveIterator(fh, parse_http=True):
            seen.append(rec.headers.get("WARC-Target-URI"))
    oversized = next(b for b in manifest["broken_records"] if b["kind"] == "oversized")
    assert oversized["url"] in seen


def test_plain_warc_and_record_helpers(tmp_path):
    page = S.make_page(random.Random(0), 0, "ja", "utf-8", n_images=3, target_bytes=1500, charset_in="bom")
    records = [S.warcinfo("t.warc"), S.warc_request(page.url),
               S.warc_response(page.url, {"Content-Type": page.content_type()}, page.html),
               S.warc_metadata(page.url, {"fetchTimeMs": "10"})]
    S.write_warc(tmp_path / "t.warc", records)
    assert (tmp_path / "t.warc").read_bytes() == b"".join(records)
    with open(tmp_path / "t.warc", "rb") as fh:
        got = [(str(r.record_type).split(".")[-1], r.reader.read())
               for r in ArchiveIterator(fh, parse_http=True)]
    assert [t for t, _ in got] == ["warcinfo", "request", "response", "metadata"]
    assert got[2][1] == page.html and page.html.startswith(b"\xef\xbb\xbf")
    with pytest.raises(ValueError):
        S.make_page(random.Random(0), 0, "ja", "shift_jis", charset_in="bom")


def test_text_written_raw_has_no_markup_characters():
    # Sentences go into <p> without escaping (captions are escaped): one "<" or "&" would change the markup.
    variants = ("ja", "zh-hans", "zh-hant", "ko", "en")
    raw = [s for v in variants for s in text_pool(v).sentences]
    raw += [*lines(JA_CP932_SENTENCES), *ZH_KANA_SENTENCES.values()]
    assert len(raw) > 300
    assert [s for s in raw if set(s) & set("<>&")] == []


def test_shipped_sample_is_regenerated_byte_for_byte(tmp_path):
    """samples/sample.warc.gz and its manifest come out of the generator unchanged (the demo's input)."""
    spec = importlib.util.spec_from_file_location("make_sample_warc", ROOT / "dataset_scripts/make_sample_warc.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["-o", str(tmp_path / "sample.warc.gz")]) == 0
    for name in ("sample.warc.gz", "sample.manifest.json"):
        assert (tmp_path / name).read_bytes() == (ROOT / "samples" / name).read_bytes(), name
