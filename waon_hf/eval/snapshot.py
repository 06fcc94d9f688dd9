"""Freeze a URL-only benchmark into a Hub-ready dataset with its images embedded (``waon bench-snapshot``).

Links rot: a snapshot keeps the images that could be fetched today, so a private mirror evaluates
the same set for years. The folder holds, per task, a parquet file in the benchmark's own columns
(WAON-Bench: ``class``, ``url``, ``category``; Recruit: ``category``, ``url``) plus ``image``
(``datasets.Image``, the cached bytes), ``sha256`` and ``image_status`` (the download status);
``README.md`` with ``configs:`` (one per task)
and the counts of what could not be fetched; ``images.manifest.json`` (the exact image set). The
benchmark loaders read such a folder directly (``waon eval --bench waon-bench=DIR``).

Rows whose image could not be fetched stay, with no image and their status: the loader leaves them
out of the evaluation exactly as a fetch would (every class stays a candidate, the results say
"evaluated N of 1,870").
"""

from __future__ import annotations

import logging
from pathlib import Path

from waon_hf.eval.benchmarks import SNAPSHOT_STATUS, ClassificationTask, Task

logger = logging.getLogger(__name__)


def _rows(task: Task, fetched) -> dict[str, list]:
    label_col = "category" if task.name.startswith("recruit/") else "class"
    if not isinstance(task, ClassificationTask):
        raise ValueError(f"{task.name}: only classification benchmarks publish URL-only tables")
    rows = range(len(fetched))
    cols: dict[str, list] = {label_col: [task.class_names[task.labels[i]] for i in rows]}
    cols["url"] = [f.url for f in fetched]
    if task.categories is not None and label_col != "category":
        cols["category"] = [task.categories[i] for i in rows]
    cols["image"] = [{"bytes": f.path.read_bytes(), "path": None} if f.status == "ok" else None for f in fetched]
    cols["sha256"] = [f.sha256 for f in fetched]
    cols[SNAPSHOT_STATUS] = [f.status for f in fetched]
    return cols


def file_stem(task_name: str) -> str:
    """``recruit/jafood101`` -> ``jafood101`` (the loader's file name), ``waon-bench`` -> ``train``."""
    return task_name.split("/", 1)[1] if "/" in task_name else "train"


def write_snapshot(out: str | Path, bench: str, tasks: list[Task], fetched: dict[str, list], *,
                   source: str, manifest_name: str = "images.manifest.json") -> dict[str, int]:
    """Write the snapshot folder; returns ``{task name: rows written}``."""
    import datasets

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written, configs, lines = {}, [], []
    for task in tasks:
        cols = _rows(task, fetched[task.name])
        features = datasets.Features({k: datasets.Image() if k == "image" else datasets.Value("string")
                                      for k in cols})
        stem = file_stem(task.name)
        path = out / f"{stem}.parquet"
        datasets.Dataset.from_dict(cols, features=features).to_parquet(str(path))
        n, total = sum(s == "ok" for s in cols[SNAPSHOT_STATUS]), len(fetched[task.name])
        written[task.name] = n
        split = "train" if stem == "train" else "test"
        configs.append(f"  - config_name: {'default' if stem == 'train' else stem}\n    data_files:\n"
                       f"      - split: {split}\n        path: {stem}.parquet")
        statuses = task.fetched["statuses"] if task.fetched else {}
        lines.append(f"| {task.name} | {n:,} of {total:,} | "
                     + ", ".join(f"{k}: {v}" for k, v in statuses.items() if k != "ok") + " |")
    readme = ("---\nconfigs:\n" + "\n".join(configs) + "\n---\n\n"
              f"# {bench} snapshot\n\nThe images of `{source}` as fetched by `waon bench-snapshot` (the downloader's "
              "robots.txt, X-Robots-Tag and SSRF rules; images re-encoded as in the evaluation cache). "
              f"The exact set is `{manifest_name}` (url, sha256, status per row). Rows whose image could not be "
              "fetched are kept without an image (and left out of evaluations):\n\n"
              "| task | rows with an image | not fetched |\n|---|---|---|\n"
              + "\n".join(lines) + "\n\nThe images keep the rights of their owners; check the licence of the "
              "original benchmark before publishing a snapshot.\n")
    (out / "README.md").write_text(readme, encoding="utf-8")
    logger.info("snapshot of %s written to %s (%s)", bench, out, written)
    return written
