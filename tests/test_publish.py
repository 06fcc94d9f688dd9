"""`waon publish`: model and benchmark cards, dry runs, the token kept out of output, uploads (mocked)."""

import json
import logging
import shutil
from pathlib import Path

import pytest
from huggingface_hub import DatasetCard, ModelCard
from huggingface_hub.utils import filter_repo_objects

from tests.fake_hub import FakeHfApi
from waon_hf.cli import build_parser, main
from waon_hf.cli.publish import run_publish
from waon_hf.jobs.extract import run_extract
from waon_hf.publish.model_card import render_benchmark_card, render_model_card
from waon_hf.publish.upload import upload_folder_to_hub
from waon_hf.sources.commoncrawl import SourceFile
from waon_hf.testing.synthetic import generate_corpus

REPO = Path(__file__).resolve().parent.parent
TOKEN = "hf_secretvalue123"

RESULTS = {
    "waon_hf_version": "0.1.0",
    "model": {"n_parameters": 1234, "text_preprocessing": {"max_length": 64}},
    "templates": {"set": "default", "templates": ["{}の写真"]},
    "benchmarks": {
        "waon-bench": {"task": "zero-shot classification", "source": "hf://datasets/llm-jp/WAON-Bench (split test)",
                       "metrics": {"top1": 0.123456, "top5": 0.5, "n_total": 1870, "n_evaluated": 1870}},
        "recruit/jafood101": {"task": "zero-shot classification", "source": "/data/recruit/jafood101.csv",
                              "metrics": {"top1": 0.87654, "top5": None, "n_total": 10, "n_evaluated": 10}},
        "recruit": {"task": "mean over subsets", "subsets": ["recruit/jafood101"], "metrics": {"top1": 0.87654}},
        "xm3600": {"task": "image-text retrieval", "source": "hf://datasets/floschne/xm3600 (split ja)",
                   "metrics": {"mean_recall": 0.333333, "image_to_text_recall@1": 0.25,
                               "text_to_image_recall@1": 0.2, "n_images": 3600, "n_texts": 3600}},
    },
}


@pytest.fixture
def model_dir(tmp_path):
    d = tmp_path / "model"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "siglip2", "text_config": {}}))
    (d / "model.safetensors").write_bytes(b"\0" * 100)
    return d


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("publish")
    warc = root / "tiny.warc.gz"
    generate_corpus(warc, n_pages=10, ja_fraction=0.6, seed=7, target_bytes=2000, n_images=4)
    out = root / "ds"
    run_extract([SourceFile(str(warc), "")], out)
    return out


def test_model_card_model_index_holds_exactly_the_results(tmp_path, model_dir):
    results = tmp_path / "results.json"
    results.write_text(json.dumps(RESULTS, ensure_ascii=False))
    card = render_model_card(model_dir, [results], "org/waon-siglip2", base_model="google/siglip2-base-patch16-256",
                             datasets=["org/waon"])
    parsed = ModelCard(str(card))
    assert parsed.data.language == ["ja"] and parsed.data.base_model == "google/siglip2-base-patch16-256"
    assert parsed.data.datasets == ["org/waon"]
    got = {(r.dataset_type, r.metric_config): (r.task_type, r.metric_type, r.metric_value, r.dataset_split)
           for r in parsed.data.eval_results}
    assert [r.dataset_config for r in parsed.data.eval_results if r.dataset_type == "recruit"] == ["jafood101"]
    assert got == {
        ("llm-jp/WAON-Bench", "top1"): ("zero-shot-image-classification", "accuracy", 12.35, "test"),
        ("llm-jp/WAON-Bench", "top5"): ("zero-shot-image-classification", "accuracy", 50.0, "test"),
        ("recruit", "top1"): ("zero-shot-image-classification", "accuracy", 87.65, None),
        ("floschne/xm3600", "mean_recall"): ("image-text-retrieval", "recall", 33.33, "ja"),
        ("floschne/xm3600", "image_to_text_recall@1"): ("image-text-retrieval", "recall", 25.0, "ja"),
        ("floschne/xm3600", "text_to_image_recall@1"): ("image-text-retrieval", "recall", 20.0, "ja"),
    }
    assert "| waon-bench | top1 | 12.35 | test | 1870 / 1870 |" in str(card)
    assert "AutoModel.from_pretrained(\"org/waon-siglip2\")" in str(card)


def test_model_card_without_results_has_no_numbers(model_dir):
    card = render_model_card(model_dir, [], "org/m")
    parsed = ModelCard(str(card))
    assert parsed.data.eval_results is None and "model-index" not in str(card)
    assert "No evaluation results" in str(card)


