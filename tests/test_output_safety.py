"""The output folder: never a user's file deleted, never stale rows returned, damaged shards redone,
one run at a time, temporaries cleaned."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from waon_hf.cli import main
from waon_hf.io import FolderInUseError
from waon_hf.jobs.extract import ExtractJob, run_extract
from waon_hf.pipeline.layout import NotWaonFolderError, ShardLayout
from waon_hf.sources.commoncrawl import SourceFile
from waon_hf.steps.text_filters import CaptionLength, default_caption_steps
from waon_hf.testing.synthetic import generate_corpus

REPO = Path(__file__).resolve().parent.parent


def make_warcs(folder: Path, seeds=(11, 12, 13)) -> list[SourceFile]:
    folder.mkdir(parents=True, exist_ok=True)
    sources = []
    for i, seed in enumerate(seeds):
        path = folder / f"w-{i}.warc.gz"
        generate_corpus(path, n_pages=25, ja_fraction=0.8, seed=seed, target_bytes=2500, n_images=6)
        sources.append(SourceFile(str(path), ""))
    return sources


@pytest.fixture(scope="module")
def warcs(tmp_path_factory):
    return make_warcs(tmp_path_factory.mktemp("warcs"))


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# -- a folder waon did not write ----------------------------------------------------------------------

@pytest.mark.parametrize("overwrite", [False, True])
def test_extract_into_a_users_folder_is_refused_and_touches_nothing(warcs, tmp_path, overwrite, caplog):
    user = tmp_path / "thesis"
    (user / "data").mkdir(parents=True)
    (user / "data" / "thesis.txt").write_text("three years of work")
    (user / "README.md").write_text("# my thesis")
    before = tree(user)
    argv = ["extract", warcs[0].location, "-o", str(user), *(["--overwrite"] if overwrite else [])]
    with caplog.at_level(logging.ERROR):
        assert main(argv) == 1
    assert tree(user) == before and not (user / ".waon").exists()
    assert "is not a waon output folder" in caplog.text and "README.md" in caplog.text
    with pytest.raises(NotWaonFolderError):
        run_extract(warcs[:1], user, overwrite=overwrite)
    assert tree(user) == before


def test_overwrite_and_finalize_delete_only_what_waon_wrote(warcs, tmp_path, read_rows):
    out = tmp_path / "out"
    run_extract(warcs, out)
    expected = read_rows(out)
    (out / "notes.txt").write_text("mine")
    (out / "data" / "extra.csv").write_text("mine too")
    (out / "data" / "train-00000-of-00001.parquet").write_bytes(b"stale")  # a data file of an older run: waon's
    run_extract(warcs, out, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine" and (out / "data" / "extra.csv").read_text() == "mine too"
    assert read_rows(out) == expected
    # A re-run that finalizes again (a shard redone) keeps them too.
    ShardLayout(out).forget_shard(1)
    run_extract(warcs, out)
    assert (out / "data" / "extra.csv").exists() and read_rows(out) == expected


def test_an_empty_folder_and_a_build_stages_folder_are_accepted(warcs, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    run_extract(warcs[:1], empty)
    staged = tmp_path / "staged"
    (staged / ".waon-stages" / "pairs").mkdir(parents=True)
    run_extract(warcs[:1], staged)
    assert (staged / ".waon" / "final.json").is_file()


def test_build_refuses_a_users_folder_before_any_stage(tmp_path):
    from waon_hf.build import run_build
    from waon_hf.config import BuildConfig

    user = tmp_path / "photos"
    user.mkdir()
    (user / "cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(NotWaonFolderError, match="cat.jpg"):
        run_build([SourceFile(str(REPO / "samples" / "sample.warc.gz"), "")], user, BuildConfig())
    assert sorted(p.name for p in user.iterdir()) == ["cat.jpg"]


# -- stale results --------------------------------------------------------------------------------------

def test_rebuilt_input_redoes_exactly_its_shard(tmp_path, read_rows, caplog):
    sources = make_warcs(tmp_path / "in", seeds=(21, 22, 23))
    out = tmp_path / "out"
    run_extract(sources, out)
    shards = ShardLayout(out)
    kept = {i: shards.shard_data(i).stat().st_mtime_ns for i in (0, 2)}
    make_warcs(tmp_path / "in", seeds=(21, 99, 23))  # the folder rebuilt: same names, file 1 differs
    with caplog.at_level(logging.WARNING):
        run_extract(sources, out)
    assert "redoing the shard" in caplog.text
    clean = tmp_path / "clean"
    run_extract(sources, clean)
    assert read_rows(out) == read_rows(clean)
    assert {i: shards.shard_data(i).stat().st_mtime_ns for i in (0, 2)} == kept  # the others were not redone


def test_a_touched_but_unchanged_small_input_is_not_redone(warcs, tmp_path):
    src = tmp_path / "in"
    shutil.copytree(Path(warcs[0].location).parent, src)
    sources = [SourceFile(str(src / Path(s.location).name), "") for s in warcs]
    out = tmp_path / "out"
    run_extract(sources, out)
    marker = ShardLayout(out).final_marker.stat().st_mtime_ns
    os.utime(sources[1].location, ns=(1, 1))  # same bytes, other mtime: the content hash decides
    run_extract(sources, out)
    assert ShardLayout(out).final_marker.stat().st_mtime_ns == marker


def test_other_settings_are_refused_by_name(warcs, tmp_path, read_rows):
    out = tmp_path / "out"
    run_extract(warcs, out)
    stricter = [CaptionLength(min_chars=12) if isinstance(s, CaptionLength) else s for s in default_caption_steps()]
    with pytest.raises(ValueError, match=r"other settings \(.*min_chars.*--overwrite"):
        run_extract(warcs, out, ExtractJob(steps=stricter))
    run_extract(warcs, out, ExtractJob(steps=stricter), overwrite=True)
    assert all(len(r["caption"]) >= 12 for r in read_rows(out))
    pipeline = json.loads((out / "pipeline.json").read_text())
    config = next(s["config"] for s in pipeline["stages"][-1]["steps"] if s["name"] == "caption_length")
    assert config["min_chars"] == 12


def test_relaion_settings_go_through_the_manifest(tmp_path):
    from tests.test_relaion import MULTI_ROWS
    from waon_hf.relaion import run_relaion_ja

    src = tmp_path / "multi.parquet"
    pq.write_table(pa.table(MULTI_ROWS), src)
    out = tmp_path / "ja"
    run_relaion_ja(str(src), out, limit=2)
    manifest = json.loads((out / ".waon" / "manifest.json").read_text())
    assert manifest["job"]["settings"]["limit"] == 2 and not (out / ".waon" / "settings.json").exists()
    with pytest.raises(ValueError, match=r"other settings \(.*settings\.limit.*--overwrite"):
        run_relaion_ja(str(src), out, limit=1)
    run_relaion_ja(str(src), out, limit=1, overwrite=True)


# -- damaged shards -------------------------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_a_damaged_shard_is_redone(warcs, tmp_path, read_rows, caplog, damage):
    out = tmp_path / "out"
    run_extract(warcs, out)
    expected = read_rows(out)
    shard = ShardLayout(out).shard_data(1)
    data = shard.read_bytes()
    shard.write_bytes(b"" if damage == "empty" else data[: len(data) // 2])  # what a power loss leaves
    ShardLayout(out).final_marker.unlink()  # and finalize had not run yet
    with caplog.at_level(logging.WARNING):
        run_extract(warcs, out)
    assert "shard 1 is damaged" in caplog.text and "1 damaged shard(s)" in caplog.text
    assert read_rows(out) == expected
    assert ShardLayout(out).shard_problem(1) is None


def test_a_shard_shorter_than_recorded_is_redone_even_after_finalize(warcs, tmp_path, read_rows):
    out = tmp_path / "out"
    run_extract(warcs, out)
    expected = read_rows(out)
    shard = ShardLayout(out).shard_data(0)
    table = pq.read_table(shard)
    os.unlink(shard)  # data/ holds a hard link: write a new file, not through it
    pq.write_table(table.slice(0, table.num_rows - 1), shard)
    assert "recorded" in ShardLayout(out).shard_problem(0)
    run_extract(warcs, out)
    assert read_rows(out) == expected


# -- one run at a time ----------------------------------------------------------------------------------

HOLD = """
import sys
from waon_hf.pipeline.layout import ShardLayout
layout = ShardLayout(sys.argv[1])
layout.claim()
with layout.lock():
    print("locked", flush=True)
    sys.stdin.readline()
