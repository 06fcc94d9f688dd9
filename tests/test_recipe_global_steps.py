"""Global steps of the recipes: caption frequency, (pHash, caption), score quantile, semantic dedup.

Each is checked against a plain-Python reference over all rows, through `run_stage` with 1 and 2
workers, and after a kill during the global steps followed by a re-run.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from waon_hf.jobs.stage import StageJob
from waon_hf.pipeline.runner import run_stage
from waon_hf.steps.global_filters import CaptionFrequency, PHashCaptionDedup, ScoreQuantile
from waon_hf.steps.global_steps import GlobalStep, build_global_step
from waon_hf.steps.semantic_dedup import SemanticDedup

REPO = Path(__file__).resolve().parents[1]
DIM = 32


def planted_embeddings(n: int, dim: int, n_copies: int, seed: int) -> np.ndarray:
    """Random unit vectors with near copies (cosine distance < 0.05) and a few chains planted."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    src = rng.integers(0, n, n_copies)
    dst = rng.integers(0, n, n_copies)
    for s, d in zip(src, dst, strict=True):
        if s != d:
            noise = rng.standard_normal(dim).astype(np.float32)
            x[d] = x[s] + 0.15 * noise / np.linalg.norm(noise)  # cos ~ 0.99
    # far pairs: cosine distance ~ 0.3, must stay apart
    for s, d in zip(rng.integers(0, n, 20), rng.integers(0, n, 20), strict=True):
        if s != d:
            noise = rng.standard_normal(dim).astype(np.float32)
            x[d] = x[s] + 0.9 * noise / np.linalg.norm(noise)
    return x


