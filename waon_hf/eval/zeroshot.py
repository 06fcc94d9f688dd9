"""Zero-shot classification and retrieval with any dual encoder (:mod:`waon_hf.models.dual_encoder`).

The runner (``score_rows``) takes an injectable ``Scorer``: ``prepare(images)`` is the CPU work
(preprocessing; run one batch ahead in a helper thread) and ``score(prepared)`` returns one row of
scores per image. ``EmbeddingScorer`` is the model's; tests inject oracles.
"""

from __future__ import annotations

import datetime as _dt
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from waon_hf.eval.benchmarks import ClassificationTask, ImageColumn, RetrievalTask, Task, load_benchmark
from waon_hf.eval.metrics import MISSING_POLICY, TIE_RULE, classification_metrics, retrieval_metrics
from waon_hf.models.dual_encoder import DualEncoder, normalize

logger = logging.getLogger(__name__)

def class_embeddings(encoder: DualEncoder, class_names: list[str], templates: tuple[str, ...]):
    """Mean of the L2-normalised template embeddings of each class, renormalised: ``(n_classes, dim)``."""
    texts = [t.format(c) for t in templates for c in class_names]
    emb = encoder.encode_texts(texts).reshape(len(templates), len(class_names), -1)
    return normalize(emb.mean(0))


class Scorer(Protocol):
    def prepare(self, images: list) -> Any: ...
    def score(self, prepared: Any) -> np.ndarray: ...


class EmbeddingScorer:
    """Cosine similarity of the model's image embeddings with fixed target embeddings (classes or captions)."""

    def __init__(self, encoder: DualEncoder, targets):
        self.encoder = encoder
        self.device = encoder.device
        self.targets_t = targets.T.contiguous()

    def prepare(self, images: list) -> dict:
        return self.encoder.preprocess_images(images)

    def score(self, prepared: dict) -> np.ndarray:
        return (self.encoder.image_features(prepared) @ self.targets_t).numpy().astype(np.float64)


class FunctionScorer:
    """Wrap ``fn(images) -> scores`` as a ``Scorer`` (oracles, baselines, other libraries)."""

    def __init__(self, fn):
        self.fn = fn

    def prepare(self, images: list) -> list:
        return images

    def score(self, prepared: list) -> np.ndarray:
        return np.asarray(self.fn(prepared), dtype=np.float64)


@dataclass
class ScoredRows:
    scores: np.ndarray  # (n_rows, n_outputs); NaN where missing
    missing: np.ndarray  # bool (n_rows,)
    reasons: list[str | None]
    seconds: float

    @property
    def predictions(self) -> np.ndarray:
        """Top-1 index per row (lowest index among ties, as the metrics rank); -1 where missing."""
        pred = np.full(len(self.missing), -1, dtype=np.int64)
        pred[~self.missing] = self.scores[~self.missing].argmax(1)
        return pred


def score_rows(images: ImageColumn, scorer: Scorer, n_outputs: int, *, batch_size: int = 32,
               prefetch: bool | None = None) -> ScoredRows:
    """Score every row of ``images``; missing images get NaN scores and a reason.

    Batches are consecutive rows. With ``prefetch`` the next batch is read, decoded and prepared in
    one helper thread while the current one is scored. The default (``None``) prefetches when the
    scorer runs on CUDA only: on a CPU the helper thread competes with torch's own threads for the
    same cores and was slower (benchmarks/bench_eval.py).
    """
    if prefetch is None:
        prefetch = getattr(getattr(scorer, "device", None), "type", "cpu") == "cuda"
    n = len(images)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    scores = np.full((n, n_outputs), np.nan)
    missing = np.zeros(n, dtype=bool)
    reasons: list[str | None] = [None] * n
    starts = list(range(0, n, batch_size))

    def load(start: int):
        rows = range(start, min(start + batch_size, n))
        loaded = images.load(list(rows))
        present = [r for r, (img, _) in zip(rows, loaded, strict=True) if img is not None]
        batch = [img for img, _ in loaded if img is not None]
        for r, (_, why) in zip(rows, loaded, strict=True):
            if why is not None:
                missing[r], reasons[r] = True, why
        return present, (scorer.prepare(batch) if batch else None)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(load, starts[0]) if prefetch and starts else None
        for i, start in enumerate(starts):
            present, prepared = pending.result() if pending is not None else load(start)
            pending = pool.submit(load, starts[i + 1]) if prefetch and i + 1 < len(starts) else None
            if present:
                out = scorer.score(prepared)
                if out.shape != (len(present), n_outputs):
                    raise RuntimeError(f"scorer returned shape {out.shape}, expected {(len(present), n_outputs)}")
                scores[present] = out
    return ScoredRows(scores, missing, reasons, time.perf_counter() - t0)


