"""Hostile and unusual pages: one page never fails its WARC file, never costs more than a budget."""

from __future__ import annotations

import codecs
import gzip

import pytest

from waon_hf.funnel import funnel_rows
from waon_hf.jobs.extract import ExtractJob, run_extract
from waon_hf.sources.commoncrawl import SourceFile
from waon_hf.steps import extract as extract_module
from waon_hf.steps.extract import ExtractConfig, PageExtractor
from waon_hf.steps.html_budget import nesting_work, within_budget
from waon_hf.testing import synthetic as S

JA = ("<p>昨年の秋に家族で京都を訪れました。紅葉がとてもきれいで、写真をたくさん撮りました。"
      "清水寺から見た景色は忘れられません。</p>")
URL = "https://www.example.jp/a/page.html"
HOSTILE_LABELS = ("punycode", "idna", "undefined", "base64", "hex", "zlib", "bz2", "quopri", "rot_13", "uu",
                  "utf-7", "unicode_escape")


def ja_html(images: str = "<img src='x.jpg' alt='紅葉の写真'>", head: str = "") -> str:
    return f"<html><head>{head}<title>京都</title></head><body>{JA}{images}</body></html>"


@pytest.mark.parametrize("bom, codec", [(codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")])
def test_utf16_with_bom_is_text_not_binary(bom, codec):
    result = PageExtractor().extract(bom + ja_html().encode(codec), URL, "text/html")
    assert result.counts["binary_payload"] == 0 and result.counts["charset_bom"] == 1
    assert result.pairs == [("https://www.example.jp/a/x.jpg", "紅葉の写真", "alt")]


def test_nul_bytes_without_bom_are_still_binary():
    result = PageExtractor().extract(ja_html().encode("utf-16-le"), URL, "text/html")
    assert result.counts["binary_payload"] == 1 and result.pairs == []


@pytest.mark.parametrize("label", HOSTILE_LABELS)
@pytest.mark.parametrize("where", ["meta", "header"])
def test_non_web_charset_labels_do_not_raise(label, where):
    html = ja_html(head=f"<meta charset='{label}'>" if where == "meta" else "")
    body = html.encode("utf-8").replace("秋".encode(), b"\xff")  # one invalid UTF-8 byte
    result = PageExtractor().extract(body, URL, f"text/html; charset={label}" if where == "header" else "text/html")
    assert not [k for k in result.counts if k.startswith("page_error_")]
    assert [p[1] for p in result.pairs] == ["紅葉の写真"]


def test_any_exception_in_a_page_is_a_counted_skip(monkeypatch):
    def broken_parser(markup):
        raise RecursionError("parser gave up")

    monkeypatch.setattr(extract_module, "LexborHTMLParser", broken_parser)
    result = PageExtractor().extract(ja_html().encode(), URL, "text/html; charset=utf-8")
    assert dict(result.counts) == {"page_error_RecursionError": 1} and result.pairs == []


def test_deep_nesting_is_skipped_before_parsing(monkeypatch):
    deep = ja_html("<div>" * 100_000 + "<img src='deep.jpg' alt='深い'>").encode()
    parsed = []
    real_parser = extract_module.LexborHTMLParser
    monkeypatch.setattr(extract_module, "LexborHTMLParser", lambda markup: parsed.append(1) or real_parser(markup))
    result = PageExtractor().extract(deep, URL, "text/html; charset=utf-8")
    assert result.counts["page_too_deep"] == 1 and result.pairs == [] and parsed == []
    # not only <div>: any block element, and inline elements under which blocks start
    for markup in ("<section>" * 10_000, "<Figure><figcaption>図</figcaption>" * 8_000,
                   "<span>" * 10_000 + "<p>段落</p>" * 2_000):
        result = PageExtractor().extract(ja_html(markup).encode(), URL, "text/html; charset=utf-8")
        assert result.counts["page_too_deep"] == 1, markup[:20]
    assert parsed == []
    # the same markup, closed, is an ordinary page
    flat = ja_html("<div></div>" * 100_000 + "<img src='deep.jpg' alt='深い'>").encode()
    assert [p[0] for p in PageExtractor().extract(flat, URL, "text/html; charset=utf-8").pairs] == [
        "https://www.example.jp/a/deep.jpg"]


def test_nesting_work_tracks_open_elements_by_name():
    assert nesting_work(b"<div>" * 5) == 1 + 2 + 3 + 4 + 5
    assert nesting_work(b"<div></div>" * 5) == 5
    assert nesting_work(b"<DIV>" * 3) == 6  # case-insensitive
    assert nesting_work(b"</div>" * 1000 + b"<div>" * 3) == 6  # stray end tags close nothing
    assert nesting_work(b"<div></span>" * 3) == 6  # an end tag of another name closes nothing
    assert nesting_work(b"<p>x" * 100 + b"<li>y<br><img src=a>" * 100) == 0  # implied ends, void elements
    assert nesting_work(b"<span>" * 10 + b"<div></div>" * 3) == 33  # inline elements count where blocks start
    assert within_budget("<div>" * 10, 10) is False and within_budget("<div>" * 4, 10) is True


def test_nested_figures_caption_nearest_captioned_figure():
    n = 3_000
    images = ("<figure><figcaption>図の説明</figcaption><img src='f.jpg' alt='代替'>" * n) + "</figure>" * n
    result = PageExtractor(ExtractConfig(max_nesting_work=10**9)).extract(
        ja_html(images).encode(), URL, "text/html; charset=utf-8")
    assert len(result.pairs) == n and {p[1:] for p in result.pairs} == {("図の説明", "figcaption")}
    mixed = ("<figure><figcaption>外側</figcaption><figure><figcaption> </figcaption><img src='in.jpg' alt='a'>"
             "</figure><figure><img src='no.jpg' alt='b'></figure></figure><img src='out.jpg' alt='c'>")
    got = PageExtractor().extract(ja_html(mixed).encode(), URL, "text/html; charset=utf-8").pairs
    assert [(p[0].rsplit("/", 1)[1], p[1]) for p in got] == [("in.jpg", "外側"), ("no.jpg", "外側"), ("out.jpg", "c")]


def _rows(out) -> list[dict]:
    import pyarrow.parquet as pq

    return [r for f in sorted((out / "data").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def _normal_pages(n: int) -> list[S.SyntheticPage]:
    return [S.make_page(S.page_rng(5, i), i, "ja", "utf-8", n_images=4, target_bytes=1500) for i in range(n)]


def _hostile_records() -> list[bytes]:
    records = []
    for i, label in enumerate(HOSTILE_LABELS):
        for where in ("meta", "header"):
            body = ja_html(f"<img src='{where}{i}.jpg' alt='{where}の画像{i}'>",
                           head=f"<meta charset='{label}'>" if where == "meta" else "").encode()
            header = "text/html" if where == "meta" else f"text/html; charset={label}"
            records.append(S.warc_response(f"https://hostile.example.jp/{where}-{i}.html", [("Content-Type", header)],
                                           body.replace("秋".encode(), b"\xff") if i % 2 else body))
    deep = ja_html("<div>" * 200_000).encode()
    records.append(S.warc_response("https://hostile.example.jp/deep.html",
                                   [("Content-Type", "text/html; charset=utf-8"), ("Content-Encoding", "gzip")],
                                   gzip.compress(deep, 9)))
    return records


def test_hostile_pages_do_not_fail_their_warc_file(tmp_path):
    pages = _normal_pages(6)
    normal = [S.warc_response(p.url, [("Content-Type", p.content_type())], p.html) for p in pages]
    hostile = _hostile_records()
    mixed = normal[:3] + hostile + normal[3:]
    for name, records in (("normal", normal), ("mixed", mixed)):
        (tmp_path / name).mkdir()
        S.write_warc(tmp_path / name / "a.warc.gz", records)
    reference = run_extract([SourceFile(str(tmp_path / "normal" / "a.warc.gz"), "")], tmp_path / "out-normal",
                            ExtractJob(steps=[]))
    stats = run_extract([SourceFile(str(tmp_path / "mixed" / "a.warc.gz"), "")], tmp_path / "out",
                        ExtractJob(steps=[]))
    rows = _rows(tmp_path / "out")
    got = {(r["url"], r["caption"], r["page_url"]) for r in rows if "hostile" not in r["page_url"]}
    assert got == {(r["url"], r["caption"], r["page_url"]) for r in _rows(tmp_path / "out-normal")}
    assert len(got) > 0 and reference["extract.pairs"] >= len(got)
    # the label pages are undeclared pages: their pairs come out too; the deep one is a counted skip
    assert {r["page_url"] for r in rows if "hostile" in r["page_url"]} == {
        f"https://hostile.example.jp/{w}-{i}.html" for i in range(len(HOSTILE_LABELS)) for w in ("meta", "header")}
    assert stats["extract.page_too_deep"] == 1
    drops = dict(next(r for r in funnel_rows(stats) if r.label.startswith("HTML responses")).drops)
    assert drops["page_too_deep"] == 1


@pytest.mark.parametrize("ref, expected", [
    ("http://example.jp:99999/a.jpg", None),  # port out of range
    ("http://exa mple.jp/a.jpg", None),  # space in the host
    ("http://exa\x01mple.jp/a.jpg", None),  # control character in the host
    ("//bad\x7fhost.jp/a.jpg", None),
    ("http://1.2.3.256/a.jpg", None),  # the host ends in a number: an IPv4 address, out of range
    ("http://foo.123/a.jpg", None),
    ("https://[::1/a.jpg", None),
    ("\\\\evil.example\\x.jpg", "https://evil.example/x.jpg"),  # backslashes are slashes: a host
    ("\\img\\a.jpg", "https://www.example.jp/img/a.jpg"),
    ("/img/\ta\n.jpg\r", "https://www.example.jp/img/a.jpg"),  # tab and newlines are removed
    (" \x01/img/a.jpg\x02 ", "https://www.example.jp/img/a.jpg"),  # C0 controls and spaces stripped at the ends
    ("/img/a\x01b.jpg", "https://www.example.jp/img/a%01b.jpg"),  # inside: percent-encoded, as browsers do
    ("http://example.jp:65535/a.jpg", "http://example.jp:65535/a.jpg"),
    ("https://日本語.jp/画像.jpg", "https://日本語.jp/画像.jpg"),  # valid: kept as written
])
def test_image_urls_are_parsed_like_a_browser(ref, expected):
    result = PageExtractor().extract(ja_html(f'<img src="{ref}" alt="写真">').encode(), URL, "text/html; charset=utf-8")
    if expected is None:
        assert result.pairs == [] and result.counts["img_bad_url"] == 1
    else:
        assert [p[0] for p in result.pairs] == [expected]
