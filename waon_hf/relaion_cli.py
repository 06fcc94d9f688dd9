"""`waon relaion-ja` and `waon translate`: ReLAION as a source, through the same sharded runner.

* ``waon relaion-ja SRC -o OUT``: the Japanese part of ReLAION's multilingual set (``language == ja``),
  mapped to our columns.
* ``waon translate SRC -o OUT --model M``: ReLAION-en captions translated into Japanese by an LLM
  (``caption``; the source stays in ``caption_en``, the model in ``translation_model``), cleaned, retried
  once with a strict prompt when the output is not Japanese, and quality-filtered.

SRC is a Hub dataset id (its parquet files are listed and read over ``hf://``), a parquet file, a
directory or a glob. One source file is one shard: resumable, ``--workers`` processes. ``--limit N``
takes the first N rows, in file order, that pass ``--language``; it is resolved into per-file row
counts before any shard starts (from parquet footers, or the language column alone), so the result
does not depend on ``--workers`` and a re-run resumes the same plan. Both write the Hub-ready layout
of every stage (``data/train-*.parquet``, ``README.md``, ``stats.json``, ``pipeline.json``), which
``waon download`` (or ``waon build --source relaion``) takes next.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from waon_hf.executors import add_executor_arguments, executor_from_args
from waon_hf.funnel import funnel_markdown
from waon_hf.runner import ShardLayout, run_sharded
from waon_hf.sources.commoncrawl import SourceFile
from waon_hf.sources.relaion import RelaionReadJob, list_relaion_files, plan_relaion_shards
from waon_hf.stats import Stats, write_json_atomic
from waon_hf.steps.translation_filters import TranslationQuality
from waon_hf.translate import BACKENDS, TranslateJob, TranslationConfig, check_backend, read_prompt

logger = logging.getLogger(__name__)

RELAION_MODES = ("ja", "translate")


def _check_settings(output: str | Path, settings: dict, overwrite: bool) -> None:
    """Refuse to resume a run made with other settings (another limit, model or prompt would mix rows)."""
    layout = ShardLayout(output)
    if overwrite and layout.root.exists():
        shutil.rmtree(layout.work, ignore_errors=True)
        shutil.rmtree(layout.data, ignore_errors=True)
    path = layout.work / "relaion-settings.json"
    if path.exists():
        previous = json.loads(path.read_text(encoding="utf-8"))
        if previous != settings:
            changed = sorted(k for k in {*previous, *settings} if previous.get(k) != settings.get(k))
            raise ValueError(f"{layout.root} holds a run with other settings ({', '.join(changed)}); "
                             "use another output folder or --overwrite")
        return
    layout.work.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, settings)


def _plan(inputs: str | Sequence[str], limit: int | None, language: str | None):
    plan = plan_relaion_shards(list_relaion_files(inputs), limit, language)
    if not plan:
        raise ValueError(f"nothing to read from {inputs!r} with --limit {limit}")
    logger.info("%d source file(s)%s", len(plan), f", first {limit:,} rows" if limit is not None else "")
    return [SourceFile(location, "") for location, _ in plan], tuple(take for _, take in plan)


def run_relaion_ja(
    inputs: str | Sequence[str], output: str | Path, *, language: str | None = "ja", limit: int | None = None,
    workers: int = 1, overwrite: bool = False, name: str = "relaion-ja", executor=None,
) -> Stats:
    """ReLAION rows in ``language`` (all rows with ``None``) -> a Hub-ready dataset folder."""
    sources, takes = _plan(inputs, limit, language)
    note = (f"ReLAION rows with language == {language!r} from {inputs}" if language else f"ReLAION rows from {inputs}")
    job = RelaionReadJob(english=False, language=language, takes=takes, dataset_name=name, card_note=note)
    _check_settings(output, {"mode": "ja", "language": language, "limit": limit, "takes": list(takes)}, overwrite)
    return run_sharded(sources, output, job, workers=workers, executor=executor)


def run_translate(
    inputs: str | Sequence[str], output: str | Path, translation: TranslationConfig, *, limit: int | None = None,
    chunk_rows: int = 1024, quality: TranslationQuality | None = None, workers: int = 1, overwrite: bool = False,
    name: str = "relaion-en-ja", executor=None,
) -> Stats:
    """ReLAION-en captions translated into Japanese -> a Hub-ready dataset folder."""
    check_backend(translation)
    sources, takes = _plan(inputs, limit, None)
    quality = quality or TranslationQuality()
    note = (f"captions of {inputs} translated from English by {translation.model} ({translation.backend} backend), "
            "cleaned and quality-filtered (non-Japanese outputs retried once with a strict prompt)")
    job = TranslateJob(translation=translation, reader=RelaionReadJob(english=True, takes=takes),
                       quality=quality, chunk_rows=chunk_rows, dataset_name=name, card_note=note)
    t = translation
    settings = {"mode": "translate", "limit": limit, "takes": list(takes), "model": t.model, "backend": t.backend,
                "dtype": t.dtype, "max_new_tokens": t.max_new_tokens, "temperature": t.temperature,
                "instruction": t.instruction, "strict_instruction": t.strict_instruction,
                "generate_kwargs": t.generate_kwargs, "chunk_rows": chunk_rows,
                "chat_template_kwargs": t.chat_template_kwargs, "generation_config": t.generation_config,
                "quality": dataclasses.asdict(quality)}
    _check_settings(output, settings, overwrite)
    return run_sharded(sources, output, job, workers=workers, executor=executor)


_TRANSLATION_FIELDS = {f.name for f in dataclasses.fields(TranslationConfig)}
_SECTION_KEYS = {"mode", "language", "limit", "chunk_rows", "quality", "prompt_file", "strict_prompt_file"}


def run_relaion_pairs(inputs: Sequence[str], output: str | Path, section: dict[str, Any], *, name: str,
                      workers: int = 1, overwrite: bool = False, executor=None) -> Stats:
    """The first stage of ``waon build --source relaion``, from the build config's ``relaion:`` section::

        relaion:
          mode: translate          # or ja (default)
          limit: 1000000           # first N rows (optional)
          model: google/gemma-2-9b-it
          backend: vllm            # any TranslationConfig option: batch_size, max_new_tokens, device, dtype...
          chunk_rows: 1024
          prompt_file: prompt.txt  # optional; strict_prompt_file too
          quality: {max_ratio: 3.0}  # TranslationQuality options
    """
    options = dict(section)
    unknown = set(options) - _SECTION_KEYS - _TRANSLATION_FIELDS
    if unknown:
        raise ValueError(f"relaion: unknown option(s) {sorted(unknown)}; "
                         f"options: {sorted(_SECTION_KEYS | _TRANSLATION_FIELDS)}")
    mode = options.pop("mode", "ja")
    if mode not in RELAION_MODES:
        raise ValueError(f"relaion: mode must be one of {RELAION_MODES}, got {mode!r}")
    limit = options.pop("limit", None)
    if mode == "ja":
        rest = set(options) - {"language"}
        if rest:
            raise ValueError(f"relaion: option(s) {sorted(rest)} only apply to mode: translate")
        return run_relaion_ja(inputs, output, language=options.get("language", "ja"), limit=limit, workers=workers,
                              overwrite=overwrite, name=name, executor=executor)
    if "model" not in options:
        raise ValueError("relaion: mode translate needs a model (relaion: {model: <Hub id or folder>})")
    chunk_rows = int(options.pop("chunk_rows", 1024))
    quality = TranslationQuality(**(options.pop("quality", None) or {}))
    if "prompt_file" in options:
        options["instruction"] = read_prompt("@" + options.pop("prompt_file"))
    if "strict_prompt_file" in options:
        options["strict_instruction"] = read_prompt("@" + options.pop("strict_prompt_file"))
    options.pop("language", None)
    return run_translate(inputs, output, TranslationConfig(**options), limit=limit, chunk_rows=chunk_rows,
                         quality=quality, workers=workers, overwrite=overwrite, name=name, executor=executor)


# --- the commands -----------------------------------------------------------------------------------

def _common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="+", metavar="SRC",
                   help="Hub dataset id (e.g. laion/relaion2B-multi-research-safe), parquet file(s), directory or glob")
    p.add_argument("-o", "--output", required=True, help="output folder (Hub-ready: data/*.parquet + README.md)")
    p.add_argument("--limit", type=int, default=None,
                   help="first N rows in file order (after --language), planned before the shards run")
    p.add_argument("--workers", type=int, default=1, help="processes, one shard (source file) each at a time")
    add_executor_arguments(p, workers=False)
    p.add_argument("--name", default=None, help="dataset name shown in the card")
    p.add_argument("--overwrite", action="store_true", help="discard a previous run in the output folder")


def relaion_ja_args(p: argparse.ArgumentParser) -> None:
    _common_args(p)
    p.add_argument("--language", default="ja", help="keep rows with this LANGUAGE (default ja; 'all' keeps every row)")


def _inputs(args: argparse.Namespace) -> str | list[str]:
    return args.source[0] if len(args.source) == 1 else list(args.source)


def _finish(stats: Stats, output: str) -> int:
    print(funnel_markdown(stats))
    rows = json.loads(ShardLayout(output).final_marker.read_text(encoding="utf-8"))["rows"]
    print(f"\n{rows:,} rows written to {output}/data (next: waon download {output} -o <images>)")
    return 0


def run_relaion_ja_command(args: argparse.Namespace) -> int:
    """The Japanese subset of ReLAION (language == ja) in this package's columns, as a Hub-ready folder."""
    language = None if args.language.lower() == "all" else args.language
    stats = run_relaion_ja(_inputs(args), args.output, language=language, limit=args.limit, workers=args.workers,
                           overwrite=args.overwrite, name=args.name or "relaion-ja", executor=executor_from_args(args))
    return _finish(stats, args.output)


