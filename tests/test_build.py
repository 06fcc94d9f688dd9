"""`waon build`: every stage from one config on the shipped sample, offline, resumable stage by stage."""

import json
from pathlib import Path

import datasets
import pytest
import yaml

from tests.sample_build import build_sample
from waon_hf.build import STAGES_DIR, BuildConfig, run_build
from waon_hf.sources.commoncrawl import SourceFile

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    _, out, stats, path = build_sample(tmp_path_factory.mktemp("build"))
    return out, stats, path


def test_every_stage_is_in_the_funnel(built):
    out, stats, _ = built
    for key in ("warc.records", "exact_dedup.kept", "download.kept", "image_quality.kept", "phash_dedup.kept",
                "nsfw_filter.kept", "similarity_band.kept"):
        assert key in stats, key
    card = (out / "README.md").read_text()
    assert "| after similarity_band |" in card and "| after phash_dedup |" in card
    assert "the images are embedded" in card and "not redistributed" not in card
    assert "respect_robots=True" in card  # the card's licence section points at this setting
    assert [s["stage"] for s in json.loads((out / "pipeline.json").read_text())["stages"]] == [
        "extract", "download", "filter_images", "dedup_images", "score"]


def test_final_dataset_has_the_waon_columns(built):
    out, stats, _ = built
    ds = datasets.load_dataset(str(out), split="train")
    for column in ("url", "caption", "similarity", "page_title", "page_url", "punsafe", "width", "height",
                   "original_width", "original_height", "sha256", "phash", "image"):
        assert column in ds.column_names, column
    assert len(ds) == stats["similarity_band.kept"] > 0
    assert all(p < 0.1 for p in ds["punsafe"])


def test_final_dataset_concatenates_with_waons_release_without_a_cast(built):
    """WAON's published dtypes (speed/WAON's card: similarity, punsafe, width, height, original_* float64)."""
    out, _, _ = built
    ds = datasets.load_dataset(str(out), split="train")
    waon_columns = ["url", "caption", "similarity", "page_title", "page_url", "punsafe", "width", "height",
                    "original_width", "original_height", "sha256", "phash"]
    ours = ds.select_columns(waon_columns)
    features = datasets.Features({c: datasets.Value("float64") if c in {"similarity", "punsafe", "width", "height",
                                                                          "original_width", "original_height"}
                                  else datasets.Value("string") for c in waon_columns})
    waon = datasets.Dataset.from_dict({c: [ours[0][c]] for c in waon_columns}, features=features)
    both = datasets.concatenate_datasets([ours, waon])
    assert len(both) == len(ours) + 1 and both.features == features


def test_every_stage_carries_the_builds_note(built):
    """The sample's card_note ("built by `make demo` from the synthetic sample ...") reaches every stage."""
    out, _, config_path = built
    note = yaml.safe_load(Path(config_path).read_text())["card_note"]
    folders = [out / STAGES_DIR / name for name in ("pairs", "images", "filtered", "dedup")] + [out]
    for folder in folders:
        assert json.loads((folder / "pipeline.json").read_text())["note"] == note, folder
        assert "synthetic sample" in (folder / "README.md").read_text(), folder


def test_rerun_skips_finished_stages(built):
    out, stats, path = built
    markers = {p: p.stat().st_mtime_ns for p in (out / STAGES_DIR).glob("*/.waon/final.json")}
    assert len(markers) == 4
    again = run_build([SourceFile(str(REPO / "samples" / "sample.warc.gz"), "")], out, BuildConfig.from_file(str(path)))
    assert again == stats
    assert {p: p.stat().st_mtime_ns for p in markers} == markers


def test_score_command_on_a_stage_folder(built, tmp_path):
    from waon_hf.cli import main

    out, _, path = built
    model = yaml.safe_load(path.read_text())["siglip"]["model"]
    dedup = out / STAGES_DIR / "dedup"
    assert main(["score", str(dedup), "-o", str(tmp_path / "scored"), "--siglip", model,
                 "--min-similarity", "-1", "--max-similarity", "0"]) == 0
    stats = json.loads((tmp_path / "scored" / "stats.json").read_text())
    kept = stats["similarity_band.kept"]
    assert kept + stats.get("similarity_band.dropped_high_similarity", 0) == stats["similarity_band.in"]
    assert all(s <= 0 for s in datasets.load_dataset(str(tmp_path / "scored"), split="train")["similarity"])
