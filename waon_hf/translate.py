"""LLM translation of English captions into Japanese (ReLAION-en -> ja), with clean-up and one strict retry.

Two layers:

* **Backends** turn user turns into model outputs, in order. :class:`TransformersBackend` renders each
  turn with the tokenizer's chat template (``add_generation_prompt``; the instruction sits in the user
  turn because gemma has no system role), sorts the prompts by token length and cuts them into
  batches (so a batch pads to nearly its own length, not the longest caption's), pads on the left,
  generates greedily up to ``max_new_tokens`` and decodes only the new tokens.
  :class:`VllmBackend` hands all turns to vLLM's ``LLM.chat`` (vLLM schedules and batches itself);
  it needs the ``vllm`` package and a GPU, and its absence is an error, never a fallback.
* :func:`translate_captions`: one attempt with the default (or user) prompt, :class:`CleanTranslation`
  and :class:`TranslationQuality` on every output, a second attempt with the strict prompt for the
  rows whose defect a prompt can fix (Chinese, Korean, English echo: :func:`needs_retry`), and the
  final drop reason of each row (``None`` keeps it).
* The shard job that uses them (chunked, resumable mid-shard) is :class:`waon_hf.jobs.translate.TranslateJob`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from waon_hf.steps.text_filters import normalize_caption
from waon_hf.steps.translation_filters import (
    CleanTranslation,
    TranslationQuality,
    build_prompt,
    needs_retry,
)

logger = logging.getLogger(__name__)

BACKENDS: dict[str, type] = {}  # name -> backend class (constructed with a TranslationConfig)

_DTYPES = ("auto", "float32", "float16", "bfloat16")


@dataclasses.dataclass
class TranslationConfig:
    """What model translates, and how."""

    model: str
    backend: str = "auto"  # auto: vllm when it is installed and a CUDA device is present, else transformers
    batch_size: int = 32  # prompts per generate() call (transformers)
    max_new_tokens: int = 128  # bound on each output; captions are short, rambling is cut
    device: str = "auto"  # transformers: auto (cuda when available, else cpu), cpu, cuda, cuda:N
    dtype: str | None = None  # auto, float32, float16, bfloat16 (None: the backend's default)
    temperature: float = 0.0  # 0 = greedy
    instruction: str | None = None  # replaces DEFAULT_PROMPT (the first attempt)
    strict_instruction: str | None = None  # replaces STRICT_PROMPT (the retry)
    # extra options: transformers' generate() kwargs, or vllm.SamplingParams fields (backend-specific)
    generate_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    engine_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)  # extra vllm.LLM(...) options

    def __post_init__(self) -> None:
        if self.backend == "auto":
            self.backend = resolve_backend()
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown translation backend {self.backend!r}; known: {', '.join(sorted(BACKENDS))}")
        if self.batch_size < 1 or self.max_new_tokens < 1:
            raise ValueError("batch_size and max_new_tokens must be >= 1")
        if self.dtype is not None and self.dtype not in _DTYPES:
            raise ValueError(f"dtype {self.dtype!r} not in {_DTYPES}")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")


class Backend(Protocol):
    """Generates one output per user turn, in the order given."""

    def generate(self, user_turns: Sequence[str]) -> list[str]: ...


def register_backend(name: str):
    def wrap(cls):
        BACKENDS[name] = cls
        return cls
    return wrap


def resolve_backend() -> str:
    """``--backend auto``: vLLM when the package is installed and CUDA is available, else transformers.

    Decided once, where the command runs, and recorded in the config (pipeline.json, the card); on a
    cluster whose head node has no GPU, name the backend explicitly.
    """
    import importlib.util

    vllm = importlib.util.find_spec("vllm") is not None
    cuda = False
    if vllm:
        import torch

        cuda = torch.cuda.is_available()
    chosen = "vllm" if vllm and cuda else "transformers"
    logger.info("translation backend: %s (auto: vllm %s, CUDA %s)", chosen,
                "installed" if vllm else "not installed", "available" if cuda else "not available")
    return chosen


def make_backend(config: TranslationConfig) -> Backend:
    return BACKENDS[config.backend](config)


def check_backend(config: TranslationConfig) -> None:
    """Fail early when the backend's package is missing (vllm); never fall back to another backend."""
    check = getattr(BACKENDS[config.backend], "check_available", None)
    if check is not None:
        check()


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices cut into batches of ``batch_size`` after sorting by length (ties in input order), so each
    batch pads to nearly its own length. Callers put outputs back at these indices."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def _torch_dtype(name: str | None):
    import torch

    return name if name in (None, "auto") else getattr(torch, name)


