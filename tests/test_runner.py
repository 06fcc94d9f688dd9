"""End-to-end runs of `waon extract`: correctness on synthetic pages, resume, executors, HTTP input."""

import gzip
import json
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
from huggingface_hub import DatasetCard

from tests.http_server import Fault, serve
from waon_hf.jobs.extract import ExtractJob, run_extract
from waon_hf.pipeline.runner import ShardsFailedError
from waon_hf.sources.commoncrawl import SourceFile, resolve_inputs
from waon_hf.sources.warc import iter_html_responses
from waon_hf.steps.extract import PageExtractor
from waon_hf.testing.synthetic import generate_corpus

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    """Four small WARC files (one with broken records) shared by the tests of this module."""
    root = tmp_path_factory.mktemp("warcs")
    manifests = []
    for i in range(4):
        manifests.append(generate_corpus(root / f"part-{i}.warc.gz", n_pages=40, ja_fraction=0.7, seed=100 + i,
                                         broken=(i == 1), target_bytes=3000, n_images=8, oversized_bytes=300_000))
    return root, manifests


def sources_of(root: Path) -> list[SourceFile]:
    return [SourceFile(str(p), "") for p in sorted(root.glob("part-*.warc.gz"))]


def content(table: list[dict]) -> list[dict]:
    """Rows without provenance columns, to compare runs over copies of the same files."""
    return [{k: v for k, v in r.items() if k not in ("crawl", "warc_file")} for r in table]


def small_job() -> ExtractJob:
    return ExtractJob(max_payload_bytes=200_000)


@pytest.fixture(scope="module")
def reference(corpus_dir, tmp_path_factory, read_rows):
    root, _ = corpus_dir
    out = tmp_path_factory.mktemp("ref") / "out"
    stats = run_extract(sources_of(root), out, small_job(), workers=1)
    return out, stats, read_rows(out)


def test_pairs_match_the_generator(corpus_dir):
    """Every well-formed Japanese page gives exactly the pairs the generator says it holds."""
    root, manifests = corpus_dir
    extractor = PageExtractor()
    manifest = manifests[0]
    by_url = {p["url"]: p for p in manifest["pages"]}
    checked = Counter()
    for page in iter_html_responses(str(root / "part-0.warc.gz"), Counter()):
        meta = by_url[page.url]
        result = extractor.extract(page.body, page.url, page.content_type)
        got = [(url, caption) for url, caption, _ in result.pairs]
        if meta["lang"] == "ja":
            assert got == [tuple(p) for p in meta["expected_pairs"]], (meta["encoding"], meta.get("charset_in"))
        else:
            assert got == [], meta["lang"]
        checked[meta["lang"]] += 1
    assert checked["ja"] == manifest["counts_by_lang"]["ja"] and len(checked) >= 3


def test_broken_records_are_counted_not_fatal(reference, corpus_dir):
    _, manifests = corpus_dir
    _, stats, _ = reference
    kinds = Counter(b["kind"] for b in manifests[1]["broken_records"])
    assert stats["warc.non_response"] >= kinds["request"] + kinds["metadata"]
    assert stats["warc.oversized"] == kinds.get("oversized", 0) > 0
    assert stats["warc.http_status_other"] >= 2
    assert stats["warc.non_html"] >= 1
    assert stats["extract.binary_payload"] >= 1
    assert stats["warc.read_errors"] >= 1  # garbage between gzip members, then resync
    assert stats["warc.truncated"] == kinds["truncated_last_member"] == 1
    japanese = sum(m["n_japanese_html"] for m in manifests)
    assert stats["extract.japanese_pages"] == japanese


def test_output_loads_and_card_is_real(reference):
    out, stats, expected_rows = reference
    ds = datasets.load_dataset(str(out), split="train")
    assert len(ds) == len(expected_rows) == stats["exact_dedup.kept"] > 0
    assert ds.column_names[:4] == ["url", "caption", "caption_source", "page_url"]
    card = DatasetCard.load(out / "README.md")
    assert card.data.configs[0]["data_files"][0]["path"] == "data/train-*"
    assert f"| Japanese pages | {stats['extract.japanese_pages']:,} |" in card.text
    assert f"| after exact_dedup | {stats['exact_dedup.kept']:,} |" in card.text
    # No duplicates survive, and the first occurrence is the one kept.
    assert len({r["url"] for r in expected_rows}) == len(expected_rows)
    assert len({r["caption"] for r in expected_rows}) == len(expected_rows)


def test_workers_do_not_change_the_rows(reference, corpus_dir, tmp_path, read_rows):
    root, _ = corpus_dir
    run_extract(sources_of(root), tmp_path / "w2", small_job(), workers=2)
    assert read_rows(tmp_path / "w2") == reference[2]


def test_failed_shard_is_retried_and_the_rest_kept(reference, corpus_dir, tmp_path, read_rows):
    root, _ = corpus_dir
    work = tmp_path / "in"
    shutil.copytree(root, work)
    held_back = work / "part-2.warc.gz"
    held_back.rename(work / "held")
    sources = [SourceFile(str(work / f"part-{i}.warc.gz"), "") for i in range(4)]
    with pytest.raises(ShardsFailedError, match="1 of 4 shard"):
        run_extract(sources, tmp_path / "out", small_job())
    done = {p.name for p in (tmp_path / "out" / ".waon" / "shards").glob("*.stats.json")}
    assert done == {"00000.stats.json", "00001.stats.json", "00003.stats.json"}
    assert not (tmp_path / "out" / "data").exists()
    mtime = (tmp_path / "out" / ".waon" / "shards" / "00000.parquet").stat().st_mtime_ns
    (work / "held").rename(held_back)
    run_extract(sources, tmp_path / "out", small_job())
    assert (tmp_path / "out" / ".waon" / "shards" / "00000.parquet").stat().st_mtime_ns == mtime  # not redone
    assert content(read_rows(tmp_path / "out")) == content(reference[2])


