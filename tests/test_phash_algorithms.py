"""pHash algorithms: WAON's imagehash pHash next to imagededup's, recorded in pipeline.json, and never
compared with each other. Parity with imagehash is checked on real photographs (tests/data/photos)."""

import io
import json
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
from PIL import Image

from waon_hf.jobs.stage import StageJob
from waon_hf.neardup import hex_to_uint64
from waon_hf.pipeline.runner import run_stage
from waon_hf.steps.image_dedup import (
    Decontaminate,
    NearDupImages,
    PHashAlgorithmMismatch,
    PHashStep,
    load_eval_hashes,
    phash_algorithm_of,
)

imagehash = pytest.importorskip("imagehash", reason="pip install imagehash (the 'images' extra)")

PHOTOS = sorted((Path(__file__).parent / "data" / "photos").glob("*.jpg"))


def _bits_apart(a: str, b: str) -> int:
    x, y = hex_to_uint64([a, b])
    return bin(int(x) ^ int(y)).count("1")


def test_imagehash_algorithm_equals_imagehash_phash_on_real_photos():
    assert len(PHOTOS) >= 3
    step = PHashStep(algorithm="imagehash")
    apart = []
    for path in PHOTOS:
        with Image.open(path) as img:
            want = str(imagehash.phash(img))
        got = step.hash_value({"bytes": path.read_bytes(), "path": None})
        assert got == want, path.name
        apart.append(_bits_apart(got, PHashStep().hash_value({"bytes": path.read_bytes(), "path": None})))
    assert max(apart) > 0  # the two algorithms disagree on real photos: the choice matters


def test_flat_image_puts_the_algorithms_far_apart():
    """A one-colour image (a web placeholder): every AC term is 0, imagededup keeps terms >= the median,
    imagehash terms > it, so nearly every bit differs."""
    img = Image.new("RGB", (64, 48), (128, 128, 128))
    ours, waon = PHashStep().hash_value(img), PHashStep(algorithm="imagehash").hash_value(img)
    assert waon == str(imagehash.phash(img))
    assert _bits_apart(ours, waon) > 4  # far beyond the near-duplicate distance


def test_unknown_algorithm_is_refused():
    with pytest.raises(ValueError, match="phash algorithm"):
        PHashStep(algorithm="dhash")
    with pytest.raises(ValueError, match="phash algorithm"):
        NearDupImages(algorithm="md5")


def _photo_dataset(folder: Path) -> Path:
    rows = [{"url": f"https://img.example/{p.name}", "caption": p.stem,
             "image": {"bytes": p.read_bytes(), "path": None}} for p in PHOTOS]
    (folder / "data").mkdir(parents=True)
    datasets.Dataset.from_list(rows).cast_column("image", datasets.Image()).to_parquet(
        str(folder / "data" / "train-00000-of-00001.parquet"))
    return folder


def test_algorithm_is_recorded_and_decontamination_uses_it(tmp_path):
    src = _photo_dataset(tmp_path / "in")
    out = tmp_path / "hashed"
    run_stage(src, out, StageJob(steps=[PHashStep(algorithm="imagehash")], stage="filter_images"))
    assert phash_algorithm_of(out) == "imagehash"
    assert "imagehash" in (out / "README.md").read_text()  # the card renders pipeline.json
    table = pq.read_table(next((out / "data").glob("*.parquet")), columns=["phash"])
    with Image.open(PHOTOS[0]) as img:
        assert str(imagehash.phash(img)) in table.column("phash").to_pylist()

    # the evaluation images are hashed with the training column's algorithm: exact copies match at distance 0
    evalset = tmp_path / "eval"
    evalset.mkdir()
    (evalset / PHOTOS[0].name).write_bytes(PHOTOS[0].read_bytes())
    report = tmp_path / "report.json"
    stats = run_stage(out, tmp_path / "clean", StageJob(global_steps=[Decontaminate(
        against=(str(evalset),), algorithm="imagehash", report=str(report), max_distance=0)], stage="dedup_images"))
    assert stats["decontaminate.dropped_eval_match"] == 1
    assert json.loads(report.read_text())["matches"][0]["distance"] == 0

    # a dataset folder whose phash column is imagededup's is refused as an evaluation set of imagehash rows
    other = tmp_path / "ours"
    run_stage(src, other, StageJob(steps=[PHashStep()], stage="filter_images"))
    assert phash_algorithm_of(other) == "imagededup"
    with pytest.raises(PHashAlgorithmMismatch, match="imagededup pHashes, but these hashes are imagehash"):
        load_eval_hashes([str(other)], PHashStep(algorithm="imagehash"))
    assert len(load_eval_hashes([str(other)], PHashStep())) == len(PHOTOS)


def test_hash_list_declaring_another_algorithm_is_refused(tmp_path):
    hashes = tmp_path / "waon.txt"
    with Image.open(PHOTOS[0]) as img:
        hashes.write_text(f"# phash_algorithm: imagehash\n{imagehash.phash(img)} hopper\n")
    assert len(load_eval_hashes([str(hashes)], PHashStep(algorithm="imagehash"))) == 1
    with pytest.raises(PHashAlgorithmMismatch, match="hash list"):
        load_eval_hashes([str(hashes)])  # imagededup (the default) against WAON's hashes


def test_pipeline_without_algorithm_predates_it(tmp_path):
    (tmp_path / "pipeline.json").write_text(json.dumps(
        {"stages": [{"stage": "filter_images", "steps": [{"name": "phash", "config": {"backend": "builtin"}}]}]}))
    assert phash_algorithm_of(tmp_path) == "imagededup"
    assert phash_algorithm_of(tmp_path / "nowhere") is None


def test_imagehash_step_on_bytes_and_undecodable(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(buf, format="PNG")
    step = PHashStep(algorithm="imagehash")
    assert step.hash_value({"bytes": buf.getvalue(), "path": None}) == str(imagehash.phash(Image.open(buf)))
    assert step.hash_value({"bytes": b"not an image", "path": None}) is None