def brute_force_keep(x: np.ndarray, max_distance: float) -> np.ndarray:
    """Reference: all pairs with numpy, union-find in Python, the smallest index of a cluster kept."""
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    parent = list(range(len(u)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for start in range(0, len(u), 2048):
        sims = u[start:start + 2048] @ u.T
        for a, b in zip(*np.nonzero(sims > 1 - max_distance), strict=True):
            ra, rb = find(start + a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    return np.array([find(i) == i for i in range(len(u))])


def make_stage_input(root: Path, n_shards: int = 4, rows: int = 60, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    emb = planted_embeddings(n_shards * rows, DIM, 40, seed)
    captions = [f"caption {int(c)}" for c in rng.integers(0, 90, n_shards * rows)]
    captions[::7] = ["商品画像"] * len(captions[::7])  # a boilerplate alt-text
    phashes = [f"{int(h):016x}" for h in rng.integers(0, 40, n_shards * rows)]
    sim = rng.uniform(0.05, 0.4, n_shards * rows)
    sim2 = rng.uniform(0.5, 0.9, n_shards * rows)
    sim[5] = np.nan
    data = root / "data"
    data.mkdir(parents=True)
    for s in range(n_shards):
        sl = slice(s * rows, (s + 1) * rows)
        embedding = [list(map(float, e)) for e in emb[sl]]
        embedding[3] = None  # a row without an embedding is kept
        table = pa.table({
            "url": [f"https://example.jp/{s}/{i}.jpg" for i in range(rows)],
            "caption": captions[sl], "phash": phashes[sl],
            "similarity": pa.array(sim[sl], pa.float32()), "similarity_2": pa.array(sim2[sl], pa.float32()),
            "embedding": pa.array(embedding, pa.list_(pa.float32())),
        })
        pq.write_table(table, data / f"train-{s:05d}-of-{n_shards:05d}.parquet")
    return root


def recipe_steps() -> list[GlobalStep]:
    return [CaptionFrequency(min_count=10), PHashCaptionDedup(),
            ScoreQuantile(columns=("similarity", "similarity_2"), drop_fraction=0.3), SemanticDedup()]


def reference_rows(rows: list[dict]) -> list[dict]:
    """The four steps in plain Python over all rows in input order."""
    counts = {}
    for r in rows:
        counts[r["caption"]] = counts.get(r["caption"], 0) + 1
    rows = [r for r in rows if counts[r["caption"]] < 10]
    seen, kept = set(), []
    for r in rows:
        if (r["phash"], r["caption"]) not in seen:
            seen.add((r["phash"], r["caption"]))
            kept.append(r)
    rows = [r for r in kept if not np.isnan(r["similarity"])]
    m1 = float(np.median([r["similarity"] for r in rows]))
    m2 = float(np.median([r["similarity_2"] for r in rows]))
    score = [(np.float64(r["similarity"]) / m1 + np.float64(r["similarity_2"]) / m2) / 2 for r in rows]
    order = sorted(range(len(rows)), key=lambda i: (score[i], -i))
    dropped = set(order[: int(0.3 * len(rows))])
    rows = [r for i, r in enumerate(rows) if i not in dropped]
    with_emb = [i for i, r in enumerate(rows) if r["embedding"] is not None]
    keep = np.ones(len(rows), dtype=bool)
    keep[with_emb] = brute_force_keep(np.array([rows[i]["embedding"] for i in with_emb], np.float32), 0.1)
    return [r for r, k in zip(rows, keep, strict=True) if k]


@pytest.fixture(scope="module")
def stage_input(tmp_path_factory):
    return make_stage_input(tmp_path_factory.mktemp("recipe-global") / "in")


def _job() -> StageJob:
    return StageJob(global_steps=recipe_steps(), stage="recipe_globals", dataset_name="recipe-globals")


def test_global_steps_equal_the_reference_with_1_and_2_workers(stage_input, tmp_path, read_rows):
    one = run_stage(stage_input, tmp_path / "one", _job(), workers=1)
    two = run_stage(stage_input, tmp_path / "two", _job(), workers=2)
    rows = read_rows(tmp_path / "one")
    expected = reference_rows(read_rows(stage_input))
    assert [r["url"] for r in rows] == [r["url"] for r in expected]
    assert read_rows(tmp_path / "two") == rows
    steps = ("caption_frequency", "phash_caption_dedup", "score_quantile", "semantic_dedup")
    def mine(stats):
        return {k: v for k, v in stats.items() if k.startswith(steps)}

    assert mine(one) == mine(two)
    assert one["caption_frequency.dropped_frequent_caption"] >= 30  # the boilerplate alt-text went
    assert one["phash_caption_dedup.dropped_duplicate_pair"] > 0
    assert one["score_quantile.dropped_missing_score"] == 1
    assert one["semantic_dedup.dropped_semantic_duplicate"] > 0
    assert one["semantic_dedup.kept"] == len(rows)


class KillDuringWrite(GlobalStep):
    """Delegates to a real step, and SIGKILLs its own process after the first shard was written."""

    name = "kill_during_write"

    def __init__(self, inner: GlobalStep):
        self.inner = inner

    def summary(self) -> dict:
        """The wrapped step's entry: the killed run and its re-run are the same job for the manifest."""
        from waon_hf.pipeline.contract import step_summary

        return step_summary(self.inner)

    def keep_rows(self, shard_paths, tmp_dir):
        kept, counts = self.inner.keep_rows(shard_paths, tmp_dir)

        def killing():
            for i, item in enumerate(kept):
                if i == 1:
                    os.kill(os.getpid(), signal.SIGKILL)
                yield item

        return killing(), counts


def test_killed_during_the_global_steps_then_rerun_gives_the_same_rows(stage_input, tmp_path, read_rows):
    clean = tmp_path / "clean"
    run_stage(stage_input, clean, _job())
    out = tmp_path / "killed"
    script = (
        "import sys; from tests.test_recipe_global_steps import KillDuringWrite, recipe_steps;"
        "from waon_hf.jobs.stage import StageJob; from waon_hf.pipeline.runner import run_stage;"
        "steps = recipe_steps(); steps[2] = KillDuringWrite(steps[2]);"
        "run_stage(sys.argv[1], sys.argv[2], StageJob(global_steps=steps, stage='recipe_globals',"
        " dataset_name='recipe-globals'))"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(stage_input), str(out)], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert not (out / ".waon" / "final.json").exists() and list((out / ".waon").glob("global-*"))
    run_stage(stage_input, out, _job())
    assert read_rows(out) == read_rows(clean)


def test_semantic_dedup_equals_brute_force_on_10k_planted(tmp_path):
    x = planted_embeddings(10_000, 64, 600, seed=7)
    paths = []
    for s, start in enumerate(range(0, len(x), 2_500)):
        path = tmp_path / f"{s}.parquet"
        pq.write_table(pa.table({"embedding": pa.array(list(x[start:start + 2_500]), pa.list_(pa.float32()))}), path)
        paths.append(path)
    expected = brute_force_keep(x, 0.1)
    assert 300 < (~expected).sum() < 600  # the planted copies (some chains), nothing else
    for step in (SemanticDedup(index="flat"), SemanticDedup(index="flat", parts=3, query_batch=1000)):
        kept, counts = step.keep_rows(paths, tmp_path / "tmp")
        keep = np.zeros(len(x), dtype=bool)
        for shard, rows in kept:
            keep[shard * 2_500 + rows.to_numpy()] = True
        np.testing.assert_array_equal(keep, expected)
        assert counts["kept"] == expected.sum()
    kept, _ = SemanticDedup(index="ivf", nlist=64, nprobe=8).keep_rows(paths, tmp_path / "tmp")
    keep = np.zeros(len(x), dtype=bool)
    for shard, rows in kept:
        keep[shard * 2_500 + rows.to_numpy()] = True
    dropped_ref = ~expected
    assert (~keep & dropped_ref).sum() / dropped_ref.sum() >= 0.95  # IVF: approximate, recall of planted copies
    assert not (~keep & expected).any()  # and never drops an image the exact search keeps


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="min_count"):
        build_global_step("caption_frequency", min_count=1)
    with pytest.raises(ValueError, match="drop_fraction"):
        build_global_step("score_quantile", drop_fraction=1.5)
    with pytest.raises(ValueError, match="max_distance"):
        build_global_step("semantic_dedup", max_distance=0)
    with pytest.raises(ValueError, match="index"):
        build_global_step("semantic_dedup", index="hnsw")


def test_quantile_refuses_a_non_positive_median(tmp_path):
    path = tmp_path / "s.parquet"
    pq.write_table(pa.table({"similarity": pa.array([-0.2, -0.1, 0.05], pa.float32())}), path)
    with pytest.raises(ValueError, match="positive median"):
        ScoreQuantile().keep_rows([path], tmp_path / "tmp")
    kept, counts = ScoreQuantile(normalize="none", drop_fraction=0.34).keep_rows([path], tmp_path / "tmp")
    assert [r.to_pylist() for _, r in kept] == [[1, 2]] and counts["dropped_low_score"] == 1
