"""`run_stage`: a later stage over an output folder carries the funnel and the pipeline on."""

import json

import pytest

from waon_hf.jobs.extract import ExtractJob, run_extract
from waon_hf.jobs.stage import StageJob
from waon_hf.pipeline.runner import run_stage
from waon_hf.sources.commoncrawl import SourceFile
from waon_hf.steps.dedup import ExactDedup
from waon_hf.steps.text_filters import CaptionLength
from waon_hf.testing.synthetic import generate_corpus


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    root = tmp_path_factory.mktemp("stage")
    sources = []
    for i in range(2):
        path = root / f"s{i}.warc.gz"
        generate_corpus(path, n_pages=30, ja_fraction=0.8, seed=300 + i, target_bytes=3000, n_images=8)
        sources.append(SourceFile(str(path), "CC-MAIN-2099-11"))
    out = root / "extracted"
    run_extract(sources, out, ExtractJob(dedup=ExactDedup(columns=("url",))))
    return out


def test_stage_continues_funnel_and_pipeline(extracted, tmp_path, read_rows):
    job = StageJob(steps=[CaptionLength(min_chars=8)], global_steps=[ExactDedup(columns=("caption",))],
                   stage="longer_captions", dataset_name="stage-test")
    stats = run_stage(extracted, tmp_path / "out", job)
    before = json.loads((extracted / "stats.json").read_text())
    assert stats["warc.records"] == before["warc.records"]  # the funnel starts at the WARC records
    assert stats["caption_length.in"] == before["caption_length.in"]  # extraction's counters unchanged
    assert stats["caption_length@longer_captions.in"] == before["exact_dedup.kept"]
    assert stats["exact_dedup@longer_captions.in"] == stats["caption_length@longer_captions.kept"]
    rows = read_rows(tmp_path / "out")
    assert rows and all(len(r["caption"]) >= 8 for r in rows)
    assert len({r["caption"] for r in rows}) == len(rows) == stats["exact_dedup@longer_captions.kept"]
    assert "| after caption_length@longer_captions |" in (tmp_path / "out" / "README.md").read_text()
    pipeline = json.loads((tmp_path / "out" / "pipeline.json").read_text())
    assert [s["stage"] for s in pipeline["stages"]] == ["extract", "longer_captions"]
    assert pipeline["crawls"] == ["CC-MAIN-2099-11"]
    card = (tmp_path / "out" / "README.md").read_text()
    assert "**longer_captions**" in card and "CC-MAIN-2099-11" in card


def test_stage_refuses_to_overwrite_its_input(extracted):
    with pytest.raises(ValueError, match="new folder"):
        run_stage(extracted, extracted, StageJob())


def test_stage_on_a_folder_without_data(tmp_path):
    with pytest.raises(FileNotFoundError, match="no data"):
        run_stage(tmp_path, tmp_path / "out", StageJob())