def translate_args(p: argparse.ArgumentParser) -> None:
    _common_args(p)
    p.add_argument("--model", required=True, help="chat LLM: Hub id or local folder (e.g. google/gemma-2-9b-it)")
    p.add_argument("--backend", default="auto", choices=["auto", *sorted(BACKENDS)],
                   help="transformers (CPU/GPU), vllm (GPU; needs the vllm package) or auto (default: vllm when "
                        "it is installed and CUDA is available here, else transformers; the choice is logged)")
    p.add_argument("--batch-size", type=int, default=32, help="prompts per generate call (transformers)")
    p.add_argument("--max-new-tokens", type=int, default=128, help="bound on each translation's length")
    p.add_argument("--prompt", default=None, help="instruction replacing the default prompt (text)")
    p.add_argument("--prompt-file", default=None, help="file holding the instruction replacing the default prompt")
    p.add_argument("--strict-prompt-file", default=None, help="file holding the instruction of the retry")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--device", default="auto",
                   help="transformers: auto (cuda when available, else cpu), cpu, cuda, cuda:N")
    p.add_argument("--dtype", default=None, choices=["auto", "float32", "float16", "bfloat16"],
                   help="model weights' dtype (default: the backend's)")
    p.add_argument("--chunk-rows", type=int, default=1024, help="rows per saved chunk (the unit of mid-shard resume)")
    p.add_argument("--tensor-parallel-size", type=int, default=None, help="vllm: GPUs per model")
    p.add_argument("--chat-template-kwargs", type=_json_object, default={}, metavar="JSON",
                   help="extra chat-template variables, e.g. '{\"enable_thinking\": false}' (templates that read "
                        "enable_thinking, such as Qwen3's, get enable_thinking=false without it)")
    p.add_argument("--generation-config", default="explicit", choices=["explicit", "model"],
                   help="explicit (default): greedy or plain sampling at --temperature, no penalties, on both "
                        "backends; model: the checkpoint's generation_config.json defaults (sampling, penalties)")


