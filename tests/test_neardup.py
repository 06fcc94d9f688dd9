import csv
import io
import json
import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from waon_hf.neardup import (
    choose_blocks,
    connected_components,
    cross_hamming_pairs,
    hamming_pairs,
    hex_to_uint64,
    near_duplicate_groups,
    nearest_targets,
    uint64_to_hex,
)
from waon_hf.pipeline.runner import apply_global_steps
from waon_hf.stats import Stats
from waon_hf.steps import text_filters  # noqa: F401  (registers the caption steps)
from waon_hf.steps.base import build_step, register
from waon_hf.steps.global_steps import build_global_step
from waon_hf.steps.image_dedup import (
    Decontaminate,
    ExactImageDedup,
    NearDupImages,
    PHashStep,
    load_eval_hashes,
    phash_hex,
)


# ---------------------------------------------------------------------------------------- helpers
def random_hashes(rng, n):
    return rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64, endpoint=True)


def flip(h, bits):
    x = int(h)
    for b in bits:
        x ^= 1 << int(b)
    return np.uint64(x)


def plant(rng, n_base, k, per_distance=40):
    """Random hashes plus, for each distance 0..k+1, copies of random base rows at that distance.
    Returns (hashes after shuffling, planted (source row, copy row, distance))."""
    base = random_hashes(rng, n_base)
    copies, planted = [], []
    for d in range(k + 2):
        for _ in range(per_distance):
            src = int(rng.integers(n_base))
            copies.append(flip(base[src], rng.choice(64, size=d, replace=False)))
            planted.append((src, n_base + len(copies) - 1, d))
    hashes = np.concatenate([base, np.array(copies, dtype=np.uint64)])
    perm = rng.permutation(len(hashes))
    where = np.empty_like(perm)
    where[perm] = np.arange(len(perm))  # old row -> new row
    return hashes[perm], [(int(where[s]), int(where[c]), d) for s, c, d in planted]


def brute_pairs(hashes, k):
    dist = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    i, j = np.nonzero((dist <= k) & np.triu(np.ones(dist.shape, dtype=bool), 1))
    return i, j


def brute_groups(hashes, k):
    """Reference: BFS over the brute-force graph; each row -> smallest row of its component."""
    n = len(hashes)
    adj = np.bitwise_count(hashes[:, None] ^ hashes[None, :]) <= k
    reps = np.full(n, -1)
    for start in range(n):
        if reps[start] >= 0:
            continue
        stack, seen = [start], {start}
        while stack:
            node = stack.pop()
            for other in np.flatnonzero(adj[node]):
                if int(other) not in seen:
                    seen.add(int(other))
                    stack.append(int(other))
        reps[list(seen)] = min(seen)
    return reps


# ------------------------------------------------------------------------------------------ search
def test_hex_round_trip_and_errors():
    rng = np.random.default_rng(0)
    h = random_hashes(rng, 1000)
    hx = uint64_to_hex(h)
    assert all(len(s) == 16 for s in hx)
    assert np.array_equal(hex_to_uint64(hx), h)
    assert np.array_equal(hex_to_uint64(pa.array(hx).slice(7, 50)), h[7:57])
    assert np.array_equal(hex_to_uint64(pa.chunked_array([pa.array(hx[:3]), pa.array(hx[3:9])])), h[:9])
    assert hex_to_uint64(["8000000000000000", "00000000000000FF"]).tolist() == [1 << 63, 255]
    for bad in (["abc"], ["g" * 16], ["0" * 17]):
        with pytest.raises(ValueError):
            hex_to_uint64(bad)


@pytest.mark.parametrize("k", [0, 2, 4, 8])
def test_pairs_equal_brute_force_with_planted_near_duplicates(k):
    rng = np.random.default_rng(k)
    hashes, planted = plant(rng, 2000, k)
    want_i, want_j = brute_pairs(hashes, k)
    found = set()
    for blocks in (None, 0, k + 1, min(64, k + 3)):  # cost-model choice, brute force, k+1 bands, longer keys
        i, j, d = hamming_pairs(hashes, k, blocks=blocks, return_distances=True)
        assert np.array_equal(i, want_i) and np.array_equal(j, want_j), blocks
        assert (d == np.bitwise_count(hashes[i] ^ hashes[j])).all()
        found = set(zip(i.tolist(), j.tolist(), strict=True))
    for src, copy, d in planted:  # recall 100% at <= k, nothing at k + 1
        assert ((min(src, copy), max(src, copy)) in found) == (d <= k)


