"""LLM translation of English captions into Japanese (ReLAION-en -> ja), with clean-up and one strict retry.

Two layers:

* **Backends** turn user turns into model outputs, in order. :class:`TransformersBackend` renders each
  turn with the tokenizer's chat template (``add_generation_prompt`` and :func:`chat_template_kwargs`;
  the instruction sits in the user turn because gemma has no system role), sorts the prompts by token
  length and cuts them into batches (so a batch pads to nearly its own length, not the longest
  caption's), pads on the left, generates up to ``max_new_tokens`` and decodes only the new tokens.
  :class:`VllmBackend` hands all turns to vLLM's ``LLM.chat`` (vLLM schedules and batches itself);
  it needs the ``vllm`` package and a GPU, and its absence is an error, never a fallback.
  Both decode with the same explicit settings (:func:`generation_settings`): a checkpoint's
  ``generation_config.json`` (Qwen2.5: ``repetition_penalty 1.05``, sampling at 0.7) is ignored unless
  ``generation_config="model"`` asks for it.
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
    strip_reasoning,
)

logger = logging.getLogger(__name__)

BACKENDS: dict[str, type] = {}  # name -> backend class (constructed with a TranslationConfig)

_DTYPES = ("auto", "float32", "float16", "bfloat16")
GENERATION_CONFIGS = ("explicit", "model")  # where decoding settings come from (see generation_settings)


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
    # extra apply_chat_template variables, over the per-family defaults (see chat_template_kwargs)
    chat_template_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    generation_config: str = "explicit"  # explicit: generation_settings(); model: the checkpoint's defaults

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
        if self.generation_config not in GENERATION_CONFIGS:
            raise ValueError(f"generation_config {self.generation_config!r} not in {GENERATION_CONFIGS}")
        if not isinstance(self.chat_template_kwargs, dict):
            raise ValueError("chat_template_kwargs must be a mapping (a JSON object on the command line)")


def chat_template_kwargs(chat_template: Any, given: dict[str, Any] | None = None) -> dict[str, Any]:
    """Variables for ``apply_chat_template`` (vLLM: ``chat_template_kwargs``) for a tokenizer's template.

    Per-family defaults, then ``given`` on top: a template that reads ``enable_thinking`` (Qwen3 and
    other hybrid thinking models) gets ``enable_thinking=False``, since their templates think unless told
    not to, and the reasoning would eat ``max_new_tokens`` before any translation appears.
    """
    text = chat_template if isinstance(chat_template, str) else str(chat_template or "")
    defaults = {"enable_thinking": False} if "enable_thinking" in text else {}
    return {**defaults, **(given or {})}


def generation_settings(config: TranslationConfig) -> dict[str, Any]:
    """The decoding settings both backends apply, stated in full (recorded in pipeline.json).

    Greedy at ``temperature == 0``, else plain sampling at that temperature; no top-k/top-p/min-p cut,
    no repetition, presence or frequency penalty, one beam. With ``generation_config="model"`` only
    ``max_new_tokens`` is ours and the rest is the checkpoint's (``{"from": "model"}`` is recorded).
    """
    if config.generation_config == "model":
        return {"from": "model", "max_new_tokens": config.max_new_tokens}
    sample = config.temperature > 0
    return {"from": "explicit", "do_sample": sample, "temperature": config.temperature if sample else 1.0,
            "top_p": 1.0, "top_k": None, "min_p": 0.0, "repetition_penalty": 1.0, "presence_penalty": 0.0,
            "frequency_penalty": 0.0, "num_beams": 1, "max_new_tokens": config.max_new_tokens}


# generation_config.json entries that name tokens (kept from the checkpoint in explicit mode); every
# other entry is a decoding choice, replaced by generation_settings().
_TOKEN_ENTRIES = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")


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

    def template_kwargs(self) -> dict[str, Any]:
        return chat_template_kwargs(self.tokenizer.chat_template, self.config.chat_template_kwargs)

    def generation_config(self):
        """The GenerationConfig passed to ``generate``: in explicit mode the checkpoint's token ids and
        :func:`generation_settings`, nothing else of its ``generation_config.json``."""
        cached = getattr(self, "_generation_config", None)
        if cached is not None:
            return cached
        from transformers import GenerationConfig

        own = self.model.generation_config
        if self.config.generation_config == "model":
            cached = GenerationConfig(**own.to_dict())
            cached.max_new_tokens = self.config.max_new_tokens
            logger.info("translation: the checkpoint's generation defaults %s (--generation-config model)",
                        {k: v for k, v in cached.to_diff_dict().items() if k not in _TOKEN_ENTRIES})
        else:
            settings = generation_settings(self.config)
            tokens = {k: getattr(own, k, None) for k in _TOKEN_ENTRIES}
            own_entries = own.to_diff_dict() if hasattr(own, "to_diff_dict") else {}
            ignored = {k: v for k, v in own_entries.items()
                       if k not in _TOKEN_ENTRIES and k not in ("transformers_version", "_from_model_config")}
            if ignored:
                logger.info("translation: ignoring the checkpoint's generation defaults %s (explicit settings)",
                            ignored)
            cached = GenerationConfig(
                **{k: v for k, v in tokens.items() if v is not None},
                do_sample=settings["do_sample"], temperature=settings["temperature"], top_p=settings["top_p"],
                top_k=0 if settings["do_sample"] else 50, min_p=None, repetition_penalty=settings["repetition_penalty"],
                num_beams=settings["num_beams"], max_new_tokens=settings["max_new_tokens"],
            )
            # generate() fills every entry left unset from model.generation_config: make the model's
            # own config the explicit one, so nothing of the checkpoint's sampling defaults leaks in
            self.model.generation_config = cached
        self._generation_config = cached
        return cached

    def encode(self, user_turns: Sequence[str]) -> list[list[int]]:
        """Token ids of each chat prompt (template with the generation prompt; it adds BOS itself)."""
        self.load()
        kwargs = self.template_kwargs()
        texts = [self.tokenizer.apply_chat_template([{"role": "user", "content": turn}],
                                                    add_generation_prompt=True, tokenize=False, **kwargs)
                 for turn in user_turns]
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

    def _end_ids(self) -> set[int]:
        ids = self.generation_config().eos_token_id
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
        generation_config = self.generation_config()
        with torch.inference_mode():
            out = self.model.generate(**inputs, generation_config=generation_config,
                                      pad_token_id=self.tokenizer.pad_token_id, **self.config.generate_kwargs)
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
        settings = generation_settings(self.config)
        if settings["from"] == "model":  # vLLM's own reading of the checkpoint's generation_config.json
            self._params = self._llm.get_default_sampling_params()
            self._params.max_tokens = self.config.max_new_tokens
            for key, value in self.config.generate_kwargs.items():
                setattr(self._params, key, value)
        else:
            self._params = vllm.SamplingParams(
                temperature=settings["temperature"] if settings["do_sample"] else 0.0, top_p=settings["top_p"],
                top_k=-1, min_p=settings["min_p"], repetition_penalty=settings["repetition_penalty"],
                presence_penalty=settings["presence_penalty"], frequency_penalty=settings["frequency_penalty"],
                max_tokens=settings["max_new_tokens"], **self.config.generate_kwargs)
        self._template_kwargs = chat_template_kwargs(self._llm.get_tokenizer().chat_template,
                                                     self.config.chat_template_kwargs)

    def generate(self, user_turns: Sequence[str]) -> list[str]:
        self.load()
        conversations = [[{"role": "user", "content": turn}] for turn in user_turns]
        results = self._llm.chat(conversations, sampling_params=self._params, use_tqdm=False,
                                 chat_template_kwargs=self._template_kwargs)
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
    # a reasoning block was stripped from the kept attempt: "closed", "unterminated" (None: there was none)
    reasoning: list[str | None] = dataclasses.field(default_factory=list)


def translate_captions(
    sources: Sequence[str | None], backend: Backend, *, config: TranslationConfig,
    clean: CleanTranslation | None = None, quality: TranslationQuality | None = None,
) -> TranslatedCaptions:
    """Translate ``sources`` once; retry the rows flagged by :func:`needs_retry` once with the strict
    prompt; return cleaned captions with their final drop reasons. Empty sources are not sent.

    Reasoning blocks (``<think>...</think>``) are stripped before the checks (:func:`strip_reasoning`);
    an output that was nothing but reasoning is dropped as ``reasoning_only``.

    Each distinct source is sent once per attempt and its output shared by the rows that repeat it
    (web captions repeat: stock phrases, product names): the prompts and greedy decoding being the
    same, so would the outputs be.
    """
    clean = clean or CleanTranslation()
    quality = quality or TranslationQuality()
    n = len(sources)
    captions, reasons, cleaned = [""] * n, ["empty"] * n, [False] * n
    reasoning: list[str | None] = [None] * n
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
        answers, thoughts = zip(*(strip_reasoning(r or "") for r in raw), strict=True)
        outs = clean.process_batch({clean.column: list(answers)})[clean.column]
        drops = quality.drop_reasons({quality.column: outs, quality.source_column: distinct})
        drops = ["reasoning_only" if t and d == "empty" else d for t, d in zip(thoughts, drops, strict=True)]
        by_source = {src: (out, reason, out != normalize_caption(a), t)
                     for src, out, reason, a, t in zip(distinct, outs, drops, answers, thoughts, strict=True)}
        for i in rows:
            captions[i], reasons[i], cleaned[i], reasoning[i] = by_source[sources[i]]

    attempt(todo, strict=False)
    first = list(reasons)
    retry = [i for i in todo if needs_retry(reasons[i])]
    if retry:
        attempt(retry, strict=True)
    retried = [False] * n
    for i in retry:
        retried[i] = True
    return TranslatedCaptions(captions, reasons, first, retried, cleaned, reused, reasoning)


def read_prompt(value: str | None) -> str | None:
    """A prompt given as text, or ``@path`` / an existing file path to read it from."""
    if value is None:
        return None
    path = value[1:] if value.startswith("@") else value
    if value.startswith("@") or (len(value) < 4096 and "\n" not in value and os.path.isfile(path)):
        return Path(path).read_text(encoding="utf-8").strip()
    return value.strip()


__all__ = ["BACKENDS", "GENERATION_CONFIGS", "TransformersBackend", "TranslatedCaptions",
           "TranslationConfig", "VllmBackend", "chat_template_kwargs", "check_backend", "generation_settings",
           "length_sorted_batches", "make_backend", "read_prompt", "register_backend", "translate_captions"]
