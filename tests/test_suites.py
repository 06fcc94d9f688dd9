"""The llm-jp-clip and WAON suites on the offline stand-ins, and the Japanese class-name lists."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
import yaml

from waon_hf.eval.benchmarks import load_benchmark
from waon_hf.eval.labelled import LABELLED, class_name_list, japanese_names
from waon_hf.eval.suites import SUITES, suite_benchmarks
from waon_hf.testing.tiny_models import build_tiny_siglip2

REPO = Path(__file__).resolve().parents[1]
STANDINS = REPO / "samples" / "standins"
CLASSNAMES = REPO / "waon_hf" / "data" / "classnames"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_tiny_siglip2(tmp_path_factory.mktemp("tiny") / "siglip2", seed=0)


@pytest.mark.parametrize("spec", LABELLED, ids=lambda s: s.name)
def test_class_name_lists_have_a_source_and_cover_every_class(spec):
    doc = class_name_list(spec.classnames)
    assert doc["dataset"] == spec.hub_id and doc["source"]["license"] == "Apache-2.0"
    assert len(doc["source"]["commit"]) == 40
    assert f"{spec.classnames}.json" in (CLASSNAMES / "SOURCES.md").read_text(encoding="utf-8")
    expected = {"imagenet1k": 1000, "cifar10": 10, "cifar100": 100, "food101": 101, "caltech101": 101}
    assert len(doc["names"]) == expected[spec.classnames]
    assert all(n["ja"].strip() and n["en"].strip() for n in doc["names"])


def test_label_names_select_the_japanese_names_in_the_datasets_order():
    # the dataset's ClassLabel order, not the list's, decides the class index
    assert japanese_names("cifar10", ["truck", "airplane"], 2) == ["トラック", "飛行機"]
    with pytest.raises(ValueError, match="no Japanese name"):
        japanese_names("cifar10", ["airplane", "spaceship"], 2)
    with pytest.raises(ValueError, match="1000 Japanese names for 999"):
        japanese_names("imagenet1k", None, 999)


@pytest.mark.parametrize("name", ["imagenet-1k", "cifar10", "cifar100", "food101", "caltech101"])
def test_labelled_standins_load_in_the_hub_format(name):
    (task,) = load_benchmark(name, str(STANDINS / name))
    assert len(task) == 6 and all(img is not None for img, _ in task.images.load(range(6)))
    doc = class_name_list(next(s.classnames for s in LABELLED if s.name == name))
    assert len(task.class_names) == len(doc["names"])
    if doc["keyed_by"] == "label_name":  # the stand-in carries the Hub's label names
        feature = datasets.load_dataset(str(STANDINS / name), split=None)
        split = next(iter(feature.values()))
        names = split.features[doc["label_column"]].names
        assert task.class_names[task.labels[1]] == {n["en"]: n["ja"] for n in doc["names"]}[names[task.labels[1]]]


def test_xm3600_and_recruit_standins_load():
    (xm,) = load_benchmark("xm3600", str(STANDINS / "xm3600"))
    assert xm.n_images == 6 and len(xm.captions) == 6 and xm.source.endswith("(split ja)")
    subsets = load_benchmark("recruit", str(STANDINS / "recruit"))
    assert [len(t) for t in subsets] == [4, 4, 4, 4] and not any(t.images.url_only for t in subsets)


def test_a_label_column_under_another_name_is_an_error(tmp_path):
    ds = datasets.load_dataset(str(STANDINS / "cifar10"), split="test").rename_column("label", "y")
    path = tmp_path / "c.parquet"
    ds.to_parquet(str(path))
    with pytest.raises(ValueError, match="no label column 'label'"):
        load_benchmark("cifar10", str(path))


def test_suite_members_and_overrides():
    assert [n for n, _ in suite_benchmarks("llm-jp-clip")] == list(SUITES["llm-jp-clip"])
    assert dict(suite_benchmarks("waon", [("xm3600", "x")]))["xm3600"] == "x"
    with pytest.raises(ValueError, match="not in suite"):
        suite_benchmarks("waon", [("cifar10", "x")])


def _overrides(suite: str) -> str:
    local = {"waon-bench": REPO / "samples" / "tiny_bench"}
    return ",".join(f"{n}={local.get(n, STANDINS / n)}" for n in SUITES[suite])


@pytest.mark.parametrize("suite", ["llm-jp-clip", "waon"])
def test_suite_runs_offline_and_writes_one_json_per_benchmark_and_the_summary(suite, tiny_model, tmp_path):
    from waon_hf.cli import main

    out = tmp_path / "results"
    assert main(["eval", "--model", tiny_model, "--suite", suite, "--bench", _overrides(suite), "-o", str(out),
                 "--templates", "single", "--offline"]) == 0
    files = sorted(p.name for p in out.glob("*.json"))
    assert files == sorted(f"{n}.json" for n in SUITES[suite])
    recruit = json.loads((out / "recruit.json").read_text(encoding="utf-8"))
    assert set(recruit["benchmarks"]) == {"recruit", "recruit/jafood101", "recruit/jaflower30",
                                          "recruit/jafacility20", "recruit/jalandmark10"}
    summary = (out / "summary.md").read_text(encoding="utf-8")
    for name in SUITES[suite]:
        assert f"| {name} |" in summary or f"| {name}/" in summary
    index = yaml.safe_load((out / "model-index.yaml").read_text(encoding="utf-8"))["model-index"]
    datasets_named = {r["dataset"]["type"] for r in index[0]["results"]}
    assert {"xm3600", "recruit"} <= datasets_named
    if suite == "llm-jp-clip":
        assert {"imagenet-1k", "cifar10", "cifar100", "food101", "caltech101"} <= datasets_named
