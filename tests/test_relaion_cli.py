"""`waon relaion-ja`, `waon translate` and `waon build --source relaion` on local parquet shaped like ReLAION."""

import json
import subprocess
import sys
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from waon_hf.cli import main
from waon_hf.sources.relaion import plan_relaion_shards

REPO = Path(__file__).resolve().parent.parent


def _multi_file(path: Path, k: int) -> None:
    """relaion2B-multi style: upper-case LAION names, a LANGUAGE column, a column we do not keep."""
    pq.write_table(pa.table({
        "URL": [f"https://img.example/{k}-{i}.jpg" for i in range(6)],
        # the same captions in every file but the first carry the file number (caption dedup is global)
        "TEXT": [t if k == 0 or not t.strip() else f"{t} その{k}" for t in
                 ["窓辺に座っている猫", "A red apple", "夜の東京タワー", "  ", "一只猫", "富士山の夕焼け　写真"]],
        "WIDTH": [640, 800, 1024, 300, 500, 700],
        "HEIGHT": [480, 600, 768, 300, 400, 500],
        "similarity": [0.31, 0.29, 0.35, 0.3, 0.3, 0.33],
        "punsafe": [0.01, 0.02, 0.0, 0.0, 0.1, 0.03],
        "pwatermark": [0.1, 0.5, 0.05, 0.0, 0.2, 0.1],
        "LANGUAGE": ["ja", "en", "ja", "ja", "zh", "ja"],
        "AESTHETIC_SCORE": [5.0] * 6,
    }), path)


@pytest.fixture
def multi_dir(tmp_path):
    folder = tmp_path / "relaion2B-multi"
    folder.mkdir()
    for k in range(3):
        _multi_file(folder / f"part-{k:05d}.parquet", k)
    return folder


def test_relaion_ja_command(multi_dir, tmp_path, capsys):
    out = tmp_path / "ja"
    assert main(["relaion-ja", str(multi_dir), "-o", str(out)]) == 0
    ds = datasets.load_dataset(str(out), split="train")
    # per file: 4 ja rows, one of them with a blank caption
    assert len(ds) == 9
    assert ds["caption"][:3] == ["窓辺に座っている猫", "夜の東京タワー", "富士山の夕焼け 写真"]  # NFKC'd
    assert set(ds["language"]) == {"ja"} and set(ds["source"]) == {"relaion"}
    assert ds["original_width"][:2] == [640, 1024] and ds["clip_similarity"][0] == pytest.approx(0.31)
    assert "AESTHETIC_SCORE" not in ds.column_names
    stats = json.loads((out / "stats.json").read_text())
    assert stats["relaion.in"] == 18
    assert stats["relaion.dropped_language"] == 6 and stats["relaion.dropped_no_caption"] == 3
    assert stats["relaion.in"] == stats["relaion.kept"] + stats["relaion.dropped_language"] + \
        stats["relaion.dropped_no_caption"]
    assert "| after relaion | 9 |" in capsys.readouterr().out
    assert "| after relaion | 9 |" in (out / "README.md").read_text()


def test_limit_is_the_first_rows_in_file_order(multi_dir, tmp_path):
    files = sorted(str(p) for p in multi_dir.glob("*.parquet"))
    # 4 ja rows per file: a limit of 6 takes all of file 0 and 2 ja rows of file 1; file 2 is no shard
    assert plan_relaion_shards(files, 6, "ja") == [(files[0], None), (files[1], 2)]
    assert plan_relaion_shards(files, 7, None) == [(files[0], None), (files[1], 1)]
    out = tmp_path / "ja"
    for workers in ("1", "2"):
        args = ["relaion-ja", str(multi_dir), "-o", str(out), "--limit", "6", "--workers", workers, "--overwrite"]
        if workers == "1":
            assert main(args) == 0
        else:  # worker processes are forked: a fresh interpreter, never one that may have imported torch
            subprocess.run([sys.executable, "-m", "waon_hf.cli", *args], check=True, capture_output=True)
        urls = datasets.load_dataset(str(out), split="train")["url"]
        # file 1's first two ja rows are rows 0 and 2; rows 3 (blank caption) of file 0 is dropped
        assert urls == ["https://img.example/0-0.jpg", "https://img.example/0-2.jpg", "https://img.example/0-5.jpg",
                        "https://img.example/1-0.jpg", "https://img.example/1-2.jpg"]
    # another limit over the same folder is refused (it would mix two plans)
    assert main(["relaion-ja", str(multi_dir), "-o", str(out), "--limit", "2"]) == 1
    assert main(["relaion-ja", str(multi_dir), "-o", str(out), "--limit", "6"]) == 0  # the same: resumes


