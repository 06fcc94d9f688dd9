import hashlib
import io
import pickle

import datasets
import numpy as np
import pytest
from PIL import Image, ImageFilter

from waon_hf.stats import Stats
from waon_hf.steps.base import build_step
from waon_hf.steps.image_dedup import ImageSha256, PHashStep, phash_hex
from waon_hf.steps.image_filters import (
    AspectRatio,
    Blur,
    DistinctColors,
    Entropy,
    ImageQuality,
    MinSide,
    distinct_colors,
    grey_entropy,
    laplacian_variance,
)

datasets.disable_progress_bars()


def encode(img, fmt="JPEG", **kwargs):
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def photo(width, height, seed=0):
    """Colourful, detailed: smooth blobs plus fine noise."""
    rng = np.random.default_rng(seed)
    blobs = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((width, height),
                                                                                   Image.Resampling.BICUBIC)
    noise = rng.normal(0, 25, (height, width, 3))
    return Image.fromarray(np.clip(np.asarray(blobs, dtype=np.float64) + noise, 0, 255).astype(np.uint8))


def flat(width, height, color=(200, 30, 30)):
    return Image.new("RGB", (width, height), color)


def value(img, fmt="JPEG", **kwargs):
    return {"bytes": encode(img, fmt, **kwargs), "path": None}


def reasons(step, images, **columns):
    return step.drop_reasons({"image": images, **columns})


# ---------------------------------------------------------------------------------------- filters
def test_image_quality_reasons_waon_defaults():
    images = [
        None,                                   # failed download
        {"bytes": None, "path": None},
        {"bytes": b"\x89PNG not really", "path": None},
        value(photo(120, 300)),                 # shorter side 120 < 150
        value(photo(400, 160)),                 # aspect 2.5
        value(photo(160, 400)),                 # aspect 0.4
        value(flat(300, 300)),                  # 1 colour
        value(photo(300, 200)),                 # fine
        value(photo(150, 300)),                 # exactly at the limits
    ]
    assert reasons(ImageQuality(), images) == [
        "no_image", "no_image", "undecodable", "too_small", "bad_aspect_ratio", "bad_aspect_ratio", "few_colors",
        None, None]


def test_each_filter_and_its_reason():
    small, wide, one_colour, ok = photo(100, 100), photo(600, 200), flat(200, 200), photo(256, 256)
    blurred = ok.filter(ImageFilter.GaussianBlur(6))
    two_tone = Image.fromarray(np.where(np.arange(256)[:, None] < 128, 40, 220).astype(np.uint8).repeat(256, 1))
    imgs = [value(x) for x in (small, wide, one_colour, ok, blurred)] + [value(two_tone, "PNG"), None]
    assert reasons(MinSide(), imgs) == ["too_small", None, None, None, None, None, "no_image"]
    assert reasons(AspectRatio(), imgs) == [None, "bad_aspect_ratio", None, None, None, None, "no_image"]
    assert reasons(DistinctColors(), imgs) == [None, None, "few_colors", None, None, "few_colors", "no_image"]
    assert reasons(Blur(min_variance=100), imgs)[3:5] == [None, "blurry"]
    assert reasons(Entropy(min_entropy=3.0), imgs)[2:6] == ["low_entropy", None, None, "low_entropy"]
    assert laplacian_variance(blurred) < 100 < laplacian_variance(ok)
    assert grey_entropy(two_tone) == pytest.approx(1.0, abs=0.01)
    assert distinct_colors(one_colour) == 1 and distinct_colors(ok, at_most=31) == 32  # stops counting
    quality = ImageQuality(min_laplacian_variance=100, min_entropy=3.0)
    assert reasons(quality, imgs) == ["too_small", "bad_aspect_ratio", "few_colors", None, "blurry", "few_colors",
                                      "no_image"]


def test_size_columns_are_used_without_decoding():
    # bytes that cannot be decoded: the size checks must not need them when the columns are there
    broken = {"bytes": b"garbage", "path": None}
    batch = {"image": [broken, broken, value(photo(100, 100))],
             "original_width": [300, 100, None], "original_height": [300, 300, None],
             "width": [256, 256, 200], "height": [256, 256, 200]}
    assert MinSide().drop_reasons(batch) == [None, "too_small", None]  # row 3: falls back to width/height
    assert AspectRatio().drop_reasons(batch) == [None, "bad_aspect_ratio", None]
    assert ImageQuality().drop_reasons(batch) == ["undecodable", "too_small", None]  # colours need pixels
    assert MinSide(width_columns=("width",), height_columns=("height",)).drop_reasons(batch) == [None, None, None]