@register_backend("transformers")
class TransformersBackend:
    """``AutoModelForCausalLM.generate`` on length-sorted, left-padded batches of chat-template prompts."""

    def __init__(self, config: TranslationConfig, *, tokenizer=None, model=None):
        self.config = config
        self.tokenizer = tokenizer
        self.model = model
        self.generated_tokens = 0  # new tokens up to each row's end of sequence (throughput)
        self.prompt_tokens = 0
        self.padded_positions = 0  # batch positions spent on padding (prompt side)

    def load(self) -> None:
        if self.model is not None:
            return
        from transformers import AutoModelForCausalLM, AutoTokenizer

        name = self.config.model
        try:
            tokenizer = AutoTokenizer.from_pretrained(name)
            kwargs = {} if self.config.dtype is None else {"dtype": _torch_dtype(self.config.dtype)}
            model = AutoModelForCausalLM.from_pretrained(name, **kwargs)
        except OSError as e:
            raise RuntimeError(f"cannot load translation model {name!r}: {e}") from e
        if tokenizer.chat_template is None:
            raise ValueError(f"{name!r} has no chat template; use an instruction-tuned (chat) model")
        if tokenizer.pad_token is None:  # Llama-style tokenizers ship without one; padding is masked anyway
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"  # generation continues from the right edge of every row
        self.tokenizer = tokenizer
        device = self.config.device
        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
            logger.info("translation device: %s", device)
        self.model = model.to(device).eval()

    def encode(self, user_turns: Sequence[str]) -> list[list[int]]:
        """Token ids of each chat prompt (template with the generation prompt; it adds BOS itself)."""
        self.load()
        texts = [self.tokenizer.apply_chat_template([{"role": "user", "content": turn}],
                                                    add_generation_prompt=True, tokenize=False)
                 for turn in user_turns]
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

    def _end_ids(self) -> set[int]:
        ids = self.model.generation_config.eos_token_id
        ids = ids if isinstance(ids, (list, tuple)) else [ids]
        return {i for i in [*ids, self.tokenizer.eos_token_id, self.tokenizer.pad_token_id] if i is not None}

    def generate_ids(self, batch: Sequence[Sequence[int]]) -> list[list[int]]:
        """New token ids for one batch of prompts (each cut at its first end-of-sequence token)."""
        import torch

        self.load()
        inputs = self.tokenizer.pad({"input_ids": [list(ids) for ids in batch]}, padding=True, return_tensors="pt")
        inputs = {k: v.to(self.model.device) for k, v in inputs.items()}
        width = inputs["input_ids"].shape[1]
        self.prompt_tokens += sum(len(ids) for ids in batch)
        self.padded_positions += width * len(batch) - sum(len(ids) for ids in batch)
        sampling = ({"do_sample": True, "temperature": self.config.temperature} if self.config.temperature > 0
                    else {"do_sample": False})
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.config.max_new_tokens,
                                      pad_token_id=self.tokenizer.pad_token_id, **sampling,
                                      **self.config.generate_kwargs)
        ends = self._end_ids()
        rows = []
        for row in out[:, width:].tolist():
            cut = next((j for j, t in enumerate(row) if t in ends), len(row))
            rows.append(row[:cut])
            self.generated_tokens += cut
        return rows

    def generate(self, user_turns: Sequence[str]) -> list[str]:
        if not user_turns:
            return []
        encoded = self.encode(user_turns)
        outputs: list[str | None] = [None] * len(encoded)
        for batch in length_sorted_batches([len(ids) for ids in encoded], self.config.batch_size):
            for i, ids in zip(batch, self.generate_ids([encoded[i] for i in batch]), strict=True):
                outputs[i] = self.tokenizer.decode(ids, skip_special_tokens=True)
        return outputs  # type: ignore[return-value]


