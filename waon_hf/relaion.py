"""ReLAION as the source of pairs: the Japanese subset, or English captions translated by an LLM.

* :func:`run_relaion_ja`: the Japanese part of ReLAION's multilingual set (``language == ja``), mapped
  to our columns.
* :func:`run_translate`: ReLAION-en captions translated into Japanese by an LLM (``caption``; the
  source stays in ``caption_en``, the model in ``translation_model``), cleaned, retried once with a
  strict prompt when the output is not Japanese, and quality-filtered.

SRC is a Hub dataset id (its parquet files are listed and read over ``hf://``), a parquet file, a
directory or a glob. One source file is one shard: resumable, any number of workers. ``limit`` takes
the first N rows, in file order, that pass ``language``; it is resolved into per-file row counts
before any shard starts (from parquet footers, or the language column alone), so the result does not
depend on the number of workers and a re-run resumes the same plan (other settings are refused).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from waon_hf.config import BuildConfig
from waon_hf.jobs.relaion import RelaionReadJob
from waon_hf.jobs.translate import TranslateJob
from waon_hf.pipeline.runner import run_sharded
from waon_hf.sources.commoncrawl import SourceFile
from waon_hf.sources.relaion import list_relaion_files, plan_relaion_shards
from waon_hf.stats import Stats
from waon_hf.steps.translation_filters import TranslationQuality
from waon_hf.translate import TranslationConfig, check_backend, read_prompt

logger = logging.getLogger(__name__)



def plan(inputs: str | Sequence[str], limit: int | None, language: str | None):
    plan = plan_relaion_shards(list_relaion_files(inputs), limit, language)
    if not plan:
        raise ValueError(f"nothing to read from {inputs!r} with --limit {limit}")
    logger.info("%d source file(s)%s", len(plan), f", first {limit:,} rows" if limit is not None else "")
    return [SourceFile(location, "") for location, _ in plan], tuple(take for _, take in plan)


def run_relaion_ja(
    inputs: str | Sequence[str], output: str | Path, *, language: str | None = "ja", limit: int | None = None,
    workers: int = 1, overwrite: bool = False, name: str = "relaion-ja", executor=None, note: str = "",
    redo: tuple[str, ...] = (),
) -> Stats:
    """ReLAION rows in ``language`` (all rows with ``None``) -> a Hub-ready dataset folder."""
    sources, takes = plan(inputs, limit, language)
    note = note or (f"ReLAION rows with language == {language!r} from {inputs}" if language
                    else f"ReLAION rows from {inputs}")
    job = RelaionReadJob(english=False, language=language, takes=takes, dataset_name=name, card_note=note)
    settings = {"mode": "ja", "language": language, "limit": limit, "takes": list(takes)}
    return run_sharded(sources, output, job, workers=workers, executor=executor, overwrite=overwrite,
                       settings=settings, redo=redo)


def run_translate(
    inputs: str | Sequence[str], output: str | Path, translation: TranslationConfig, *, limit: int | None = None,
    chunk_rows: int = 1024, quality: TranslationQuality | None = None, workers: int = 1, overwrite: bool = False,
    name: str = "relaion-en-ja", executor=None, note: str = "", redo: tuple[str, ...] = (),
) -> Stats:
    """ReLAION-en captions translated into Japanese -> a Hub-ready dataset folder."""
    check_backend(translation)
    sources, takes = plan(inputs, limit, None)
    quality = quality or TranslationQuality()
    note = note or (f"captions of {inputs} translated from English by {translation.model} "
                    f"({translation.backend} backend), cleaned and quality-filtered (non-Japanese outputs retried "
                    "once with a strict prompt)")
    job = TranslateJob(translation=translation, reader=RelaionReadJob(english=True, takes=takes),
                       quality=quality, chunk_rows=chunk_rows, dataset_name=name, card_note=note)
    t = translation
    settings = {"mode": "translate", "limit": limit, "takes": list(takes), "model": t.model, "backend": t.backend,
                "dtype": t.dtype, "max_new_tokens": t.max_new_tokens, "temperature": t.temperature,
                "instruction": t.instruction, "strict_instruction": t.strict_instruction,
                "generate_kwargs": t.generate_kwargs, "chunk_rows": chunk_rows,
                "chat_template_kwargs": t.chat_template_kwargs, "generation_config": t.generation_config,
                "quality": dataclasses.asdict(quality)}
    return run_sharded(sources, output, job, workers=workers, executor=executor, overwrite=overwrite,
                       settings=settings, redo=redo)




def run_relaion_pairs(inputs: Sequence[str], output: str | Path, section: dict[str, Any], *, name: str,
                      note: str = "", workers: int = 1, overwrite: bool = False, executor=None,
                      redo: tuple[str, ...] = ()) -> Stats:
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
    BuildConfig(relaion=dict(section)).check_relaion()  # the one validation of this section (keys, mode, ...)
    options = dict(section)
    mode = options.pop("mode", "ja")
    limit = options.pop("limit", None)
    if mode == "ja":
        return run_relaion_ja(inputs, output, language=options.get("language", "ja"), limit=limit, workers=workers,
                              overwrite=overwrite, name=name, executor=executor, note=note, redo=redo)
    chunk_rows = int(options.pop("chunk_rows", 1024))
    quality = TranslationQuality(**(options.pop("quality", None) or {}))
    if "prompt_file" in options:
        options["instruction"] = read_prompt("@" + options.pop("prompt_file"))
    if "strict_prompt_file" in options:
        options["strict_instruction"] = read_prompt("@" + options.pop("strict_prompt_file"))
    options.pop("language", None)
    return run_translate(inputs, output, TranslationConfig(**options), limit=limit, chunk_rows=chunk_rows,
                         quality=quality, workers=workers, overwrite=overwrite, name=name, executor=executor,
                         note=note, redo=redo)