def test_search_at_scale_uses_tables_and_finds_every_planted_pair():
    rng = np.random.default_rng(7)
    hashes, planted = plant(rng, 200_000, 4, per_distance=200)
    assert choose_blocks(4, len(hashes), len(hashes) ** 2 / 2) is not None  # not brute force
    i, j = hamming_pairs(hashes, 4)
    found = set(zip(i.tolist(), j.tolist(), strict=True))
    assert (np.bitwise_count(hashes[i] ^ hashes[j]) <= 4).all()
    for src, copy, d in planted:
        assert ((min(src, copy), max(src, copy)) in found) == (d <= 4)


def test_groups_match_brute_force_components_and_are_deterministic():
    rng = np.random.default_rng(3)
    hashes, _ = plant(rng, 600, 4, per_distance=60)
    want = brute_groups(hashes, 4)
    for blocks in (None, 0, 5, 7, 9):
        assert np.array_equal(near_duplicate_groups(hashes, 4, blocks=blocks), want)


def test_chain_collapses_to_first_row():
    rng = np.random.default_rng(1)
    a = random_hashes(rng, 1)[0]
    b = flip(a, [0, 1, 2])
    c = flip(b, [10, 11, 12])  # a~b (3), b~c (3), a and c 6 apart
    noise = random_hashes(rng, 3)
    hashes = np.array([noise[0], c, a, noise[1], b, noise[2]], dtype=np.uint64)
    reps = near_duplicate_groups(hashes, 4)
    assert reps.tolist() == [0, 1, 1, 3, 1, 5]  # c comes first in input order, so it represents the chain
    hashes = np.array([noise[0], a, c, noise[1], b, noise[2]], dtype=np.uint64)
    assert near_duplicate_groups(hashes, 4).tolist() == [0, 1, 1, 3, 1, 5]
    i, j = hamming_pairs(hashes, 4)
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == [(1, 4), (2, 4)]  # no a-c pair


def test_huge_buckets_identical_and_dense():
    rng = np.random.default_rng(5)
    same = np.full(20_000, np.uint64(0x0123456789ABCDEF))
    # 3,000 distinct hashes sharing their top 48 bits: one giant bucket in most tables
    dense = (np.uint64(0xFEDCBA987654) << np.uint64(16)) | rng.choice(1 << 16, size=3000, replace=False).astype(
        np.uint64)
    hashes = np.concatenate([random_hashes(rng, 5000), same, dense])
    order = rng.permutation(len(hashes))
    hashes = hashes[order]
    reps = near_duplicate_groups(hashes, 4)
    same_rows = np.flatnonzero(hashes == np.uint64(0x0123456789ABCDEF))
    assert (reps[same_rows] == same_rows[0]).all()
    dense_rows = np.flatnonzero((hashes >> np.uint64(16)) == np.uint64(0xFEDCBA987654))
    # 3,000 of the 65,536 low values: connected within distance 4, through each other
    assert len(set(reps[dense_rows].tolist())) == 1 and reps[dense_rows[0]] == dense_rows[0]
    # the pairs among the dense rows are exactly the brute-force ones
    sub = hashes[dense_rows]
    i, j = hamming_pairs(sub, 4)
    bi, bj = brute_pairs(sub, 4)
    assert np.array_equal(i, bi) and np.array_equal(j, bj)


def test_pairs_of_identical_rows_are_all_listed():
    hashes = np.array([5, 9, 5, 5, 9 ^ 1], dtype=np.uint64)
    i, j, d = hamming_pairs(hashes, 0, return_distances=True)
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == [(0, 2), (0, 3), (2, 3)]
    i, j, d = hamming_pairs(hashes, 1, return_distances=True)
    assert list(zip(i.tolist(), j.tolist(), d.tolist(), strict=True)) == [
        (0, 2, 0), (0, 3, 0), (1, 4, 1), (2, 3, 0)]
    assert near_duplicate_groups(hashes, 0).tolist() == [0, 1, 0, 0, 4]
    assert near_duplicate_groups(np.zeros(0, dtype=np.uint64), 4).tolist() == []


