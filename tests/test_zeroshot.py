"""The zero-shot runner on the tiny SigLIP2: parity with a hand computation, oracles, missing images, CLI."""

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import datasets
import numpy as np
import pytest
import torch

from waon_hf.eval.benchmarks import load_benchmark, parse_bench_list
from waon_hf.eval.templates import TEMPLATE_SETS, get_templates
from waon_hf.eval.zeroshot import (
    EmbeddingScorer,
    FunctionScorer,
    class_embeddings,
    evaluate_classification,
    evaluate_model,
    load_benchmarks,
    score_rows,
)
from waon_hf.models.dual_encoder import DualEncoder, text_recipe_for
from waon_hf.testing.tiny_models import build_tiny_siglip2

REPO = Path(__file__).resolve().parents[1]
TINY_BENCH = REPO / "samples" / "tiny_bench"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_tiny_siglip2(tmp_path_factory.mktemp("tiny") / "siglip2", seed=0)


@pytest.fixture(scope="module")
def encoder(tiny_model):
    return DualEncoder.from_pretrained(tiny_model, local_files_only=True)


@pytest.fixture(scope="module")
def tiny_task():
    (task,) = load_benchmark("tiny")
    return task


def test_tiny_builder_is_deterministic_and_reloads(tmp_path, tiny_model):
    from transformers import AutoModel, AutoProcessor

    again = Path(build_tiny_siglip2(tmp_path / "again", seed=0))
    for f in Path(tiny_model).iterdir():
        assert (again / f.name).read_bytes() == f.read_bytes(), f.name
    other = Path(build_tiny_siglip2(tmp_path / "other", seed=1))
    assert (other / "model.safetensors").read_bytes() != (again / "model.safetensors").read_bytes()
    model = AutoModel.from_pretrained(again, local_files_only=True)
    processor = AutoProcessor.from_pretrained(again, local_files_only=True)
    assert type(model).__name__ == "Siglip2Model" and model.config.text_config.hidden_size == 32
    assert type(processor.tokenizer).__name__ == "Siglip2Tokenizer"
    assert processor.image_processor.max_num_patches == 64
    ids = processor.tokenizer("富士山の写真 xyz")["input_ids"]
    assert processor.tokenizer.unk_token_id not in ids  # byte fallback: nothing is unknown


def test_tiny_bench_is_small_and_complete(tiny_task):
    size = sum(f.stat().st_size for f in TINY_BENCH.iterdir())
    assert size < 100_000
    assert len(tiny_task) == 24 and len(tiny_task.class_names) == 8
    assert np.bincount(tiny_task.labels).tolist() == [3] * 8
    assert sorted(set(tiny_task.categories)) == ["animal", "building", "event", "everyday", "food", "nature",
                                                 "scenery", "tradition"]
    assert all(img is not None for img, _ in tiny_task.images.load(range(24)))


def test_siglip_text_recipe_pads_right_without_mask(encoder):
    r = encoder.text_recipe
    assert (r.lowercase, r.padding, r.max_length, r.padding_side, r.attention_mask) == (
        True, "max_length", 64, "right", False)
    batch = encoder.tokenize(["富士山の写真", "とても長い説明の付いた金魚の写真"])
    assert set(batch) == {"input_ids"} and batch["input_ids"].shape == (2, 64)
    pad = encoder.tokenizer.pad_token_id
    assert batch["input_ids"][0, -1] == pad and batch["input_ids"][0, 0] != pad
    assert encoder.tokenize(["ABC"])["input_ids"].tolist() == encoder.tokenize(["abc"])["input_ids"].tolist()
    left = text_recipe_for(encoder.model, encoder.tokenizer, padding_side="left")
    assert left.padding_side == "left"


def test_clip_style_recipe_for_other_model_types():
    config = SimpleNamespace(model_type="clip", text_config=SimpleNamespace(max_position_embeddings=77))
    recipe = text_recipe_for(SimpleNamespace(config=config), SimpleNamespace(padding_side="right",
                                                                             model_max_length=77))
    assert (recipe.padding, recipe.attention_mask, recipe.lowercase, recipe.max_length) == ("longest", True, False, 77)


