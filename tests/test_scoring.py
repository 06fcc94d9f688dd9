"""siglip_score / similarity_band on a tiny random SigLIP2 built on the spot (CPU, no download)."""

import io
import pickle

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from waon_hf.steps.base import STEP_REGISTRY, build_step
from waon_hf.steps.scoring import SiglipScore, SimilarityBand, resolve_device, resolve_dtype
from waon_hf.testing.tiny_models import build_tiny_siglip2

CAPTIONS = ["赤い鳥居と石の階段", "富士山と桜の風景", "A photo of a CAT", "ラーメンと餃子のセット",
            "夏祭りの屋台と提灯", "金魚"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_siglip2(tmp_path_factory.mktemp("tiny_siglip2"), seed=0)


def _jpeg(seed: int, size=(48, 40)) -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _batch(n=6):
    sizes = [(48, 40), (64, 64), (30, 90), (120, 50), (33, 33), (200, 100)]
    return {"image": [{"bytes": _jpeg(i, sizes[i % len(sizes)]), "path": None} for i in range(n)],
            "caption": [CAPTIONS[i % len(CAPTIONS)] for i in range(n)]}


def _by_hand(model_dir, images: list[bytes], captions: list[str]) -> list[float]:
    from waon_hf.models.dual_encoder import DualEncoder, pooled_output

    enc = DualEncoder.from_pretrained(model_dir, local_files_only=True)
    pil = [Image.open(io.BytesIO(b)).convert("RGB") for b in images]
    with torch.inference_mode():
        img = pooled_output(enc.model.get_image_features(**enc.preprocess_images(pil)))
        txt = pooled_output(enc.model.get_text_features(**enc.tokenize(captions)))
    img = img / img.norm(dim=-1, keepdim=True)
    txt = txt / txt.norm(dim=-1, keepdim=True)
    return (img * txt).sum(-1).tolist()


def test_registered_and_options():
    assert STEP_REGISTRY["siglip_score"] is SiglipScore
    assert STEP_REGISTRY["similarity_band"] is SimilarityBand
    step = build_step("siglip_score", model="x", batch_size=8, with_probability=True)
    assert step.output_columns() == ["similarity", "similarity_prob"]
    assert step.model == "x" and step.dtype == "auto" and step.device == "cpu"
    assert resolve_dtype("auto", "cpu") == "float32" and resolve_dtype("auto", "cuda:1") == "bfloat16"
    assert resolve_dtype("bf16", "cuda") == "bfloat16"
    assert resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(ValueError, match="dtype"):
        SiglipScore(dtype="int8")
    with pytest.raises(ValueError, match="batch_size"):
        SiglipScore(batch_size=0)
    with pytest.raises(ValueError, match="keeps nothing"):
        SimilarityBand(min_similarity=0.5, max_similarity=0.1)


def test_batched_equals_single_and_deterministic(model_dir):
    batch = _batch(6)
    one = SiglipScore(model=model_dir, batch_size=1).process_batch(batch)["similarity"]
    four = SiglipScore(model=model_dir, batch_size=4).process_batch(batch)["similarity"]
    again = SiglipScore(model=model_dir, batch_size=4).process_batch(batch)["similarity"]
    assert all(isinstance(s, float) for s in one)
    np.testing.assert_allclose(one, four, atol=1e-5, rtol=0)
    assert four == again  # fp32 CPU path: bit-identical across runs


def test_matches_cosine_by_hand(model_dir):
    batch = _batch(4)
    step = SiglipScore(model=model_dir, batch_size=4, with_probability=True)
    out = step.process_batch(batch)
    expected = _by_hand(model_dir, [v["bytes"] for v in batch["image"]], batch["caption"])
    assert out["similarity"] == expected
    # similarity_prob = sigmoid(exp(logit_scale) * cos + logit_bias), the model's own pair probability
    model = step.encoder().model
    cos = torch.tensor(expected)
    prob = torch.sigmoid(cos * model.logit_scale.exp() + model.logit_bias).tolist()
    np.testing.assert_allclose(out["similarity_prob"], prob, atol=1e-6, rtol=0)
    # the rest of the batch is passed through
    assert out["caption"] == batch["caption"] and out["image"] == batch["image"]


@pytest.mark.parametrize("family", ["fixres", "siglip"])
def test_fixed_resolution_families_score_the_cosine(family, tiny_model_dir):
    """``SiglipModel`` checkpoints (FixRes SigLIP2, SigLIP 1): the score is the cosine of the fixed-size
    image and the caption, batched or not."""
    model = tiny_model_dir(family)
    batch = _batch(4)
    out = SiglipScore(model=model, batch_size=4).process_batch(batch)
    expected = _by_hand(model, [v["bytes"] for v in batch["image"]], batch["caption"])
    np.testing.assert_allclose(out["similarity"], expected, atol=1e-6, rtol=0)
    one = SiglipScore(model=model, batch_size=1).process_batch(batch)["similarity"]
    np.testing.assert_allclose(one, out["similarity"], atol=1e-5, rtol=0)
    assert type(SiglipScore(model=model).encoder().model).__name__ == "SiglipModel"


def test_missing_and_undecodable_images_are_null(model_dir):
    batch = _batch(3)
    batch["image"] += [None, {"bytes": None, "path": None}, {"bytes": b"not an image", "path": None},
                       {"bytes": _jpeg(9), "path": None}]
    batch["caption"] += ["金魚", "金魚", "金魚", None]
    out = SiglipScore(model=model_dir, batch_size=2, with_probability=True).process_batch(batch)
    assert out["similarity"][3:] == [None] * 4
    assert out["similarity_prob"][3:] == [None] * 4
    assert all(isinstance(s, float) for s in out["similarity"][:3])
    # PIL images are accepted too and score like their bytes
    pil = {"image": [Image.open(io.BytesIO(v["bytes"])) for v in batch["image"][:3]], "caption": batch["caption"][:3]}
    assert SiglipScore(model=model_dir, batch_size=2).process_batch(pil)["similarity"] == out["similarity"][:3]


def test_missing_model_is_a_clear_error(tmp_path):
    missing = str(tmp_path / "no_such_model")
    step = SiglipScore(model=missing)
    with pytest.raises(RuntimeError, match="no_such_model"):
        step.process_batch(_batch(1))
    assert SiglipScore(model=missing).score_batch({"image": [], "caption": []}) == {"similarity": []}  # lazy


def test_band_filter_reasons():
    batch = {"similarity": [0.05, 0.1, 0.2, None, 0.5, -0.3, float("nan")], "id": list(range(7))}
    out, counts = SimilarityBand().apply_batch(batch)
    assert out["id"] == [1, 2, 4]
    assert counts == {"in": 7, "kept": 3, "dropped_low_similarity": 2, "dropped_no_similarity": 2}
    out, counts = SimilarityBand(min_similarity=0.1, max_similarity=0.3).apply_batch(batch)
    assert out["id"] == [1, 2]
    assert counts["dropped_high_similarity"] == 1 and counts["dropped_low_similarity"] == 2
    out, counts = SimilarityBand(min_similarity=None, max_similarity=None).apply_batch(batch)
    assert out["id"] == [0, 1, 2, 4, 5]
    assert SimilarityBand(min_similarity=None).drop_reasons({"similarity": [-1.0, 2.0]}) == [None, None]


def test_apply_on_dataset_and_pickle(model_dir):
    batch = _batch(5)
    batch["image"].append(None)
    batch["caption"].append("金魚")
    ds = datasets.Dataset.from_dict(
        {**batch, "id": list(range(6))},
        features=datasets.Features({"image": datasets.Image(), "caption": datasets.Value("string"),
                                    "id": datasets.Value("int64")}))
    step = SiglipScore(model=model_dir, batch_size=4, with_probability=True)
    out = step.apply(ds, batch_size=3)
    assert out.features["similarity"] == datasets.Value("float64")  # WAON's dtype
    assert out.features["similarity_prob"] == datasets.Value("float64")
    assert out.features["image"] == datasets.Image()  # decode restored
    assert out.column_names == ["image", "caption", "id", "similarity", "similarity_prob"]
    direct = step.process_batch(batch)["similarity"]
    assert out["similarity"][5] is None
    np.testing.assert_allclose(out["similarity"][:5], direct[:5], atol=1e-6, rtol=0)
    assert isinstance(out[0]["image"], Image.Image)
    # the model was loaded once and kept; it does not travel in pickles
    assert getattr(step, "_cache_encoder", None) is not None
    data = pickle.dumps(step)
    assert len(data) < 2000
    clone = pickle.loads(data)
    assert not hasattr(clone, "_cache_encoder") and clone == step
    # band filter through datasets
    kept = SimilarityBand(min_similarity=float(np.median(direct[:5]))).apply(out)
    assert len(kept) == sum(s >= float(np.median(direct[:5])) for s in out["similarity"][:5])


def test_cuda_auto_picks_device_by_rank(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert [resolve_device("cuda:auto", r) for r in (0, 1, 2, 3)] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert resolve_device("cuda:auto") == "cuda:0"
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert resolve_device("cuda:auto") == "cuda:1"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA"):
        resolve_device("cuda:auto", 0)

