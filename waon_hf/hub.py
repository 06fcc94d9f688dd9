"""Hub-ready dataset folders: the README card (and its funnel plot, ``funnel.svg``) next to ``data/``."""

from __future__ import annotations

import datetime
from pathlib import Path

import datasets
import pyarrow.parquet as pq

import waon_hf
from waon_hf.cards import dataset_info_for, render_dataset_card
from waon_hf.funnel import funnel_markdown, funnel_svg, read_errors
from waon_hf.schema import COLUMN_DOCS
from waon_hf.stats import Stats

# Files that belong to a run's bookkeeping, never to the published dataset.
HUB_IGNORE_PATTERNS = [".waon/**", ".waon-stages/**", "**/.*.tmp-*"]
FUNNEL_IMAGE = "funnel.svg"


def _column_rows(features: datasets.Features) -> list[dict]:
    rows = []
    for name, feature in features.items():
        kind = "image" if isinstance(feature, datasets.Image) else getattr(feature, "dtype", type(feature).__name__)
        rows.append({"name": name, "type": kind, "doc": COLUMN_DOCS.get(name, "")})
    return rows


def _stage_lines(pipeline: dict) -> list[str]:
    lines = []
    for stage in pipeline.get("stages", []):
        steps = ", ".join(_fmt_step(s) for s in stage.get("steps", [])) or "-"
        lines.append(f"**{stage['stage']}**: {steps}")
        for g in stage.get("global_steps", []):
            lines.append(f"**{stage['stage']}** (over all shards): {_fmt_step(g)}")
    return lines


def _fmt_step(step: dict) -> str:
    config = ", ".join(f"{k}={v!r}" for k, v in step.get("config", {}).items())
    return f"`{step['name']}`" + (f" ({config})" if config else "")


def _translation_model(stages: list[dict]) -> str | None:
    for stage in stages:
        for step in stage.get("steps", []) if stage.get("stage") == "translate" else []:
            if step.get("name") == "translate":
                return step.get("config", {}).get("model")
    return None


def write_dataset_card(root: Path, stats: Stats, *, pipeline: dict, num_sources: int,
                       repo_id: str | None = None) -> Path:
    data_files = sorted((root / "data").glob("train-*.parquet"))
    num_rows = sum(pq.ParquetFile(p).metadata.num_rows for p in data_files)
    num_bytes = sum(p.stat().st_size for p in data_files)
    features = datasets.Features.from_arrow_schema(pq.read_schema(data_files[0]))
    name = pipeline.get("name") or "waon"
    stages = pipeline.get("stages", [])
    first = stages[0].get("stage") if stages else "extract"
    source = "relaion" if first in ("relaion", "translate") else "commoncrawl"
    (root / FUNNEL_IMAGE).write_text(funnel_svg(stats), encoding="utf-8")
    card = render_dataset_card(
        source=source,
        funnel_image=FUNNEL_IMAGE,
        translation_model=_translation_model(stages),
        num_rows=num_rows,
        pretty_name=name,
        info=dataset_info_for(features, num_rows, num_bytes),
        repo_id=repo_id or f"<org>/{name}",
        num_files=len(data_files),
        num_sources=num_sources,
        read_errors=read_errors(stats),
        crawls=pipeline.get("crawls", []),
        funnel=funnel_markdown(stats),
        columns=_column_rows(features),
        has_images="image" in features,
        stages=_stage_lines(pipeline),
        built=datetime.date.today().isoformat(),
        version=waon_hf.__version__,
        note=pipeline.get("note", ""),
    )
    path = root / "README.md"
    card.save(path)
    return path
