"""The Ray executor against one local Ray instance: same rows as the local executor, worker death
retried without loss or duplication, shard exceptions recorded like the local executor, resume."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from waon_hf.cli import main
from waon_hf.jobs.extract import ExtractJob, run_extract
from waon_hf.jobs.stage import StageJob
from waon_hf.pipeline.executors import LocalExecutor, RayExecutor, make_executor
from waon_hf.pipeline.layout import ShardLayout
from waon_hf.pipeline.runner import ShardsFailedError, run_stage
from waon_hf.sources.commoncrawl import SourceFile
from waon_hf.stats import Stats
from waon_hf.steps.dedup import ExactDedup
from waon_hf.steps.text_filters import CaptionLength
from waon_hf.testing.faulty_jobs import FailOnceJob, KillOnceJob
from waon_hf.testing.synthetic import generate_corpus

ray = pytest.importorskip("ray")

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "samples" / "sample.warc.gz"


@pytest.fixture(scope="module")
def ray_instance():
    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """The sample plus three small synthetic WARC files: four shards."""
    root = tmp_path_factory.mktemp("warcs")
    for i in range(3):
        generate_corpus(root / f"part-{i}.warc.gz", n_pages=30, ja_fraction=0.7, seed=300 + i, target_bytes=3000,
                        n_images=6, oversized_bytes=250_000)
    return [SourceFile(str(SAMPLE), "")] + [SourceFile(str(p), "") for p in sorted(root.glob("part-*.warc.gz"))]


def job(**kwargs) -> ExtractJob:
    return ExtractJob(max_payload_bytes=200_000, **kwargs)


def without_timing(stats: Stats) -> dict:
    return {k: v for k, v in stats.items() if not k.endswith(".milliseconds")}  # shard and step wall times


@pytest.fixture(scope="module")
def reference(sources, tmp_path_factory, read_rows):
    out = tmp_path_factory.mktemp("local") / "out"
    stats = run_extract(sources, out, job(), workers=1)
    return stats, read_rows(out), out


def test_ray_gives_exactly_the_rows_of_the_local_executor(ray_instance, sources, reference, tmp_path, read_rows):
    stats, expected, _ = reference
    assert len(expected) > 50
    got_stats = run_extract(sources, tmp_path / "out", job(), executor=RayExecutor(max_in_flight=2))
    assert read_rows(tmp_path / "out") == expected  # same rows, same order
    assert without_timing(got_stats) == without_timing(stats)
    assert ray.is_initialized()  # the module's instance is still up: not ours to shut down


def test_a_later_stage_on_ray_equals_the_local_executor(ray_instance, reference, tmp_path, read_rows):
    def stage():
        return StageJob(steps=[CaptionLength(min_chars=8)], global_steps=[ExactDedup(columns=("caption",))],
                        stage="longer_captions")
    pairs = reference[2]
    assert len(list((pairs / "data").glob("train-*.parquet"))) >= 2  # several shards
    local = run_stage(pairs, tmp_path / "local", stage())
    on_ray = run_stage(pairs, tmp_path / "ray", stage(), executor="ray")
    assert read_rows(tmp_path / "ray") == read_rows(tmp_path / "local") and read_rows(tmp_path / "local")
    assert without_timing(on_ray) == without_timing(local)


def test_worker_killed_mid_shard_is_retried_and_nothing_is_lost_or_duplicated(ray_instance, sources, reference,
                                                                               tmp_path, read_rows):
    markers = tmp_path / "markers"
    markers.mkdir()
    out = tmp_path / "out"
    killer = KillOnceJob(max_payload_bytes=200_000, kill_index=1, marker_dir=str(markers))
    stats = run_extract(sources, out, killer, executor=RayExecutor(max_retries=2))
    assert (markers / "killed-1").exists()  # the first attempt of shard 1 really died
    assert len(list(markers.glob("ran-1-*"))) == 1  # and exactly one later attempt completed it
    got = read_rows(out)
    assert got == reference[1]
    keys = [(r["warc_file"], r["warc_record_id"], r["url"], r["caption"]) for r in got]
    assert len(keys) == len(set(keys))
    assert without_timing(stats) == without_timing(reference[0])


def test_worker_death_beyond_retries_is_a_failed_shard(ray_instance, sources, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    out = tmp_path / "out"
    killer = KillOnceJob(max_payload_bytes=200_000, kill_index=2, marker_dir=str(markers))
    with pytest.raises(ShardsFailedError, match="1 of 4"):
        run_extract(sources, out, killer, executor=RayExecutor(max_retries=0))
    failed = json.loads((out / ".waon" / "failed.json").read_text())
    assert list(failed) == ["2"]
    layout = ShardLayout(out)
    assert [layout.is_done(i) for i in range(4)] == [True, True, False, True]
    run_extract(sources, out, killer, executor=RayExecutor(max_retries=0))  # the marker exists: this one succeeds
    assert (out / ".waon" / "final.json").exists()


def test_exception_in_a_shard_is_recorded_like_the_local_executor_and_rerun_completes(
        ray_instance, sources, reference, tmp_path, read_rows):
    markers = tmp_path / "markers"
    markers.mkdir()
    failing = FailOnceJob(max_payload_bytes=200_000, fail_index=3, marker_dir=str(markers))
    failures = {}
    for name, executor in (("local", LocalExecutor(1)), ("ray", RayExecutor())):
        out = tmp_path / name
        with pytest.raises(ShardsFailedError) as error:
            run_extract(sources, out, failing, executor=executor)
        failures[name] = json.loads((out / ".waon" / "failed.json").read_text())
        assert "injected" in str(error.value)
        assert [ShardLayout(out).is_done(i) for i in range(4)] == [True, True, True, False]
        assert not (out / "data").exists()
    assert failures["ray"] == failures["local"] == {"3": failures["local"]["3"]}
    assert failures["ray"]["3"].startswith("OSError: input ")

    out = tmp_path / "ray"
    done_before = {i: ShardLayout(out).shard_stats(i).stat().st_mtime_ns for i in range(3)}
    (markers / "fixed").touch()
    stats = run_extract(sources, out, failing, executor=RayExecutor())
    assert {i: ShardLayout(out).shard_stats(i).stat().st_mtime_ns for i in range(3)} == done_before  # not re-run
    assert not (out / ".waon" / "failed.json").exists()
    assert read_rows(out) == reference[1]
    assert without_timing(stats) == without_timing(reference[0])


def test_cli_extract_with_the_ray_executor(ray_instance, sources, reference, tmp_path, capsys, read_rows):
    out = tmp_path / "out"
    config = tmp_path / "job.yaml"
    config.write_text("max_payload_bytes: 200000\n")
    argv = ["extract", *[s.location for s in sources], "-o", str(out), "--executor", "ray", "--config", str(config)]
    assert main(argv) == 0
    assert read_rows(out) == reference[1]
    assert "pairs written to" in capsys.readouterr().out


def test_executor_choice_errors():
    with pytest.raises(ValueError, match="unknown executor"):
        make_executor("dask")
    with pytest.raises(ValueError, match="--ray-address needs --executor ray"):
        make_executor("local", ray_address="auto")
    assert isinstance(make_executor("ray", workers=2, ray_address="auto"), RayExecutor)
    from waon_hf.cli import build_parser
    from waon_hf.cli.options import executor_from_args

    with pytest.raises(ValueError, match="--ray-gpus-per-task needs --executor ray"):
        executor_from_args(build_parser().parse_args(["score", "in/", "-o", "out/", "--ray-gpus-per-task", "1"]))


@pytest.mark.parametrize("argv", [
    ["build", "CC-MAIN-2025-18", "-o", "s3://bucket/waon/", "--executor", "ray", "--ray-address", "auto"],
    ["extract", "x.warc.gz", "-o", "out/", "--executor", "ray", "--workers", "4"],
    ["download", "pairs/", "-o", "images/", "--executor", "ray"],
    ["score", "dedup/", "-o", "final/", "--executor", "ray", "--ray-address", "ray://head:10001",
     "--ray-gpus-per-task", "1"],
    ["merge", "out-0/", "out-1/", "-o", "merged/", "--executor", "ray"],
    ["relaion-ja", "laion/relaion2B-multi-research-safe", "-o", "ja/", "--executor", "ray"],
    ["translate", "en/", "-o", "en-ja/", "--model", "m", "--backend", "vllm", "--device", "cuda", "--executor", "ray",
     "--ray-address", "auto", "--ray-gpus-per-task", "1"],
])
def test_commands_take_the_executor_options(argv):
    from waon_hf.cli import build_parser
    from waon_hf.cli.options import executor_from_args

    args = build_parser().parse_args(argv)
    executor = executor_from_args(args)
    assert isinstance(executor, RayExecutor) and executor.address == getattr(args, "ray_address", None)
    assert executor.num_gpus == (1 if "--ray-gpus-per-task" in argv else 0)


def test_a_session_shuts_down_only_the_ray_it_started(ray_instance):
    with RayExecutor() as executor:  # Ray is already up: the session must not take it over
        assert ray.is_initialized() and not executor._started
    assert ray.is_initialized()


def test_relaion_ja_on_ray_equals_the_local_executor(ray_instance, tmp_path, read_rows):
    import pyarrow as pa

    src = tmp_path / "multi"
    src.mkdir()
    for k in range(3):
        pq.write_table(pa.table({"URL": [f"https://a/{k}-{i}.jpg" for i in range(4)],
                                 "TEXT": [f"写真その{k}-{i}" for i in range(4)],
                                 "LANGUAGE": ["ja", "en", "ja", "ja"]}), src / f"part-{k}.parquet")
    for executor in ("local", "ray"):
        assert main(["relaion-ja", str(src), "-o", str(tmp_path / executor), "--limit", "7",
                     "--executor", executor]) == 0
    assert read_rows(tmp_path / "ray") == read_rows(tmp_path / "local") and len(read_rows(tmp_path / "local")) == 7
