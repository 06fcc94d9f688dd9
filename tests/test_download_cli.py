"""`waon download` as a command: a first pass with a transient failure, then --retry-failed in place."""

import io
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from tests.http_server import Fault, serve
from waon_hf.cli import main


def png(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), color).save(buf, format="PNG")
    return buf.getvalue()


def test_retry_failed_in_place(tmp_path, read_rows):
    site = tmp_path / "site"
    site.mkdir()
    (site / "a.png").write_bytes(png((200, 10, 10)))
    (site / "b.png").write_bytes(png((10, 200, 10)))
    pairs = tmp_path / "pairs"
    (pairs / "data").mkdir(parents=True)
    config = tmp_path / "download.yaml"
    config.write_text("download: {retries: 0, respect_robots: false, timeout_total: 5}\n")
    with serve(site) as server:
        urls = [server.url + "a.png", server.url + "b.png", server.url + "missing.png"]
        pq.write_table(pa.table({"url": urls, "caption": ["赤い画像です", "緑の画像です", "ない画像です"]}),
                       pairs / "data" / "train-00000-of-00001.parquet")
        server.add_faults("b.png", Fault(status=503))
        images = tmp_path / "images"
        assert main(["download", str(pairs), "-o", str(images), "--allow-private", "--config", str(config)]) == 0
        assert Counter(r["status"] for r in read_rows(images)) == Counter({"ok": 1, "http_5xx": 1, "http_404": 1})
        before = len(server.requests)
        assert main(["download", str(images), "-o", str(images), "--retry-failed", "--allow-private",
                     "--config", str(config)]) == 0
        retried = [path for path, _ in server.requests[before:]]
    assert Counter(r["status"] for r in read_rows(images)) == Counter({"ok": 2, "http_404": 1})
    assert retried == ["/b.png"]  # only the retryable row went back to the server
    assert not (tmp_path / "images.retry-tmp").exists() and not (tmp_path / "images.retry-old").exists()


def test_adaptive_and_crawl_delay_flags_reach_the_download_step(tmp_path):
    from waon_hf import catalogue
    from waon_hf.cli import build_parser
    from waon_hf.cli.images import _config, download_flags

    def step_for(*flags, config=None):
        argv = ["download", str(tmp_path), "-o", str(tmp_path / "o"), *flags]
        args = build_parser().parse_args(argv + (["--config", str(config)] if config else []))
        return catalogue.download_job(_config(args, "download", download_flags(args)), name="x").steps[0]

    default = step_for()
    assert (default.per_host, default.adaptive_max(), default.respect_crawl_delay) == (None, 64, True)
    step = step_for("--per-host-max", "32", "--no-crawl-delay")
    assert (step.per_host, step.adaptive_max(), step.respect_crawl_delay) == (None, 32, False)
    fixed = step_for("--per-host", "2")
    assert (fixed.per_host, fixed.adaptive_max(), fixed.host_start()) == (2, None, 2)
    config = tmp_path / "fixed.yaml"
    config.write_text("download:\n  per_host: 8\n")
    assert step_for(config=config).adaptive_max() is None  # a config's per_host is a fixed cap...
    assert step_for("--per-host-max", "16", config=config).adaptive_max() == 16  # ...that --per-host-max lifts
    with pytest.raises(SystemExit):
        step_for("--per-host", "2", "--per-host-max", "32")  # one or the other
