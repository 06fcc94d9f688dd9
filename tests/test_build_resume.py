"""`waon build` re-runs: a changed config redoes the stages it changes (and what follows), never returns
the old rows; earlier stages are kept."""

import json
from pathlib import Path

import pytest
import yaml

from tests.sample_build import SAMPLE_WARC, build_sample
from waon_hf.build import STAGES_DIR, BuildConfig, run_build
from waon_hf.sources.commoncrawl import SourceFile


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    _, out, stats, config = build_sample(tmp_path_factory.mktemp("build-resume"))
    return out, stats, config


def markers(out: Path) -> dict[str, int]:
    found = {p.parent.parent.name: p.stat().st_mtime_ns for p in (out / STAGES_DIR).glob("*/.waon/final.json")}
    found["score"] = (out / ".waon" / "final.json").stat().st_mtime_ns
    return found


def rebuild(out: Path, config_path: Path, edit, **kwargs):
    config = yaml.safe_load(config_path.read_text())
    edit(config)
    path = config_path.with_name("edited.yaml")
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return run_build([SourceFile(str(SAMPLE_WARC), "")], out, BuildConfig.from_file(str(path)), **kwargs)


def score_config(out: Path, step: str) -> dict:
    stage = json.loads((out / "pipeline.json").read_text())["stages"][-1]
    return next(s["config"] for s in stage["steps"] if s["name"] == step)


def test_changed_config_redoes_the_changed_stages_only(built, read_rows):
    out, stats, config_path = built
    before = markers(out)
    rows_before = read_rows(out)

    def band(config):
        config["siglip"]["max_similarity"] = 0.0

    stats = rebuild(out, config_path, band)
    after = markers(out)
    assert {k: after[k] for k in ("pairs", "images", "filtered", "dedup")} == \
        {k: before[k] for k in ("pairs", "images", "filtered", "dedup")}  # not redone
    assert after["score"] != before["score"]
    rows = read_rows(out)
    assert all(r["similarity"] <= 0.0 for r in rows) and len(rows) == stats["similarity_band.kept"]
    assert len(rows) < len(rows_before)
    assert score_config(out, "similarity_band")["max_similarity"] == 0.0  # the card/pipeline tell the truth

    def looser(config):
        band(config)
        config.setdefault("image_quality", {})["min_side"] = 100  # drops nothing more: the same rows
    dedup_shard = out / STAGES_DIR / "dedup" / ".waon" / "shards" / "00000.parquet"
    shard_mtime = dedup_shard.stat().st_mtime_ns
    rebuild(out, config_path, looser)
    assert markers(out)["filtered"] != after["filtered"]
    assert dedup_shard.stat().st_mtime_ns == shard_mtime  # same rows in: the dedup shards are kept ...
    stages = {s["stage"]: s for s in json.loads((out / "pipeline.json").read_text())["stages"]}
    quality_config = next(s["config"] for s in stages["filter_images"]["steps"] if s["name"] == "image_quality")
    assert quality_config["min_side"] == 100  # ... but the card and pipeline.json say what was run
    after = markers(out)

    def quality(config):
        band(config)
        config.setdefault("image_quality", {})["min_side"] = 300  # the sample has images of 259-358 px

    rebuild(out, config_path, quality)
    again = markers(out)
    assert again["pairs"] == before["pairs"] and again["images"] == before["images"]
    assert again["filtered"] != after["filtered"] and again["dedup"] != after["dedup"]  # and what follows it
    assert again["score"] != after["score"]
    rows = read_rows(out)
    assert rows and all(min(r["original_width"], r["original_height"]) >= 300 for r in rows)


def test_overwrite_rebuilds_every_stage_and_keeps_the_report(built):
    out, _, config_path = built
    before = markers(out)
    run_build([SourceFile(str(SAMPLE_WARC), "")], out, BuildConfig.from_file(str(config_path)), overwrite=True)
    after = markers(out)
    assert all(after[k] != before[k] for k in before)
    assert (out / "decontamination.json").is_file()  # written by the dedup stage, kept by the score stage