def test_benchmark_card_parses():
    card = render_benchmark_card(REPO / "samples" / "tiny_bench", "org/tiny-bench", bench_name="tiny")
    parsed = DatasetCard(str(card))
    assert parsed.data.language == ["ja"]
    assert parsed.data.configs[0]["data_files"][0] == {"split": "test", "path": ["tiny_bench.parquet"]}
    text = str(card)
    assert "8 classes in 8 categories" in text and "| food | 1 | 3 |" in text
    assert "waon eval --model" in text and "--bench tiny=org/tiny-bench" in text


def test_dry_run_lists_data_files_and_never_shows_the_token(dataset_dir, monkeypatch, capsys, caplog):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    (dataset_dir / ".waon").mkdir(exist_ok=True)
    (dataset_dir / ".waon" / "leftover.json").write_text("{}")  # bookkeeping: must not be listed
    before = {p: p.stat().st_mtime_ns for p in dataset_dir.rglob("*") if p.is_file()}

    def hub_forbidden(*a, **k):
        raise AssertionError("dry run reached the Hub")

    monkeypatch.setattr("huggingface_hub.HfApi.create_repo", hub_forbidden)
    monkeypatch.setattr("huggingface_hub.HfApi.upload_folder", hub_forbidden)
    with caplog.at_level(logging.DEBUG):
        assert main(["-vv", "publish", "dataset", str(dataset_dir), "--repo", "org/waon-tiny", "--dry-run"]) == 0
    out = capsys.readouterr()
    listed = [line.split()[-1] for line in out.out.split("\n--- README.md ---")[0].splitlines()[1:] if line.strip()]
    expected = sorted(p.relative_to(dataset_dir).as_posix() for p in (dataset_dir / "data").glob("*.parquet"))
    assert expected and listed == sorted([*expected, "README.md", "funnel.svg", "pipeline.json", "stats.json"])
    assert not any(".waon" in name for name in listed)
    assert 'load_dataset("org/waon-tiny"' in out.out
    # Nothing written: the files are untouched, and the token is nowhere.
    assert {p: p.stat().st_mtime_ns for p in dataset_dir.rglob("*") if p.is_file()} == before
    assert TOKEN not in out.out and TOKEN not in out.err
    assert not any(TOKEN in r.getMessage() for r in caplog.records)
    assert not any(TOKEN.encode() in p.read_bytes() for p in dataset_dir.rglob("*") if p.is_file())



def test_upload_calls_the_api_with_the_right_arguments(dataset_dir):
    api = FakeHfApi()
    upload_folder_to_hub(dataset_dir, "org/waon-tiny", "dataset", private=True, api=api)
    (_, repo_id, create_kwargs), (_, upload_kwargs) = api.calls
    assert repo_id == "org/waon-tiny"
    assert create_kwargs == {"repo_type": "dataset", "private": True, "exist_ok": True}
    assert upload_kwargs["repo_id"] == "org/waon-tiny" and upload_kwargs["repo_type"] == "dataset"
    assert upload_kwargs["folder_path"] == str(dataset_dir)
    assert ".waon/**" in upload_kwargs["ignore_patterns"] and ".waon-stages/**" in upload_kwargs["ignore_patterns"]


