"""`waon download SOURCE` over a published URL-only table laid out as speed/WAON (and LAION-style columns).

The WAON columns and dtypes are those of https://huggingface.co/datasets/speed/WAON (README
``dataset_info``): url, caption, similarity (float64), page_title, page_url, punsafe, width, height,
original_width, original_height (float64), sha256, phash (string). A local server serves the images.
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.http_server import serve
from waon_hf.sources.url_tables import list_source_files, parse_column_map, resolve_columns
from waon_hf.steps.download import DownloadImages, transcode
from waon_hf.testing.url_bench import tiny_rows

WAON_SCHEMA = pa.schema([
    ("url", pa.string()), ("caption", pa.string()), ("similarity", pa.float64()), ("page_title", pa.string()),
    ("page_url", pa.string()), ("punsafe", pa.float64()), ("width", pa.float64()), ("height", pa.float64()),
    ("original_width", pa.float64()), ("original_height", pa.float64()), ("sha256", pa.string()),
    ("phash", pa.string()),
])
ROWS_PER_FILE, N_FILES = 4, 3


@pytest.fixture
def waon_source(tmp_path):
    """(server, folder of 3 WAON-shaped parquet files); rows 0 and 1 of each file carry our own sha256."""
    www = tmp_path / "www"
    www.mkdir()
    rows = tiny_rows()[:ROWS_PER_FILE * N_FILES]
    expected = DownloadImages().image_options()
    server = serve(www)
    with server:
        src = tmp_path / "waon"
        src.mkdir()
        for f in range(N_FILES):
            part = rows[f * ROWS_PER_FILE:(f + 1) * ROWS_PER_FILE]
            cols = {name: [] for name in WAON_SCHEMA.names}
            for i, row in enumerate(part):
                name = f"{f}-{i}.{row['ext']}"
                (www / name).write_bytes(row["image"])
                ours = transcode(row["image"], expected)["sha256"]
                for k, v in {"url": server.url + name, "caption": f"{row['class']}の写真", "similarity": 0.25,
                             "page_title": "ページ", "page_url": "https://example.org/", "punsafe": 0.01,
                             "width": 256.0, "height": 256.0, "original_width": 300.0, "original_height": 300.0,
                             "sha256": ours if i < 2 else "0" * 64, "phash": "c3c3c3c3c3c3c3c3"}.items():
                    cols[k].append(v)
            pq.write_table(pa.table(cols, schema=WAON_SCHEMA), src / f"train-{f:05d}-of-{N_FILES:05d}.parquet")
        yield server, src


def download(src, out: Path, *extra: str) -> int:
    from waon_hf.cli import main

    return main(["download", str(src), "-o", str(out), "--allow-private", *extra])


def test_waon_layout_is_downloaded_with_source_columns_kept(waon_source, tmp_path, read_rows):
    server, src = waon_source
    out = tmp_path / "images"
    assert download(src, out) == 0
    rows = read_rows(out)
    assert len(rows) == ROWS_PER_FILE * N_FILES and {r["status"] for r in rows} == {"ok"}
    first = rows[0]
    assert first["source_similarity"] == 0.25 and first["source_punsafe"] == 0.01
    assert first["source_phash"] == "c3c3c3c3c3c3c3c3" and first["source_width"] == 256.0
    assert first["page_title"] == "ページ" and first["caption"].endswith("の写真")
    assert "similarity" not in first and "phash" not in first  # the later stages compute ours
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert stats["url_source.source_sha256_match"] == 2 * N_FILES
    assert stats["url_source.source_sha256_mismatch"] == 2 * N_FILES


def test_output_concatenates_with_waon_without_a_cast(waon_source, tmp_path):
    _, src = waon_source
    out = tmp_path / "images"
    assert download(src, out) == 0
    ours = datasets.Dataset.from_parquet(sorted(str(p) for p in (out / "data").glob("*.parquet")))
    waon = datasets.Dataset.from_parquet(sorted(str(p) for p in src.glob("*.parquet")))
    for name in ("width", "height", "original_width", "original_height"):
        assert ours.features[name] == waon.features[name] == datasets.Value("float64")
    both = datasets.concatenate_datasets([ours, waon])
    assert len(both) == 2 * ROWS_PER_FILE * N_FILES
    assert both[0]["width"] == ours[0]["width"] and both[len(ours)]["sha256"] == waon[0]["sha256"]


def test_download_resumes_after_an_interruption(waon_source, tmp_path):
    server, src = waon_source
    out = tmp_path / "images"
    assert download(src, out) == 0
    # as if the run had been killed while shard 1 was being written
    (out / ".waon" / "shards" / "00001.stats.json").unlink()
    (out / ".waon" / "final.json").unlink()
    n = len(server.requests)
    assert download(src, out) == 0
    again = [path for path, _ in server.requests[n:] if path != "/robots.txt"]
    assert sorted(again) == sorted(f"/1-{i}.{r['ext']}" for i, r in enumerate(tiny_rows()[4:8]))


def test_limit_and_slices(waon_source, tmp_path, read_rows):
    _, src = waon_source
    assert download(src, tmp_path / "limited", "--limit", "6") == 0
    assert [r["url"].rsplit("/", 1)[1].split(".")[0] for r in read_rows(tmp_path / "limited")] == [
        "0-0", "0-1", "0-2", "0-3", "1-0", "1-1"]
    assert download(src, tmp_path / "slice", "--num-shards", "2", "--shard-index", "1") == 0
    assert {r["url"].rsplit("/", 1)[1][0] for r in read_rows(tmp_path / "slice")} == {"1"}


def test_laion_and_danqing_style_columns(waon_source, tmp_path, read_rows):
    server, src = waon_source
    table = pq.read_table(next(iter(sorted(src.glob("*.parquet"))))).select(["url", "caption", "similarity"])
    laion = tmp_path / "laion.parquet"
    pq.write_table(table.rename_columns(["URL", "TEXT", "similarity"]), laion)
    assert download(laion, tmp_path / "a") == 0
    rows = read_rows(tmp_path / "a")
    assert [r["caption"] for r in rows] == table["caption"].to_pylist() and rows[0]["source_similarity"] == 0.25
    odd = tmp_path / "odd.parquet"
    pq.write_table(table.rename_columns(["link", "words", "similarity"]), odd)
    assert download(odd, tmp_path / "b") == 2  # no known URL column: refused before any shard, no guess
    assert download(odd, tmp_path / "c", "--columns", "url=link,caption=words") == 0
    assert len(read_rows(tmp_path / "c")) == ROWS_PER_FILE


def test_column_detection():
    assert resolve_columns(["URL", "TEXT", "WIDTH"]) == {"url": "URL", "caption": "TEXT"}
    assert resolve_columns(["url", "alt_text"]) == {"url": "url", "caption": "alt_text"}
    assert resolve_columns(["Url", "Caption"]) == {"url": "Url", "caption": "Caption"}
    assert resolve_columns(["link"], {"url": "link"}) == {"url": "link", "caption": None}
    with pytest.raises(ValueError, match="no URL column"):
        resolve_columns(["link", "caption"])
    with pytest.raises(ValueError, match="not in the source"):
        resolve_columns(["url"], {"caption": "TEXT"})
    assert parse_column_map("url=URL, caption=TEXT") == {"url": "URL", "caption": "TEXT"}
    with pytest.raises(ValueError):
        parse_column_map("image=URL")


def test_source_files_of_an_hf_folder_are_globbed_in_order(tmp_path):
    class Fs:
        def glob(self, pattern):
            assert pattern == "datasets/speed/WAON/**/*.parquet"
            return ["datasets/speed/WAON/data/train-00001.parquet", "datasets/speed/WAON/data/train-00000.parquet"]

    assert list_source_files("hf://datasets/speed/WAON/", fs=Fs()) == [
        "hf://datasets/speed/WAON/data/train-00000.parquet", "hf://datasets/speed/WAON/data/train-00001.parquet"]
    one = "hf://datasets/speed/WAON/data/train-00000.parquet"
    assert list_source_files(one) == [one]
    (tmp_path / "b.parquet").write_bytes(b"")
    (tmp_path / "a.parquet").write_bytes(b"")
    assert [Path(f).name for f in list_source_files(tmp_path)] == ["a.parquet", "b.parquet"]


def test_download_resumes_after_a_real_kill(waon_source, tmp_path):
    """SIGKILL the command while shard 2's images are stalled on the server; the re-run fetches only those."""
    import os
    import signal
    import subprocess
    import sys
    import threading
    import time

    server, src = waon_source
    stall = threading.Event()
    stall.set()
    handle = server._handle

    def stalled(h):
        if h.path.startswith("/2-") and stall.is_set():
            server.requests.append((h.path, None))
            time.sleep(15)  # keep the request open until the process is killed
            return
        handle(h)

    server._handle = stalled
    out = tmp_path / "images"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "waon_hf.cli", "download", str(src), "-o", str(out),
                             "--allow-private"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (out / ".waon" / "shards" / "00001.stats.json").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "shards 0 and 1 never finished"
            time.sleep(0.1)
        while not any(p.startswith("/2-") for p, _ in server.requests):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (out / ".waon" / "shards" / "00002.stats.json").exists()
    stall.clear()
    server._handle = handle
    n = len(server.requests)
    assert download(src, out) == 0
    again = [p for p, _ in server.requests[n:] if p != "/robots.txt"]
    assert again and all(p.startswith("/2-") for p in again)
    assert len(datasets.Dataset.from_parquet(sorted(str(p) for p in (out / "data").glob("*.parquet")))) == 12