def missing_report(images: ImageColumn, scored: ScoredRows, skip_missing: bool) -> dict:
    idx = np.flatnonzero(scored.missing)
    counts: dict[str, int] = {}
    for i in idx:
        counts[scored.reasons[i]] = counts.get(scored.reasons[i], 0) + 1
    examples = []
    for reason in counts:
        rows = [int(i) for i in idx if scored.reasons[i] == reason][:5]
        examples += [{"row": r, "reason": reason, "url": u} for r, u in zip(rows, images.urls(rows), strict=True)]
    report: dict = {"n_missing": int(len(idx)), "reasons": counts, "examples": examples}
    if len(idx):
        what = "left out of every denominator (--skip-missing)" if skip_missing else "counted as wrong"
        hint = (" Rows with only a URL need their images downloaded first." if "url_only" in counts else "")
        report["message"] = f"{len(idx)} of {len(scored.missing)} images could not be scored ({counts}); {what}.{hint}"
    return report


def evaluate_classification(task: ClassificationTask, scorer: Scorer, *, batch_size: int = 32,
                            skip_missing: bool = False, prefetch: bool | None = None) -> dict:
    scored = score_rows(task.images, scorer, len(task.class_names), batch_size=batch_size, prefetch=prefetch)
    metrics = classification_metrics(task.labels, scores=scored.scores, categories=task.categories,
                                     missing=scored.missing, skip_missing=skip_missing)
    report = missing_report(task.images, scored, skip_missing)
    if report["n_missing"]:
        logger.warning("%s: %s", task.name, report["message"])
    return {"task": "zero-shot classification", "source": task.source, "metrics": metrics, "missing": report,
            "seconds": round(scored.seconds, 3)}


def evaluate_retrieval(task: RetrievalTask, encoder: DualEncoder, *, batch_size: int = 32,
                       skip_missing: bool = False, prefetch: bool | None = None, ks=(1, 5, 10)) -> dict:
    t0 = time.perf_counter()
    text_emb = encoder.encode_texts(task.captions)
    scored = score_rows(task.images, EmbeddingScorer(encoder, text_emb), len(task.captions),
                        batch_size=batch_size, prefetch=prefetch)
    metrics = retrieval_metrics(scored.scores.T, task.text_to_image, ks=ks, missing_images=scored.missing,
                                skip_missing=skip_missing)
    report = missing_report(task.images, scored, skip_missing)
    if report["n_missing"]:
        logger.warning("%s: %s", task.name, report["message"])
    return {"task": "image-text retrieval", "source": task.source, "metrics": metrics, "missing": report,
            "seconds": round(time.perf_counter() - t0, 3)}


def load_benchmarks(benches: list[tuple[str, str | None]]) -> dict[str, list[Task]]:
    """``[(name, source or None)]`` -> ``{name: tasks}`` (read before any model is loaded: fail fast)."""
    return {name: load_benchmark(name, source) for name, source in benches}