def test_publish_model_writes_the_card_then_uploads(tmp_path, model_dir, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    results = tmp_path / "results.json"
    results.write_text(json.dumps(RESULTS))
    from waon_hf.cli import build_parser
    from waon_hf.cli.publish import run_publish

    args = build_parser().parse_args(["publish", "model", str(model_dir), "--repo", "org/m", "--results", str(results)])
    api = FakeHfApi()
    assert run_publish(args, api=api) == 0
    card = ModelCard.load(model_dir / "README.md")
    assert len(card.data.eval_results) == 6
    assert [c[0] for c in api.calls] == ["create_repo", "upload_folder"]
    assert api.calls[1][1]["repo_type"] == "model" and api.calls[1][1]["folder_path"] == str(model_dir)
    assert TOKEN not in (model_dir / "README.md").read_text()


def _listed(out: str) -> list[str]:
    return [line.split()[-1] for line in out.split("\n--- README.md ---")[0].splitlines()[1:] if line.strip()]


def test_publish_dataset_lists_only_the_dataset(tmp_path, dataset_dir, capsys):
    """What `make demo` used to leave inside its output (the tiny model, the eval JSON) is not published."""
    folder = tmp_path / "demo_out"
    shutil.copytree(dataset_dir, folder)
    (folder / "tiny-siglip2").mkdir()
    (folder / "tiny-siglip2" / "config.json").write_text("{}")
    (folder / "tiny-siglip2" / "model.safetensors").write_bytes(b"\0" * 64)
    (folder / "eval.json").write_text("{}")
    (folder / "data" / "notes.txt").write_text("mine")
    assert main(["publish", "dataset", str(folder), "--repo", "org/demo", "--dry-run"]) == 0
    listed = _listed(capsys.readouterr().out)
    data = sorted(p.relative_to(folder).as_posix() for p in (folder / "data").glob("train-*.parquet"))
    assert data and listed == sorted([*data, "README.md", "funnel.svg", "pipeline.json", "stats.json"])
    api = FakeHfApi()
    args = build_parser().parse_args(["publish", "dataset", str(folder), "--repo", "org/demo"])
    assert run_publish(args, api=api) == 0
    upload = api.calls[1][1]
    everything = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    sent = sorted(filter_repo_objects(everything, allow_patterns=upload["allow_patterns"],
                                      ignore_patterns=upload["ignore_patterns"]))
    assert sent == listed  # what upload_folder sends is what the dry run listed


def test_publish_refuses_a_symlink_out_of_the_folder(tmp_path, dataset_dir, caplog, capsys):
    folder = tmp_path / "ds"
    shutil.copytree(dataset_dir, folder)
    secret = tmp_path / "outside" / "passwd"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0")
    (folder / "data" / "train-00009-of-00009.parquet").symlink_to(secret)
    (folder / "stats.json").rename(folder / "stats.real.json")
    (folder / "stats.json").symlink_to(folder / "stats.real.json")  # inside the folder: fine
    api = FakeHfApi()
    with caplog.at_level(logging.ERROR):
        assert main(["publish", "dataset", str(folder), "--repo", "org/x", "--dry-run"]) == 1
    assert "symlink" in caplog.text and str(secret) in caplog.text and "train-00009-of-00009.parquet" in caplog.text
    assert "root:x" not in capsys.readouterr().out
    with pytest.raises(ValueError, match="outside the folder"):
        run_publish(build_parser().parse_args(["publish", "dataset", str(folder), "--repo", "org/x"]), api=api)
    with pytest.raises(ValueError, match="outside the folder"):
        upload_folder_to_hub(folder, "org/x", "dataset", api=api)
    assert not any(c[0] == "upload_folder" for c in api.calls)
    (folder / "data" / "train-00009-of-00009.parquet").unlink()
    assert main(["publish", "dataset", str(folder), "--repo", "org/x", "--dry-run"]) == 0


def test_publish_model_takes_the_recorded_results_and_a_complete_other_licence(tmp_path, capsys):
    from waon_hf.cli.publish import run_publish

    model = tmp_path / "best"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "siglip"}))
    results = {"benchmarks": {"tiny": {"task": "zero-shot classification", "source": str(tmp_path / "bench"),
                                       "metrics": {"top1": 0.375, "top5": 0.875, "n_evaluated": 8, "n_total": 8}}}}
    (model / "eval_results.json").write_text(json.dumps(results))
    args = build_parser().parse_args(["publish", "model", str(model), "--repo", "org/model", "--dry-run"])
    assert run_publish(args) == 0
    card = ModelCard(capsys.readouterr().out.split("--- README.md ---", 1)[1])
    assert card.data.eval_results and card.data.eval_results[0].metric_value == 37.5  # from DIR/eval_results.json
    assert card.data.license == "other" and card.data.license_name and card.data.license_link == "README.md"
    args = build_parser().parse_args(["publish", "model", str(model), "--repo", "org/model", "--dry-run",
                                      "--license", "apache-2.0"])
    assert run_publish(args) == 0
    card = ModelCard(capsys.readouterr().out.split("--- README.md ---", 1)[1])
    assert card.data.license == "apache-2.0" and card.data.license_name is None


@pytest.mark.parametrize("flags", [["--results", "r.json"], ["--base-model", "org/base"], ["--dataset", "org/d"],
                                   ["--license", "mit"]])
def test_model_only_flags_are_refused_for_a_dataset(tmp_path, flags):
    from waon_hf.cli.publish import run_publish
    from waon_hf.config import ConfigError

    (tmp_path / "README.md").write_text("---\n---\n")
    args = build_parser().parse_args(["publish", "dataset", str(tmp_path), "--repo", "org/d", "--dry-run", *flags])
    with pytest.raises(ConfigError, match="do not apply to publish dataset"):
        run_publish(args)
