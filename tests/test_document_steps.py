"""Pure pieces of the interleaved-documents recipe: assignment, dedup within and across documents, size rule."""

import itertools

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from waon_hf.steps.assignment import assign_images
from waon_hf.steps.document_dedup import FrequentImages, frequent_hashes, within_document_reasons
from waon_hf.steps.documents import DocumentNGWords, DocumentShape


def brute_force(sim: np.ndarray) -> float:
    n_img, n_sent = sim.shape
    best = -np.inf
    if n_img <= n_sent:
        for perm in itertools.permutations(range(n_sent), n_img):
            best = max(best, sum(sim[i, perm[i]] for i in range(n_img)))
    else:
        for perm in itertools.permutations(range(n_img), n_sent):
            best = max(best, sum(sim[perm[j], j] for j in range(n_sent)))
    return best


@pytest.mark.parametrize("seed", range(30))
def test_assignment_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 6)), int(rng.integers(1, 7)))
    sim = rng.uniform(0.2, 0.6, size=shape)  # all above the threshold: nothing removed
    a = assign_images(sim, min_similarity=0.2)
    assert a.kept == list(range(shape[0]))
    assigned = [(i, s) for i, s in zip(a.kept, a.sentence, strict=True) if s >= 0]
    assert len({s for _, s in assigned}) == len(assigned) == min(shape)  # one-to-one, as many as possible
    total = sum(sim[i, s] for i, s in assigned)
    assert total == pytest.approx(brute_force(sim))
    assert [a.similarity[k] for k, (_, s) in enumerate(zip(a.kept, a.sentence, strict=True)) if s >= 0] == \
        pytest.approx([sim[i, s] for i, s in assigned])


def test_assignment_is_not_greedy():
    # Greedy takes 0.9 (image 0 -> sentence 0) and leaves 0.1; the optimum is 0.8 + 0.8.
    sim = np.array([[0.9, 0.8], [0.8, 0.1]])
    a = assign_images(sim, 0.0)
    assert a.sentence == [1, 0]


def test_images_below_threshold_against_every_sentence_are_removed():
    sim = np.array([[0.19, 0.1, 0.05], [0.3, 0.2, 0.1], [0.199, 0.199, 0.199], [0.05, 0.2, 0.21]])
    a = assign_images(sim, 0.20)
    assert a.kept == [1, 3]
    assert a.sentence == [0, 2]
    assert assign_images(np.zeros((0, 3))).kept == []


def h(bits: int, flip: int = 0) -> int:
    """A 64-bit hash with the low ``flip`` bits of ``bits`` flipped."""
    return bits ^ ((1 << flip) - 1)


def test_within_document_dedup_keeps_largest_of_each_near_duplicate_group():
    base, other = 0x0F0F_0F0F_0F0F_0F0F, 0xFFFF_0000_FFFF_0000
    docs = ["a", "a", "a", "a", "b", "b", "a"]
    hashes = [base, h(base, 5), h(base, 6), other, base, h(base, 3), None]
    areas = [100, 400, 50, 10, 10, 20, 999]
    reasons = within_document_reasons(docs, hashes, areas, max_distance=5)
    # doc a: {0, 1, 2} is one image (0-1 at 5 bits, 1-2 at 1 bit: transitive), 1 is largest; 3 is alone.
    # doc b: the same pictures as a's are not a's duplicates; 5 (larger) wins over 4. Row 6 has no hash.
    assert reasons == ["duplicate_in_document", None, "duplicate_in_document", None,
                       "duplicate_in_document", None, "no_phash"]
    # 6 bits apart and nothing in between: two images.
    assert within_document_reasons(["a", "a"], [base, h(base, 6)], [1, 1], 5) == [None, None]
    # Equal sizes: the first stays.
    assert within_document_reasons(["a", "a"], [base, base], [5, 5], 5) == [None, "duplicate_in_document"]


def test_frequent_hashes_counts_distinct_documents():
    hashes = np.array([1, 1, 1, 2, 2, 2, 3], dtype=np.uint64)
    docs = np.array([1, 1, 1, 1, 2, 3, 1], dtype=np.uint64)  # hash 1 three times in one document
    assert frequent_hashes(hashes, docs, 3).tolist() == [2]
    assert frequent_hashes(hashes, docs, 2).tolist() == [2]
    assert frequent_hashes(hashes, docs, 4).tolist() == []


def write_images(path, rows):
    pq.write_table(pa.table({"doc_id": [r[0] for r in rows], "phash": [r[1] for r in rows],
                             "url": [r[2] for r in rows]}), path)


