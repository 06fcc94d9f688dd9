"""`waon compare`: finished datasets (e.g. one per recipe) side by side.

Three tables, in Markdown:

* the funnels: one row per funnel step (the union over the datasets, in first-seen order), one
  column per dataset with the rows left after that step (``-`` where a dataset has no such step);
* the overlap of kept image URLs: each dataset's size, and for every pair the shared URLs and the
  Jaccard index;
* distributions: caption length in characters and each score column present (``similarity``,
  ``similarity_2``): count, mean and the 10/50/90 percentiles.

Only the needed columns are read from ``data/*.parquet`` (never the images); the URL sets are held
in memory, which bounds this to datasets of a few tens of millions of rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from waon_hf.funnel import funnel_rows
from waon_hf.stats import Stats

SCORE_COLUMNS = ("similarity", "similarity_2")


@dataclass
class DatasetSummary:
    """What the comparison needs from one finished dataset folder."""

    name: str
    funnel: list[tuple[str, int]]
    urls: set[str] = field(default_factory=set)
    caption_lengths: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scores: dict[str, np.ndarray] = field(default_factory=dict)


def dataset_name(folder: Path) -> str:
    """The recipe's or dataset's name from ``pipeline.json``, else the folder name."""
    path = folder / "pipeline.json"
    if path.exists():
        name = json.loads(path.read_text(encoding="utf-8")).get("name")
        if name:
            return str(name)
    return folder.name


def summarize(folder: str | Path) -> DatasetSummary:
    folder = Path(folder)
    files = sorted((folder / "data").glob("*.parquet"))
    if not (folder / "stats.json").exists() or not files:
        raise FileNotFoundError(f"{folder} is not a finished dataset folder (stats.json and data/*.parquet)")
    stats = Stats.load(folder / "stats.json")
    summary = DatasetSummary(dataset_name(folder), [(r.label, r.count) for r in funnel_rows(stats)])
    lengths, scores = [], {c: [] for c in SCORE_COLUMNS}
    for path in files:
        names = set(pq.read_schema(path).names)
        columns = [c for c in ("url", "caption", *SCORE_COLUMNS) if c in names]
        table = pq.read_table(path, columns=columns)
        if "url" in names:
            summary.urls.update(u for u in table.column("url").to_pylist() if u is not None)
        if "caption" in names:
            lengths.append(pc.fill_null(pc.utf8_length(table.column("caption")), 0).to_numpy())
        for c in SCORE_COLUMNS:
            if c in names:
                values = table.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
                scores[c].append(values[~np.isnan(values)])
    summary.caption_lengths = np.concatenate(lengths) if lengths else np.zeros(0)
    summary.scores = {c: np.concatenate(v) for c, v in scores.items() if v}
    return summary


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    align = ["---"] + ["---:"] * (len(header) - 1)
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |",
            *("| " + " | ".join(r) + " |" for r in rows)]


def funnel_table(summaries: list[DatasetSummary]) -> list[str]:
    labels: list[str] = []
    for s in summaries:  # a step only one dataset has goes right after that dataset's previous step
        at = 0
        for label, _ in s.funnel:
            if label in labels:
                at = labels.index(label) + 1
            else:
                labels.insert(at, label)
                at += 1
    counts = [dict(s.funnel) for s in summaries]
    rows = [[label, *(f"{c[label]:,}" if label in c else "-" for c in counts)] for label in labels]
    return _table(["step", *(s.name for s in summaries)], rows)


def overlap_table(summaries: list[DatasetSummary]) -> list[str]:
    rows = []
    for i, a in enumerate(summaries):
        for b in summaries[i + 1:]:
            shared = len(a.urls & b.urls)
            union = len(a.urls | b.urls)
            rows.append([f"{a.name} & {b.name}", f"{len(a.urls):,}", f"{len(b.urls):,}", f"{shared:,}",
                         f"{shared / union:.3f}" if union else "-"])
    return _table(["pair", "URLs A", "URLs B", "shared", "Jaccard"], rows)


def _describe(values: np.ndarray, fmt: str) -> list[str]:
    if not len(values):
        return ["0", "-", "-", "-", "-"]
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    return [f"{len(values):,}", format(values.mean(), fmt), format(p10, fmt), format(p50, fmt), format(p90, fmt)]


def distribution_table(summaries: list[DatasetSummary]) -> list[str]:
    rows = [[f"{s.name}: caption length", *_describe(s.caption_lengths, ".1f")] for s in summaries]
    for column in SCORE_COLUMNS:
        rows += [[f"{s.name}: {column}", *_describe(s.scores[column], ".4f")] for s in summaries if column in s.scores]
    return _table(["dataset: value", "rows", "mean", "p10", "p50", "p90"], rows)


def compare_markdown(folders: list[str | Path]) -> str:
    """The three comparison tables for the given dataset folders, as Markdown."""
    if len(folders) < 2:
        raise ValueError("compare needs at least two dataset folders")
    summaries = [summarize(f) for f in folders]
    seen: dict[str, int] = {}
    for s in summaries:  # two folders of the same recipe stay apart in the columns
        seen[s.name] = seen.get(s.name, 0) + 1
        if seen[s.name] > 1:
            s.name = f"{s.name} ({seen[s.name]})"
    parts = ["## Funnels (rows after each step)", "", *funnel_table(summaries), "",
             "## Overlap of kept image URLs", "", *overlap_table(summaries), "",
             "## Distributions", "", *distribution_table(summaries), ""]
    return "\n".join(parts)
