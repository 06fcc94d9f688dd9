"""Pure metric functions: zero-shot classification accuracy and image-text retrieval recall.

NumPy only (no torch, no datasets): the ``evaluate`` modules in ``waon_hf/metrics/`` and the
zero-shot runner both call these, so a number is computed one way everywhere.

Conventions (stated here once; the metric cards repeat them):

* **Tie rule.** Among equal scores the lower index ranks first, as ``numpy.argmax`` and
  ``torch.argmax`` do. So ``predictions=scores.argmax(1)`` gives exactly the top-1 of ``scores``,
  and a constant scorer predicts class 0 for every row: on a balanced benchmark that is chance,
  ``1 / n_classes``. (``sklearn.metrics.top_k_accuracy_score`` breaks ties the other way, towards
  the higher index; on scores without ties the two agree exactly.)
* **Missing rows.** A row whose image could not be scored (``missing[i]``) counts as wrong and
  stays in the denominator, unless ``skip_missing=True``, which drops it (the result records it).
* **Retrieval** follows the CLIP paper: image->text is a hit at k if ANY of the image's captions is
  among the k best texts; text->image takes each caption as a query with its one image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TIE_RULE = "lowest index first (as numpy/torch argmax)"
MISSING_POLICY = ("a row whose image could not be scored counts as wrong and stays in the denominator, "
                  "unless skip_missing drops it")
_BLOCK = 2048  # rows compared at once: bounds the (rows x classes) temporaries


def _as_int_array(values, name: str) -> np.ndarray:
    """1-D integer array; floats must be integral (1.0 is 1, 1.5 is an error, never truncated)."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D list of integers, got shape {arr.shape}")
    if arr.size == 0:
        return arr.astype(np.int64)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{name} must be integers, got {arr.dtype} values such as {arr[0].item()!r}")
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{name} must be integers, got {arr[i].item()!r} at index {i}")
    return arr.astype(np.int64)


def check_integer_labels(values, name: str) -> None:
    """Raise ``ValueError`` unless ``values`` are integers (used before ``evaluate`` casts them)."""
    _as_int_array(values, name)


def _as_score_matrix(scores, n_rows: int, name: str = "scores") -> np.ndarray:
    """2-D float64 array of one score vector per row, with a clear error for ragged input."""
    if isinstance(scores, np.ndarray):
        arr = scores
    else:
        rows = list(scores)
        lengths = {len(r) for r in rows} if all(hasattr(r, "__len__") for r in rows) else set()
        if len(lengths) > 1:
            first = len(rows[0])
            i = next(j for j, r in enumerate(rows) if len(r) != first)
            raise ValueError(f"{name}: every row needs one score per class; row 0 has {first}, row {i} has "
                             f"{len(rows[i])}")
        arr = np.asarray(rows)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows x classes), got shape {arr.shape}")
    if arr.shape[0] != n_rows:
        raise ValueError(f"{name} has {arr.shape[0]} rows but references has {n_rows}")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has no columns: one score per class is needed")
    if not np.issubdtype(arr.dtype, np.number) or arr.dtype == bool:
        raise ValueError(f"{name} must be numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def _check_finite(scores: np.ndarray, rows: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(scores[rows]).all(axis=1)
    if bad.any():
        i = int(rows[np.argmax(bad)])
        raise ValueError(f"{name} row {i} holds NaN or infinite values (mark unscored rows with missing=...)")


def _check_range(labels: np.ndarray, n_classes: int, name: str) -> None:
    bad = (labels < 0) | (labels >= n_classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name}[{i}] = {labels[i]} is out of range for {n_classes} classes [0, {n_classes})")


def _as_mask(values, n: int, name: str) -> np.ndarray:
    if values is None:
        return np.zeros(n, dtype=bool)
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise ValueError(f"{name} must hold one flag per row ({n}), got shape {arr.shape}")
    if arr.dtype != bool and not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} must be booleans")
    return arr.astype(bool)


