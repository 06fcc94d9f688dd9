"""Degenerate inputs are handled as documented: an empty ReLAION file contributes nothing, an empty
benchmark is an error before any model loads, a decompression-bomb image is a missing row."""

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from waon_hf.cli import main
from waon_hf.eval.benchmarks import EmptyBenchmarkError, ImageColumn, load_benchmark

REPO = Path(__file__).resolve().parents[1]
TINY_BENCH = REPO / "samples" / "tiny_bench" / "tiny_bench.parquet"


def relaion_table(n: int) -> pa.Table:
    return pa.table({"url": pa.array([f"https://x.example/{i}.jpg" for i in range(n)], pa.string()),
                     "caption": pa.array([f"写真その{i}" for i in range(n)], pa.string()),
                     "LANGUAGE": pa.array(["ja"] * n, pa.string()),
                     "similarity": pa.array([0.3] * n, pa.float64())})


@pytest.mark.parametrize("limit", [None, "3"])
def test_a_zero_row_relaion_file_is_an_empty_shard_not_a_failure(tmp_path, limit):
    src = tmp_path / "src"
    src.mkdir()
    pq.write_table(relaion_table(0), src / "part-0.parquet")
    pq.write_table(relaion_table(4), src / "part-1.parquet")
    out = tmp_path / "out"
    argv = ["relaion-ja", str(src), "-o", str(out)] + (["--limit", limit] if limit else [])
    assert main(argv) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["relaion.kept"] == (3 if limit else 4)
    assert not (out / ".waon" / "failed.json").exists()


def test_only_zero_row_relaion_files_give_an_empty_dataset(tmp_path, capsys):
    pq.write_table(relaion_table(0), tmp_path / "empty.parquet")
    assert main(["relaion-ja", str(tmp_path / "empty.parquet"), "-o", str(tmp_path / "out")]) == 0
    assert "No row survived" in capsys.readouterr().out


@pytest.mark.parametrize("suffix, content", [(".parquet", None), (".csv", "class,category,url\n"), (".jsonl", "")])
def test_an_empty_benchmark_is_a_clear_error(tmp_path, suffix, content):
    path = tmp_path / f"bench{suffix}"
    if content is None:
        pq.write_table(pq.read_table(TINY_BENCH).slice(0, 0), path)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(EmptyBenchmarkError, match="no rows"):
        load_benchmark("tiny", str(path))


def test_waon_eval_on_an_empty_benchmark_fails_before_the_model(tmp_path, caplog):
    path = tmp_path / "bench.parquet"
    pq.write_table(pq.read_table(TINY_BENCH).slice(0, 0), path)
    out = tmp_path / "r.json"
    assert main(["eval", "--model", str(tmp_path / "no-model"), "--bench", f"tiny={path}", "-o", str(out)]) == 1
    assert "no rows" in caplog.text and not out.exists()


def png(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def test_a_decompression_bomb_in_a_benchmark_is_a_missing_row(monkeypatch):
    import datasets

    # PIL refuses images over 2 x MAX_IMAGE_PIXELS; a small limit makes a 64x64 PNG a "bomb" here.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    table = datasets.Dataset.from_dict({"image": [{"bytes": png((64, 64)), "path": None},
                                                  {"bytes": png((8, 8)), "path": None}]},
                                       features=datasets.Features({"image": datasets.Image()}))
    loaded = ImageColumn(table, base_dir=None, source="t").load([0, 1])
    assert loaded[0] == (None, "decompression_bomb")
    assert loaded[1][1] is None and loaded[1][0].size == (8, 8)