def test_language_all_and_missing_language_column(multi_dir, tmp_path):
    assert main(["relaion-ja", str(multi_dir / "part-00000.parquet"), "-o", str(tmp_path / "all"),
                 "--language", "all"]) == 0
    assert len(datasets.load_dataset(str(tmp_path / "all"), split="train")) == 5  # the blank caption dropped
    en = tmp_path / "en.parquet"
    pq.write_table(pa.table({"URL": ["https://x/1.jpg"], "TEXT": ["A cat"]}), en)
    assert main(["relaion-ja", str(en), "-o", str(tmp_path / "none"), "--limit", "1"]) == 1  # no LANGUAGE column
    assert main(["relaion-ja", str(tmp_path / "nothing-here"), "-o", str(tmp_path / "x")]) == 1


# --- translate ---------------------------------------------------------------------------------------

EN = {
    "A cat sitting on a windowsill": ("窓辺に座っている猫", None),
    "A red apple on a wooden table": ("木桌上的一个红苹果", "木のテーブルの上の赤いりんご"),
    "Cherry blossoms in Kyoto": ("교토의 벚꽃", "교토의 벚꽃"),
    "A dog running on the beach": ("浜辺を走る犬。I hope this helps!", None),
    "Sunset over Mount Fuji": ("Sunset over Mount Fuji", "Sunset over Mount Fuji"),
}


@pytest.fixture
def scripted(scripted_translation):
    return scripted_translation(EN)


def _en_file(path: Path, urls: list[str]) -> None:
    """relaion2B-en style."""
    captions = [list(EN)[i % len(EN)] for i in range(len(urls))]
    pq.write_table(pa.table({"URL": urls, "TEXT": captions, "WIDTH": [300] * len(urls), "HEIGHT": [300] * len(urls),
                             "similarity": [0.3] * len(urls), "punsafe": [0.0] * len(urls),
                             "pwatermark": [0.1] * len(urls), "hash": list(range(len(urls)))}), path)