def evaluate_model(encoder: DualEncoder, benchmarks: dict[str, list[Task]], *, templates: tuple[str, ...],
                   template_set: str, batch_size: int = 32, skip_missing: bool = False) -> dict:
    """Run every task of every benchmark; returns the results document (JSON-ready)."""
    from waon_hf import __version__

    results: dict = {
        "waon_hf_version": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "model": encoder.describe(),
        "templates": {"set": template_set, "templates": list(templates),
                      "class_embedding": "mean of L2-normalised template embeddings, renormalised"},
        "skip_missing": skip_missing,
        "conventions": {"tie_rule": TIE_RULE, "missing": MISSING_POLICY,
                        "scores": "cosine similarity of L2-normalised float32 embeddings",
                        "accuracy_scale": "fractions in [0, 1]"},
        "benchmarks": {},
    }
    for name, tasks in benchmarks.items():
        for task in tasks:
            logger.info("%s: %d rows from %s", task.name, len(task.images), task.source)
            results["benchmarks"][task.name] = evaluate_task(encoder, task, templates=templates,
                                                             batch_size=batch_size, skip_missing=skip_missing)
        if len(tasks) > 1 and all(isinstance(t, ClassificationTask) for t in tasks):
            subs = [results["benchmarks"][t.name]["metrics"].get("top1") for t in tasks]
            if any(v is None for v in subs):
                continue
            results["benchmarks"][name] = {
                "task": "mean over subsets", "subsets": [t.name for t in tasks],
                "metrics": {"top1": float(np.mean(subs))}, "note": "unweighted mean of the subsets' top-1",
            }
    return results


def evaluate_task(encoder: DualEncoder, task: Task, *, templates: tuple[str, ...], batch_size: int = 32,
                  skip_missing: bool = False) -> dict:
    """One task's results entry.

    A task whose images were fetched from URLs (``task.fetched``) is scored on the fetched rows only
    (link rot is not the model's error; every class stays a candidate), and its entry says so:
    ``images`` lists every row not fetched with its download status, ``metrics.n_benchmark_rows``
    is the benchmark's size and ``evaluated`` reads "evaluated N of M".
    """
    t0 = time.perf_counter()
    full = task
    if task.fetched is not None:
        unfetched = {u["row"] for u in task.fetched["unfetched"]}
        rows = [i for i in range(len(task.images)) if i not in unfetched]
        if not rows:
            return {"task": _TASK_NAMES[task.kind], "source": task.source, "metrics": {}, "images": task.fetched,
                    "evaluated": f"evaluated 0 of {len(task.images):,}",
                    "error": f"no image could be fetched ({task.fetched['statuses']})"}
        task = task.subset(rows)
    if isinstance(task, ClassificationTask):
        scorer = EmbeddingScorer(encoder, class_embeddings(encoder, task.class_names, templates))
        res = evaluate_classification(task, scorer, batch_size=batch_size, skip_missing=skip_missing)
    else:
        res = evaluate_retrieval(task, encoder, batch_size=batch_size, skip_missing=skip_missing)
    res["seconds"] = round(time.perf_counter() - t0, 3)
    if full.fetched is not None:
        m = res["metrics"]
        n_total = len(full.images)
        n_eval = m["n_evaluated"] if "n_evaluated" in m else m["n_images"]
        m["n_benchmark_rows"] = n_total
        res["evaluated"] = f"evaluated {n_eval:,} of {n_total:,}"
        res["images"] = full.fetched
        for example in res.get("missing", {}).get("examples", []):  # rows of the benchmark, not of the subset
            example["row"] = rows[example["row"]]
    return res


_TASK_NAMES = {"classification": "zero-shot classification", "retrieval": "image-text retrieval"}


def headline(res: dict) -> tuple[str, float | None]:
    """The one number a benchmark is known by, for summaries: (metric name, value)."""
    m = res["metrics"]
    if "mean_recall" in m:
        return "mean_recall", m["mean_recall"]
    return "top1", m.get("top1")
