"""The image stages end to end on the shipped sample, offline: download -> filter -> dedup."""

from collections import Counter
from pathlib import Path

import datasets
import pytest

from waon_hf.cli import main

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["extract", str(SAMPLES / "sample.warc.gz"), "-o", str(out / "pairs"),
                 "--config", str(REPO / "configs" / "sample.yaml")]) == 0
    assert main(["download", str(out / "pairs"), "-o", str(out / "images"),
                 "--warc-source", str(SAMPLES / "sample-images.warc.gz"), "--offline"]) == 0
    assert main(["filter-images", str(out / "images"), "-o", str(out / "filtered")]) == 0
    assert main(["dedup-images", str(out / "filtered"), "-o", str(out / "final"), "--against",
                 str(SAMPLES / "tiny_bench")]) == 0
    return out


def test_download_statuses_offline(stages, read_rows):
    statuses = Counter(r["status"] for r in read_rows(stages / "images"))
    pairs = len(read_rows(stages / "pairs"))
    assert sum(statuses.values()) == pairs  # no row lost: a failure is a status
    assert statuses["ok"] > 0 and statuses["not_in_archive"] > 0 and statuses["x_robots_tag"] > 0
    assert set(statuses) <= {"ok", "not_in_archive", "x_robots_tag"}


def test_filters_and_dedup_are_in_the_funnel(stages, read_rows):
    import json

    stats = json.loads((stages / "final" / "stats.json").read_text())
    assert stats["image_quality.dropped_too_small"] > 0
    assert stats["image_quality.dropped_bad_aspect_ratio"] > 0
    assert stats["image_quality.dropped_few_colors"] > 0
    assert stats["sha256_dedup.dropped_duplicate_sha256"] > 0
    assert stats["phash_dedup.dropped_near_duplicate"] > 0
    assert stats["decontaminate.kept"] == len(read_rows(stages / "final"))
    card = (stages / "final" / "README.md").read_text()
    assert "| after phash_dedup |" in card and "`image` | image |" in card


def test_final_dataset_loads_with_images(stages):
    ds = datasets.load_dataset(str(stages / "final"), split="train")
    assert isinstance(ds.features["image"], datasets.Image)
    row = ds[0]
    assert min(row["image"].size) == 256  # WAON's 256 px, smaller side
    assert len(row["phash"]) == 16 and len(row["sha256"]) == 64
    assert len(set(ds["sha256"])) == len(ds)