def _json_object(text: str) -> dict:
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not JSON: {e}") from e
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"enable_thinking\": false}'")
    return value


def run_translate_command(args: argparse.Namespace) -> int:
    """Translate ReLAION-en captions into Japanese with an LLM (clean-up, strict retry, quality filter)."""
    if args.prompt and args.prompt_file:
        raise ValueError("give --prompt or --prompt-file, not both")
    instruction = read_prompt("@" + args.prompt_file) if args.prompt_file else read_prompt(args.prompt)
    strict = read_prompt("@" + args.strict_prompt_file) if args.strict_prompt_file else None
    engine = {"tensor_parallel_size": args.tensor_parallel_size} if args.tensor_parallel_size else {}
    config = TranslationConfig(model=args.model, backend=args.backend, batch_size=args.batch_size,
                               max_new_tokens=args.max_new_tokens, device=args.device, dtype=args.dtype,
                               temperature=args.temperature, instruction=instruction, strict_instruction=strict,
                               engine_kwargs=engine, chat_template_kwargs=args.chat_template_kwargs,
                               generation_config=args.generation_config)
    stats = run_translate(_inputs(args), args.output, config, limit=args.limit, chunk_rows=args.chunk_rows,
                          workers=args.workers, overwrite=args.overwrite, name=args.name or "relaion-en-ja",
                          executor=executor_from_args(args))
    return _finish(stats, args.output)