@register_backend("vllm")
class VllmBackend:
    """vLLM's offline ``LLM.chat`` (continuous batching; it sorts and schedules prompts itself).

    Written against vLLM's documented API (``LLM(model, dtype, **engine_kwargs)``,
    ``LLM.chat(list of conversations, SamplingParams)``, ``output.outputs[0].text``); needs ``pip install
    vllm`` on a CUDA machine. ``device`` is vLLM's to choose; ``engine_kwargs`` passes e.g.
    ``tensor_parallel_size`` or ``gpu_memory_utilization``.
    """

    def __init__(self, config: TranslationConfig):
        self.config = config
        self._llm = None
        self._params = None

    @staticmethod
    def check_available() -> None:
        """Raise the error a missing ``vllm`` gives, before any shard starts."""
        try:
            import vllm  # noqa: F401
        except ImportError as e:
            raise RuntimeError(
                "--backend vllm needs the vllm package, which is not installed here "
                "(install it on a CUDA machine: pip install vllm), or use --backend transformers"
            ) from e

    def load(self) -> None:
        if self._llm is not None:
            return
        self.check_available()
        import vllm
        kwargs = dict(self.config.engine_kwargs)
        if self.config.dtype is not None:
            kwargs.setdefault("dtype", self.config.dtype)
        self._llm = vllm.LLM(model=self.config.model, **kwargs)
        self._params = vllm.SamplingParams(temperature=self.config.temperature,
                                           max_tokens=self.config.max_new_tokens, **self.config.generate_kwargs)

    def generate(self, user_turns: Sequence[str]) -> list[str]:
        self.load()
        conversations = [[{"role": "user", "content": turn}] for turn in user_turns]
        results = self._llm.chat(conversations, sampling_params=self._params, use_tqdm=False)
        return [r.outputs[0].text for r in results]


# --- one attempt, clean-up, quality, one strict retry ---------------------------------------------

@dataclasses.dataclass
class TranslatedCaptions:
    """Per-row results of :func:`translate_captions` (lists aligned with the sources)."""

    captions: list[str]  # cleaned translation of the kept attempt
    reasons: list[str | None]  # final drop reason (None: keep)
    first_reasons: list[str | None]  # reason after the first attempt (what triggered a retry)
    retried: list[bool]
    cleaned: list[bool]  # clean-up removed chatter (prefix/suffix/quotes/markdown) from the kept attempt
    reused: list[bool]  # the source repeats an earlier one of this call: its translation was reused, not generated


def translate_captions(
    sources: Sequence[str | None], backend: Backend, *, config: TranslationConfig,
    clean: CleanTranslation | None = None, quality: TranslationQuality | None = None,
) -> TranslatedCaptions:
    """Translate ``sources`` once; retry the rows flagged by :func:`needs_retry` once with the strict
    prompt; return cleaned captions with their final drop reasons. Empty sources are not sent.

    Each distinct source is sent once per attempt and its output shared by the rows that repeat it
    (web captions repeat: stock phrases, product names): the prompts and greedy decoding being the
    same, so would the outputs be.
    """
    clean = clean or CleanTranslation()
    quality = quality or TranslationQuality()
    n = len(sources)
    captions, reasons, cleaned = [""] * n, ["empty"] * n, [False] * n
    todo = [i for i, s in enumerate(sources) if (s or "").strip()]
    seen: set[str] = set()
    reused = [False] * n
    for i in todo:
        reused[i] = sources[i] in seen
        seen.add(sources[i])

    def attempt(rows: list[int], strict: bool) -> None:
        if not rows:
            return
        instruction = config.strict_instruction if strict else config.instruction
        distinct = list(dict.fromkeys(sources[i] for i in rows))  # first-seen order
        raw = backend.generate([build_prompt(src, strict=strict, instruction=instruction) for src in distinct])
        if len(raw) != len(distinct):
            raise RuntimeError(f"backend returned {len(raw)} outputs for {len(distinct)} prompts")
        outs = clean.process_batch({clean.column: list(raw)})[clean.column]
        drops = quality.drop_reasons({quality.column: outs, quality.source_column: distinct})
        by_source = {src: (out, reason, out != normalize_caption(r or ""))
                     for src, out, reason, r in zip(distinct, outs, drops, raw, strict=True)}
        for i in rows:
            captions[i], reasons[i], cleaned[i] = by_source[sources[i]]

    attempt(todo, strict=False)
    first = list(reasons)
    retry = [i for i in todo if needs_retry(reasons[i])]
    if retry:
        attempt(retry, strict=True)
    retried = [False] * n
    for i in retry:
        retried[i] = True
    return TranslatedCaptions(captions, reasons, first, retried, cleaned, reused)


def read_prompt(value: str | None) -> str | None:
    """A prompt given as text, or ``@path`` / an existing file path to read it from."""
    if value is None:
        return None
    path = value[1:] if value.startswith("@") else value
    if value.startswith("@") or (len(value) < 4096 and "\n" not in value and os.path.isfile(path)):
        return Path(path).read_text(encoding="utf-8").strip()
    return value.strip()


__all__ = ["BACKENDS", "TransformersBackend", "TranslatedCaptions", "TranslationConfig",
           "VllmBackend", "check_backend", "length_sorted_batches", "make_backend", "read_prompt", "register_backend",
           "translate_captions"]
