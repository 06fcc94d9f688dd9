"""NSFW classifiers on tiny replicas of real Hub layouts (id2label copied from their config.json):
Falconsai's binary normal/nsfw, and the five-class drawings/hentai/neutral/porn/sexy layout, through
`waon score` and the step."""

import io
import json

import datasets
import numpy as np
import pytest
from PIL import Image

from tests.real_shapes.fixtures import load_facts
from waon_hf.cli import main
from waon_hf.steps.nsfw import NsfwScore

LAYOUTS = load_facts("nsfw_classifiers.json")["models"]
FIVE_CLASS = "LukeJacob2023/nsfw-image-detector"
BINARY = "Falconsai/nsfw_image_detection"


def _tiny_classifier(folder, layout: dict) -> str:
    """A random ViT image classifier with the real model's id2label and problem_type."""
    import torch
    import transformers

    id2label = {int(k): v for k, v in layout["id2label"].items()}
    config = transformers.ViTConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37, image_size=32, patch_size=8,
        id2label=id2label, label2id={v: k for k, v in id2label.items()}, problem_type=layout["problem_type"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        transformers.ViTForImageClassification(config).save_pretrained(folder)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return str(folder)


def _images(n=4):
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)) for _ in range(n)]


def _expected(model_dir, images, labels):
    import torch
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(model_dir).eval()
    with torch.no_grad():
        probs = model(**AutoImageProcessor.from_pretrained(model_dir)(images=images, return_tensors="pt")).logits
    probs = probs.softmax(-1).numpy()
    ids = [model.config.label2id[w] for w in labels]
    return probs[:, ids].sum(axis=1)


@pytest.fixture(scope="module")
def five_class(tmp_path_factory):
    return _tiny_classifier(tmp_path_factory.mktemp("five"), LAYOUTS[FIVE_CLASS])


def test_five_class_punsafe_is_the_sum_of_the_unsafe_classes(five_class):
    images = _images()
    unsafe = LAYOUTS[FIVE_CLASS]["unsafe_labels"]
    scores = NsfwScore(backend="transformers", model=five_class, unsafe_labels=",".join(unsafe)).score(images)
    np.testing.assert_allclose(scores, _expected(five_class, images, unsafe), atol=1e-5)
    with pytest.raises(ValueError, match=r"not a known binary layout.*--nsfw-unsafe-labels") as err:
        NsfwScore(backend="transformers", model=five_class).score(images)
    assert "'drawings', 'hentai', 'neutral', 'porn', 'sexy'" in str(err.value)
    with pytest.raises(ValueError, match=r"no label\(s\) \['gore'\]"):
        NsfwScore(backend="transformers", model=five_class, unsafe_labels=("porn", "gore")).check_labels()


def test_known_binary_layout_is_detected(tmp_path):
    model = _tiny_classifier(tmp_path / "binary", LAYOUTS[BINARY])
    images = _images()
    np.testing.assert_allclose(NsfwScore(backend="transformers", model=model).score(images),
                               _expected(model, images, LAYOUTS[BINARY]["unsafe_labels"]), atol=1e-5)


def _image_dataset(folder, images):
    rows = []
    for i, img in enumerate(images):
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        rows.append({"url": f"https://img.example/{i}.png", "caption": f"写真 {i}",
                     "image": {"bytes": buf.getvalue(), "path": None}})
    ds = datasets.Dataset.from_list(rows).cast_column("image", datasets.Image())
    (folder / "data").mkdir(parents=True)
    ds.to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))
    return folder


def test_waon_score_with_a_five_class_classifier(five_class, tmp_path, caplog):
    from waon_hf.testing.tiny_models import build_tiny_siglip2

    siglip = build_tiny_siglip2(tmp_path / "siglip")
    images = _images()
    src = _image_dataset(tmp_path / "in", images)
    common = ["score", str(src), "--siglip", siglip, "--nsfw-backend", "transformers", "--nsfw-model", five_class,
              "--min-similarity", "-1", "--max-punsafe", "1.01"]
    assert main([*common, "-o", str(tmp_path / "refused")]) == 1  # no layout named: fails before any shard
    assert "'porn', 'sexy'" in caplog.text and not (tmp_path / "refused" / "data").exists()
    assert main([*common, "-o", str(tmp_path / "out"), "--nsfw-unsafe-labels", "porn,hentai,sexy"]) == 0
    ds = datasets.load_dataset(str(tmp_path / "out"), split="train")
    by_url = dict(zip(ds["url"], ds["punsafe"], strict=True))
    want = _expected(five_class, [im.convert("RGB") for im in images], ["porn", "hentai", "sexy"])
    np.testing.assert_allclose([by_url[f"https://img.example/{i}.png"] for i in range(4)], want, atol=1e-5)
    steps = json.loads((tmp_path / "out" / "pipeline.json").read_text())["stages"][0]["steps"]
    nsfw = next(s["config"] for s in steps if s["name"] == "nsfw_score")
    assert nsfw["unsafe_labels"] == ["porn", "hentai", "sexy"]


def test_other_two_class_layout_with_an_nsfw_class(tmp_path):
    """A stand-in, not copied from a real model: NSFW/SFW, the naming of some binary detectors."""
    layout = {"id2label": {"0": "NSFW", "1": "SFW"}, "problem_type": "single_label_classification"}
    model = _tiny_classifier(tmp_path / "sfw", layout)
    images = _images()
    np.testing.assert_allclose(NsfwScore(backend="transformers", model=model).score(images),
                               _expected(model, images, ["NSFW"]), atol=1e-5)