def test_translate_command_on_tiny_model(tmp_path, capsys):
    from waon_hf.testing.tiny_models import build_tiny_causal_lm

    model = build_tiny_causal_lm(tmp_path / "tiny-lm")
    src = tmp_path / "en"
    src.mkdir()
    for k in range(2):
        _en_file(src / f"part-{k}.parquet", [f"https://x/{k}-{i}.jpg" for i in range(4)])
    out = tmp_path / "out"
    assert main(["translate", str(src), "-o", str(out), "--model", model, "--limit", "6", "--max-new-tokens", "4",
                 "--chunk-rows", "2", "--batch-size", "2"]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["relaion.in"] == 6 and stats["translation_quality.in"] == 6
    assert stats["translation_quality.kept"] + sum(v for k, v in stats.items()
                                                   if k.startswith("translation_quality.dropped_")) == 6
    assert "| after translation_quality |" in capsys.readouterr().out


def test_translate_command_vllm_missing(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "vllm", None)
    src = tmp_path / "en.parquet"
    _en_file(src, ["https://x/1.jpg"])
    assert main(["translate", str(src), "-o", str(tmp_path / "v"), "--model", "m", "--backend", "vllm"]) == 1
    assert "vllm package, which is not installed" in caplog.text
    assert not (tmp_path / "v").exists()  # refused before any work


def test_translate_command_scripted(scripted, tmp_path):
    src = tmp_path / "en.parquet"
    _en_file(src, [f"https://x/{i}.jpg" for i in range(10)])
    out = tmp_path / "out"
    assert main(["translate", str(src), "-o", str(out), "--model", "scripted-model", "--backend", "scripted",
                 "--chunk-rows", "4"]) == 0
    ds = datasets.load_dataset(str(out), split="train")
    assert ds.column_names[:3] == ["url", "caption", "caption_en"] and "translation_model" in ds.column_names
    assert ds["caption"][:3] == ["窓辺に座っている猫", "木のテーブルの上の赤いりんご", "浜辺を走る犬。"]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["translation_quality.dropped_korean"] == 2 and stats["translation_quality.dropped_english_echo"] == 2
    assert stats["translate.retried"] == 6 and stats["translate.retry_fixed"] == 2
    assert stats["translate.chatter_removed"] == 2


# --- waon build --source relaion --------------------------------------------------------------------

def _archive_urls(n: int) -> list[str]:
    from waon_hf.sources.warc_images import WarcImageIndex

    index = WarcImageIndex.build([str(REPO / "samples" / "sample-images.warc.gz")])
    return sorted(index.urls())[:n]


@pytest.fixture(scope="module")
def build_config(tmp_path_factory):
    from waon_hf.testing.tiny_models import build_tiny_siglip2

    root = tmp_path_factory.mktemp("relaion-build")
    config = {
        "dataset_name": "relaion-sample",
        "download": {"warc_sources": [str(REPO / "samples" / "sample-images.warc.gz")], "offline": True},
        "siglip": {"model": build_tiny_siglip2(root / "tiny-siglip2"), "min_similarity": -1.0},
    }
    return root, config


def _write_config(path: Path, config: dict) -> str:
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return str(path)


def _check_build(out: Path, first_stage: str) -> dict:
    stats = json.loads((out / "stats.json").read_text())
    for key in ("download.kept", "image_quality.kept", "phash_dedup.kept", "nsfw_filter.kept", "similarity_band.kept"):
        assert key in stats, key
    stages = [s["stage"] for s in json.loads((out / "pipeline.json").read_text())["stages"]]
    assert stages == [first_stage, "download", "filter_images", "dedup_images", "score"]
    ds = datasets.load_dataset(str(out), split="train")
    assert len(ds) == stats["similarity_band.kept"] > 0
    for column in ("url", "caption", "image", "similarity", "punsafe", "clip_similarity", "laion_punsafe", "source"):
        assert column in ds.column_names, column
    return stats


def test_build_source_relaion_ja(build_config, tmp_path):
    root, config = build_config
    urls = _archive_urls(8)
    src = tmp_path / "multi.parquet"
    pq.write_table(pa.table({"url": urls, "caption": [f"日本の写真その{i}" for i in range(8)],
                             "LANGUAGE": ["ja", "ja", "en", "ja", "ja", "ja", "ko", "ja"],
                             "similarity": [0.3] * 8}), src)
    out = tmp_path / "out"
    cfg = _write_config(tmp_path / "build.yaml", config)
    assert main(["build", str(src), "-o", str(out), "--config", cfg, "--source", "relaion", "--limit", "5"]) == 0
    stats = _check_build(out, "relaion")
    assert stats["relaion.kept"] == 5 and stats["download.in"] == 5
    assert "clip_similarity" in datasets.load_dataset(str(out), split="train").column_names


def test_build_relaion_translate_section(build_config, scripted, tmp_path):
    from waon_hf.build import BuildConfig, run_build
    from waon_hf.sources.commoncrawl import SourceFile

    root, config = build_config
    src = tmp_path / "en.parquet"
    _en_file(src, _archive_urls(10))
    cfg = _write_config(tmp_path / "build.yaml", {**config, "relaion": {
        "mode": "translate", "model": "scripted-model", "backend": "scripted", "chunk_rows": 4}})
    out = tmp_path / "out"
    run_build([SourceFile(str(src), "")], out, BuildConfig.from_file(cfg))
    stats = _check_build(out, "translate")
    # six translations, three distinct captions: the global caption dedup keeps the first of each
    assert stats["translation_quality.kept"] == stats["exact_dedup.in"] == 6
    assert stats["exact_dedup.kept"] == stats["download.in"] == 3
    ds = datasets.load_dataset(str(out), split="train")
    assert set(ds["translation_model"]) == {"scripted-model"}
    assert set(ds["caption"]) <= {"窓辺に座っている猫", "木のテーブルの上の赤いりんご", "浜辺を走る犬。"}


def test_build_relaion_bad_section(tmp_path):
    from waon_hf.relaion import run_relaion_pairs

    with pytest.raises(ValueError, match="unknown option"):
        run_relaion_pairs(["x"], tmp_path, {"mode": "ja", "colour": "red"}, name="n")
    with pytest.raises(ValueError, match="needs a model"):
        run_relaion_pairs(["x"], tmp_path, {"mode": "translate"}, name="n")
    with pytest.raises(ValueError, match="only apply to mode: translate"):
        run_relaion_pairs(["x"], tmp_path, {"mode": "ja", "model": "m"}, name="n")


def test_hub_id_lists_parquet_files_as_hf_paths(monkeypatch):
    """The Hub path's listing logic (the reading itself needs the network: not tested here)."""
    import huggingface_hub

    from waon_hf.sources.relaion import list_relaion_files

    seen = {}

    def fake_list(self, repo_id, repo_type=None, **kwargs):
        seen.update(repo_id=repo_id, repo_type=repo_type)
        return ["README.md", "part-00001.parquet", "part-00000.parquet", ".gitattributes"]

    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", fake_list)
    assert list_relaion_files("laion/relaion2B-multi-research-safe") == [
        "hf://datasets/laion/relaion2B-multi-research-safe/part-00000.parquet",
        "hf://datasets/laion/relaion2B-multi-research-safe/part-00001.parquet"]
    assert seen == {"repo_id": "laion/relaion2B-multi-research-safe", "repo_type": "dataset"}


def test_relaion_ja_dedups_across_files_and_cards_name_relaion(tmp_path, capsys):
    src = tmp_path / "multi"
    src.mkdir()
    pq.write_table(pa.table({"URL": ["https://a/1.jpg", "https://a/2.jpg"], "TEXT": ["赤い鳥居の写真", "青い海と空"],
                             "LANGUAGE": ["ja", "ja"]}), src / "part-0.parquet")
    # a repeated URL (other caption) and a repeated caption (other URL): the first occurrence wins
    pq.write_table(pa.table({"URL": ["https://a/1.jpg", "https://a/3.jpg", "https://a/4.jpg"],
                             "TEXT": ["別のキャプションです", "青い海と空", "白い猫が寝ている"],
                             "LANGUAGE": ["ja", "ja", "ja"]}), src / "part-1.parquet")
    out = tmp_path / "out"
    assert main(["relaion-ja", str(src), "-o", str(out)]) == 0
    funnel = capsys.readouterr().out
    ds = datasets.load_dataset(str(out), split="train")
    assert ds["url"] == ["https://a/1.jpg", "https://a/2.jpg", "https://a/4.jpg"]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["exact_dedup.in"] == 5 and stats["exact_dedup.kept"] == 3
    assert "| ReLAION rows read | 5 |" in funnel and "WARC records" not in funnel
    assert "\n3 rows written to" in funnel  # what is in data/, after the dedup
    card = (out / "README.md").read_text()
    assert "from [ReLAION]" in card and "WARC" not in card and "- relaion" in card
    assert "Page language" not in card and "images are not redistributed" in card  # no image column here


def test_build_relaion_refuses_common_crawl_only_flags(tmp_path, caplog):
    src = tmp_path / "multi.parquet"
    _multi_file(src, 0)
    out = tmp_path / "out"
    assert main(["build", str(src), "-o", str(out), "--source", "relaion", "--num-shards", "4"]) != 0
    assert "--num-shards apply to Common Crawl inputs only" in caplog.text
    assert main(["build", str(src), "-o", str(out), "--limit", "3"]) != 0
    assert "--limit apply to --source relaion only" in caplog.text
    assert not (out / "data").exists()
