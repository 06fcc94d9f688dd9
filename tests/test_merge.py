"""`waon merge`: the slices of a Slurm array merged into one dataset equal one run over all inputs."""

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from waon_hf.cli import main
from waon_hf.jobs.extract import ExtractJob, run_extract
from waon_hf.jobs.stage import StageJob
from waon_hf.merge import merge_slices
from waon_hf.pipeline.runner import run_stage
from waon_hf.sources.commoncrawl import SourceFile
from waon_hf.stats import Stats
from waon_hf.steps.base import MapStep
from waon_hf.testing.synthetic import generate_corpus

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "samples" / "sample.warc.gz"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Four inputs, one of them twice: with 2 slices (k % 2) the repeated file is in both slices,
    so cross-slice duplicates are certain."""
    root = tmp_path_factory.mktemp("warcs")
    for i in range(2):
        generate_corpus(root / f"part-{i}.warc.gz", n_pages=30, ja_fraction=0.7, seed=500 + i, target_bytes=3000,
                        n_images=6, oversized_bytes=250_000)
    part0, part1 = (str(root / f"part-{i}.warc.gz") for i in range(2))
    return [str(SAMPLE), part0, part0, part1]


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "job.yaml"
    path.write_text("max_payload_bytes: 200000\n")
    return str(path)


def without_timing(stats: dict) -> dict:
    return {k: v for k, v in stats.items() if not k.endswith(".milliseconds")}  # shard and step wall times


@pytest.fixture(scope="module")
def single_run(inputs, config, tmp_path_factory):
    out = tmp_path_factory.mktemp("single") / "out"
    assert main(["extract", *inputs, "-o", str(out), "--config", config]) == 0
    return out


@pytest.fixture(scope="module")
def slices(inputs, config, tmp_path_factory):
    root = tmp_path_factory.mktemp("slices")
    for i in range(2):
        assert main(["extract", *inputs, "-o", str(root / f"out-{i}"), "--config", config,
                     "--num-shards", "2", "--shard-index", str(i)]) == 0
    return [root / "out-0", root / "out-1"]


def test_merged_slices_equal_one_run_over_all_inputs(single_run, slices, tmp_path, capsys, read_rows):
    merged = tmp_path / "merged"
    assert main(["merge", *map(str, slices), "-o", str(merged)]) == 0
    expected = read_rows(single_run)
    assert f"2 slices merged: {len(expected):,} rows" in capsys.readouterr().out
    assert read_rows(merged) == expected  # same rows, same order: input order restored across the slices
    slice_rows = sum(len(read_rows(s)) for s in slices)
    assert slice_rows > len(expected)  # there were cross-slice duplicates, and the merge dropped them
    single_stats, merged_stats = (json.loads((d / "stats.json").read_text()) for d in (single_run, merged))
    assert without_timing(merged_stats) == without_timing(single_stats)
    for name in ("pipeline.json", ".waon/manifest.json"):
        single, got = (json.loads((d / name).read_text()) for d in (single_run, merged))
        assert got["sources" if "manifest" in name else "stages"] == single["sources" if "manifest" in name
                                                                              else "stages"]
    card = (merged / "README.md").read_text()
    assert f"{len(expected):,}" in card
    # resumable: a second merge finds the final marker and changes nothing
    before = (merged / "data").stat().st_mtime_ns
    merge_slices(slices, merged)
    assert (merged / "data").stat().st_mtime_ns == before


def test_slices_without_their_index_merge_in_the_order_given(inputs, tmp_path, read_rows):
    """Contiguous slices run through the API (no slice record): first occurrence in slice order."""
    job = ExtractJob(max_payload_bytes=200_000)
    sources = [SourceFile(p, "") for p in inputs]
    run_extract(sources[:2], tmp_path / "a", job)
    run_extract(sources[2:], tmp_path / "b", job)
    run_extract(sources, tmp_path / "all", job)
    merge_slices([tmp_path / "a", tmp_path / "b"], tmp_path / "merged")
    assert read_rows(tmp_path / "merged") == read_rows(tmp_path / "all")


def test_an_unfinished_slice_is_refused(slices, tmp_path):
    unfinished = tmp_path / "out-2"
    (unfinished / ".waon" / "shards").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"out-2: slice not finished \(no .waon/final.json\)"):
        merge_slices([*slices, unfinished], tmp_path / "merged")
    assert main(["merge", *map(str, slices), str(unfinished), "-o", str(tmp_path / "merged")]) == 1
    assert not (tmp_path / "merged").exists()


def test_merge_refuses_its_own_slice_as_output_and_mixed_settings(slices, inputs, tmp_path):
    with pytest.raises(ValueError, match="new folder"):
        merge_slices(slices, slices[0])
    other = tmp_path / "other"
    run_extract([SourceFile(inputs[1], "")], other, ExtractJob(max_payload_bytes=100_000))
    with pytest.raises(ValueError, match="built with other settings"):
        merge_slices([slices[0], other], tmp_path / "merged")


def first_occurrence(table: list[dict], columns: tuple[str, ...]) -> list[dict]:
    kept = table
    for column in columns:
        seen, survivors = set(), []
        for row in kept:
            if row[column] not in seen:
                seen.add(row[column])
                survivors.append(row)
        kept = survivors
    return kept


def test_later_stage_slices_are_deduplicated_again_across_slices(slices, tmp_path, read_rows):
    """Slices of a later stage: rows from each slice's data/, URL then caption dedup across them,
    first occurrence in slice order; the funnel adds the merge's own rows to the slices' sums."""
    staged = []
    for i, s in enumerate(slices):
        out = tmp_path / f"stage-{i}"
        run_stage(s, out, StageJob(stage="copy"))
        staged.append(out)
    merged = tmp_path / "merged"
    stats = merge_slices(staged, merged)
    concatenated = [r for s in staged for r in read_rows(s)]
    expected = first_occurrence(concatenated, ("url", "caption"))
    assert read_rows(merged) == expected and len(expected) < len(concatenated)
    summed = Stats.merged(Stats.load(s / "stats.json") for s in staged)
    assert stats["exact_dedup@merge.in"] == len(concatenated)
    assert stats["exact_dedup@merge.kept"] == len(expected)
    assert stats["exact_dedup.kept"] == summed["exact_dedup.kept"]  # the slices' own counters, summed
    pipeline = json.loads((merged / "pipeline.json").read_text())
    assert [st["stage"] for st in pipeline["stages"]] == ["extract", "copy", "merge"]
    assert "after exact_dedup@merge" in (merged / "README.md").read_text()


@dataclasses.dataclass
class FakeImageHashes(MapStep):
    """Stands in for the image stages: one sha256 per page (so pages' images are exact duplicates)
    and an unrelated 64-bit pHash per URL (so no near-duplicates)."""

    name = "fake_image_hashes"
    columns: tuple[str, ...] = ("url", "page_url")

    def process_batch(self, batch):
        return {"sha256": [hashlib.sha256(p.encode()).hexdigest() for p in batch["page_url"]],
                "phash": [hashlib.sha256(u.encode()).hexdigest()[:16] for u in batch["url"]]}


def test_later_stage_slices_with_image_columns_get_the_image_dedup_too(slices, tmp_path, read_rows):
    staged = []
    for i, s in enumerate(slices):
        out = tmp_path / f"stage-{i}"
        run_stage(s, out, StageJob(steps=[FakeImageHashes()], stage="hashes"))
        staged.append(out)
    stats = merge_slices(staged, tmp_path / "merged")
    concatenated = [r for s in staged for r in read_rows(s)]
    expected = first_occurrence(concatenated, ("url", "caption", "sha256"))
    assert read_rows(tmp_path / "merged") == expected
    # steps the slices did not run keep their plain names; exact_dedup ran there too, so it is @merge
    assert stats["sha256_dedup.dropped_duplicate_sha256"] > 0 and stats["exact_dedup@merge.kept"] > len(expected)
    assert stats["phash_dedup.kept"] == len(expected)


@dataclasses.dataclass
class FakeEmbedding(MapStep):
    """Stands in for the embedding step: one-hot by caption length mod 7, so rows of every slice
    fall into 7 semantic clusters (cosine 1 inside, 0 across)."""

    name = "fake_embedding"
    columns: tuple[str, ...] = ("caption",)

    def process_batch(self, batch):
        return {"embedding": [[1.0 if k == len(c) % 7 else 0.0 for k in range(8)] for c in batch["caption"]]}


def test_later_stage_slices_with_embeddings_get_the_semantic_dedup_across_slices(slices, tmp_path, read_rows):
    staged = []
    for i, s in enumerate(slices):
        out = tmp_path / f"stage-{i}"
        run_stage(s, out, StageJob(steps=[FakeEmbedding()], stage="embed"))
        staged.append(out)
    stats = merge_slices(staged, tmp_path / "merged")
    concatenated = [r for s in staged for r in read_rows(s)]
    deduped = first_occurrence(concatenated, ("url", "caption"))
    expected = first_occurrence([{**r, "cluster": len(r["caption"]) % 7} for r in deduped], ("cluster",))
    assert [r["url"] for r in read_rows(tmp_path / "merged")] == [r["url"] for r in expected]
    assert stats["semantic_dedup.kept"] == len(expected) <= 7 < stats["semantic_dedup.in"]
