"""URL outputs (`-o memory://...`, `file://...`): built in a local work folder, then uploaded with
fsspec, resumably; bookkeeping never leaves the work folder."""

from pathlib import Path

import fsspec
import pytest

from tests.fake_hub import FakeHfApi
from waon_hf.cli import main
from waon_hf.jobs.extract import ExtractJob, run_extract
from waon_hf.publish.remote_output import default_work_dir, local_folder_for, upload_dataset
from waon_hf.sources.commoncrawl import SourceFile
from waon_hf.testing.synthetic import generate_corpus


@pytest.fixture(scope="module")
def warcs(tmp_path_factory):
    root = tmp_path_factory.mktemp("warcs")
    for i in range(3):
        generate_corpus(root / f"part-{i}.warc.gz", n_pages=20, ja_fraction=0.8, seed=700 + i, target_bytes=2500,
                        n_images=5, oversized_bytes=250_000)
    return sorted(root.glob("part-*.warc.gz"))


@pytest.fixture(scope="module")
def dataset(warcs, tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "out"
    run_extract([SourceFile(str(p), "") for p in warcs], out, ExtractJob(max_payload_bytes=200_000))
    return out


def local_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and ".waon" not in p.relative_to(folder).parts}


def remote_files(url: str) -> dict[str, bytes]:
    fs, root = fsspec.core.url_to_fs(url)
    root = root.rstrip("/")
    return {p[len(root) + 1:]: fs.cat_file(p) for p in fs.find(root)}


def test_upload_copies_the_dataset_and_resumes(dataset, tmp_path):
    url = f"file://{tmp_path}/remote/waon"
    expected = local_files(dataset)
    data_files = [k for k in expected if k.startswith("data/")]
    assert len(data_files) >= 2 and "README.md" in expected and "stats.json" in expected

    first = upload_dataset(dataset, url)
    assert remote_files(url) == expected  # byte for byte, and nothing of .waon/
    assert first.uploaded == len(expected) and first.skipped == 0

    # an interrupted upload: one data file cut short, another missing, plus a stale file of an older run
    remote = tmp_path / "remote" / "waon"
    (remote / data_files[0]).write_bytes(b"PAR1 cut")
    (remote / data_files[1]).unlink()
    (remote / "data" / "train-00007-of-00009.parquet").write_bytes(b"old run")
    second = upload_dataset(dataset, url)
    assert remote_files(url) == expected
    metadata = len(expected) - len(data_files)
    assert second.uploaded == 2 + metadata  # the two damaged data files, and the card/JSON (always rewritten)
    assert second.skipped == len(data_files) - 2
    assert second.removed == 1


def test_cli_extract_to_a_memory_url(warcs, dataset, tmp_path):
    url = "memory://bucket/waon-test"
    work = tmp_path / "work"
    argv = ["extract", *map(str, warcs), "-o", url, "--work-dir", str(work), "--config", str(tmp_path / "job.yaml")]
    (tmp_path / "job.yaml").write_text("max_payload_bytes: 200000\n")
    assert main(argv) == 0
    assert (work / ".waon" / "final.json").exists()  # the run's bookkeeping stays local
    got = remote_files(url)
    assert set(got) == set(local_files(work))
    assert {k: v for k, v in got.items() if k.startswith("data/")} == \
        {k: v for k, v in local_files(dataset).items() if k.startswith("data/")}
    assert not any(k.startswith(".waon") for k in got)


def test_output_folder_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("WAON_CACHE", str(tmp_path / "cache"))
    folder, url = local_folder_for("memory://bucket/waon/")
    assert url == "memory://bucket/waon/" and folder == default_work_dir("memory://bucket/waon/")
    assert folder.parent == tmp_path / "cache" / "work" and folder.name.startswith("waon-")
    assert default_work_dir("memory://other/waon/") != folder  # keyed by the whole URL
    assert local_folder_for("out/") == (Path("out/"), None)
    with pytest.raises(ValueError, match="--work-dir is for URL outputs"):
        local_folder_for("out/", str(tmp_path / "w"))
    with pytest.raises(ValueError, match="nosuchscheme"):  # before any work, not after it
        local_folder_for("nosuchscheme://bucket/x")
    with pytest.raises(ValueError, match="hf://datasets/<org>/<name>"):
        local_folder_for("hf://org/a-model")
    assert local_folder_for("hf://datasets/org/waon")[1] == "hf://datasets/org/waon"



def test_hub_url_goes_through_the_folder_upload(dataset):
    """hf:// is uploaded with HfApi.upload_folder (few commits), checked here with a stand-in API."""
    api = FakeHfApi()
    upload_dataset(dataset, "hf://datasets/org/waon-x", api=api)
    (_, repo_id, create), (_, upload) = api.calls
    assert repo_id == "org/waon-x" and create["repo_type"] == "dataset"
    assert upload["repo_type"] == "dataset" and ".waon/**" in upload["ignore_patterns"]
    with pytest.raises(ValueError, match="hf://datasets/<org>/<name>"):
        upload_dataset(dataset, "hf://datasets/org/waon-x/subdir", api=FakeHfApi())


def test_upload_sends_only_the_dataset_and_refuses_links_out(dataset, tmp_path):
    import shutil

    folder = tmp_path / "ds"
    shutil.copytree(dataset, folder)
    expected = local_files(folder)
    (folder / "tiny-siglip2").mkdir()
    (folder / "tiny-siglip2" / "config.json").write_text("{}")
    (folder / "eval.json").write_text("{}")
    url = f"file://{tmp_path}/remote/waon"
    upload_dataset(folder, url)
    assert remote_files(url) == expected  # the model and the eval JSON stayed home
    (tmp_path / "secret").write_text("key")
    (folder / "stats.json").unlink()
    (folder / "stats.json").symlink_to(tmp_path / "secret")
    with pytest.raises(ValueError, match="outside the folder"):
        upload_dataset(folder, f"file://{tmp_path}/remote2/waon")
    assert not (tmp_path / "remote2").exists()
