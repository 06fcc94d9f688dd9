"""One retry policy for remote reads: jittered backoff, and no retries for a host that does not resolve."""

import random
import socket
import time

import pytest

from tests.http_server import serve
from waon_hf.cli import main
from waon_hf.sources import remote
from waon_hf.sources.commoncrawl import list_crawl_warcs
from waon_hf.sources.remote import HostNotFoundError, RetryPolicy, is_name_resolution_error, open_binary


def test_waits_are_jittered_around_the_exponential_backoff():
    policy = RetryPolicy(backoff_s=1.0, max_backoff_s=60.0, jitter=0.5)
    rng = random.Random(0)
    waits = [policy.wait(2, rng) for _ in range(1000)]  # 1,000 tasks failing at the same moment
    assert all(2.0 <= w <= 6.0 for w in waits)  # 4 s x [0.5, 1.5]
    assert len({round(w, 2) for w in waits}) > 300  # they do not come back in lockstep
    assert max(policy.wait(20, rng) for _ in range(100)) <= 90.0  # the cap holds (with its jitter)
    assert RetryPolicy(jitter=0.0).wait(3) == 8.0


@pytest.fixture
def no_dns(monkeypatch):
    """Every name lookup fails the way it does on a node without network; sleeps are counted, not slept."""
    def fail(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    sleeps = []
    monkeypatch.setattr(socket, "getaddrinfo", fail)
    monkeypatch.setattr(remote.time, "sleep", sleeps.append)
    return sleeps


def test_a_host_that_does_not_resolve_is_not_retried(no_dns):
    started = time.monotonic()
    with pytest.raises(HostNotFoundError, match="does not resolve") as info:
        open_binary("https://data.commoncrawl.example/crawl-data/x.warc.gz")
    assert no_dns == [] and time.monotonic() - started < 5
    message = str(info.value)
    assert "local WARC files" in message and "--cc-base-url" in message and "HF_HUB_OFFLINE" in message


def test_a_crawl_listing_on_a_host_that_does_not_resolve_fails_at_once(no_dns, caplog):
    with pytest.raises(HostNotFoundError):
        list_crawl_warcs("CC-MAIN-2025-18", "https://data.commoncrawl.example/")
    assert main(["extract", "CC-MAIN-2025-18", "-o", "unused", "--cc-base-url", "https://cc.example/"]) == 1
    assert no_dns == [] and "--cc-base-url" in caplog.text


def test_a_refused_connection_is_still_retried_with_the_policy(tmp_path, monkeypatch):
    sleeps = []
    monkeypatch.setattr(remote.time, "sleep", sleeps.append)
    with serve(tmp_path) as server:
        url = server.url
    # the server is gone: connection refused, a transient failure, retried max_retries times
    with pytest.raises(remote.RemoteFileError, match="giving up after 3 retries"):
        open_binary(url + "x.warc.gz", RetryPolicy(max_retries=3, backoff_s=1.0, jitter=0.5))
    assert len(sleeps) == 3 and all(0.5 <= s <= 6.0 for s in sleeps)


def test_name_resolution_errors_are_recognised_through_wrappers():
    import requests
    from urllib3.exceptions import MaxRetryError, NameResolutionError

    inner = NameResolutionError("host", None, socket.gaierror(-2, "Name or service not known"))
    wrapped = requests.ConnectionError(MaxRetryError(None, "https://host/x", reason=inner))
    assert is_name_resolution_error(wrapped)
    assert not is_name_resolution_error(requests.ConnectionError("Connection refused"))


def test_a_hub_dataset_id_without_dns_fails_at_once(no_dns, monkeypatch, caplog):
    import huggingface_hub.constants

    from waon_hf.sources.relaion import list_relaion_files

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    started = time.monotonic()
    with pytest.raises(HostNotFoundError, match="HF_HUB_OFFLINE"):
        list_relaion_files("example-org/relaion-like")
    assert time.monotonic() - started < 5
    assert main(["relaion-ja", "example-org/relaion-like", "-o", "unused"]) == 1
    assert "does not resolve" in caplog.text