def _by_hand(model_dir, task, templates, image_kwargs=None):
    """Predictions computed directly: processor + get_*_features, normalise, template mean, argmax."""
    from transformers import AutoModel, AutoProcessor

    model = AutoModel.from_pretrained(model_dir, local_files_only=True).eval()
    processor = AutoProcessor.from_pretrained(model_dir, local_files_only=True)
    texts = [t.format(c).lower() for t in templates for c in task.class_names]
    text_inputs = processor(text=texts, padding="max_length", max_length=64, truncation=True, padding_side="right",
                            return_tensors="pt")
    images = [img for img, _ in task.images.load(range(len(task)))]
    kwargs = {"max_num_patches": 64, "patch_size": 16} if image_kwargs is None else image_kwargs
    image_inputs = processor(images=images, return_tensors="pt", **kwargs)
    with torch.no_grad():
        text = model.get_text_features(input_ids=text_inputs["input_ids"]).pooler_output
        image = model.get_image_features(**image_inputs).pooler_output
    text = torch.nn.functional.normalize(text, dim=-1).reshape(len(templates), len(task.class_names), -1)
    classes = torch.nn.functional.normalize(text.mean(0), dim=-1)
    scores = torch.nn.functional.normalize(image, dim=-1) @ classes.T
    return scores.numpy()


@pytest.mark.parametrize("template_set", ["default", "single"])
def test_runner_matches_the_hand_computation(tiny_model, encoder, tiny_task, template_set):
    templates = get_templates(template_set)
    expected = _by_hand(tiny_model, tiny_task, templates)
    scorer = EmbeddingScorer(encoder, class_embeddings(encoder, tiny_task.class_names, templates))
    scored = score_rows(tiny_task.images, scorer, len(tiny_task.class_names), batch_size=5)
    np.testing.assert_allclose(scored.scores, expected, atol=1e-5)
    assert (scored.predictions == expected.argmax(1)).all()
    # batching and prefetching change nothing
    other = score_rows(tiny_task.images, scorer, len(tiny_task.class_names), batch_size=32, prefetch=True)
    np.testing.assert_allclose(other.scores, scored.scores, atol=1e-5)


@pytest.mark.parametrize("family", ["fixres", "siglip"])
def test_fixed_resolution_families_evaluate_like_the_hand_computation(family, tiny_model_dir, tiny_task, tmp_path):
    """FixRes SigLIP2 and SigLIP 1 (``SiglipModel``, fixed-size images): ``waon eval`` gives the hand
    computation's predictions and records the fixed-size preprocessing."""
    from waon_hf.cli import main

    model_dir = tiny_model_dir(family)
    expected = _by_hand(model_dir, tiny_task, get_templates("default"), image_kwargs={})
    out = tmp_path / "results.json"
    assert main(["eval", "--model", model_dir, "--bench", "tiny", "-o", str(out)]) == 0
    results = json.loads(out.read_text(encoding="utf-8"))
    model = results["model"]
    assert (model["model_class"], model["model_type"]) == ("SiglipModel", "siglip")
    assert model["image_preprocessing"]["size"] == {"height": 64, "width": 64}
    assert "max_num_patches" not in model["image_preprocessing"]
    assert model["text_preprocessing"]["padding_side"] == "right" and model["text_preprocessing"]["max_length"] == 64
    top1 = float((expected.argmax(1) == np.asarray(tiny_task.labels)).mean())
    assert results["benchmarks"]["tiny"]["metrics"]["top1"] == pytest.approx(top1)


def _image_key(img):
    return hashlib.sha1(img.tobytes() + repr(img.size).encode()).hexdigest()


def test_oracle_scores_100_and_constant_scores_chance(tiny_task):
    n_classes = len(tiny_task.class_names)
    truth = {_image_key(img): label for (img, _), label in zip(tiny_task.images.load(range(len(tiny_task))),
                                                                tiny_task.labels, strict=True)}
    oracle = FunctionScorer(lambda imgs: np.eye(n_classes)[[truth[_image_key(i)] for i in imgs]])
    constant = FunctionScorer(lambda imgs: np.ones((len(imgs), n_classes)))
    best = evaluate_classification(tiny_task, oracle, batch_size=7)["metrics"]
    assert best["top1"] == best["macro_top1"] == 1.0 and set(best["per_category_top1"].values()) == {1.0}
    chance = evaluate_classification(tiny_task, constant, batch_size=7)["metrics"]
    assert chance["top1"] == pytest.approx(1 / n_classes)  # ties -> class 0 everywhere
    assert chance["top5"] == pytest.approx(5 / n_classes)


