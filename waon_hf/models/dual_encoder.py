"""A dual encoder (SigLIP, SigLIP2, CLIP, ...) loaded with the preprocessing its family was trained with.

A model qualifies if ``AutoModel`` loads it and it exposes ``get_image_features`` and
``get_text_features``. Text is prepared the way the model family was trained (:func:`text_recipe_for`):

* SigLIP / SigLIP2: lowercased, padded to ``max_length`` = the text tower's position count (64
  for Google's checkpoints), padded on the RIGHT, and no attention mask. big_vision trained SigLIP
  on right-padded sequences without masking and the text tower pools the LAST position, so the
  padding side changes the embedding. ``Siglip2Tokenizer`` (and ``GemmaTokenizer``) default to
  left padding, which is why it is set explicitly here; ``padding_side=`` overrides it.
* CLIP (and any other model type): padded to the longest prompt, right side, with the mask.

Image preprocessing is the checkpoint's own image processor, called directly with its saved
settings passed explicitly (``Siglip2Processor.__call__`` defaults of ``max_num_patches=256``
would otherwise override the saved value). Scoring (``waon score``), evaluation (``waon eval``)
and training's evaluation all embed through this class, so they agree by construction.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

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


def pooled_output(output):
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
                out.append(normalize(pooled_output(self.model.get_text_features(**inputs))).cpu())
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
            return normalize(pooled_output(self.model.get_image_features(**moved))).cpu()

    def encode_images(self, images: list):
        return self.image_features(self.preprocess_images(images))


def normalize(x):
    import torch

    return torch.nn.functional.normalize(x.float(), dim=-1)


def _jsonable(v):
    import dataclasses

    if isinstance(v, dict | list | tuple | str | int | float | bool) or v is None:
        return v if not isinstance(v, tuple) else list(v)
    if dataclasses.is_dataclass(v) and not isinstance(v, type):  # transformers' SizeDict (size, crop_size)
        return {k: x for k, x in dataclasses.asdict(v).items() if x is not None}
    return str(v)


