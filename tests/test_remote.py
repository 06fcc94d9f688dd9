import gzip
import os

import pytest

from tests.http_server import Fault, serve
from waon_hf.sources.commoncrawl import CrawlNotFoundError, list_crawl_warcs, resolve_inputs, select_files
from waon_hf.sources.remote import RemoteFileError, RetryPolicy, open_binary, to_http_url

FAST = RetryPolicy(max_retries=3, backoff_s=0.01, connect_timeout_s=2, read_timeout_s=2)


@pytest.fixture
def blob(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "blob.bin").write_bytes(data)
    return data


def read_all(url, policy=FAST):
    with open_binary(url, policy) as f:
        return f.read()


def test_stream_resumes_after_cut_and_transient_errors(tmp_path, blob):
    with serve(tmp_path) as server:
        server.add_faults("blob.bin", Fault(status=503), Fault(cut_after=100_000), Fault(status=429),
                          Fault(cut_after=1_000_000))
        assert read_all(server.url + "blob.bin") == blob
        ranges = [r for p, r in server.requests if p == "/blob.bin"]
    # 503, cut at 100k, 429 for the Range request, cut again, then the rest from where it stopped.
    assert ranges == [None, None, "bytes=100000-", "bytes=100000-", "bytes=1100000-"]


def test_permanent_error_is_raised_with_url(tmp_path):
    with serve(tmp_path) as server, pytest.raises(RemoteFileError, match="HTTP 404.*|.*404"):
        read_all(server.url + "missing.warc.gz")


def test_retries_are_bounded(tmp_path, blob):
    with serve(tmp_path) as server:
        server.add_faults("blob.bin", *[Fault(status=503)] * 10)
        with pytest.raises(RemoteFileError, match="giving up after 3 retries"):
            read_all(server.url + "blob.bin")
        assert len(server.requests) == 4


def test_crawl_listing_and_slices(tmp_path):
    crawl = "CC-MAIN-2099-01"
    listing = tmp_path / "crawl-data" / crawl / "warc.paths.gz"
    listing.parent.mkdir(parents=True)
    paths = [f"crawl-data/{crawl}/segments/1/warc/f{i}.warc.gz" for i in range(7)]
    listing.write_bytes(gzip.compress(("\n".join(paths) + "\n").encode()))
    with serve(tmp_path) as server:
        urls = list_crawl_warcs(crawl, server.url)
        assert urls == [server.url + p for p in paths]
        sources = resolve_inputs([crawl], num_shards=3, shard_index=1, limit_files=2, base_url=server.url)
        assert [s.location for s in sources] == [urls[1], urls[4]]
        assert {s.crawl for s in sources} == {crawl}
        with pytest.raises(CrawlNotFoundError, match="crawl 'CC-MAIN-2099-02' not found"):
            list_crawl_warcs("CC-MAIN-2099-02", server.url)


def test_select_files_covers_everything_once():
    items = list(range(23))
    slices = [select_files(items, num_shards=4, shard_index=i) for i in range(4)]
    assert sorted(x for s in slices for x in s) == items
    with pytest.raises(ValueError):
        select_files(items, num_shards=2, shard_index=2)


def test_local_inputs(tmp_path):
    for name in ("b.warc.gz", "a.warc.gz", "CC-MAIN-2024-10-x.warc.gz"):
        (tmp_path / name).write_bytes(b"")
    sources = resolve_inputs([str(tmp_path / "*.warc.gz")])
    assert [os.path.basename(s.location) for s in sources] == ["CC-MAIN-2024-10-x.warc.gz", "a.warc.gz", "b.warc.gz"]
    assert sources[0].crawl == "CC-MAIN-2024-10"
    with pytest.raises(FileNotFoundError):
        resolve_inputs([str(tmp_path / "nope.warc.gz")])


def test_s3_commoncrawl_maps_to_https():
    assert to_http_url("s3://commoncrawl/crawl-data/x.warc.gz") == "https://data.commoncrawl.org/crawl-data/x.warc.gz"
    assert to_http_url("https://example.org/a") == "https://example.org/a"