@pytest.fixture
def partly_missing(tmp_path):
    """The tiny bench with 3 URL-only rows and 1 corrupt image, as a WAON-Bench-format parquet."""
    ds = datasets.load_dataset(str(TINY_BENCH), split="test").cast_column("image", datasets.Image(decode=False))
    rows = ds.to_dict()
    for i in (0, 4, 9):
        rows["image"][i] = None
    rows["image"][10] = {"bytes": b"not an image", "path": None}
    path = tmp_path / "waon_bench_partial.parquet"
    datasets.Dataset.from_dict(rows, features=ds.features).to_parquet(str(path))
    return path


def test_missing_images_are_reported_and_counted_wrong(partly_missing):
    (task,) = load_benchmark("waon-bench", str(partly_missing))
    truth = dict(zip(range(len(task)), task.labels, strict=True))
    keys = {_image_key(img): i for i, (img, _) in enumerate(task.images.load(range(len(task)))) if img is not None}
    oracle = FunctionScorer(lambda imgs: np.eye(8)[[truth[keys[_image_key(i)]] for i in imgs]])
    res = evaluate_classification(task, oracle)
    m = res["metrics"]
    assert (m["n_total"], m["n_scored"], m["n_missing"], m["n_evaluated"]) == (24, 20, 4, 24)
    assert m["top1"] == pytest.approx(20 / 24)
    assert res["missing"]["reasons"] == {"url_only": 3, "undecodable": 1}
    assert res["missing"]["examples"][0]["url"].startswith("https://tiny-bench.invalid/")
    assert "counted as wrong" in res["missing"]["message"]
    skipped = evaluate_classification(task, oracle, skip_missing=True)["metrics"]
    assert skipped["top1"] == 1.0 and skipped["n_evaluated"] == 20 and skipped["skip_missing"]


def test_url_only_benchmark_is_all_missing(tmp_path):
    ds = datasets.load_dataset(str(TINY_BENCH), split="test").remove_columns(["image"])
    path = tmp_path / "urls.parquet"
    ds.to_parquet(str(path))
    (task,) = load_benchmark("waon-bench", str(path))
    res = evaluate_classification(task, FunctionScorer(lambda imgs: pytest.fail("nothing to score")))
    assert res["metrics"]["top1"] == 0.0 and res["metrics"]["n_missing"] == 24
    assert res["missing"]["reasons"] == {"url_only": 24}


def test_retrieval_runner_matches_embeddings(encoder, tmp_path):
    ds = datasets.load_dataset(str(TINY_BENCH), split="test")
    ds = ds.add_column("captions", [[f"{c}の写真", f"{cat}の画像"] for c, cat in zip(ds["class"], ds["category"],
                                                                               strict=True)])
    path = tmp_path / "xm.parquet"
    ds.to_parquet(str(path))
    benchmarks = load_benchmarks([("xm3600", str(path))])
    (task,) = benchmarks["xm3600"]
    assert len(task.captions) == 24 and task.captions[0] == "金魚の写真"  # first caption per image
    res = evaluate_model(encoder, benchmarks, templates=("{}",), template_set="x")["benchmarks"]["xm3600"]
    images = [img for img, _ in task.images.load(range(24))]
    sims = (encoder.encode_texts(task.captions) @ encoder.encode_images(images).T).numpy()
    from waon_hf.eval.metrics import retrieval_metrics

    assert res["metrics"] == pytest.approx(retrieval_metrics(sims, task.text_to_image))
    assert res["task"] == "image-text retrieval"