def test_modes_and_formats():
    rgba = photo(200, 200).convert("RGBA")
    stripes = Image.fromarray((np.arange(200 * 200).reshape(200, 200) // 10000 * 60 + 10).astype(np.uint8)).convert("P")
    grey = photo(200, 200).convert("L")
    imgs = [value(rgba, "PNG"), value(stripes, "GIF"), value(grey, "PNG"), photo(200, 200)]  # last: a PIL image
    assert reasons(ImageQuality(), imgs) == [None, "few_colors", None, None]


# ------------------------------------------------------------------------------------ datasets path
def image_dataset(decode=True):
    images = [value(photo(300, 200, seed=1)), None, value(flat(300, 300)), value(photo(100, 300)),
              value(photo(256, 256, seed=2))]
    return datasets.Dataset.from_dict(
        {"image": images, "url": [f"u{i}" for i in range(len(images))], "width": [300, None, 300, 100, 256],
         "height": [200, None, 300, 300, 256]},
        features=datasets.Features({"image": datasets.Image(decode=decode), "url": datasets.Value("string"),
                                    "width": datasets.Value("int32"), "height": datasets.Value("int32")}))


@pytest.mark.parametrize("decode", [True, False])
def test_filter_on_dataset_keeps_image_feature_and_counts(decode):
    ds = image_dataset(decode)
    stats = Stats()
    out = ImageQuality().apply(ds, stats, batch_size=2)
    assert out["url"] == ["u0", "u4"]
    assert out.features["image"] == datasets.Image(decode=decode)
    assert stats == {"image_quality.in": 5, "image_quality.kept": 2, "image_quality.dropped_few_colors": 1,
                     "image_quality.dropped_no_image": 1, "image_quality.dropped_too_small": 1}
    batch = ImageQuality().apply_batch(ds.cast_column("image", datasets.Image(decode=False))[:])[0]
    assert batch["url"] == out["url"]


def test_filter_without_size_columns_and_with_two_processes():
    ds = image_dataset().remove_columns(["width", "height"])
    assert MinSide().input_columns() == ["image"]
    out = ImageQuality().apply(ds, num_proc=2, batch_size=2)
    assert out["url"] == ["u0", "u4"]


def test_registry_config_and_pickle():
    step = build_step("image_quality", min_side=100, min_entropy=2.5)
    assert isinstance(step, ImageQuality) and step.min_side == 100
    for name in ("min_side", "aspect_ratio", "distinct_colors", "blur", "entropy", "phash", "sha256"):
        assert build_step(name).name == name
    phash = PHashStep()
    phash.hash_value(value(photo(64, 64)))  # loads the encoder cache
    assert "_cache_encoder" not in pickle.loads(pickle.dumps(phash)).__dict__
    with pytest.raises(ValueError):
        PHashStep(backend="other")


# -------------------------------------------------------------------------------------- hashes
def test_phash_hex_equals_imagededup(tmp_path):
    from imagededup.methods import PHash  # imports torch: a few seconds, once

    encoder = PHash(verbose=False)
    cases = {
        "photo.jpg": encode(photo(256, 192, seed=3)),
        "grey.png": encode(photo(200, 300, seed=4).convert("L"), "PNG"),
        "rgba.png": encode(photo(180, 180, seed=5).convert("RGBA"), "PNG"),
        "palette.gif": encode(photo(150, 260, seed=6).convert("P", palette=Image.Palette.ADAPTIVE), "GIF"),
        "tiny.jpg": encode(photo(20, 9, seed=7)),
        "flat.png": encode(flat(64, 64), "PNG"),
    }
    imagededup_backend = PHashStep(backend="imagededup")
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        want = encoder.encode_image(image_file=str(path))
        assert len(want) == 16
        assert phash_hex(Image.open(path)) == want, name
        assert PHashStep().hash_value({"bytes": data, "path": None}) == want, name
        assert imagededup_backend.hash_value(data) == want, name
        rgb = np.asarray(Image.open(path).convert("RGBA").convert("RGB")) if name != "photo.jpg" else None
        if rgb is not None:
            assert encoder.encode_image(image_array=rgb) == want


def test_phash_step_on_dataset():
    ds = image_dataset()
    out = PHashStep().apply(ds, batch_size=2)
    assert out.features["phash"] == datasets.Value("string")
    assert out.features["image"] == datasets.Image()
    hashes = out["phash"]
    assert hashes[1] is None and all(len(h) == 16 for i, h in enumerate(hashes) if i != 1)
    assert hashes[0] == phash_hex(Image.open(io.BytesIO(ds.cast_column("image", datasets.Image(decode=False))[0][
        "image"]["bytes"])))
    assert PHashStep().process_batch({"image": [{"bytes": b"junk", "path": None}]})["phash"] == [None]


def test_sha256_fills_missing_and_keeps_existing():
    ds = image_dataset()
    raw = ds.cast_column("image", datasets.Image(decode=False))["image"]
    out = ImageSha256().apply(ds, batch_size=2)
    want = [None if v is None else hashlib.sha256(v["bytes"]).hexdigest() for v in raw]
    assert out["sha256"] == want
    with_column = ds.add_column("sha256", ["given", None, None, "x", None])
    out = ImageSha256().apply(with_column, batch_size=2)
    assert out["sha256"] == ["given", None, want[2], "x", want[4]]
    assert out.features["image"] == datasets.Image()
