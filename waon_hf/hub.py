"""Hub-ready dataset folders: the README card next to ``data/``."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

import pyarrow.parquet as pq

import waon_hf
from waon_hf.cards import dataset_info_for, render_dataset_card
from waon_hf.funnel import funnel_markdown, read_errors
from waon_hf.schema import PAIR_COLUMNS, PAIR_FEATURES
from waon_hf.stats import Stats

# Files that belong to a run's bookkeeping, never to the published dataset.
HUB_IGNORE_PATTERNS = [".waon/**", "**/.*.tmp-*"]


def _step_summary(step) -> dict:
    config = {f.name: getattr(step, f.name) for f in dataclasses.fields(step)}
    return {"name": step.name, "config": ", ".join(f"{k}={v!r}" for k, v in config.items()) if config else ""}


def write_dataset_card(root: Path, stats: Stats, *, sources, job, repo_id: str | None = None) -> Path:
    data_files = sorted((root / "data").glob("train-*.parquet"))
    num_rows = sum(pq.ParquetFile(p).metadata.num_rows for p in data_files)
    num_bytes = sum(p.stat().st_size for p in data_files)
    crawls = sorted({s.crawl for s in sources if s.crawl})
    card = render_dataset_card(
        num_rows=num_rows,
        pretty_name=job.dataset_name,
        info=dataset_info_for(PAIR_FEATURES, num_rows, num_bytes),
        repo_id=repo_id or f"<org>/{job.dataset_name}",
        num_files=len(data_files),
        num_sources=len(sources),
        read_errors=read_errors(stats),
        crawls=crawls,
        funnel=funnel_markdown(stats),
        columns=PAIR_COLUMNS,
        langid=job.extract.langid,
        steps=[_step_summary(s) for s in job.steps],
        dedup_columns=list(job.dedup.columns),
        built=datetime.date.today().isoformat(),
        version=waon_hf.__version__,
        note=job.card_note,
    )
    path = root / "README.md"
    card.save(path)
    return path
