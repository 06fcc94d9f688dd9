"""Which SigLIP family a checkpoint is, read from its config and processor (never from its name).

Two model classes cover every SigLIP-family checkpoint on the Hub:

* ``SiglipModel`` (``model_type: siglip``): SigLIP 1 and the fixed-resolution SigLIP2 checkpoints
  (``google/siglip2-base-patch16-224/256/384/512``, ``so400m-patch14-384``, WAON's
  ``llm-jp/waon-siglip2-base-patch16-256``). The transformers SigLIP2 page calls FixRes "backwards
  compatible with SigLIP" (https://huggingface.co/docs/transformers/model_doc/siglip2). Images go
  through a fixed-size ``SiglipImageProcessor``; the model takes ``input_ids`` and ``pixel_values``.
  FixRes SigLIP2 and SigLIP 1 differ only in the tokenizer (Gemma's BPE vs SigLIP's SentencePiece),
  which is how the two are told apart for the record (:func:`family_label`).
* ``Siglip2Model`` (``model_type: siglip2``): the NaFlex checkpoints (``...-naflex``). The image
  processor cuts a variable number of patches (``max_num_patches``), and the model also takes
  ``pixel_attention_mask`` and ``spatial_shapes``.

Text preprocessing is the same for both, as both were trained in big_vision:

* padded to ``max_length`` = the text tower's position count (64 for Google's checkpoints): the
  transformers SigLIP page says to pass ``padding="max_length"`` "as that's how the model was
  trained" (https://huggingface.co/docs/transformers/model_doc/siglip, usage tips), and
  ``google/siglip-base-patch16-224``'s ``tokenizer_config.json`` saves ``model_max_length: 64``;
* padded on the RIGHT, with no attention mask: the text tower pools the last position
  (``SiglipTextTransformer``: ``last_hidden_state[:, -1, :]``), which must be the end of the caption's
  padding as in training; ``GemmaTokenizer`` and ``Siglip2Tokenizer`` default to left padding;
* lowercased: ``Siglip2Tokenizer`` lowercases in its normaliser ("SigLIP2 training default", its
  docstring in transformers), and SigLIP's ``tokenizer_config.json`` has ``do_lower_case: true``; the
  FixRes checkpoints ship a plain ``GemmaTokenizer`` that does not, so the text is lowercased here.

This is the recipe of ``waon_hf.models.dual_encoder.text_recipe_for`` (the one ``waon eval`` and ``waon score``
use), so training, scoring and evaluation tokenize a caption identically.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FamilySpec:
    """What one model class takes: its batch tensors and the image-processor settings passed explicitly."""

    model_class: str
    tensor_keys: tuple[str, ...]
    # Image-processor attributes passed on every call: a processor's call defaults can differ from the
    # values the checkpoint saved (Siglip2Processor's call default is max_num_patches=256).
    image_kwarg_names: tuple[str, ...] = ()


# model_type (config.json) -> spec
FAMILY_SPECS = {
    "siglip": FamilySpec("SiglipModel", ("input_ids", "pixel_values")),
    "siglip2": FamilySpec("Siglip2Model", ("input_ids", "pixel_values", "pixel_attention_mask", "spatial_shapes"),
                          ("max_num_patches", "patch_size")),
}
# tokenizer classes of SigLIP2 (Gemma's vocabulary); any other tokenizer on a SiglipModel is SigLIP 1
GEMMA_TOKENIZERS = ("GemmaTokenizer", "GemmaTokenizerFast", "Siglip2Tokenizer")


@dataclass(frozen=True)
class ModelFamily:
    """The preprocessing and the parts of one loaded checkpoint that training depends on."""

    name: str  # "siglip2-naflex", "siglip2-fixres" or "siglip"
    model_type: str
    model_class: str
    tensor_keys: tuple[str, ...]
    image_kwargs: dict = field(default_factory=dict)
    max_length: int = 64
    lowercase: bool = True
    padding_side: str = "right"
    encoder_layer_classes: tuple[str, ...] = ()  # the FSDP wrap unit: one per transformer layer

    def describe(self) -> dict:
        """A JSON-able record (kept in training_args.json and on the model card)."""
        return {"family": self.name, "model_type": self.model_type, "model_class": self.model_class,
                "tensor_keys": list(self.tensor_keys), "image_kwargs": dict(self.image_kwargs),
                "max_length": self.max_length, "lowercase": self.lowercase, "padding_side": self.padding_side,
                "encoder_layer_classes": list(self.encoder_layer_classes)}


def family_label(model_type: str, tokenizer) -> str:
    if model_type == "siglip2":
        return "siglip2-naflex"
    return "siglip2-fixres" if type(tokenizer).__name__ in GEMMA_TOKENIZERS else "siglip"


def encoder_layer_classes(model) -> tuple[str, ...]:
    """Class names of the transformer layers of every tower (the items of each ``encoder.layers``)."""
    names: list[str] = []
    for path, module in model.named_modules():
        if path.endswith("encoder.layers"):
            for layer in module.children():
                if type(layer).__name__ not in names:
                    names.append(type(layer).__name__)
    return tuple(names)


def model_family(model, processor, *, max_length: int | None = None, max_num_patches: int | None = None) -> ModelFamily:
    """The family of a loaded ``AutoModel`` + ``AutoProcessor``; an error for anything not SigLIP-style.

    ``max_length`` defaults to the text tower's position count, ``max_num_patches`` (NaFlex only) to
    the checkpoint's saved value."""
    config = model.config
    model_type = getattr(config, "model_type", None)
    spec = FAMILY_SPECS.get(model_type)
    if spec is None:
        raise ValueError(f"{type(model).__name__} (model_type {model_type!r}) is not a SigLIP-family model; "
                         f"supported model types: {', '.join(FAMILY_SPECS)}")
    tokenizer = getattr(processor, "tokenizer", None)
    image_processor = getattr(processor, "image_processor", None)
    if tokenizer is None or image_processor is None:
        raise ValueError(f"{type(processor).__name__} lacks a tokenizer or an image processor")
    positions = getattr(getattr(config, "text_config", config), "max_position_embeddings", None) or 64
    length = max_length or positions
    if length > positions:
        raise ValueError(f"max_length {length} exceeds the text tower's {positions} positions")
    image_kwargs = {k: getattr(image_processor, k) for k in spec.image_kwarg_names
                    if getattr(image_processor, k, None) is not None}
    if max_num_patches is not None:
        if "max_num_patches" not in spec.image_kwarg_names:
            raise ValueError(f"max_num_patches applies to NaFlex SigLIP2 only; {spec.model_class} takes "
                             f"fixed-size images ({getattr(image_processor, 'size', None)})")
        image_kwargs["max_num_patches"] = max_num_patches
    return ModelFamily(name=family_label(model_type, tokenizer), model_type=model_type, model_class=spec.model_class,
                       tensor_keys=spec.tensor_keys, image_kwargs=image_kwargs, max_length=length,
                       encoder_layer_classes=encoder_layer_classes(model))


def resolve_wrap_classes(model, configured: list[str] | tuple[str, ...] | None) -> list[str]:
    """The FSDP transformer-layer classes to wrap: ``configured`` (from the accelerate config) when given,
    each of which must exist in ``model``; otherwise the model's own encoder layers.

    A config written for the other family (``Siglip2EncoderLayer`` on a ``SiglipModel``) is an error
    here, before any data is read, rather than deep inside ``accelerator.prepare``."""
    present = {type(m).__name__ for m in model.modules()}
    if not configured:
        found = list(encoder_layer_classes(model))
        if not found:
            raise ValueError(f"{type(model).__name__} has no encoder layers to wrap for FSDP")
        return found
    names = [n.strip() for n in configured if n and n.strip()]
    missing = [n for n in names if n not in present]
    if missing:
        raise ValueError(f"the FSDP config wraps {missing}, which {type(model).__name__} does not have; its "
                         f"encoder layers are {list(encoder_layer_classes(model))} (leave "
                         "fsdp_transformer_layer_cls_to_wrap unset to use them)")
    return names
