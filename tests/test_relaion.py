import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from waon_hf.sources.relaion import RELAION_COLUMNS, iter_relaion, map_relaion_batch, relaion_columns

EN_ROWS = {  # relaion2B-en style: upper-case LAION names, plus columns we do not keep
    "URL": ["https://a.example/cat.jpg", "https://b.example/dog.png", "https://c.example/sun.jpg"],
    "TEXT": ["A cat sitting on a windowsill", "A dog on the beach", "Sunset over Mount Fuji"],
    "WIDTH": [640, 800, 1024],
    "HEIGHT": [480, 600, 768],
    "similarity": [0.31, 0.29, 0.35],
    "punsafe": [0.01, 0.02, 0.0],
    "pwatermark": [0.1, 0.5, 0.05],
    "AESTHETIC_SCORE": [5.1, 4.2, 6.3],
    "hash": [123, -456, 789],
}

MULTI_ROWS = {  # relaion2B-multi style: a LANGUAGE column, no pwatermark
    "url": ["https://jp.example/1.jpg", "https://cn.example/2.jpg", "https://jp.example/3.jpg",
            "https://en.example/4.jpg"],
    "caption": ["窓辺に座っている猫", "一只猫坐在窗台上", "夜の東京タワー", "A red apple"],
    "width": [500, 600, 700, 800],
    "height": [400, 500, 600, 700],
    "similarity": [0.3, 0.28, 0.33, 0.31],
    "punsafe": [0.0, 0.1, 0.2, 0.0],
    "LANGUAGE": ["ja", "zh", "ja", "en"],
    "key": ["000000001", "000000002", "000000003", "000000004"],
}


@pytest.fixture
def en_parquet(tmp_path):
    path = tmp_path / "relaion2B-en" / "part-00000.parquet"
    path.parent.mkdir()
    pq.write_table(pa.table(EN_ROWS), path)
    return path


@pytest.fixture
def multi_parquet(tmp_path):
    path = tmp_path / "relaion2B-multi-part-00000.parquet"
    pq.write_table(pa.table(MULTI_ROWS), path)
    return path


def test_map_relaion_batch_english():
    out = map_relaion_batch(EN_ROWS, english=True)
    assert list(out) == relaion_columns(True)
    assert "AESTHETIC_SCORE" not in out and "caption" not in out and "similarity" not in out
    assert out["caption_en"] == EN_ROWS["TEXT"]
    assert out["original_width"] == [640, 800, 1024] and out["original_height"] == [480, 600, 768]
    assert out["clip_similarity"] == EN_ROWS["similarity"]
    assert out["language"] == [None] * 3  # missing -> None-filled
    assert out["source_id"] == ["123", "-456", "789"]
    assert out["source"] == ["relaion"] * 3


def test_map_relaion_batch_multilingual():
    out = map_relaion_batch(MULTI_ROWS, english=False)
    assert list(out) == relaion_columns(False)
    assert out["caption"] == MULTI_ROWS["caption"]
    assert out["language"] == ["ja", "zh", "ja", "en"]
    assert out["laion_pwatermark"] == [None] * 4
    assert out["source_id"] == MULTI_ROWS["key"]


def test_mapping_keeps_clip_similarity_apart_from_ours():
    assert RELAION_COLUMNS["similarity"] == "clip_similarity"
    assert "similarity" not in relaion_columns(True) and "similarity" not in relaion_columns(False)


@pytest.mark.parametrize("streaming", [True, False])
def test_iter_relaion_english(en_parquet, streaming):
    ds = iter_relaion(en_parquet.parent, streaming=streaming)  # a directory of parquet files
    rows = list(ds)
    assert [r["caption_en"] for r in rows] == EN_ROWS["TEXT"]
    assert rows[0] == {
        "url": "https://a.example/cat.jpg", "caption_en": "A cat sitting on a windowsill", "original_width": 640,
        "original_height": 480, "clip_similarity": 0.31, "laion_punsafe": 0.01, "laion_pwatermark": 0.1,
        "language": None, "source_id": "123", "source": "relaion",
    }
    assert isinstance(ds, datasets.IterableDataset if streaming else datasets.Dataset)
    assert len(list(iter_relaion(str(en_parquet), streaming=streaming, limit=2))) == 2


@pytest.mark.parametrize("streaming", [True, False])
def test_iter_relaion_japanese_filter(multi_parquet, streaming):
    rows = list(iter_relaion(str(multi_parquet), streaming=streaming, language="ja"))
    assert [r["caption"] for r in rows] == ["窓辺に座っている猫", "夜の東京タワー"]
    assert {r["language"] for r in rows} == {"ja"}
    assert [r["source_id"] for r in rows] == ["000000001", "000000003"]
    assert all(r["laion_pwatermark"] is None and r["source"] == "relaion" for r in rows)
    assert [r["caption"] for r in iter_relaion(str(multi_parquet), language="JA", limit=1)] == ["窓辺に座っている猫"]


def test_iter_relaion_no_filter_multilingual(multi_parquet):
    rows = list(iter_relaion([str(multi_parquet)], english=False))
    assert [r["language"] for r in rows] == ["ja", "zh", "ja", "en"]


def test_iter_relaion_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        iter_relaion(tmp_path)
