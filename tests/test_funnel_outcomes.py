"""The funnel shows download outcomes by status and each step's share of the time; the shard bar shows totals."""

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from waon_hf.cli import main
from waon_hf.funnel import funnel_markdown, funnel_rows
from waon_hf.pipeline.executors import report_shard
from waon_hf.stats import Stats


def test_download_statuses_and_time_shares_are_in_the_funnel():
    stats = Stats({"download.in": 5, "download.kept": 5, "download.status_ok": 3, "download.status_http_404": 1,
                   "download.status_timeout": 1, "download.milliseconds": 600, "shard.milliseconds": 800,
                   "image_quality.in": 3, "image_quality.kept": 2, "image_quality.dropped_small": 1,
                   "image_quality.milliseconds": 100, "shard@filter_images.milliseconds": 200})
    rows = {r.stage: r for r in funnel_rows(stats)}
    assert rows["download"].statuses == [("ok", 3), ("http_404", 1), ("timeout", 1)]
    text = funnel_markdown(stats)
    assert "| after download | 5 | status ok: 3, http_404: 1, timeout: 1 | 60.0% |" in text
    assert "| after image_quality | 2 | small: 1 | 10.0% |" in text
    assert "of 1.0 s of shard work" in text and "other 30.0%" in text


def test_the_download_command_counts_every_status_and_times_its_step(tmp_path, capsys):
    (tmp_path / "pairs" / "data").mkdir(parents=True)
    pq.write_table(pa.table({"url": ["https://img.example/a.jpg", "https://img.example/b.jpg", "not a url"],
                             "caption": ["写真", "画像", "絵"]}),
                   tmp_path / "pairs" / "data" / "train-00000-of-00001.parquet")
    out = tmp_path / "images"
    assert main(["download", str(tmp_path / "pairs"), "-o", str(out), "--offline"]) == 0
    stats = json.loads((out / "stats.json").read_text())
    statuses = {k: v for k, v in stats.items() if k.startswith("download.status_")}
    assert sum(statuses.values()) == stats["download.in"] == 3
    assert stats["download.milliseconds"] >= 0
    printed = capsys.readouterr().out
    assert "| after download | 3 | status " in printed and "| time |" in printed


def test_the_shard_bar_shows_running_totals():
    progress = tqdm(total=3, file=io.StringIO(), mininterval=0)
    report_shard(progress, 0, Stats({"extract.japanese_pages": 5, "extract.pairs": 7}))
    report_shard(progress, 1, Stats({"extract.japanese_pages": 2, "extract.pairs": 1}))
    assert progress.n == 2
    assert progress.postfix == "pages=7, pairs=8"