def test_interrupted_shard_leftovers_are_harmless(reference, corpus_dir, tmp_path, read_rows):
    """State a kill can leave: a temp file, a shard parquet without its stats, a half-finalized output."""
    root, _ = corpus_dir
    out = tmp_path / "out"
    shutil.copytree(reference[0], out)
    shards = out / ".waon" / "shards"
    (shards / "00002.stats.json").unlink()  # killed between the parquet rename and the stats write
    (shards / ".00003.parquet.tmp-999").write_bytes(b"PAR1 half a file")
    (out / ".waon" / "final.json").unlink()  # killed during finalize
    for p in list((out / "data").glob("*.parquet"))[:1]:
        p.unlink()
    run_extract(sources_of(root), out, small_job())
    assert read_rows(out) == reference[2]


def test_other_inputs_are_refused(reference, corpus_dir, tmp_path, read_rows):
    root, _ = corpus_dir
    out = tmp_path / "out"
    run_extract(sources_of(root)[:1], out, small_job())
    with pytest.raises(ValueError, match="other inputs"):
        run_extract(sources_of(root), out, small_job())
    run_extract(sources_of(root), out, small_job(), overwrite=True)
    assert read_rows(out) == reference[2]


def test_nothing_japanese_gives_an_empty_table_with_the_schema(tmp_path):
    generate_corpus(tmp_path / "en.warc.gz", n_pages=5, ja_fraction=0.0, seed=3, target_bytes=2000, n_images=4)
    out = tmp_path / "out"
    stats = run_extract([SourceFile(str(tmp_path / "en.warc.gz"), "")], out)
    assert stats["exact_dedup.kept"] == 0 and stats.get("extract.japanese_pages", 0) == 0
    table = pq.read_table(out / "data" / "train-00000-of-00001.parquet")
    assert table.num_rows == 0 and table.column_names[:2] == ["url", "caption"]
    assert "| after exact_dedup | 0 |" in (out / "README.md").read_text()


def test_crawl_over_http_with_faults_equals_local(reference, corpus_dir, tmp_path, read_rows):
    root, _ = corpus_dir
    crawl = "CC-MAIN-2099-07"
    site = tmp_path / "site"
    names = [p.name for p in sorted(root.glob("part-*.warc.gz"))]
    seg = site / "crawl-data" / crawl / "segments" / "0" / "warc"
    seg.mkdir(parents=True)
    for name in names:
        shutil.copy(root / name, seg / name)
    listing = "".join(f"crawl-data/{crawl}/segments/0/warc/{n}\n" for n in names)
    (site / "crawl-data" / crawl / "warc.paths.gz").write_bytes(gzip.compress(listing.encode()))
    with serve(site) as server:
        server.add_faults(f"crawl-data/{crawl}/segments/0/warc/{names[0]}", Fault(cut_after=5000))
        server.add_faults(f"crawl-data/{crawl}/segments/0/warc/{names[3]}", Fault(status=503))
        sources = resolve_inputs([crawl], base_url=server.url)
        stats = run_extract(sources, tmp_path / "out", small_job(), workers=1)
    got = read_rows(tmp_path / "out")
    assert {r["crawl"] for r in got} == {crawl}
    assert content(got) == content(reference[2])
    assert stats["exact_dedup.kept"] == reference[1]["exact_dedup.kept"]


def _cli(out: Path, files: list[str]) -> list[str]:
    return [sys.executable, "-m", "waon_hf.cli", "extract", *files, "-o", str(out), "--config",
            str(REPO / "tests" / "data" / "small_job.yaml")]


def test_killed_at_any_moment_then_rerun_gives_the_same_rows(tmp_path, read_rows):
    """SIGKILL the CLI at several moments; each re-run resumes; the end result equals a clean run.

    The kills are placed by progress, not by time (a slow or busy machine must not move them past the
    end): one second after start, then as soon as 1, 3 and 5 of the 6 shards are done, which lands the
    kill while the next shard is being read or written.
    """
    files = []
    for i in range(6):
        path = tmp_path / f"k-{i}.warc.gz"
        generate_corpus(path, n_pages=300, ja_fraction=0.8, seed=200 + i, target_bytes=4000, n_images=10)
        files.append(str(path))
    clean = tmp_path / "clean"
    subprocess.run(_cli(clean, files), check=True, capture_output=True, timeout=300)
    expected = read_rows(clean)

    out = tmp_path / "killed"
    shards = out / ".waon" / "shards"

    def done() -> int:
        return len(list(shards.glob("*.stats.json")))

    done_after_kill = []
    for target in (0, 1, 3, 5):
        proc = subprocess.Popen(_cli(out, files), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        if target == 0:
            time.sleep(1.0)  # during start-up (imports) or the first shard
        else:
            while done() < target and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
            done_after_kill.append(done())
        else:
            proc.wait(timeout=60)
    subprocess.run(_cli(out, files), check=True, capture_output=True, timeout=300)
    assert any(0 < n < len(files) for n in done_after_kill), done_after_kill  # killed mid-run
    assert read_rows(out) == expected
    assert json.loads((out / "stats.json").read_text())["exact_dedup.kept"] == len(expected)
