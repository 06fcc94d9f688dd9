"""Metrics: parity with scikit-learn, hand-computed examples, validation, and the evaluate modules."""

import doctest
import importlib
import os
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import top_k_accuracy_score

from waon_hf.eval import metrics as M
from waon_hf.eval.metrics import classification_metrics, rank_of_target, retrieval_metrics

REPO = Path(__file__).resolve().parents[1]


# -- classification ------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_top_k_matches_sklearn_on_random_scores(seed):
    rng = np.random.default_rng(seed)
    n_classes = 37
    scores = rng.normal(size=(400, n_classes))
    labels = rng.integers(0, n_classes, 400)
    r = classification_metrics(labels, scores=scores)
    for k in (1, 5):
        assert r[f"top{k}"] == pytest.approx(top_k_accuracy_score(labels, scores, k=k, labels=range(n_classes)))
    assert r["n_total"] == r["n_evaluated"] == 400 and r["n_classes"] == n_classes


def test_ties_rank_the_lower_index_first():
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 4, size=(300, 12)).astype(float)  # many ties
    labels = rng.integers(0, 12, 300)
    r = classification_metrics(labels, scores=scores)
    # sklearn breaks ties towards the higher index: mirroring the columns turns its rule into ours.
    mirrored = scores[:, ::-1]
    for k in (1, 5):
        assert r[f"top{k}"] == pytest.approx(top_k_accuracy_score(11 - labels, mirrored, k=k, labels=range(12)))
    # ... and top-1 equals the accuracy of argmax labels (numpy's argmax takes the first maximum).
    assert r["top1"] == classification_metrics(labels, predictions=scores.argmax(1))["top1"]
    assert list(rank_of_target(np.array([[1.0, 1.0, 1.0]] * 3), np.array([0, 1, 2]))) == [0, 1, 2]


def test_constant_scorer_gets_chance_and_oracle_gets_everything():
    n_classes, per_class = 10, 7
    labels = np.repeat(np.arange(n_classes), per_class)
    constant = classification_metrics(labels, scores=np.zeros((len(labels), n_classes)))
    assert constant["top1"] == pytest.approx(1 / n_classes)
    assert constant["top5"] == pytest.approx(5 / n_classes)
    assert constant["macro_top1"] == pytest.approx(1 / n_classes)
    oracle = classification_metrics(labels, scores=np.eye(n_classes)[labels])
    assert oracle["top1"] == oracle["top5"] == oracle["macro_top1"] == 1.0