def test_connected_components_roots_are_component_minima():
    roots = connected_components(8, np.array([7, 3, 5, 6]), np.array([5, 1, 6, 2]))
    assert roots.tolist() == [0, 1, 2, 1, 4, 2, 2, 2]


@pytest.mark.parametrize("k", [0, 3, 6])
def test_cross_search_equals_brute_force(k):
    rng = np.random.default_rng(11 + k)
    targets = random_hashes(rng, 300)
    queries = random_hashes(rng, 3000)
    pick = rng.choice(3000, size=200, replace=False)
    for n, q in enumerate(pick):  # plant copies of targets at distances 0..k+1 (and duplicates)
        queries[q] = flip(targets[n % 300], rng.choice(64, size=n % (k + 2), replace=False))
    queries[:50] = queries[50]
    targets[:5] = targets[5]
    dist = np.bitwise_count(queries[:, None] ^ targets[None, :])
    want_q, want_t = np.nonzero(dist <= k)
    for blocks in (None, 0, k + 1):
        qi, ti, d = cross_hamming_pairs(queries, targets, k, blocks=blocks)
        assert np.array_equal(qi, want_q) and np.array_equal(ti, want_t)
        assert (d == dist[qi, ti]).all()
    best_t, best_d = nearest_targets(queries, targets, k)
    masked = np.where(dist <= k, dist, 99)
    has = masked.min(axis=1) < 99
    assert np.array_equal(best_t >= 0, has)
    assert np.array_equal(best_t[has], masked[has].argmin(axis=1))  # closest, first target on ties
    assert np.array_equal(best_d[has], masked[has].min(axis=1))


# ------------------------------------------------------------------------------------ global steps
def write_shard(path, hashes, **columns):
    table = pa.table({"url": [f"u{i}" for i in range(len(hashes))], **columns,
                      "phash": [h if h is None else f"{int(h):016x}" for h in hashes]})
    pq.write_table(table, path)
    return path


def run_global(step, paths, tmp_path):
    kept, counts = step.keep_rows(paths, tmp_path / "tmp")
    return {shard: rows.to_pylist() for shard, rows in kept}, counts


def test_near_dup_step_keeps_first_occurrence_across_shards(tmp_path):
    rng = np.random.default_rng(2)
    a, b, c = random_hashes(rng, 3)
    near_a = flip(a, [1, 2, 3])
    shard0 = write_shard(tmp_path / "0.parquet", [b, a, None, c])
    shard1 = write_shard(tmp_path / "1.parquet", [near_a, flip(b, [9]), flip(c, range(5))])
    kept, counts = run_global(NearDupImages(max_distance=4), [shard0, shard1], tmp_path)
    assert kept == {0: [0, 1, 2, 3], 1: [2]}  # c at distance 5 survives; the null phash row is kept
    assert counts == {"in": 7, "kept": 5, "dropped_near_duplicate": 2, "no_phash": 1}
    kept, _ = run_global(NearDupImages(max_distance=4), [shard1, shard0], tmp_path)
    assert kept == {0: [0, 1, 2], 1: [2, 3]}  # order of shards decides which copy is first


def test_global_steps_through_runner_and_registry(tmp_path):
    rng = np.random.default_rng(4)
    a, b = random_hashes(rng, 2)
    shard0 = write_shard(tmp_path / "0.parquet", [a, b], sha256=["s1", "s2"])
    shard1 = write_shard(tmp_path / "1.parquet", [flip(b, [0]), a, flip(a, [40])], sha256=["s3", "s1", "s4"])
    steps = [build_global_step("sha256_dedup"), build_global_step("phash_dedup", max_distance=2)]
    assert isinstance(steps[0], ExactImageDedup) and steps[0].columns == ("sha256",)
    stats = Stats()
    work = tmp_path / "work"
    work.mkdir()
    out = apply_global_steps([shard0, shard1], steps, work, stats)
    rows = pa.concat_tables([pq.read_table(p) for p in out])
    assert rows.column("url").to_pylist() == ["u0", "u1"]
    assert stats == {"sha256_dedup.in": 5, "sha256_dedup.dropped_duplicate_sha256": 1, "sha256_dedup.kept": 4,
                     "phash_dedup.in": 4, "phash_dedup.kept": 2, "phash_dedup.dropped_near_duplicate": 2,
                     "phash_dedup.no_phash": 0}
    assert pickle.loads(pickle.dumps(steps[1])) == steps[1]


