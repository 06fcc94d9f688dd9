# Copyright 2026 The waon_hf authors. Licensed under the Apache License, Version 2.0.
"""WAON-Bench zero-shot classification accuracy, as an ``evaluate`` metric.

A thin wrapper: the numbers come from ``waon_hf.eval.metrics.classification_metrics``, which the
``waon eval`` runner also uses. Imports are one per line and name installable packages only:
``evaluate`` reads them to tell a user what to install.
"""

import datasets
import evaluate

from waon_hf.eval.metrics import check_integer_labels, classification_metrics

_DESCRIPTION = """
WAON-Bench (llm-jp/WAON-Bench) is a Japanese cultural image classification benchmark: 374 classes
x 5 images = 1,870 rows, each with a Japanese class name and one of eight categories (animal,
building, event, everyday, food, nature, scenery, tradition). The headline number is zero-shot
top-1 accuracy. This metric also gives top-5 (when per-class scores are given), macro accuracy
(mean of per-class top-1), per-category top-1 and the counts behind every number.

Ties between scores rank the lower class index first (as numpy/torch argmax), so passing
scores.argmax(1) as labels gives exactly the top-1 of the scores, and a constant scorer gets
chance on a balanced benchmark. Rows flagged as missing (image not available) count as wrong
unless skip_missing=True, which drops them and says so in the result.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: one entry per image, either a predicted class index (int) or a vector of
        per-class scores (list of floats, one per class, higher is better; cosine similarities,
        logits or probabilities alike).
    references (list of int): the true class index of each image.
    categories (list of str, optional): the category of each image; adds per-category top-1.
    num_classes (int, optional): number of classes, for label predictions (otherwise inferred as
        the largest index + 1). With scores it must equal the score vectors' length.
    missing (list of bool, optional): True where the image could not be scored; such a row counts
        as wrong (its prediction is ignored), unless skip_missing.
    skip_missing (bool, optional, default False): leave missing rows out of every denominator.
    top_k (list of int, optional, default [1, 5]): the top-k accuracies to report (scores only).
Returns:
    top1 (float, in [0, 1]): fraction of rows whose true class ranks first.
    top5 (float, in [0, 1]): fraction whose true class is among the 5 best (scores only).
    macro_top1 (float, in [0, 1]): mean over classes of each class's top-1.
    per_category_top1 (dict of str -> float in [0, 1]): top-1 within each category (if categories).
    per_category_count (dict of str -> int): rows behind each category's number (if categories).
    n_total, n_scored, n_missing, n_evaluated (the denominator), n_classes (int), skip_missing (bool).
Examples:
    >>> waon_bench = evaluate.load("waon_hf/metrics/waon_bench")
    >>> r = waon_bench.compute(predictions=[0, 1, 2, 2], references=[0, 1, 1, 2],
    ...                        categories=["food", "food", "animal", "animal"])
    >>> r["top1"], r["macro_top1"], r["per_category_top1"]
    (0.75, 0.8333333333333334, {'animal': 0.5, 'food': 1.0})

    Per-class scores (top-5 needs at least 5 classes to mean something):
    >>> scores = [[0.9, 0.1, 0.0, 0.0, 0.0, 0.0], [0.2, 0.1, 0.3, 0.0, 0.0, 0.0]]
    >>> r = waon_bench.compute(predictions=scores, references=[0, 1])
    >>> r["top1"], r["top5"], r["n_classes"]
    (0.5, 1.0, 6)

    An image that could not be downloaded still counts, as a miss:
    >>> r = waon_bench.compute(predictions=[0, 1], references=[0, 1], missing=[False, True])
    >>> r["top1"], r["n_missing"]
    (0.5, 1)
"""

_CITATION = """
@misc{sugiura2025waon,
    title = {{WAON}: Large-Scale and High-Quality {J}apanese Image-Text Pair Dataset for Vision-Language Models},
    author = {Sugiura, Issa and others},
    year = {2025},
    eprint = {2510.22276},
    archivePrefix = {arXiv},
}
"""


def _is_score_vector(value) -> bool:
    return hasattr(value, "__len__") and not isinstance(value, (str, bytes))


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class WaonBench(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            # Two input forms: class indices, or one score vector (any length = number of classes) per row.
            # float64 keeps the caller's scores exact (float32 could create ties that were not there).
            features=[
                datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
                datasets.Features({
                    "predictions": datasets.List(datasets.Value("float64")),
                    "references": datasets.Value("int64"),
                }),
            ],
            reference_urls=["https://huggingface.co/datasets/llm-jp/WAON-Bench", "https://arxiv.org/abs/2510.22276"],
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of predictions (labels or score vectors) and references."""
        # Checked before evaluate casts them (a float label like 1.7 would otherwise become 1) and
        # before it opens its writer (an error after that point leaves the metric unusable).
        if predictions is not None and references is not None and len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
        if references is not None:
            check_integer_labels(references, "references")
        if predictions is not None and len(predictions) and not _is_score_vector(predictions[0]):
            check_integer_labels(predictions, "predictions")
        super().add_batch(predictions=predictions, references=references, **kwargs)

    def add(self, *, prediction=None, reference=None, **kwargs):
        """Add one prediction (a label or a score vector) and its reference."""
        if reference is not None:
            check_integer_labels([reference], "reference")
        if prediction is not None and not _is_score_vector(prediction):
            check_integer_labels([prediction], "prediction")
        super().add(prediction=prediction, reference=reference, **kwargs)

    def _compute(self, predictions, references, categories=None, num_classes=None, missing=None,
                 skip_missing=False, top_k=(1, 5)):
        form = "scores" if len(predictions) and _is_score_vector(predictions[0]) else "predictions"
        return classification_metrics(
            references, **{form: predictions}, categories=categories, num_classes=num_classes,
            missing=missing, skip_missing=skip_missing, top_k=top_k,
        )
