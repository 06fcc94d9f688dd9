"""Inputs of `waon extract` that are not WARC files are counted and reported, not a silent empty success."""

from __future__ import annotations

import gzip
import logging
import random
from collections import Counter

import pytest

from waon_hf.funnel import funnel_rows
from waon_hf.jobs.extract import ExtractJob, run_extract
from waon_hf.sources.commoncrawl import SourceFile
from waon_hf.sources.warc import iter_html_responses
from waon_hf.testing import synthetic as S

NOT_WARC = {
    "random.warc.gz": bytes(random.Random(0).getrandbits(8) for _ in range(5000)),
    "random-gzip-magic.warc.gz": b"\x1f\x8b\x08" + bytes(random.Random(1).getrandbits(8) for _ in range(5000)),
    "text.warc.gz": gzip.compress(b"hello world\n" * 1000),
    "page.html": b"<html><head><title>t</title></head><body><p>not a crawl</p></body></html>",
    "empty.warc": b"",
}


@pytest.mark.parametrize("name", NOT_WARC)
def test_not_a_warc_is_counted_and_warned(tmp_path, caplog, name):
    path = tmp_path / name
    path.write_bytes(NOT_WARC[name])
    counts = Counter()
    with caplog.at_level(logging.WARNING, logger="waon_hf.sources.warc"):
        assert list(iter_html_responses(str(path), counts)) == []
    assert counts["not_warc"] == 1
    assert any("is not a WARC file" in r.getMessage() and name in r.getMessage() for r in caplog.records)


def test_truncated_warc_stays_a_truncated_warc(tmp_path):
    page = S.make_page(S.page_rng(0, 0), 0, "ja", "utf-8", n_images=2, target_bytes=1500)
    record = S.warc_response(page.url, [("Content-Type", page.content_type())], page.html)
    for name, data in (("cut.warc", record[: len(record) // 2]), ("cut.warc.gz", gzip.compress(record)[:200])):
        (tmp_path / name).write_bytes(data)
        counts = Counter()
        list(iter_html_responses(str(tmp_path / name), counts))
        assert counts["not_warc"] == 0, name


def test_not_warc_shows_in_the_funnel(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "page.html").write_bytes(NOT_WARC["page.html"])
    stats = run_extract([SourceFile(str(tmp_path / "in" / "page.html"), "")], tmp_path / "out", ExtractJob(steps=[]))
    assert stats["warc.not_warc"] == 1
    assert ("not_warc", 1) in funnel_rows(stats)[0].drops