def test_macro_and_per_category_by_hand():
    # class 0: 3 rows (2 right), class 1: 1 row (right), class 2: 2 rows (0 right)
    refs = [0, 0, 0, 1, 2, 2]
    preds = [0, 0, 1, 1, 0, 1]
    cats = ["food", "food", "animal", "animal", "food", "animal"]
    r = classification_metrics(refs, predictions=preds, categories=cats)
    assert r["top1"] == pytest.approx(3 / 6)
    assert r["macro_top1"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert r["per_category_top1"] == {"animal": pytest.approx(1 / 3), "food": pytest.approx(2 / 3)}
    assert r["per_category_count"] == {"animal": 3, "food": 3}
    assert "top5" not in r  # labels carry no ranking


def test_missing_rows_count_as_wrong_unless_skipped():
    refs = [0, 1, 2, 3]
    scores = np.eye(4)
    scores[1] = np.nan  # an unscored row may hold anything
    counted = classification_metrics(refs, scores=scores, missing=[False, True, False, False],
                                     categories=["a", "a", "b", "b"])
    assert counted["top1"] == 0.75 and counted["n_missing"] == 1 and counted["n_evaluated"] == 4
    assert counted["per_category_top1"] == {"a": 0.5, "b": 1.0} and not counted["skip_missing"]
    skipped = classification_metrics(refs, scores=scores, missing=[False, True, False, False], skip_missing=True)
    assert skipped["top1"] == 1.0 and skipped["skip_missing"]
    assert (skipped["n_evaluated"], skipped["n_total"]) == (3, 4)


@pytest.mark.parametrize("kwargs, message", [
    ({"references": [0, 1], "scores": [[0.1, 0.2]]}, "has 1 rows but references has 2"),
    ({"references": [0, 1], "scores": [[0.1, 0.2], [0.3]]}, "row 1 has 1"),
    ({"references": [0, 1], "scores": [[0.1, np.nan], [0.3, 0.1]]}, "row 0 holds NaN"),
    ({"references": [0, 3], "scores": [[0.1, 0.2], [0.3, 0.1]]}, r"references\[1\] = 3 is out of range"),
    ({"references": [0, -1], "predictions": [0, 1]}, r"references\[1\] = -1 is out of range"),
    ({"references": [0, 1], "predictions": [0, 5], "num_classes": 3}, r"predictions\[1\] = 5 is out of range"),
    ({"references": [0, 1], "predictions": [0, 1.5]}, "must be integers, got 1.5 at index 1"),
    ({"references": [0, 1], "predictions": [0, 1, 1]}, "predictions has 3 rows but references has 2"),
    ({"references": [0, 1]}, "exactly one of"),
    ({"references": [0, 1], "predictions": [0, 1], "scores": [[1, 0], [0, 1]]}, "exactly one of"),
    ({"references": [0, 1], "scores": [[1, 0], [0, 1]], "num_classes": 3}, "num_classes=3 but scores have 2"),
    ({"references": [0, 1], "predictions": [0, 1], "categories": ["a"]}, "categories has 1 rows"),
    ({"references": [], "predictions": []}, "references is empty"),
    ({"references": [0, 1], "scores": [1.0, 2.0]}, "must be 2-D"),
])
def test_validation_errors_are_clear(kwargs, message):
    with pytest.raises(ValueError, match=message):
        classification_metrics(**kwargs)


# -- retrieval -----------------------------------------------------------------------------------

# 3 images, 2 captions each (captions 2i and 2i+1 describe image i). Rows: captions; columns: images.
SIMS = np.array([
    [0.9, 0.2, 0.1],   # c0 (img 0): ranks img 0 first               -> t2i hit@1
    [0.3, 0.8, 0.1],   # c1 (img 0): img 1 first, img 0 second       -> t2i miss@1, hit@2
    [0.1, 0.7, 0.2],   # c2 (img 1): img 1 first                     -> hit@1
    [0.6, 0.5, 0.25],  # c3 (img 1): img 0 first, img 1 second       -> miss@1, hit@2
    [0.2, 0.1, 0.3],   # c4 (img 2): img 2 first                     -> hit@1
    [0.4, 0.35, 0.05],  # c5 (img 2): img 2 last                      -> miss@1, miss@2
])
T2I = [0, 0, 1, 1, 2, 2]
# image -> text, column by column:
#   img 0: c0 .9, c3 .6, c5 .4, c1 .3, c4 .2, c2 .1 -> its caption c0 first            -> hit@1
#   img 1: c1 .8, c2 .7, c3 .5, ...                 -> c1 (img 0) first, c2 second    -> miss@1, hit@2
#   img 2: c4 .3, c3 .25, c2 .2, ...               -> c4 first                        -> hit@1


def test_retrieval_recall_by_hand_with_two_captions_per_image():
    r = retrieval_metrics(SIMS, T2I, ks=(1, 2))
    assert r["text_to_image_recall@1"] == pytest.approx(3 / 6)
    assert r["text_to_image_recall@2"] == pytest.approx(5 / 6)
    assert r["image_to_text_recall@1"] == pytest.approx(2 / 3)
    assert r["image_to_text_recall@2"] == pytest.approx(3 / 3)
    assert r["mean_recall"] == pytest.approx(np.mean([3 / 6, 5 / 6, 2 / 3, 1.0]))
    assert (r["n_images"], r["n_texts"], r["n_image_queries"]) == (3, 6, 3)


def _reference_recalls(sims, t2i, k):
    """Brute force with stable sorting (lower index first among ties)."""
    t2i = np.asarray(t2i)
    t2i_hits = [t2i[t] in np.argsort(-sims[t], kind="stable")[:k] for t in range(len(sims))]
    i2t_hits = [bool(set(np.argsort(-sims[:, i], kind="stable")[:k]) & set(np.flatnonzero(t2i == i)))
                for i in range(sims.shape[1]) if (t2i == i).any()]
    return np.mean(i2t_hits), np.mean(t2i_hits)


@pytest.mark.parametrize("seed", [0, 1])
def test_retrieval_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n_images = 40
    t2i = np.sort(np.concatenate([np.arange(n_images), rng.integers(0, n_images, 50)]))  # 1 to several captions
    sims = np.round(rng.normal(size=(len(t2i), n_images)), 1)  # coarse: plenty of ties
    r = retrieval_metrics(sims, t2i, ks=(1, 5, 10))
    for k in (1, 5, 10):
        i2t, t2i_recall = _reference_recalls(sims, t2i, k)
        assert r[f"image_to_text_recall@{k}"] == pytest.approx(i2t)
        assert r[f"text_to_image_recall@{k}"] == pytest.approx(t2i_recall)


def test_retrieval_missing_images():
    sims = SIMS.copy()
    sims[:, 1] = np.nan  # image 1 could not be scored
    r = retrieval_metrics(sims, T2I, ks=(1, 2), missing_images=[False, True, False])
    # img 1 is never retrieved: c1 now finds img 0 first (hit), c3 img 0 (miss@1) then img 2 (miss@2);
    # c2, c3 (captions of the missing image) are misses; img 1's own query is a miss.
    assert r["text_to_image_recall@1"] == pytest.approx(3 / 6)  # c0, c1, c4
    assert r["image_to_text_recall@1"] == pytest.approx(2 / 3)
    assert r["n_missing_images"] == 1 and r["n_images"] == 3
    s = retrieval_metrics(sims, T2I, ks=(1,), missing_images=[False, True, False], skip_missing=True)
    assert (s["n_images"], s["n_texts"], s["n_skipped_images"], s["n_skipped_texts"]) == (2, 4, 1, 2)
    assert s["text_to_image_recall@1"] == pytest.approx(3 / 4) and s["image_to_text_recall@1"] == 1.0
    with pytest.raises(ValueError, match="holds NaN"):
        retrieval_metrics(sims, T2I)


def test_library_doctests():
    assert doctest.testmod(M).failed == 0


# -- the evaluate modules ------------------------------------------------------------------------

@pytest.fixture
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def _load(name):
    import evaluate

    return evaluate.load(f"waon_hf/metrics/{name}", keep_in_memory=True)


def test_waon_bench_module_loads_offline_and_matches_the_library(in_repo):
    metric = _load("waon_bench")
    rng = np.random.default_rng(5)
    scores = rng.random((150, 30))
    labels = rng.integers(0, 30, 150)
    cats = [["animal", "food", "scenery"][i % 3] for i in range(150)]
    missing = rng.random(150) < 0.1
    got = metric.compute(predictions=scores, references=labels, categories=cats, missing=list(missing))
    assert got == classification_metrics(labels, scores=scores, categories=cats, missing=missing)
    got = metric.compute(predictions=scores.argmax(1), references=labels, num_classes=30)
    assert got == classification_metrics(labels, predictions=scores.argmax(1), num_classes=30)
    # add_batch accumulates
    for start in range(0, 150, 50):
        metric.add_batch(predictions=scores[start:start + 50], references=labels[start:start + 50])
    assert metric.compute()["top1"] == classification_metrics(labels, scores=scores)["top1"]


def test_waon_bench_module_rejects_bad_input_before_casting(in_repo):
    metric = _load("waon_bench")
    with pytest.raises(ValueError, match="must be integers"):
        metric.compute(predictions=[0, 1.7], references=[0, 1])  # evaluate alone would cast 1.7 to 1
    with pytest.raises(ValueError, match="3 predictions but 2 references"):
        metric.compute(predictions=[0, 1, 1], references=[0, 1])
    with pytest.raises(ValueError, match="holds NaN"):
        metric.compute(predictions=[[0.1, float("nan")], [0.2, 0.1]], references=[0, 1])
    # the metric is still usable after those errors
    assert metric.compute(predictions=[0, 1], references=[0, 0])["top1"] == 0.5


def test_xm3600_module_loads_offline_and_matches_the_library(in_repo):
    metric = _load("xm3600_retrieval")
    got = metric.compute(predictions=SIMS.tolist(), references=T2I, ks=[1, 2])
    assert got == retrieval_metrics(SIMS, T2I, ks=(1, 2))


@pytest.mark.parametrize("name", ["waon_bench", "xm3600_retrieval"])
def test_module_docstring_and_card_examples_run(in_repo, name):
    import evaluate

    metric = _load(name)
    module = importlib.import_module(type(metric).__module__)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    parser = doctest.DocTestParser()
    card = (REPO / "waon_hf" / "metrics" / name / "README.md").read_text(encoding="utf-8")
    card_examples = "\n".join(re.findall(r"```python\n(.*?)```", card, flags=re.S))
    for label, text in (("docstring", module._KWARGS_DESCRIPTION), ("card", card_examples)):
        test = parser.get_doctest(text, {"evaluate": evaluate}, f"{name} {label}", None, 0)
        assert test.examples, f"no examples in the {label}"
        assert runner.run(test).failed == 0, f"{name} {label} examples failed"


def test_metric_path_points_at_the_module_folder(tmp_path, monkeypatch):
    import evaluate

    from waon_hf.metrics import METRICS, metric_path

    for name in METRICS:
        folder = Path(metric_path(name))
        assert (folder / f"{name}.py").is_file() and (folder / "README.md").is_file()
    monkeypatch.chdir(tmp_path)  # an absolute path works from anywhere
    metric = evaluate.load(metric_path("waon_bench"), keep_in_memory=True)
    assert metric.compute(predictions=[1, 1], references=[1, 0])["top1"] == 0.5
    with pytest.raises(ValueError, match="unknown metric"):
        metric_path("nope")


@pytest.mark.parametrize("name", ["waon_bench", "xm3600_retrieval"])
def test_module_imports_are_one_per_line_and_installable(name):
    from evaluate.loading import get_imports

    path = REPO / "waon_hf" / "metrics" / name / f"{name}.py"
    libraries = {imp[1] for imp in get_imports(str(path))}
    assert libraries == {"datasets", "evaluate", "waon_hf"}
    for line in path.read_text(encoding="utf-8").splitlines():
        assert not re.match(r"^import\s+\w+\s*,", line), line
