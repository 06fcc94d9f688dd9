"""Benchmarks that publish only image URLs: fetched through the downloader into a cache, then scored.

A local server on 127.0.0.1 stands in for the image hosts (requests are counted on it); the tables
are WAON-Bench's and Recruit's published layouts (waon_hf.testing.url_bench).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.http_server import serve
from waon_hf.eval.benchmarks import load_benchmark
from waon_hf.eval.hydrate import (
    ImageCache,
    ManifestMismatchError,
    default_cache_dir,
    hydrate_task,
    make_downloader,
    read_manifest,
)
from waon_hf.testing.tiny_models import build_tiny_siglip2
from waon_hf.testing.url_bench import FAULTS, write_url_benchmark


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_tiny_siglip2(tmp_path_factory.mktemp("tiny") / "siglip2", seed=0)


@pytest.fixture
def site(tmp_path):
    """(server, WAON-Bench-format parquet, Recruit-format folder); both tables point at the server."""
    server = serve(tmp_path / "www")
    with server:
        waon = write_url_benchmark(tmp_path, server.url, "waon-bench")
        recruit = write_url_benchmark(tmp_path, server.url, "recruit")
        yield server, waon, recruit


def image_requests(server) -> list[str]:
    return [path for path, _ in server.requests if path != "/robots.txt"]


def run_eval(tiny_model, bench: str, out: Path, cache: Path, *extra: str) -> dict:
    from waon_hf.cli import main

    assert main(["eval", "--model", tiny_model, "--bench", bench, "-o", str(out), "--cache-dir", str(cache),
                 "--allow-private", "--templates", "single", *extra]) == 0
    return json.loads(out.read_text(encoding="utf-8"))


def test_default_cache_dir_follows_the_hf_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_DATASETS_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert default_cache_dir().is_relative_to(tmp_path / "hf" / "datasets")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "ds"))
    assert default_cache_dir().is_relative_to(tmp_path / "ds")


def test_published_tables_are_url_only(site):
    _, waon, recruit = site
    (task,) = load_benchmark("waon-bench", str(waon))
    assert task.images.url_only and len(task) == 24 and len(task.class_names) == 8
    subsets = load_benchmark("recruit", str(recruit))
    assert [t.name for t in subsets] == ["recruit/jafood101", "recruit/jaflower30", "recruit/jafacility20",
                                         "recruit/jalandmark10"]
    # the class is the CSV's `category`; no WAON-style category grouping is invented for Recruit
    assert all(t.images.url_only and len(t) == 6 and len(t.class_names) == 2 and t.categories is None
               for t in subsets)


def test_waon_bench_from_urls_scores_what_was_fetched_and_second_run_sends_nothing(site, tiny_model, tmp_path):
    server, waon, _ = site
    cache = tmp_path / "cache"
    res = run_eval(tiny_model, f"waon-bench={waon}", tmp_path / "r1.json", cache)
    bench = res["benchmarks"]["waon-bench"]
    unfetched = {u["row"]: u["status"] for u in bench["images"]["unfetched"]}
    assert unfetched == FAULTS
    assert bench["images"]["statuses"] == {"http_404": 2, "not_image": 1, "ok": 20, "robots_disallowed": 1}
    m = bench["metrics"]
    assert (m["n_total"], m["n_evaluated"], m["n_missing"], m["n_benchmark_rows"]) == (20, 20, 0, 24)
    assert m["n_classes"] == 8  # every class stays a candidate
    assert bench["evaluated"] == "evaluated 20 of 24"
    assert 0.0 <= m["top1"] <= 1.0
    from waon_hf.publish.model_card import eval_results_from

    _, card_rows = eval_results_from(res)
    assert {r["counts"] for r in card_rows} == {"evaluated 20 of 24"}  # the card shows the benchmark's full size
    first = image_requests(server)
    assert len(first) == 23 and not any(p.startswith("/private/") for p in first)  # robots: never asked

    n_before = len(server.requests)
    again = run_eval(tiny_model, f"waon-bench={waon}", tmp_path / "r2.json", cache)
    assert len(server.requests) == n_before  # everything, failures included, came from the cache
    assert again["benchmarks"]["waon-bench"]["metrics"]["top1"] == m["top1"]
    assert again["benchmarks"]["waon-bench"]["images"] == bench["images"]

    manifest = read_manifest(tmp_path / "r1.manifest.json")
    assert len(manifest) == 24 and {e["status"] for e in manifest.values()} == {"ok", "http_404", "not_image",
                                                                                "robots_disallowed"}
    assert all((e["sha256"] is not None) == (e["status"] == "ok") for e in manifest.values())


def test_offline_uses_the_cache_only(site, tiny_model, tmp_path):
    server, waon, _ = site
    res = run_eval(tiny_model, f"waon-bench={waon}", tmp_path / "r.json", tmp_path / "empty", "--offline")
    assert server.requests == []
    bench = res["benchmarks"]["waon-bench"]
    assert bench["images"]["statuses"] == {"not_cached": 24} and "error" in bench
    assert bench["evaluated"] == "evaluated 0 of 24"


def test_manifest_fixes_the_image_set(site, tiny_model, tmp_path):
    server, waon, _ = site
    cache = tmp_path / "cache"
    first = run_eval(tiny_model, f"waon-bench={waon}", tmp_path / "r1.json", cache)
    manifest = tmp_path / "r1.manifest.json"
    # a new cache: the manifest's images are fetched again and must be the same bytes
    res = run_eval(tiny_model, f"waon-bench={waon}", tmp_path / "r2.json", tmp_path / "cache2",
                   "--manifest", str(manifest))
    assert res["benchmarks"]["waon-bench"]["metrics"] == first["benchmarks"]["waon-bench"]["metrics"]
    assert not any(p.startswith(("/gone/", "/private/")) for p in image_requests(server)[23:])  # failures kept
    # a cached file that no longer matches its sha256 is an error
    entry = next(e for e in read_manifest(manifest).values() if e["status"] == "ok")
    ImageCache(cache).object_path(entry["sha256"]).write_bytes(b"tampered")
    (task,) = load_benchmark("waon-bench", str(waon))
    with pytest.raises(ManifestMismatchError, match="does not hash"):
        hydrate_task(task, cache=ImageCache(cache), manifest=read_manifest(manifest),
                     downloader=make_downloader(allow_private=True))


def test_manifest_detects_an_image_that_changed_on_the_server(site, tmp_path):
    server, waon, _ = site
    (task,) = load_benchmark("waon-bench", str(waon))
    fetched = hydrate_task(task, cache=ImageCache(tmp_path / "c1"), downloader=make_downloader(allow_private=True))
    manifest = {f.url: f.manifest_entry() for f in fetched}
    changed = next(f for f in fetched if f.status == "ok")
    name = changed.url.rsplit("/", 1)[1]
    (server.root / name).write_bytes((Path(__file__).parent.parent / "samples/tiny_bench/README.md").read_bytes())
    (task,) = load_benchmark("waon-bench", str(waon))
    with pytest.raises(ManifestMismatchError, match="image changed"):
        hydrate_task(task, cache=ImageCache(tmp_path / "c2"), manifest=manifest,
                     downloader=make_downloader(allow_private=True))


def test_loopback_is_refused_unless_allowed(site, tmp_path):
    _, waon, _ = site
    (task,) = load_benchmark("waon-bench", str(waon))
    hydrate_task(task, cache=ImageCache(tmp_path / "c"), downloader=make_downloader())
    assert task.fetched["statuses"] == {"blocked_private_address": 24}


def test_recruit_from_urls(site, tiny_model, tmp_path):
    server, _, recruit = site
    cache = tmp_path / "cache"
    res = run_eval(tiny_model, f"recruit={recruit}", tmp_path / "r.json", cache)
    food = res["benchmarks"]["recruit/jafood101"]
    assert {u["row"]: u["status"] for u in food["images"]["unfetched"]} == FAULTS
    assert food["evaluated"] == "evaluated 2 of 6"
    assert all(res["benchmarks"][f"recruit/{s}"]["evaluated"] == "evaluated 6 of 6"
               for s in ("jaflower30", "jafacility20", "jalandmark10"))
    assert res["benchmarks"]["recruit"]["task"] == "mean over subsets"
    n = len(server.requests)
    run_eval(tiny_model, f"recruit={recruit}", tmp_path / "r2.json", cache)
    assert len(server.requests) == n


def test_bench_snapshot_freezes_the_fetched_images_and_loads_back(site, tiny_model, tmp_path):
    from tests.fake_hub import FakeHfApi
    from waon_hf.cli import build_parser
    from waon_hf.cli.eval import run_bench_snapshot

    server, waon, recruit = site
    out = tmp_path / "snap"
    args = build_parser().parse_args(["bench-snapshot", "--bench", f"waon-bench={waon}", "-o", str(out),
                                      "--cache-dir", str(tmp_path / "c"), "--allow-private",
                                      "--publish", "org/waon-bench-mirror"])
    api = FakeHfApi()
    assert run_bench_snapshot(args, api=api) == 0
    assert api.calls[0][2]["private"] is True and "README.md" in api.uploaded_files()
    (task,) = load_benchmark("waon-bench", str(out))
    # every row and class kept; the rows not fetched are known as such, so they leave the evaluation
    assert not task.images.url_only and len(task) == 24 and len(task.class_names) == 8
    assert {u["row"]: u["status"] for u in task.fetched["unfetched"]} == FAULTS
    assert sum(img is not None for img, _ in task.images.load(range(24))) == 20
    assert "20 of 24" in (out / "README.md").read_text(encoding="utf-8")
    assert len(read_manifest(out / "images.manifest.json")) == 24
    # the snapshot scores exactly like the fetched benchmark
    live = run_eval(tiny_model, f"waon-bench={waon}", tmp_path / "live.json", tmp_path / "c")
    frozen = run_eval(tiny_model, f"waon-bench={out}", tmp_path / "frozen.json", tmp_path / "none", "--offline")
    assert frozen["benchmarks"]["waon-bench"]["metrics"] == live["benchmarks"]["waon-bench"]["metrics"]
    assert frozen["benchmarks"]["waon-bench"]["evaluated"] == "evaluated 20 of 24"

    n = len(server.requests)
    args = build_parser().parse_args(["bench-snapshot", "--bench", f"recruit={recruit}", "-o", str(tmp_path / "r"),
                                      "--cache-dir", str(tmp_path / "c"), "--allow-private"])
    assert run_bench_snapshot(args) == 0
    subsets = load_benchmark("recruit", str(tmp_path / "r"))
    assert [t.fetched["n_fetched"] for t in subsets] == [2, 6, 6, 6] and all(len(t) == 6 for t in subsets)
    assert len(server.requests) > n  # Recruit's images were not cached yet


def test_a_cached_image_that_no_longer_decodes_is_missing_at_its_benchmark_row(site, tiny_model, tmp_path):
    _, waon, _ = site
    cache = tmp_path / "cache"
    run_eval(tiny_model, f"waon-bench={waon}", tmp_path / "r1.json", cache)
    entry = list(read_manifest(tmp_path / "r1.manifest.json").values())[10]
    ImageCache(cache).object_path(entry["sha256"]).write_bytes(b"broken")
    res = run_eval(tiny_model, f"waon-bench={waon}", tmp_path / "r2.json", cache)["benchmarks"]["waon-bench"]
    assert res["missing"]["reasons"] == {"undecodable": 1}
    assert [e["row"] for e in res["missing"]["examples"]] == [10]  # not row 6 of the fetched subset
    assert res["missing"]["examples"][0]["url"] == entry["url"]
    assert res["metrics"]["n_missing"] == 1 and res["evaluated"] == "evaluated 20 of 24"  # counted wrong
