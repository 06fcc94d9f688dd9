"""Zero-shot classification and retrieval with any dual encoder that ``AutoModel`` loads.

A model qualifies if it exposes ``get_image_features`` and ``get_text_features`` (SigLIP, SigLIP2,
CLIP, ...). Text is prepared the way the model family was trained (``TEXT_RECIPES``):

* SigLIP / SigLIP2: lowercased, padded to ``max_length`` = the text tower's position count (64
  for Google's checkpoints), padded on the RIGHT, and no attention mask. big_vision trained SigLIP
  on right-padded sequences without masking and the text tower pools the LAST position, so the
  padding side changes the embedding. ``Siglip2Tokenizer`` (and ``GemmaTokenizer``) default to
  left padding, which is why it is set explicitly here; ``padding_side=`` overrides it.
* CLIP (and any other model type): padded to the longest prompt, right side, with the mask.

Image preprocessing is the checkpoint's own image processor, called directly with its saved
settings passed explicitly (``Siglip2Processor.__call__`` defaults of ``max_num_patches=256``
would otherwise override the saved value).

The runner (``score_rows``) takes an injectable ``Scorer``: ``prepare(images)`` is the CPU work
(preprocessing; run one batch ahead in a helper thread) and ``score(prepared)`` returns one row of
scores per image. ``EmbeddingScorer`` is the model's; tests inject oracles.
"""

from __future__ import annotations

import datetime as _dt
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from waon_hf.eval.benchmarks import ClassificationTask, ImageColumn, RetrievalTask, Task, load_benchmark
from waon_hf.eval.metrics import MISSING_POLICY, TIE_RULE, classification_metrics, retrieval_metrics

logger = logging.getLogger(__name__)

DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class TextRecipe:
    """How prompts are tokenized for one model family (recorded in the results)."""

    lowercase: bool
    padding: str  # "max_length" or "longest"
    max_length: int | None
    padding_side: str
    attention_mask: bool


SIGLIP_TYPES = ("siglip", "siglip2")


def text_recipe_for(model, tokenizer, padding_side: str | None = None) -> TextRecipe:
    """The family's text preprocessing; ``padding_side`` overrides the recipe's side."""
    model_type = getattr(model.config, "model_type", "")
    text_config = getattr(model.config, "text_config", model.config)
    positions = getattr(text_config, "max_position_embeddings", None)
    if model_type in SIGLIP_TYPES:
        recipe = TextRecipe(lowercase=True, padding="max_length", max_length=positions or 64,
                            padding_side="right", attention_mask=False)
    else:
        if model_type != "clip":
            logger.info("model type %r: using CLIP-style text preprocessing (longest padding, attention mask)",
                        model_type)
        limit = min(x for x in (positions, getattr(tokenizer, "model_max_length", None), 10**6) if x)
        recipe = TextRecipe(lowercase=False, padding="longest", max_length=limit, padding_side="right",
                            attention_mask=True)
    if padding_side is not None:
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        recipe = TextRecipe(**{**asdict(recipe), "padding_side": padding_side})
    default_side = getattr(tokenizer, "padding_side", None)
    if default_side and default_side != recipe.padding_side:
        logger.info("tokenizer pads %s by default; padding %s (%s)", default_side, recipe.padding_side,
                    "as given" if padding_side else f"as {model_type or 'the model'} was trained")
    return recipe


def _pooled(output):
    """The projected embedding from ``get_*_features`` (a tensor, or ``pooler_output`` in transformers 5)."""
    import torch

    if isinstance(output, torch.Tensor):
        return output
    pooled = getattr(output, "pooler_output", None)
    if pooled is None:
        raise RuntimeError(f"get_*_features returned {type(output).__name__} without pooler_output")
    return pooled


