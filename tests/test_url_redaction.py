"""Credentials in input URLs (userinfo, presigned signatures, tokens) are used to read, never recorded."""

import logging
import shutil

import pyarrow.parquet as pq
import pytest

from tests.http_server import serve
from waon_hf.jobs.extract import run_extract
from waon_hf.pipeline.runner import ShardsFailedError
from waon_hf.sources.commoncrawl import SourceFile
from waon_hf.sources.remote import redact_text, redact_url
from waon_hf.testing.synthetic import generate_corpus

SECRETS = ("hunter2", "SIGSECRET", "CREDSECRET", "TOKSECRET", "SASSECRET")


@pytest.mark.parametrize("url, expected", [
    ("http://user:hunter2@host/x.warc.gz", "http://host/x.warc.gz"),
    ("https://user@host:8443/a/b.warc.gz", "https://host:8443/a/b.warc.gz"),
    ("https://b.s3.amazonaws.com/k.warc.gz?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=CREDSECRET"
     "&X-Amz-Signature=SIGSECRET&X-Amz-Security-Token=TOKSECRET&versionId=7", "https://b.s3.amazonaws.com/k.warc.gz?versionId=7"),
    ("https://acct.blob.core.windows.net/c/x.warc.gz?sv=2022-11-02&sig=SASSECRET", "https://acct.blob.core.windows.net/c/x.warc.gz?sv=2022-11-02"),
    ("https://cdn.example/x.warc.gz?Expires=1&Signature=SIGSECRET&Key-Pair-Id=K", "https://cdn.example/x.warc.gz?Expires=1"),
    ("https://h.example/x?access_token=TOKSECRET&token=TOKSECRET&page=2#f", "https://h.example/x?page=2#f"),
    ("https://storage.googleapis.com/b/x?X-Goog-Signature=SIGSECRET", "https://storage.googleapis.com/b/x"),
    ("https://data.commoncrawl.org/crawl-data/CC-MAIN-2025-18/x.warc.gz", "https://data.commoncrawl.org/crawl-data/CC-MAIN-2025-18/x.warc.gz"),
    ("/data/local/x.warc.gz", "/data/local/x.warc.gz"),
])
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def test_redact_text_masks_urls_and_bare_query_parameters():
    text = ("HTTPConnectionPool(host='h', port=80): Max retries exceeded with url: /x.warc.gz?X-Amz-Signature=SIGSECRET"
            "&a=1 (while reading http://u:hunter2@h/x?sig=SASSECRET)")
    out = redact_text(text)
    assert not any(s in out for s in SECRETS)
    assert "/x.warc.gz?X-Amz-Signature=***&a=1" in out and "http://h/x" in out


def _no_secret_anywhere(out, caplog, *texts):
    for path in out.rglob("*"):
        if path.is_file():
            assert not any(s.encode() in path.read_bytes() for s in SECRETS), path
            if path.suffix == ".parquet" and path.stat().st_size:
                values = str(pq.read_table(path).to_pylist())
                assert not any(s in values for s in SECRETS), path
    for text in (caplog.text, *texts):
        assert not any(s in text for s in SECRETS), text


def test_credentials_are_used_to_read_and_recorded_nowhere(tmp_path, caplog, read_rows):
    site = tmp_path / "site"
    site.mkdir()
    generate_corpus(site / "x.warc.gz", n_pages=20, ja_fraction=0.8, seed=5, target_bytes=2500, n_images=6)
    with serve(site) as server:
        host = server.url.split("://", 1)[1].rstrip("/")
        url = (f"http://reader:hunter2@{host}/x.warc.gz?X-Amz-Credential=CREDSECRET&X-Amz-Signature=SIGSECRET"
               "&X-Amz-Security-Token=TOKSECRET")
        out = tmp_path / "out"
        with caplog.at_level(logging.DEBUG):
            run_extract([SourceFile(url, "")], out)
        assert any("X-Amz-Signature=SIGSECRET" in path for path, _ in server.requests)  # the real URL was read
    rows = read_rows(out)
    assert rows and {r["warc_file"] for r in rows} == {f"http://{host}/x.warc.gz"}
    _no_secret_anywhere(out, caplog)


def test_failure_messages_carry_no_credentials(tmp_path, caplog):
    site = tmp_path / "site"
    site.mkdir()
    with serve(site) as server:
        host = server.url.split("://", 1)[1].rstrip("/")
        url = f"http://reader:hunter2@{host}/missing.warc.gz?X-Amz-Signature=SIGSECRET"
        out = tmp_path / "out"
        with caplog.at_level(logging.DEBUG), pytest.raises(ShardsFailedError) as e:
            run_extract([SourceFile(url, "")], out)
    assert "HTTP 404" in str(e.value)
    assert f"http://{host}/missing.warc.gz" in (out / ".waon" / "failed.json").read_text()
    _no_secret_anywhere(out, caplog, str(e.value))


def test_a_local_path_is_recorded_as_given(tmp_path, read_rows):
    generate_corpus(tmp_path / "a.warc.gz", n_pages=10, ja_fraction=0.8, seed=6, target_bytes=2000, n_images=4)
    shutil.copy(tmp_path / "a.warc.gz", tmp_path / "b.warc.gz")
    run_extract([SourceFile(str(tmp_path / "b.warc.gz"), "")], tmp_path / "out")
    assert {r["warc_file"] for r in read_rows(tmp_path / "out")} == {str(tmp_path / "b.warc.gz")}