"""


def hold_lock(out: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_run_into_the_folder_is_refused_with_the_pid(warcs, tmp_path, caplog):
    out = tmp_path / "out"
    holder = hold_lock(out)
    try:
        with caplog.at_level(logging.ERROR):
            assert main(["extract", warcs[0].location, "-o", str(out)]) == 1
        assert f"is in use by PID {holder.pid}" in caplog.text
        assert not ShardLayout(out).manifest.exists()  # refused before anything was written
    finally:
        holder.communicate("\n", timeout=30)
    assert main(["extract", warcs[0].location, "-o", str(out)]) == 0  # released when the holder ends


def test_a_killed_holder_leaves_no_lock_and_the_lock_is_reentrant(warcs, tmp_path):
    out = tmp_path / "out"
    holder = hold_lock(out)
    with pytest.raises(FolderInUseError):
        run_extract(warcs[:1], out)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    layout = ShardLayout(out)
    with layout.lock(), layout.lock():  # re-entrant: `waon build` holds it while its last stage takes it
        run_extract(warcs[:1], out, workers=2)  # pool workers run while the driver holds it
    assert layout.lock_file.exists() and (out / ".waon" / "final.json").exists()


# -- temporaries ----------------------------------------------------------------------------------------

def test_temporaries_are_removed_wherever_a_run_writes(warcs, tmp_path):
    out = tmp_path / "out"
    run_extract(warcs[:1], out)
    leftovers = [out / ".stats.json.tmp-999", out / ".waon" / ".manifest.json.tmp-999",
                 out / ".waon" / "shards" / ".00000.parquet.tmp-999",
                 out / ".waon" / "shards" / "00000.translate" / ".chunk-00000.parquet.tmp-999"]
    for p in leftovers:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"half")
    run_extract(warcs[:1], out)
    assert not any(p.exists() for p in leftovers)


def test_how_fast_is_not_a_setting_but_what_is():
    from waon_hf.jobs.stage import StageJob
    from waon_hf.pipeline.manifest import describe_change, job_settings
    from waon_hf.steps.download import DownloadImages

    base = job_settings(StageJob(steps=[DownloadImages()], stage="download"))
    faster = job_settings(StageJob(steps=[DownloadImages(concurrency=256, per_host=16)], stage="download"))
    assert faster == base  # a resumed download may go faster
    bigger = job_settings(StageJob(steps=[DownloadImages(image_size=384)], stage="download"))
    assert describe_change(base, bigger) == "steps.download.config.image_size"