def rank_of_target(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of ``targets[i]`` among ``scores[i]`` under the tie rule (lower index first).

    rank = (number of scores strictly greater) + (number of equal scores at a lower index).

    >>> rank_of_target(np.array([[0.1, 0.5, 0.5], [1.0, 1.0, 1.0]]), np.array([2, 0]))
    array([1, 0])
    """
    n, c = scores.shape
    ranks = np.empty(n, dtype=np.int64)
    idx = np.arange(c)
    for start in range(0, n, _BLOCK):
        s = scores[start:start + _BLOCK]
        t = targets[start:start + _BLOCK]
        true = s[np.arange(len(s)), t][:, None]
        ranks[start:start + _BLOCK] = (s > true).sum(1) + ((s == true) & (idx[None, :] < t[:, None])).sum(1)
    return ranks


def _mean(hits: np.ndarray, keep: np.ndarray) -> float:
    return float(hits[keep].mean()) if keep.any() else float("nan")


def classification_metrics(
    references: Sequence[int],
    *,
    predictions: Sequence[int] | None = None,
    scores=None,
    categories: Sequence[str] | None = None,
    num_classes: int | None = None,
    missing: Sequence[bool] | None = None,
    skip_missing: bool = False,
    top_k: Sequence[int] = (1, 5),
) -> dict:
    """Zero-shot classification accuracy from predicted labels or per-class scores.

    Give exactly one of ``predictions`` (one class index per row) or ``scores`` (rows x classes;
    higher is better; any monotone scale: cosine, logits, probabilities). Accuracies are fractions
    in [0, 1] (multiply by 100 to compare with published percentages such as WAON-Bench 87.81).

    Returns ``top1`` (and ``top5``... for each k in ``top_k`` when scores are given; a k larger
    than the number of classes is always a hit), ``macro_top1`` (mean over the classes present in
    ``references`` of each class's top-1), ``per_category_top1`` / ``per_category_count`` when
    ``categories`` are given, and the counts ``n_total``, ``n_scored``, ``n_missing``,
    ``n_evaluated`` (the denominator), ``n_classes``, with ``skip_missing``.

    >>> r = classification_metrics([0, 1, 1, 2], predictions=[0, 1, 2, 2], categories=["a", "a", "b", "b"])
    >>> r["top1"], r["macro_top1"], r["per_category_top1"]
    (0.75, 0.8333333333333334, {'a': 1.0, 'b': 0.5})
    >>> r = classification_metrics([1, 0], scores=[[0.2, 0.7, 0.1], [0.5, 0.5, 0.0]])
    >>> r["top1"], r["top5"]
    (1.0, 1.0)
    >>> classification_metrics([0, 1], predictions=[0, 1], missing=[False, True])["top1"]
    0.5
    """
    refs = _as_int_array(references, "references")
    n = len(refs)
    if n == 0:
        raise ValueError("references is empty")
    if (predictions is None) == (scores is None):
        raise ValueError("give exactly one of predictions (class indices) or scores (rows x classes)")
    miss = _as_mask(missing, n, "missing")
    scored = ~miss

    if scores is not None:
        s = _as_score_matrix(scores, n)
        n_classes = s.shape[1]
        if num_classes is not None and num_classes != n_classes:
            raise ValueError(f"num_classes={num_classes} but scores have {n_classes} columns")
        _check_range(refs, n_classes, "references")
        _check_finite(s, np.flatnonzero(scored), "scores")
        ranks = np.full(n, np.iinfo(np.int64).max)
        rows = np.flatnonzero(scored)
        ranks[rows] = rank_of_target(s[rows], refs[rows])
        ks = sorted({int(k) for k in top_k} | {1})
    else:
        preds = _as_int_array(predictions, "predictions")
        if len(preds) != n:
            raise ValueError(f"predictions has {len(preds)} rows but references has {n}")
        n_classes = num_classes if num_classes is not None else int(max(refs.max(), preds[scored].max(initial=0))) + 1
        _check_range(refs, n_classes, "references")
        _check_range(preds[scored], n_classes, "predictions")
        ranks = np.where(scored & (preds == refs), 0, np.iinfo(np.int64).max)
        ks = [1]
    if any(k < 1 for k in ks):
        raise ValueError(f"top_k values must be >= 1, got {list(top_k)}")

    keep = scored if skip_missing else np.ones(n, dtype=bool)
    hit1 = ranks < 1
    out: dict = {f"top{k}": _mean(ranks < k, keep) for k in ks}
    per_class = [hit1[keep & (refs == c)].mean() for c in np.unique(refs[keep])]
    out["macro_top1"] = float(np.mean(per_class)) if per_class else float("nan")
    if categories is not None:
        cats = np.asarray([str(c) if c is not None else "" for c in categories], dtype=object)
        if len(cats) != n:
            raise ValueError(f"categories has {len(cats)} rows but references has {n}")
        if (cats == "").any():
            raise ValueError(f"categories[{int(np.argmax(cats == ''))}] is empty")
        names = sorted(set(cats[keep]))
        out["per_category_top1"] = {c: _mean(hit1, keep & (cats == c)) for c in names}
        out["per_category_count"] = {c: int((keep & (cats == c)).sum()) for c in names}
    out.update(n_total=n, n_scored=int(scored.sum()), n_missing=int(miss.sum()), n_evaluated=int(keep.sum()),
               n_classes=int(n_classes), skip_missing=bool(skip_missing))
    return out


def retrieval_metrics(
    scores,
    text_to_image: Sequence[int],
    *,
    ks: Sequence[int] = (1, 5, 10),
    missing_images: Sequence[bool] | None = None,
    skip_missing: bool = False,
) -> dict:
    """Image<->text recall@k from a (texts x images) similarity matrix.

    ``scores[t, i]`` is the similarity of caption ``t`` and image ``i``; ``text_to_image[t]`` is the
    image caption ``t`` belongs to (an image may have several captions). CLIP-paper convention:

    * text->image: each caption is a query; a hit at k if its image ranks in the top k images.
    * image->text: each image (with at least one caption) is a query; a hit at k if ANY of its
      captions ranks in the top k texts.

    Ties rank the lower index first. Images flagged in ``missing_images`` (not scored; their
    column may hold NaN) never rank above a scored image: their own queries count as misses and
    stay in the denominators, unless ``skip_missing=True`` drops those images and their captions.
    Recalls are fractions in [0, 1]; ``mean_recall`` averages all of them (the "RSUM / 6" of
    retrieval papers, as a fraction).

    >>> s = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.6, 0.4]])  # 4 captions, 2 images
    >>> r = retrieval_metrics(s, [0, 0, 1, 1], ks=(1,))
    >>> r["text_to_image_recall@1"], r["image_to_text_recall@1"]  # only caption 0 and image 0 hit
    (0.25, 0.5)
    """
    t2i = _as_int_array(text_to_image, "text_to_image")
    n_texts = len(t2i)
    if n_texts == 0:
        raise ValueError("text_to_image is empty")
    s = _as_score_matrix(scores, n_texts, "scores")
    n_images = s.shape[1]
    _check_range(t2i, n_images, "text_to_image")
    miss = _as_mask(missing_images, n_images, "missing_images")
    n_missing = int(miss.sum())
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be >= 1, got {ks}")
    n_skipped_texts = 0
    if skip_missing and n_missing:
        keep_img = np.flatnonzero(~miss)
        if len(keep_img) == 0:
            raise ValueError("every image is missing: nothing left to evaluate")
        new_index = np.full(n_images, -1)
        new_index[keep_img] = np.arange(len(keep_img))
        keep_txt = ~miss[t2i]
        n_skipped_texts = int((~keep_txt).sum())
        s, t2i = s[np.ix_(keep_txt, keep_img)], new_index[t2i[keep_txt]]
        miss = np.zeros(len(keep_img), dtype=bool)
    else:
        s = s.copy()
    _check_finite(s[:, ~miss], np.arange(len(s)), "scores")
    s[:, miss] = -np.inf  # never retrieved above a scored image
    n_t, n_i = s.shape

    t2i_rank = rank_of_target(s, t2i)
    t2i_rank[miss[t2i]] = np.iinfo(np.int64).max  # a caption of a missing image is never a hit

    # For each caption: its rank among all texts for its own image (column t2i[t]).
    text_rank = np.empty(n_t, dtype=np.int64)
    for start in range(0, n_t, _BLOCK):
        cols = s[:, t2i[start:start + _BLOCK]].T  # (block, n_t): scores of every text for the caption's image
        text_rank[start:start + _BLOCK] = rank_of_target(cols, np.arange(start, start + len(cols)))
    best = np.full(n_i, np.iinfo(np.int64).max)
    np.minimum.at(best, t2i, text_rank)
    has_caption = np.bincount(t2i, minlength=n_i) > 0
    best[miss] = np.iinfo(np.int64).max
    queries = best[has_caption]

    out: dict = {}
    for k in ks:
        out[f"image_to_text_recall@{k}"] = float((queries < k).mean())
    for k in ks:
        out[f"text_to_image_recall@{k}"] = float((t2i_rank < k).mean())
    out["mean_recall"] = float(np.mean([out[key] for key in list(out)]))
    out.update(n_images=int(n_i), n_texts=int(n_t), n_image_queries=int(has_caption.sum()),
               n_missing_images=n_missing, n_skipped_images=int(n_images - n_i), n_skipped_texts=n_skipped_texts,
               skip_missing=bool(skip_missing))
    return out