# --- `waon build --source relaion` ------------------------------------------------------------------

def add_build_relaion_args(p: argparse.ArgumentParser) -> None:
    """The `waon build` flags that pick ReLAION as the first stage (they fill the config's ``relaion:``)."""
    p.add_argument("--source", default=None, choices=["commoncrawl", "relaion"],
                   help="where the pairs come from (default: commoncrawl, or relaion when the config has a "
                        "relaion: section); with relaion, INPUT is a Hub id or parquet file(s)")
    p.add_argument("--relaion-mode", default=None, choices=list(RELAION_MODES),
                   help="relaion: ja (Japanese subset, default) or translate (English captions by --model)")
    p.add_argument("--model", default=None, help="relaion translate: the chat LLM (Hub id or folder)")
    p.add_argument("--backend", default=None, choices=["auto", "transformers", "vllm"],
                   help="relaion translate: backend (default auto)")
    p.add_argument("--limit", type=int, default=None, help="relaion: first N rows in file order")


def relaion_build_sources(args: argparse.Namespace, config) -> list[SourceFile] | None:
    """With ReLAION chosen (flag or config section), fill ``config.relaion`` from the flags and return the
    inputs as they are (a Hub id or parquet paths, expanded by the stage); ``None`` for Common Crawl."""
    flags = {"mode": args.relaion_mode, "model": args.model, "backend": args.backend, "limit": args.limit}
    flags = {k: v for k, v in flags.items() if v is not None}
    if args.source == "commoncrawl" or (args.source is None and not config.relaion):
        if flags:
            names = {"mode": "--relaion-mode", "model": "--model", "backend": "--backend", "limit": "--limit"}
            raise ValueError(f"{', '.join(names[k] for k in flags)} apply to --source relaion only")
        return None
    cc_only = {"--num-shards": getattr(args, "num_shards", 1) != 1,
               "--shard-index": getattr(args, "shard_index", 0) != 0,
               "--limit-files": getattr(args, "limit_files", None) is not None,
               "--cc-base-url": getattr(args, "cc_base_url", None) is not None}
    if any(cc_only.values()):
        raise ValueError(f"{', '.join(k for k, v in cc_only.items() if v)} apply to Common Crawl inputs only; "
                         "with --source relaion use --limit (the first N rows in file order)")
    config.relaion = {"mode": "ja", **config.relaion, **flags}
    return [SourceFile(location, "") for location in args.inputs]