def test_recruit_folder_of_csvs_with_image_paths(encoder, tiny_task, tmp_path):
    from waon_hf.eval.benchmarks import RECRUIT_SUBSETS

    (tmp_path / "img").mkdir()
    for i, (img, _) in enumerate(tiny_task.images.load(range(len(tiny_task)))):
        img.save(tmp_path / "img" / f"{i}.png")
    for n, subset in enumerate(RECRUIT_SUBSETS):
        rows = ["label,image_path"] + [f"{tiny_task.class_names[tiny_task.labels[i]]},img/{i}.png"
                                       for i in range(n, len(tiny_task), 4)]
        if n == 0:
            rows.append("金魚,img/does-not-exist.png")
        (tmp_path / f"{subset}.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    benchmarks = load_benchmarks([("recruit", str(tmp_path))])
    assert [t.name for t in benchmarks["recruit"]] == [f"recruit/{s}" for s in RECRUIT_SUBSETS]
    results = evaluate_model(encoder, benchmarks, templates=("{}の写真",), template_set="single")["benchmarks"]
    food = results["recruit/jafood101"]
    assert food["metrics"]["n_total"] == 7 and food["missing"]["reasons"] == {"file_not_found": 1}
    subsets = [results[f"recruit/{s}"]["metrics"]["top1"] for s in RECRUIT_SUBSETS]
    assert results["recruit"]["metrics"]["top1"] == pytest.approx(np.mean(subsets))


def test_templates():
    assert len(TEMPLATE_SETS["default"]) == 8 and TEMPLATE_SETS["single"] == ("{}の写真",)
    with pytest.raises(ValueError, match="unknown template set"):
        get_templates("nope")


def test_template_file(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("# comment\n{}の写真\n\n{}のイラスト\n", encoding="utf-8")
    assert get_templates(str(f)) == ("{}の写真", "{}のイラスト")
    f.write_text("写真\n", encoding="utf-8")
    with pytest.raises(ValueError, match="exactly once"):
        get_templates(str(f))


def test_bench_list_parsing():
    assert parse_bench_list("waon-bench, xm3600=data/xm") == [("waon-bench", None), ("xm3600", "data/xm")]
    with pytest.raises(ValueError, match="unknown benchmark 'nope'"):
        parse_bench_list("waon-bench,nope")


# -- CLI ----------------------------------------------------------------------------------------

def test_waon_eval_writes_results(tmp_path, tiny_model, capsys):
    from waon_hf.cli import main

    out = tmp_path / "results.json"
    assert main(["eval", "--model", tiny_model, "--bench", "tiny", "-o", str(out), "--batch-size", "10"]) == 0
    results = json.loads(out.read_text(encoding="utf-8"))
    assert {"waon_hf_version", "created", "model", "templates", "skip_missing", "conventions",
            "benchmarks"} <= set(results)
    model = results["model"]
    assert model["revision"] == str(Path(tiny_model).resolve()) and model["model_type"] == "siglip2"
    assert model["text_preprocessing"]["padding_side"] == "right"
    assert model["image_preprocessing"]["max_num_patches"] == 64
    assert results["templates"]["templates"] == list(TEMPLATE_SETS["default"])
    tiny = results["benchmarks"]["tiny"]
    assert {"top1", "top5", "macro_top1", "per_category_top1", "n_total", "n_scored", "n_missing"} <= set(
        tiny["metrics"])
    assert tiny["metrics"]["n_total"] == 24 and tiny["missing"]["n_missing"] == 0
    assert "| tiny | top1 |" in capsys.readouterr().out


def test_waon_eval_records_skip_missing(tmp_path, tiny_model, partly_missing):
    from waon_hf.cli import main

    out = tmp_path / "r.json"
    assert main(["eval", "--model", tiny_model, "--bench", f"waon-bench={partly_missing}", "-o", str(out),
                 "--templates", "single", "--skip-missing"]) == 0
    results = json.loads(out.read_text(encoding="utf-8"))
    m = results["benchmarks"]["waon-bench"]["metrics"]
    assert results["skip_missing"] and m["skip_missing"] and (m["n_evaluated"], m["n_missing"]) == (20, 4)


def test_waon_eval_model_that_fails_to_load_is_an_error(tmp_path, caplog):
    from waon_hf.cli import main

    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json", encoding="utf-8")
    assert main(["eval", "--model", str(tmp_path / "broken"), "--bench", "tiny", "-o", str(tmp_path / "r.json")]) == 1
    assert "could not load model" in caplog.text and "broken" in caplog.text
    assert not (tmp_path / "r.json").exists()


def test_waon_eval_rejects_half_precision_on_cpu(tmp_path, tiny_model, caplog):
    from waon_hf.cli import main

    assert main(["eval", "--model", tiny_model, "--bench", "tiny", "-o", str(tmp_path / "r.json"),
                 "--dtype", "bfloat16"]) == 1
    assert "CUDA only" in caplog.text
