# Copyright 2026 The waon_hf authors. Licensed under the Apache License, Version 2.0.
"""Image<->text retrieval recall@k (XM3600-style), as an ``evaluate`` metric.

A thin wrapper around ``waon_hf.eval.metrics.retrieval_metrics``, which the ``waon eval`` runner
also uses. Imports are one per line and name installable packages only.
"""

import datasets
import evaluate

from waon_hf.eval.metrics import check_integer_labels, retrieval_metrics

_DESCRIPTION = """
Recall@k for image-to-text and text-to-image retrieval, with the CLIP-paper convention for images
that have several captions:

* text -> image: every caption is a query; it is a hit at k if its own image is among the k images
  most similar to it.
* image -> text: every image with at least one caption is a query; it is a hit at k if ANY of its
  captions is among the k captions most similar to it.

One input row per caption: its similarity to every image, and the index of its image. For the
Japanese XM3600 setting of WAON's table (3,600 images, the first Japanese caption of each, split
"ja"), there is one caption per image and the two directions are symmetric in definition.
Ties rank the lower index first. Images flagged as missing are never retrieved and their own
queries count as misses, unless skip_missing=True drops them and their captions.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of list of float): for each caption, its similarity to each image
        (all rows the same length: the number of images; higher is more similar).
    references (list of int): for each caption, the index of its image.
    ks (list of int, optional, default [1, 5, 10]): the cut-offs k.
    missing_images (list of bool, optional): True for images that could not be scored.
    skip_missing (bool, optional, default False): drop missing images and their captions.
Returns:
    image_to_text_recall@k (float, in [0, 1]) for each k.
    text_to_image_recall@k (float, in [0, 1]) for each k.
    mean_recall (float, in [0, 1]): the mean of all the recalls above.
    n_images, n_texts, n_image_queries, n_missing_images, n_skipped_images, n_skipped_texts (int),
    skip_missing (bool).
Examples:
    Two images with two captions each (rows: captions 0-3; columns: images 0-1):
    >>> xm3600 = evaluate.load("waon_hf/metrics/xm3600_retrieval")
    >>> sims = [[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.6, 0.4]]
    >>> r = xm3600.compute(predictions=sims, references=[0, 0, 1, 1], ks=[1, 2])
    >>> r["text_to_image_recall@1"], r["image_to_text_recall@1"], r["image_to_text_recall@2"]
    (0.25, 0.5, 1.0)
"""

_CITATION = """
@inproceedings{thapliyal2022crossmodal,
    title = {Crossmodal-3600: A Massively Multilingual Multimodal Evaluation Dataset},
    author = {Thapliyal, Ashish V. and Pont-Tuset, Jordi and Chen, Xi and Soricut, Radu},
    booktitle = {Proceedings of the 2022 Conference on Empirical Methods in Natural Language Processing},
    year = {2022},
}
@inproceedings{radford2021clip,
    title = {Learning Transferable Visual Models From Natural Language Supervision},
    author = {Radford, Alec and Kim, Jong Wook and others},
    booktitle = {Proceedings of the 38th International Conference on Machine Learning},
    year = {2021},
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Xm3600Retrieval(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "predictions": datasets.List(datasets.Value("float64")),
                "references": datasets.Value("int64"),
            }),
            reference_urls=["https://google.github.io/crossmodal-3600/", "https://arxiv.org/abs/2103.00020"],
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of captions: their similarity rows and their image indices."""
        if predictions is not None and references is not None and len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} similarity rows but {len(references)} references")
        if references is not None:
            check_integer_labels(references, "references")
        super().add_batch(predictions=predictions, references=references, **kwargs)

    def add(self, *, prediction=None, reference=None, **kwargs):
        """Add one caption: its similarity row and its image index."""
        if reference is not None:
            check_integer_labels([reference], "reference")
        super().add(prediction=prediction, reference=reference, **kwargs)

    def _compute(self, predictions, references, ks=(1, 5, 10), missing_images=None, skip_missing=False):
        return retrieval_metrics(predictions, references, ks=ks, missing_images=missing_images,
                                 skip_missing=skip_missing)