def test_cross_document_dedup_is_exact_over_shards(tmp_path):
    ad, photo = "00000000000000ff", "0123456789abcdef"
    # The ad appears in 10 documents spread over three shards (twice in d0): dropped everywhere.
    shards = [
        [("d0", ad, "u0"), ("d0", ad, "u1"), ("d0", photo, "p0"), ("d1", ad, "u2"), ("d2", ad, "u3")],
        [("d3", ad, "u4"), ("d4", ad, "u5"), ("d5", ad, "u6"), ("d5", None, "n0")],
        [("d6", ad, "u7"), ("d7", ad, "u8"), ("d8", ad, "u9"), ("d9", ad, "u10"), ("d9", photo, "p1")],
    ]
    paths = []
    for k, rows in enumerate(shards):
        paths.append(tmp_path / f"{k}.parquet")
        write_images(paths[-1], rows)
    kept, counts = FrequentImages(max_documents=10).keep_rows(paths, tmp_path)
    kept = {shard: rows.to_pylist() for shard, rows in kept}
    assert kept == {0: [2], 1: [3], 2: [4]}
    assert counts["dropped_frequent_image"] == 11 and counts["in"] == 14
    # Nine documents are not enough: the same ad rows with d9's removed survive.
    write_images(paths[2], shards[2][:3] + [("d9", photo, "p1")])
    kept, _ = FrequentImages(max_documents=10).keep_rows(paths, tmp_path)
    assert sum(len(rows) for _, rows in kept) == 13


def shape_batch(n_sentences, n_images, sims=None, assigned=None):
    batch = {"sentences": [["文。"] * n for n in n_sentences], "image_urls": [["u"] * n for n in n_images]}
    if sims is not None:
        batch["image_similarity"], batch["image_sentence"] = sims, assigned
    return batch


def test_document_shape_boundaries():
    step = DocumentShape(images_column="image_urls")
    reasons = step.drop_reasons(shape_batch([10] * 4 + [9, 10, 100, 101], [1, 2, 5, 6, 3, 3, 3, 3]))
    assert reasons == ["too_few_images", None, None, "too_many_images",
                       "too_few_sentences", None, None, "too_many_sentences"]
    early = DocumentShape(max_images=None)
    assert early.drop_reasons(shape_batch([10, 10], [1, 50])) == ["too_few_images", None]


def test_document_shape_requires_every_assigned_pair_above_threshold():
    step = DocumentShape(similarity_column="image_similarity", sentence_column="image_sentence")
    batch = shape_batch([10, 10, 10], [2, 2, 2], sims=[[0.2, 0.5], [0.19, 0.5], [0.3, 0.3]],
                        assigned=[[0, 1], [0, 1], [0, -1]])
    assert step.drop_reasons(batch) == [None, "weak_assignment", "image_without_sentence"]


def test_document_ng_words_read_every_sentence(tmp_path):
    words = tmp_path / "ng.txt"
    words.write_text("禁止語\n", encoding="utf-8")
    step = DocumentNGWords(path=str(words))
    assert step.drop_reasons({"sentences": [["普通の文。", "ここに禁止語がある。"], ["普通。"], []]}) == \
        ["ng_word", None, None]


def test_host_cap_keeps_the_first_images_of_a_host_in_document_order():
    from collections import Counter

    from waon_hf.jobs.documents import image_rows

    docs = pa.table({"doc_id": ["a", "b"],
                     "image_urls": [["http://cdn.x.jp/1.jpg", "http://y.jp/1.jpg", "http://CDN.x.jp/2.jpg"],
                                    ["http://cdn.x.jp/3.jpg", "http://y.jp/2.jpg"]],
                     "image_positions": [[0, 1, 2], [0, 5]], "image_alts": [["", "", ""], ["", "alt"]]})
    counts = Counter()
    rows = image_rows(docs, "train-00000-of-00001.parquet", max_per_host=2, counts=counts).to_pylist()
    assert [(r["doc_id"], r["image_index"], r["url"]) for r in rows] == [
        ("a", 0, "http://cdn.x.jp/1.jpg"), ("a", 1, "http://y.jp/1.jpg"), ("a", 2, "http://CDN.x.jp/2.jpg"),
        ("b", 1, "http://y.jp/2.jpg")]
    assert rows[-1]["position"] == 5 and rows[-1]["alt"] == "alt"
    assert counts == Counter({"in": 5, "kept": 4, "dropped_host_cap": 1})


def test_obelics_row_places_each_image_before_its_assigned_sentence():
    from waon_hf.jobs.obelics import interleave

    doc = {"doc_id": "d", "url": "u", "page_title": "t", "sentences": ["s0", "s1", "s2"],
           "image": ["IMG-A", "IMG-B"], "image_url": ["A", "B"], "image_sha256": ["ha", "hb"],
           "image_phash": ["pa", "pb"], "image_width": [1, 2], "image_height": [3, 4], "image_position": [0, 3],
           "image_punsafe": [0.0, 0.01], "image_alt": ["", ""], "image_sentence": [2, 0],
           "image_similarity": [0.3, 0.4]}
    row = interleave(doc, embed=True)
    assert row["texts"] == [None, "s0", "s1", None, "s2"]
    assert row["images"] == ["IMG-B", None, None, "IMG-A", None]
    assert [m and (m["source_url"], m["sentence_index"], m["original_position"]) for m in row["metadata"]] == \
        [("B", 0, 3), None, None, ("A", 2, 0), None]
    assert interleave(doc, embed=False)["images"] == ["B", None, None, "A", None]