def test_per_shard_and_global_steps_cannot_be_confused():
    with pytest.raises(ValueError, match="global step"):
        build_step("sha256_dedup")
    with pytest.raises(ValueError, match="per-shard step"):
        build_global_step("normalize_caption")
    with pytest.raises(TypeError):
        register(NearDupImages)  # a global step in the per-shard registry


def jpeg(seed, size=(96, 96)):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8)  # smooth blocks: a stable pHash
    img = Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_decontaminate_drops_planted_matches_and_reports(tmp_path):
    evals = [jpeg(100 + i) for i in range(4)]
    eval_dir = tmp_path / "eval"
    (eval_dir / "sub").mkdir(parents=True)
    for i, data in enumerate(evals):
        (eval_dir / "sub" / f"e{i}.jpg").write_bytes(data)
    eval_hashes = hex_to_uint64([phash_hex(Image.open(io.BytesIO(d))) for d in evals])
    rng = np.random.default_rng(9)
    train0 = random_hashes(rng, 5)
    train1 = random_hashes(rng, 4)
    train0[1] = eval_hashes[2]                  # exact copy
    train1[0] = flip(eval_hashes[0], [3, 30])   # distance 2
    train1[3] = flip(eval_hashes[1], range(5))  # distance 5: kept at k = 4
    shard0 = write_shard(tmp_path / "0.parquet", list(train0))
    shard1 = write_shard(tmp_path / "1.parquet", [*train1, None])
    report = tmp_path / "out" / "decontamination.json"
    step = build_global_step("decontaminate", against=(str(eval_dir),), report=str(report))
    kept, counts = run_global(step, [shard0, shard1], tmp_path)
    assert kept == {0: [0, 2, 3, 4], 1: [1, 2, 3, 4]}
    assert counts == {"in": 10, "kept": 8, "dropped_eval_match": 2}
    data = json.loads(report.read_text())
    assert data["dropped"] == 2 and data["eval_hashes"] == 4
    got = [(m["shard"], m["row"], m["url"], m["eval_item"], m["distance"]) for m in data["matches"]]
    assert got == [(0, 1, "u1", "sub/e2.jpg", 0), (1, 0, "u0", "sub/e0.jpg", 2)]

    # the same evaluation set as a parquet of images, a parquet of hashes and a hash list; CSV report
    pq.write_table(pa.table({"id": ["a", "b", "c", "d"],
                             "image": [{"bytes": d, "path": None} for d in evals]}), tmp_path / "eval.parquet")
    pq.write_table(pa.table({"phash": uint64_to_hex(eval_hashes)}), tmp_path / "hashes.parquet")
    (tmp_path / "hashes.txt").write_text("# eval\nnot-a-hash bad line\n" + "\n".join(f"{h} item{i}" for i, h in
                                                                 enumerate(uint64_to_hex(eval_hashes))) + "\n")
    for source, item in (("eval.parquet", "c"), ("hashes.parquet", "row 2"), ("hashes.txt", "item2")):
        csv_report = tmp_path / f"{source}.csv"
        step = Decontaminate(against=(str(tmp_path / source),), max_distance=4, report=str(csv_report))
        kept, _ = run_global(step, [shard0, shard1], tmp_path)
        assert kept == {0: [0, 2, 3, 4], 1: [1, 2, 3, 4]}
        rows = list(csv.DictReader(csv_report.open()))
        assert [(r["shard"], r["row"], r["eval_item"], r["distance"]) for r in rows][0] == ("0", "1", item, "0")
    kept, counts = run_global(Decontaminate(against=str(tmp_path / "hashes.txt"), max_distance=1),
                              [shard0, shard1], tmp_path)
    assert counts["dropped_eval_match"] == 1  # the distance-2 copy survives at k = 1


def test_load_eval_hashes_matches_phash_step(tmp_path):
    (tmp_path / "x.png").write_bytes(jpeg(1))  # a JPEG under a .png name still decodes
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    ev = load_eval_hashes([tmp_path])
    step = PHashStep()
    assert uint64_to_hex(ev.hashes) == [step.hash_value(jpeg(1))]
    assert ev.items == ["x.png"]
    with pytest.raises(ValueError):
        load_eval_hashes([tmp_path / "nothing.bin"])
    with pytest.raises(ValueError):
        NearDupImages(max_distance=-1)
