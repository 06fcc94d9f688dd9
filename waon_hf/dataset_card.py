"""The dataset card of a Hub-ready folder: ``README.md`` (YAML header for ``load_dataset``, the funnel, the
columns, how it was built) and its funnel plot ``funnel.svg``, next to ``data/``."""

from __future__ import annotations

import datetime
from pathlib import Path

import datasets
import pyarrow.parquet as pq
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCard, DatasetCardData

import waon_hf
from waon_hf.cards import license_fields, size_category, template_path
from waon_hf.funnel import funnel_markdown, funnel_svg, read_errors
from waon_hf.schema import COLUMN_DOCS
from waon_hf.stats import Stats

# Files that belong to a run's bookkeeping, never to the published dataset.
HUB_IGNORE_PATTERNS = [".waon/**", ".waon-stages/**", "**/.*.tmp-*"]
FUNNEL_IMAGE = "funnel.svg"


def dataset_info_for(features: datasets.Features, num_rows: int, num_bytes: int) -> datasets.DatasetInfo:
    """The ``dataset_info`` block of a card: features, split sizes and byte counts.

    Besides documenting the schema, it keys ``load_dataset``'s cache: datasets 5 hashes the card's
    metadata, not the data files, for a local folder, so a folder rebuilt under the same name with
    no ``dataset_info`` would be served from the stale cache.
    """
    splits = datasets.SplitDict()
    splits.add(datasets.SplitInfo(name="train", num_bytes=num_bytes, num_examples=num_rows))
    return datasets.DatasetInfo(features=features, splits=splits, download_size=num_bytes, dataset_size=num_bytes)


def render_dataset_card(
    *, num_rows: int, pretty_name: str, info: datasets.DatasetInfo | None = None, source: str = "commoncrawl",
    **context,
) -> DatasetCard:
    """Render ``dataset_card.md.j2``; the YAML header makes ``load_dataset(<repo>)`` find ``data/``."""
    # Captions and images belong to their owners; the crawl's own terms say how it may be used.
    terms = ({"license_name": "common-crawl-terms-of-use", "license_link": "https://commoncrawl.org/terms-of-use"}
             if source == "commoncrawl" else {})
    card_data = DatasetCardData(
        language=["ja"],
        **license_fields("other", terms.get("license_name"), terms.get("license_link"),
                         default_name="see-licence-section"),
        pretty_name=pretty_name,
        size_categories=[size_category(num_rows)],
        task_categories=["image-to-text", "zero-shot-image-classification"],
        tags=["waon", "relaion" if source == "relaion" else "common-crawl", "image-text-pairs"],
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}],
    )
    if info is not None:
        DatasetInfosDict({"default": info}).to_dataset_card_data(card_data)
    card = DatasetCard.from_template(
        card_data, template_path=template_path("dataset_card.md.j2"),
        num_rows=num_rows, pretty_name=pretty_name, source=source, **context,
    )
    # Round-trip: the header must parse back into the same metadata.
    reparsed = DatasetCard(str(card))
    if reparsed.data.to_dict().get("configs") != card_data.to_dict()["configs"]:
        raise ValueError("rendered dataset card lost its configs header")
    return card


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
