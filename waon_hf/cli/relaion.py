"""`waon relaion-ja` and `waon translate` (ReLAION as a source), and the `waon build --source relaion` flags."""

from __future__ import annotations

import argparse

from waon_hf.cli.options import (
    add_executor_options,
    add_output_options,
    executor_from_args,
    float_in,
    int_at_least,
    output_folder,
    print_summary,
)
from waon_hf.cli.registry import command
from waon_hf.config import RELAION_MODES, ConfigError
from waon_hf.relaion import run_relaion_ja, run_translate
from waon_hf.sources.commoncrawl import SourceFile
from waon_hf.translate import BACKENDS, TranslationConfig, check_backend, read_prompt


def _common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="+", metavar="SRC",
                   help="Hub dataset id (e.g. laion/relaion2B-multi-research-safe), parquet file(s), directory or glob")
    add_output_options(p)
    add_executor_options(p)
    p.add_argument("--limit", type=int_at_least(0), default=None,
                   help="first N rows in file order (after --language), planned before the shards run")


def relaion_ja_args(p: argparse.ArgumentParser) -> None:
    _common_args(p)
    p.add_argument("--language", default="ja", help="keep rows with this LANGUAGE (default ja; 'all' keeps every row)")


def _inputs(args: argparse.Namespace) -> str | list[str]:
    return args.source[0] if len(args.source) == 1 else list(args.source)


@command("relaion-ja", relaion_ja_args)
def run_relaion_ja_command(args: argparse.Namespace) -> int:
    """The Japanese subset of ReLAION (language == ja) in this package's columns, as a Hub-ready folder."""
    language = None if args.language.lower() == "all" else args.language
    folder, url = output_folder(args)
    stats = run_relaion_ja(_inputs(args), folder, language=language, limit=args.limit, workers=args.workers,
                           overwrite=args.overwrite, name=args.name or "relaion-ja", executor=executor_from_args(args))
    print_summary(stats, folder, args, url, next_hint=f"waon download {args.output} -o <images>")
    return 0


def translate_args(p: argparse.ArgumentParser) -> None:
    _common_args(p)
    p.add_argument("--model", required=True, help="chat LLM: Hub id or local folder (e.g. google/gemma-2-9b-it)")
    p.add_argument("--backend", default="auto", choices=["auto", *sorted(BACKENDS)],
                   help="transformers (CPU/GPU), vllm (GPU; needs the vllm package) or auto (default: vllm when "
                        "it is installed and CUDA is available here, else transformers; the choice is logged)")
    p.add_argument("--batch-size", type=int_at_least(1), default=32, help="prompts per generate call (transformers)")
    p.add_argument("--max-new-tokens", type=int_at_least(1), default=128, help="bound on each translation's length")
    p.add_argument("--prompt", default=None, help="instruction replacing the default prompt (text)")
    p.add_argument("--prompt-file", default=None, help="file holding the instruction replacing the default prompt")
    p.add_argument("--strict-prompt-file", default=None, help="file holding the instruction of the retry")
    p.add_argument("--temperature", type=float_in(0.0), default=0.0, help="0 = greedy (default)")
    p.add_argument("--device", default="auto",
                   help="transformers: auto (cuda when available, else cpu), cpu, cuda, cuda:N")
    p.add_argument("--dtype", default=None, choices=["auto", "float32", "float16", "bfloat16"],
                   help="model weights' dtype (default: the backend's)")
    p.add_argument("--chunk-rows", type=int_at_least(1), default=1024,
                   help="rows per saved chunk (the unit of mid-shard resume)")
    p.add_argument("--tensor-parallel-size", type=int_at_least(1), default=None, help="vllm: GPUs per model")
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


@command("translate", translate_args)
def run_translate_command(args: argparse.Namespace) -> int:
    """Translate ReLAION-en captions into Japanese with an LLM (clean-up, strict retry, quality filter)."""
    if args.prompt and args.prompt_file:
        raise ConfigError("give --prompt or --prompt-file, not both")
    instruction = read_prompt("@" + args.prompt_file) if args.prompt_file else read_prompt(args.prompt)
    strict = read_prompt("@" + args.strict_prompt_file) if args.strict_prompt_file else None
    engine = {"tensor_parallel_size": args.tensor_parallel_size} if args.tensor_parallel_size else {}
    config = TranslationConfig(model=args.model, backend=args.backend, batch_size=args.batch_size,
                               max_new_tokens=args.max_new_tokens, device=args.device, dtype=args.dtype,
                               temperature=args.temperature, instruction=instruction, strict_instruction=strict,
                               engine_kwargs=engine, chat_template_kwargs=args.chat_template_kwargs,
                               generation_config=args.generation_config)
    check_backend(config)  # a missing vllm first: it is the more basic problem
    if config.backend in HF_BACKENDS:
        check_translation_model(args.model)
    folder, url = output_folder(args)
    stats = run_translate(_inputs(args), folder, config, limit=args.limit, chunk_rows=args.chunk_rows,
                          workers=args.workers, overwrite=args.overwrite, name=args.name or "relaion-en-ja",
                          executor=executor_from_args(args))
    print_summary(stats, folder, args, url, next_hint=f"waon download {args.output} -o <images>")
    return 0


HF_BACKENDS = ("transformers", "vllm")  # the backends that load a Hub id or a save_pretrained folder


def check_translation_model(model: str) -> None:
    from waon_hf.models.resolve import ModelUnavailableError, resolve_model

    try:
        resolve_model(model, "--model")
    except ModelUnavailableError as e:
        raise ConfigError(str(e)) from None


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
    p.add_argument("--limit", type=int_at_least(0), default=None, help="relaion: first N rows in file order")


def relaion_build_sources(args: argparse.Namespace, config) -> list[SourceFile] | None:
    """With ReLAION chosen (flag or config section), fill ``config.relaion`` from the flags and return the
    inputs as they are (a Hub id or parquet paths, expanded by the stage); ``None`` for Common Crawl."""
    flags = {"mode": args.relaion_mode, "model": args.model, "backend": args.backend, "limit": args.limit}
    flags = {k: v for k, v in flags.items() if v is not None}
    if args.source == "commoncrawl" or (args.source is None and not config.relaion):
        if flags:
            names = {"mode": "--relaion-mode", "model": "--model", "backend": "--backend", "limit": "--limit"}
            raise ConfigError(f"{', '.join(names[k] for k in flags)} apply to --source relaion only")
        return None
    cc_only = {"--num-shards": getattr(args, "num_shards", 1) != 1,
               "--shard-index": getattr(args, "shard_index", 0) != 0,
               "--limit-files": getattr(args, "limit_files", None) is not None,
               "--cc-base-url": getattr(args, "cc_base_url", None) is not None}
    if any(cc_only.values()):
        raise ConfigError(f"{', '.join(k for k, v in cc_only.items() if v)} apply to Common Crawl inputs only; "
                         "with --source relaion use --limit (the first N rows in file order)")
    config.relaion = {"mode": "ja", **config.relaion, **flags}
    return [SourceFile(location, "") for location in args.inputs]
