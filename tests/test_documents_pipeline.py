"""`waon documents` end to end on a synthetic crawl with planted cases (tiny SigLIP2, images from a WARC)."""

import hashlib
import io
import json

import datasets
import pytest
from PIL import Image

from waon_hf.jobs.documents import DocumentRecipe, run_documents
from waon_hf.sources.commoncrawl import SourceFile
from waon_hf.testing.synthetic.documents import AD_URL, write_documents_sample
from waon_hf.testing.tiny_models import build_tiny_siglip2


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("documents")
    pages, images, plan = write_documents_sample(root / "in", n_files=2)
    model = build_tiny_siglip2(root / "tiny-siglip2")
    return root, [SourceFile(str(p), "") for p in pages], images, plan, model


def test_unknown_recipe_option_is_an_error():
    from waon_hf.jobs.documents import recipe_from_dict

    with pytest.raises(ValueError, match="min_sentence"):
        recipe_from_dict({"min_sentence": 3})
    assert recipe_from_dict({"document": {"langid": "fasttext"}}).document.langid == "fasttext"


def recipe_for(sample, **kw):
    _, _, images, _, model = sample
    # The tiny random model's cosines are near 0: the similarity threshold is the one rule not tested here
    # (tests/test_document_steps.py covers it on matrices).
    return DocumentRecipe(model=str(model), min_similarity=-1.0,
                          download={"warc_sources": (str(images),), "offline": True}, **kw)


@pytest.fixture(scope="module")
def built(sample):
    root = sample[0]
    out = root / "out"
    stats = run_documents(sample[1], out, recipe_for(sample))
    return out, stats


def rows_by_url(folder):
    ds = datasets.load_dataset(str(folder), split="train")
    return {r["url"]: r for r in ds}


def test_planted_documents_survive_with_exactly_their_images(sample, built):
    plan = sample[3]
    out, stats = built
    rows = rows_by_url(out)
    expected = {d.url: d for d in plan if d.expected_images is not None}
    assert set(rows) == set(expected)
    for url, row in rows.items():
        got = [m["source_url"] for m in row["metadata"] if m is not None]
        assert sorted(got) == sorted(expected[url].expected_images), url
        assert not any(AD_URL.split("{")[0] in u for u in got)  # the ad of 11 documents (two shards) is gone
        assert row["num_sentences"] == len(expected[url].sentences)
    # The half-size copy in document 1 went, the full-size original stayed.
    doc1 = next(d for d in plan if d.url.endswith("/001.html"))
    assert any(u.endswith("-0-small.jpg") for u in doc1.image_urls)
    assert stats["within_document_dedup.dropped_duplicate_in_document"] == 1
    assert stats["cross_document_dedup.dropped_frequent_image"] == 11
    assert stats["document_shape.dropped_too_few_images"] == 1
    assert stats["document_shape.dropped_too_few_sentences"] == 1
    assert stats["document_shape.dropped_too_many_sentences"] == 1
    assert stats["document_shape@interleaved.dropped_too_many_images"] == 1
    assert stats["images_in_kept_documents.kept"] == sum(len(d.expected_images) for d in expected.values())


def test_obelics_layout(sample, built):
    plan = {d.url: d for d in sample[3]}
    for url, row in rows_by_url(built[0]).items():
        texts, images, meta = row["texts"], row["images"], row["metadata"]
        assert len(texts) == len(images) == len(meta)
        assert all((t is None) != (i is None) for t, i in zip(texts, images, strict=True))
        assert [t for t in texts if t is not None] == plan[url].sentences
        sentence_at = [k for k, t in enumerate(texts) if t is not None]
        for k, (img, m) in enumerate(zip(images, meta, strict=True)):
            if img is None:
                assert m is None
                continue
            assert isinstance(img, Image.Image)
            # An image sits right before the sentence it is assigned to.
            nxt = next(j for j in range(k, len(texts)) if texts[j] is not None)
            assert sentence_at.index(nxt) == m["sentence_index"]
            buf = io.BytesIO()
            assert m["sha256"] and len(m["phash"]) == 16 and m["width"] > 0
            img.save(buf, "PNG")  # decodable


def test_card_shows_funnel_and_recipe(built):
    out = built[0]
    card = (out / "README.md").read_text(encoding="utf-8")
    for step in ("cross_document_dedup", "within_document_dedup", "assign_images", "document_shape",
                 "images_in_kept_documents"):
        assert step in card
    assert "Interleaved Japanese documents" in card and "2-5 images" in card  # the recipe, in the note
    stages = [s["stage"] for s in json.loads((out / "pipeline.json").read_text())["stages"]]
    assert stages == ["documents", "document_images", "interleaved"]


def test_embedded_bytes_match_their_sha256(built):
    import pyarrow.parquet as pq

    table = pq.read_table(next((built[0] / "data").glob("train-*.parquet")))
    for row in table.to_pylist():
        for img, m in zip(row["images"], row["metadata"], strict=True):
            if img is not None:
                assert hashlib.sha256(img["bytes"]).hexdigest() == m["sha256"]


def test_cli_no_embed_keeps_urls_only(sample, tmp_path, capsys):
    from waon_hf.cli import main

    root, sources, images, _, model = sample
    config = tmp_path / "config.yaml"
    config.write_text(f"documents:\n  min_similarity: -1.0\n  model: {model}\n", encoding="utf-8")
    out = tmp_path / "urls"
    assert main(["documents", *[s.location for s in sources], "-o", str(out), "--config", str(config),
                 "--images-warc", str(images), "--offline", "--no-embed",
                 "--pairs-output", str(tmp_path / "pairs")]) == 0
    assert "12 documents written" in capsys.readouterr().out
    assert (tmp_path / "pairs" / ".waon" / "final.json").exists()  # the pairs stage of the same pass
    for row in rows_by_url(out).values():
        urls = [i for i in row["images"] if i is not None]
        assert urls == [m["source_url"] for m in row["metadata"] if m is not None]
        assert all(isinstance(u, str) and u.startswith("http") for u in urls)


KILLED_RUN = """
import sys
from waon_hf.jobs.documents import DocumentRecipe, run_documents
from waon_hf.sources.commoncrawl import SourceFile
pages, out, images, model = sys.argv[1].split(","), sys.argv[2], sys.argv[3], sys.argv[4]
run_documents([SourceFile(p, "") for p in pages], out, DocumentRecipe(
    model=model, min_similarity=-1.0, download={"warc_sources": (images,), "offline": True}))
"""


def test_resume_after_a_kill_gives_identical_documents(sample, built, tmp_path, read_rows):
    import os
    import signal
    import subprocess
    import sys
    import time

    _, sources, images, _, model = sample
    out = tmp_path / "killed"
    marker = out / ".waon-stages" / "document-images" / ".waon" / "shards" / "00000.stats.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, ",".join(s.location for s in sources), str(out),
                             str(images), str(model)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # in the image stage, after its first shard (or later, if it was quick)
    proc.wait()
    assert marker.exists()
    assert not (out / ".waon" / "final.json").exists()
    run_documents(sources, out, recipe_for(sample))
    assert read_rows(out) == read_rows(built[0])
    assert len(read_rows(out)) == 12