class DualEncoder:
    """A loaded model + processor with explicit, recorded preprocessing."""

    def __init__(self, model, processor, *, name: str, revision: str | None = None, device: str = "cpu",
                 dtype: str = "float32", padding_side: str | None = None, text_batch_size: int = 256):
        import torch

        for method in ("get_image_features", "get_text_features"):
            if not callable(getattr(model, method, None)):
                raise RuntimeError(f"model {name!r} ({type(model).__name__}) has no {method}: not an image-text "
                                   "dual encoder")
        self.tokenizer = getattr(processor, "tokenizer", None)
        self.image_processor = getattr(processor, "image_processor", None)
        if self.tokenizer is None or self.image_processor is None:
            raise RuntimeError(f"model {name!r}: AutoProcessor gave {type(processor).__name__}, which lacks a "
                               "tokenizer or an image processor")
        self.model = model.eval()
        self.name = name
        self.revision = revision
        self.device = torch.device(device)
        self.dtype = dtype
        self.torch_dtype = getattr(torch, dtype)
        self.text_batch_size = text_batch_size
        self.text_recipe = text_recipe_for(model, self.tokenizer, padding_side)
        ip = self.image_processor
        # The saved values, passed explicitly (a processor's call defaults can differ from them).
        self.image_kwargs = {k: getattr(ip, k) for k in ("max_num_patches", "patch_size")
                             if getattr(ip, k, None) is not None}

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, device: str = "cpu", dtype: str = "float32",
                        revision: str | None = None, padding_side: str | None = None,
                        local_files_only: bool | None = None) -> DualEncoder:
        """Load by Hub id or local folder; any failure is an error naming the model (no fallback)."""
        import torch
        from transformers import AutoModel, AutoProcessor

        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError("--device cuda was asked for but torch sees no CUDA device")
        if dtype != "float32" and not device.startswith("cuda"):
            raise ValueError(f"{dtype} is supported on CUDA only; use float32 on {device}")
        kwargs: dict[str, Any] = {"revision": revision}
        if local_files_only is not None:
            kwargs["local_files_only"] = local_files_only
        try:
            model = AutoModel.from_pretrained(name_or_path, dtype=getattr(torch, dtype), **kwargs)
            processor = AutoProcessor.from_pretrained(name_or_path, **kwargs)
        except (OSError, ValueError, KeyError, TypeError, ImportError, RuntimeError) as e:
            raise RuntimeError(f"could not load model {name_or_path!r}: {e}") from e
        local = Path(name_or_path).is_dir()
        commit = getattr(model.config, "_commit_hash", None)
        return cls(model.to(device), processor, name=name_or_path, device=device, dtype=dtype,
                   revision=commit or (str(Path(name_or_path).resolve()) if local else revision),
                   padding_side=padding_side)

    def describe(self) -> dict:
        ip = self.image_processor
        image_settings = {k: _jsonable(getattr(ip, k)) for k in
                          ("size", "crop_size", "max_num_patches", "patch_size", "resample", "do_center_crop",
                           "image_mean", "image_std") if getattr(ip, k, None) is not None}
        return {
            "name_or_path": self.name,
            "revision": self.revision,
            "model_class": type(self.model).__name__,
            "model_type": getattr(self.model.config, "model_type", None),
            "n_parameters": int(sum(p.numel() for p in self.model.parameters())),
            "device": str(self.device),
            "dtype": self.dtype,
            "text_preprocessing": {"tokenizer_class": type(self.tokenizer).__name__, **asdict(self.text_recipe)},
            "image_preprocessing": {"image_processor_class": type(ip).__name__, **image_settings},
        }

    # -- text ------------------------------------------------------------------------------------
    def tokenize(self, texts: list[str]) -> dict:
        r = self.text_recipe
        if r.lowercase:
            texts = [t.lower() for t in texts]
        enc = self.tokenizer(texts, padding=r.padding, max_length=r.max_length, truncation=True,
                             padding_side=r.padding_side, return_tensors="pt")
        keys = ("input_ids", "attention_mask") if r.attention_mask else ("input_ids",)
        return {k: enc[k] for k in keys if k in enc}

    def encode_texts(self, texts: list[str]):
        """L2-normalised float32 text embeddings on the CPU, ``(len(texts), dim)``."""
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.text_batch_size):
                batch = self.tokenize(texts[start:start + self.text_batch_size])
                inputs = {k: v.to(self.device) for k, v in batch.items()}
                out.append(_normalize(_pooled(self.model.get_text_features(**inputs))).cpu())
        return torch.cat(out)

    # -- images ----------------------------------------------------------------------------------
    def preprocess_images(self, images: list) -> dict:
        return dict(self.image_processor(images, return_tensors="pt", **self.image_kwargs))

    def image_features(self, inputs: dict):
        """L2-normalised float32 image embeddings on the CPU from preprocessed inputs."""
        import torch

        with torch.inference_mode():
            moved = {k: (v.to(self.device, self.torch_dtype) if v.is_floating_point() else v.to(self.device))
                     for k, v in inputs.items()}
            return _normalize(_pooled(self.model.get_image_features(**moved))).cpu()

    def encode_images(self, images: list):
        return self.image_features(self.preprocess_images(images))


def _normalize(x):
    import torch

    return torch.nn.functional.normalize(x.float(), dim=-1)


def _jsonable(v):
    import dataclasses

    if isinstance(v, dict | list | tuple | str | int | float | bool) or v is None:
        return v if not isinstance(v, tuple) else list(v)
    if dataclasses.is_dataclass(v) and not isinstance(v, type):  # transformers' SizeDict (size, crop_size)
        return {k: x for k, x in dataclasses.asdict(v).items() if x is not None}
    return str(v)


def class_embeddings(encoder: DualEncoder, class_names: list[str], templates: tuple[str, ...]):
    """Mean of the L2-normalised template embeddings of each class, renormalised: ``(n_classes, dim)``."""
    texts = [t.format(c) for t in templates for c in class_names]
    emb = encoder.encode_texts(texts).reshape(len(templates), len(class_names), -1)
    return _normalize(emb.mean(0))


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
            if isinstance(task, ClassificationTask):
                t0 = time.perf_counter()
                scorer = EmbeddingScorer(encoder, class_embeddings(encoder, task.class_names, templates))
                res = evaluate_classification(task, scorer, batch_size=batch_size, skip_missing=skip_missing)
                res["seconds"] = round(time.perf_counter() - t0, 3)
            else:
                res = evaluate_retrieval(task, encoder, batch_size=batch_size, skip_missing=skip_missing)
            results["benchmarks"][task.name] = res
        if len(tasks) > 1 and all(isinstance(t, ClassificationTask) for t in tasks):
            subs = [results["benchmarks"][t.name]["metrics"]["top1"] for t in tasks]
            results["benchmarks"][name] = {
                "task": "mean over subsets", "subsets": [t.name for t in tasks],
                "metrics": {"top1": float(np.mean(subs))}, "note": "unweighted mean of the subsets' top-1",
            }
    return results


def headline(res: dict) -> tuple[str, float | None]:
    """The one number a benchmark is known by, for summaries: (metric name, value)."""
    m = res["metrics"]
    if "mean_recall" in m:
        return "mean_recall", m["mean_recall"]
    return "top1", m.get("top1")
