"""LAION's CLIP ViT-B/32 NSFW head (WAON's scorer): the real release zip read without TensorFlow, its
layer shapes checked against the fact file, and the backend's wiring on a tiny CLIP built locally
(random weights; the real CLIP cannot be downloaded here)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.http_server import serve
from tests.real_shapes.fixtures import load_facts
from waon_hf.steps import laion_nsfw
from waon_hf.steps.laion_nsfw import HEAD_KEYS, fetch_head, head_punsafe, read_keras_head, save_head_npz
from waon_hf.steps.nsfw import NsfwModelError, NsfwScore

RELEASE = Path(__file__).resolve().parent.parent / "data" / "laion_nsfw" / "clip_autokeras_nsfw_b32.zip"
FACTS = load_facts("laion_clip_nsfw_b32.json")


def _layer(name):
    return next(layer for layer in FACTS["layers"] if layer["name"] == name)


def test_release_zip_has_the_documented_layers():
    head = read_keras_head(RELEASE)
    assert head["mean"].shape == tuple(_layer("normalization")["weights"]["mean"]) == (FACTS["input_dim"],)
    for i, name in enumerate(("dense", "dense_1", "dense_2")):
        assert head[f"kernel_{i}"].shape == tuple(_layer(name)["weights"]["kernel"])
        assert head[f"bias_{i}"].shape == tuple(_layer(name)["weights"]["bias"])
    sizes = {str(c): len(v) for c, v in head["categorical"].items()}
    assert sizes == _layer("multi_category_encoding")["categorical_columns"]
    assert (head["variance"] > 0).all()
    assert head["categorical"][92]["-0.562500"] == 1  # the vocabulary's first text is index 1 (0 = unknown)


def _tiny_clip(folder: Path, projection_dim: int) -> str:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    config = CLIPConfig(
        text_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                     "vocab_size": 64, "max_position_embeddings": 16},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=projection_dim)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        CLIPModel(config).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return str(folder)


def _embeddings(clip_dir, images):
    import torch
    from transformers import CLIPImageProcessor, CLIPModel

    model = CLIPModel.from_pretrained(clip_dir).eval()
    pixels = CLIPImageProcessor.from_pretrained(clip_dir)(images=images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        feats = model.visual_projection(model.vision_model(pixel_values=pixels).pooler_output)
    feats = feats / feats.norm(dim=-1, keepdim=True)
    return feats.numpy().astype(np.float16)  # LAION's embeddings are float16 (clip-retrieval)


def _images():
    rng = np.random.default_rng(1)
    return [Image.fromarray(rng.integers(0, 256, (36, 44, 3), dtype=np.uint8)) for _ in range(5)]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return _tiny_clip(tmp_path_factory.mktemp("clip"), FACTS["input_dim"])


def test_backend_runs_clip_then_the_head(tiny_clip):
    images = _images()
    scores = NsfwScore(backend="laion_clip", model=str(RELEASE), clip_model=tiny_clip, batch_size=2).score(images)
    want = head_punsafe(read_keras_head(RELEASE), _embeddings(tiny_clip, images))
    np.testing.assert_allclose(scores, want, rtol=1e-5, atol=1e-7)
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_stand_in_head_of_the_same_shapes_computes_the_mlp(tiny_clip, tmp_path):
    """Random weights with the fact file's shapes, saved as .npz; the MLP written out independently."""
    rng = np.random.default_rng(2)
    shapes = dict(_layer("normalization")["weights"])
    for i, name in enumerate(("dense", "dense_1", "dense_2")):
        shapes[f"kernel_{i}"] = _layer(name)["weights"]["kernel"]
        shapes[f"bias_{i}"] = _layer(name)["weights"]["bias"]
    head = {k: rng.normal(scale=0.3, size=shapes[k]).astype(np.float32) for k in HEAD_KEYS}
    head["variance"] = np.abs(head["variance"]) + 0.01
    save_head_npz(head, tmp_path / "stand-in.npz")
    images = _images()
    scores = NsfwScore(backend="laion_clip", model=str(tmp_path / "stand-in.npz"), clip_model=tiny_clip).score(images)
    x = np.round(_embeddings(tiny_clip, images).astype(np.float64), 6)
    h = (x - head["mean"]) / np.sqrt(head["variance"])
    h = np.maximum(h @ head["kernel_0"] + head["bias_0"], 0)
    h = np.maximum(h @ head["kernel_1"] + head["bias_1"], 0)
    want = 1 / (1 + np.exp(-(h @ head["kernel_2"] + head["bias_2"])[:, 0]))
    np.testing.assert_allclose(scores, want, rtol=1e-4)


def test_head_by_url_is_downloaded_once(tmp_path, monkeypatch):
    monkeypatch.setattr(laion_nsfw, "_CACHE", tmp_path / "cache")
    with serve(RELEASE.parent) as server:
        url = f"{server.url}{RELEASE.name}"
        first = fetch_head(url)
        assert fetch_head(url) == first and len(server.requests) == 1
    assert first.read_bytes() == RELEASE.read_bytes()


def test_clip_of_another_width_is_refused(tmp_path):
    clip = _tiny_clip(tmp_path / "clip32", 32)
    with pytest.raises(NsfwModelError, match="embeds into 32 dimensions, the head .* takes 512"):
        NsfwScore(backend="laion_clip", model=str(RELEASE), clip_model=clip).score(_images()[:1])
    with pytest.raises(NsfwModelError, match="could not load the head"):
        NsfwScore(backend="laion_clip", model=str(tmp_path / "missing.zip"), clip_model=clip).score(_images()[:1])
