"""Benchmark loaders: a small registry from a name to the tasks it evaluates.

``load_benchmark("waon-bench")`` reads the default source (a Hub dataset id); ``"NAME=SOURCE"``
reads another Hub id, a local dataset folder (``load_dataset(folder)``: data files or README
``configs:``) or a single ``.parquet`` / ``.csv`` / ``.json(l)`` file.

Expected columns:

* classification (``waon-bench``, ``recruit``, ``tiny``): the Japanese class name (``class``; the
  published Recruit CSVs call it ``category``), an optional ``category`` (WAON-Bench's 8 groups),
  and the image: ``image`` (a ``datasets.Image`` or a ``{"bytes", "path"}`` struct), or ``image_path`` (relative to the
  dataset folder), or only ``url``. Class indices are the sorted distinct class names.
* retrieval (``xm3600``): ``captions`` (a list; the first is used unless ``all_captions``) or
  ``caption``, and the image as above. The Hub default is the ``ja`` split of floschne/xm3600
  (ISO 639-1 ``ja``; ``jp`` is not a language code and selects nothing).

Images are never downloaded here: a table with a ``url`` and no image column (WAON-Bench and
Recruit as published) is *URL-only* (``ImageColumn.url_only``) and :mod:`waon_hf.eval.hydrate`
fetches its images into a cache (``waon eval`` does so before scoring). A row whose image is a
missing file or undecodable bytes is reported *missing* with its reason; the runner keeps it in
the denominator (counted wrong) unless told to skip missing rows.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from waon_hf.images import DECODE_ERRORS

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_BENCH_DIR = REPO_ROOT / "samples" / "tiny_bench"
DATA_FILE_BUILDERS = {".parquet": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "json"}
SPLIT_PREFERENCE = ("test", "validation", "train")
MISSING_EXAMPLES = 5  # rows listed per missing reason in the results
SNAPSHOT_STATUS = "image_status"  # a `waon bench-snapshot` table: the download status of each row


class ImageColumn:
    """The images of a table, loaded on demand: ``load(rows) -> [(PIL image | None, reason | None)]``.

    Undecoded bytes are read from the Arrow table and opened with PIL here, so a corrupt image is
    a missing row with a reason rather than an exception in the middle of a run.
    """

    def __init__(self, table, *, base_dir: Path | None, source: str):
        import datasets

        self.base_dir = base_dir
        self.source = source
        self.kind = "none"
        cols = set(table.column_names)
        if "image" in cols:
            self.kind = "image"
            if isinstance(table.features["image"], datasets.Image):
                table = table.cast_column("image", datasets.Image(decode=False))
            self.table = table.select_columns(["image"] + (["url"] if "url" in cols else []))
        elif "image_path" in cols:
            self.kind = "path"
            self.table = table.select_columns(["image_path"] + (["url"] if "url" in cols else []))
        elif "url" in cols:
            self.kind = "url"
            self.table = table.select_columns(["url"])
        else:
            self.table = table.select_columns([])
        self._len = len(table)

    def __len__(self) -> int:
        return self._len

    @property
    def url_only(self) -> bool:
        """Rows carry a ``url`` and no image: :mod:`waon_hf.eval.hydrate` can fetch them."""
        return self.kind == "url"

    def with_files(self, files: list[tuple[Path | None, str | None]]) -> ImageColumn:
        """A copy whose row ``i`` is read from ``files[i] = (path, None)`` or missing as ``(None, reason)``."""
        if len(files) != self._len:
            raise ValueError(f"{len(files)} files for {self._len} rows")
        out = copy.copy(self)
        out.kind, out.files = "file", list(files)
        return out

    def subset(self, rows: list[int]) -> ImageColumn:
        """The rows ``rows`` only, in that order."""
        out = copy.copy(self)
        out.table = self.table.select([int(i) for i in rows])
        out._len = len(rows)
        if self.kind == "file":
            out.files = [self.files[int(i)] for i in rows]
        return out

    def load(self, rows: list[int] | np.ndarray) -> list[tuple[object, str | None]]:
        if self.kind == "file":
            out = []
            for i in rows:
                path, why = self.files[int(i)]
                out.append(self._open(str(path)) if path is not None else (None, why))
            return out
        if self.kind in ("url", "none"):
            return [(None, "url_only" if self.kind == "url" else "no_image_column")] * len(rows)
        batch = self.table[[int(i) for i in rows]] if len(rows) else {}
        key = "image" if self.kind == "image" else "image_path"
        return [self._open(value) for value in batch.get(key, [])]

    def _open(self, value) -> tuple[object, str | None]:
        from PIL import Image

        data, path = None, None
        if isinstance(value, dict):
            data, path = value.get("bytes"), value.get("path")
        elif isinstance(value, str):
            path = value
        elif value is not None and hasattr(value, "convert"):  # already a PIL image
            return _rgb(value), None
        try:
            if data is not None:
                img = Image.open(io.BytesIO(data))
            elif path:
                p = Path(path)
                if not p.is_absolute() and self.base_dir is not None:
                    p = self.base_dir / p
                if not p.is_file():
                    return None, "file_not_found"
                img = Image.open(p)
            else:
                return None, "url_only" if "url" in self.table.column_names else "no_image"
            img.load()
            return _rgb(img), None
        except Image.DecompressionBombError:  # counted like any unreadable image (missing, --skip-missing)
            return None, "decompression_bomb"
        except DECODE_ERRORS:
            return None, "undecodable"

    def urls(self, rows) -> list[str | None]:
        if "url" not in self.table.column_names:
            return [None] * len(rows)
        return list(self.table[[int(i) for i in rows]]["url"])


def _rgb(img):
    return img if img.mode == "RGB" else img.convert("RGB")


@dataclass
class ClassificationTask:
    """Zero-shot classification: ``labels[i]`` indexes ``class_names``."""

    name: str
    source: str
    class_names: list[str]
    labels: np.ndarray
    images: ImageColumn
    categories: list[str] | None = None
    fetched: dict | None = None  # waon_hf.eval.hydrate.fetch_summary when the images came from URLs
    kind: str = field(default="classification", init=False)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, rows: list[int]) -> ClassificationTask:
        """The same task (every class still a candidate) on rows ``rows`` only."""
        return dataclasses.replace(self, labels=self.labels[rows], images=self.images.subset(rows),
                                   categories=[self.categories[i] for i in rows] if self.categories else None)


@dataclass
class RetrievalTask:
    """Image-text retrieval: caption ``t`` describes image ``text_to_image[t]``."""

    name: str
    source: str
    captions: list[str]
    text_to_image: np.ndarray
    images: ImageColumn
    fetched: dict | None = None  # waon_hf.eval.hydrate.fetch_summary when the images came from URLs
    kind: str = field(default="retrieval", init=False)

    @property
    def n_images(self) -> int:
        return len(self.images)

    def subset(self, rows: list[int]) -> RetrievalTask:
        """Images ``rows`` only, with their captions (the other images' captions leave the pool too)."""
        new_index = {int(r): i for i, r in enumerate(rows)}
        keep = [t for t, img in enumerate(self.text_to_image) if int(img) in new_index]
        return dataclasses.replace(self, captions=[self.captions[t] for t in keep],
                                   text_to_image=np.array([new_index[int(self.text_to_image[t])] for t in keep],
                                                          dtype=np.int64),
                                   images=self.images.subset(rows))


Task = ClassificationTask | RetrievalTask


@dataclass(frozen=True)
class BenchmarkSpec:
    name: str
    default_source: str | None
    loader: Callable[[str], list[Task]]
    description: str


BENCHMARKS: dict[str, BenchmarkSpec] = {}


def register(name: str, default_source: str | None, description: str):
    def wrap(loader: Callable[[str], list[Task]]):
        BENCHMARKS[name] = BenchmarkSpec(name, default_source, loader, description)
        return loader
    return wrap


def parse_bench_list(value: str) -> list[tuple[str, str | None]]:
    """``"waon-bench,xm3600=path/to/xm3600"`` -> ``[("waon-bench", None), ("xm3600", "path/to/xm3600")]``."""
    out = []
    for item in (s.strip() for s in value.split(",")):
        if not item:
            continue
        name, _, source = item.partition("=")
        name = name.strip().lower()
        if name not in BENCHMARKS:
            raise ValueError(f"unknown benchmark {name!r}; available: {', '.join(sorted(BENCHMARKS))} "
                             "(NAME=SOURCE reads NAME's format from a Hub id, folder or file)")
        out.append((name, source.strip() or None))
    if not out:
        raise ValueError("no benchmark given")
    return out


def load_benchmark(name: str, source: str | None = None) -> list[Task]:
    """The tasks of benchmark ``name``, read from ``source`` (default: the registered source)."""
    spec = BENCHMARKS[name]
    src = source or spec.default_source
    if src is None:
        raise ValueError(f"benchmark {name!r} has no default source: pass {name}=PATH_OR_HUB_ID")
    try:
        return spec.loader(src)
    except (FileNotFoundError, ConnectionError, OSError) as e:
        raise RuntimeError(f"could not load benchmark {name!r} from {src!r}: {e}") from e


def _pick_split(dsd, preferred: tuple[str, ...]) -> tuple[object, str]:
    splits = list(dsd.keys())
    for s in preferred:
        if s in dsd:
            return dsd[s], s
    if len(splits) == 1:
        return dsd[splits[0]], splits[0]
    raise ValueError(f"several splits {splits} and none of {list(preferred)}")


class EmptyBenchmarkError(ValueError):
    """A benchmark source with no rows: an error, not a score of 0 or of n/a over nothing."""


def _file_has_no_rows(path: Path, builder: str) -> bool:
    if builder == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows == 0
    if builder == "csv":
        with open(path, "rb") as f:
            return sum(1 for line in f if line.strip()) <= 1  # the header alone
    return path.stat().st_size == 0 or not path.read_bytes().strip(b" \t\r\n[]")


def check_not_empty(table, source: str) -> None:
    if len(table) == 0:
        raise EmptyBenchmarkError(f"{source}: the benchmark has no rows (nothing to evaluate)")


def load_table(source: str, *, prefer_splits: tuple[str, ...] = SPLIT_PREFERENCE, data_files=None,
               hub_split: str | None = None):
    """``(datasets.Dataset, base_dir or None, description)`` for a Hub id, folder or data file.

    A folder or Hub dataset with several splits gives the first of ``prefer_splits`` it has (or its
    only split); ``hub_split`` asks the Hub for that split alone (XM3600 has one per language).
    """
    import datasets

    path = Path(source)
    if path.is_file():
        builder = DATA_FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise ValueError(f"{source}: unsupported file type (use one of {sorted(DATA_FILE_BUILDERS)})")
        if _file_has_no_rows(path, builder):  # datasets fails on these with ArrowInvalid / "no data"
            raise EmptyBenchmarkError(f"{source}: the benchmark file has no rows (nothing to evaluate)")
        ds = datasets.load_dataset(builder, data_files=str(path), split="train")
        return ds, path.parent, str(path)
    if path.is_dir():
        dsd = datasets.load_dataset(str(path), data_files=data_files)
        ds, split = _pick_split(dsd, prefer_splits)
        return ds, path, f"{path} (split {split})"
    if source.startswith((".", "/", "~")) or source.count("/") != 1:
        raise FileNotFoundError(f"{source}: no such file or folder (and not a Hub id 'owner/name')")
    if hub_split is not None:
        return datasets.load_dataset(source, split=hub_split), None, f"hf://datasets/{source} (split {hub_split})"
    dsd = datasets.load_dataset(source, data_files=data_files)
    ds, split = _pick_split(dsd, prefer_splits)
    return ds, None, f"hf://datasets/{source} (split {split})"


def _first_column(table, candidates: tuple[str, ...], what: str) -> str:
    for c in candidates:
        if c in table.column_names:
            return c
    raise ValueError(f"no {what} column: expected one of {list(candidates)}, found {table.column_names}")


def classification_from_table(name: str, table, *, base_dir: Path | None, source: str,
                              label_columns: tuple[str, ...] = ("class", "label"),
                              category_column: str | None = "category") -> ClassificationTask:
    import datasets

    check_not_empty(table, source)
    label_col = _first_column(table, label_columns, "class name")
    feature = table.features[label_col]
    values = table[label_col]
    if isinstance(feature, datasets.ClassLabel):
        values = [feature.int2str(v) for v in values]
    names = [str(v).strip() for v in values]
    if any(not v for v in names):
        raise ValueError(f"{source}: empty class name in column {label_col!r}")
    class_names = sorted(set(names))
    index = {c: i for i, c in enumerate(class_names)}
    categories = ([str(c) for c in table[category_column]]
                  if category_column and category_column in table.column_names and category_column != label_col
                  else None)
    images = ImageColumn(table, base_dir=base_dir, source=source)
    fetched = snapshot_summary(table) if SNAPSHOT_STATUS in table.column_names else None
    if images.kind in ("url", "none"):
        logger.warning("%s: no local images (%s column only); every row will be reported missing until the "
                       "images are downloaded", name, images.kind)
    return ClassificationTask(name=name, source=source, class_names=class_names,
                              labels=np.array([index[v] for v in names], dtype=np.int64),
                              images=images, categories=categories, fetched=fetched)


def snapshot_summary(table) -> dict:
    """The ``fetched`` summary of a snapshot table (the same shape ``waon_hf.eval.hydrate`` gives)."""
    statuses = list(table[SNAPSHOT_STATUS])
    urls = list(table["url"]) if "url" in table.column_names else [None] * len(statuses)
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s] = counts.get(s, 0) + 1
    return {"source": "snapshot", "n_rows": len(statuses), "n_fetched": counts.get("ok", 0),
            "statuses": dict(sorted(counts.items())),
            "unfetched": [{"row": i, "url": u, "status": s, "error": "as recorded in the snapshot"}
                          for i, (u, s) in enumerate(zip(urls, statuses, strict=True)) if s != "ok"]}


@register("waon-bench", "llm-jp/WAON-Bench",
          "WAON-Bench: 374 Japanese cultural classes x 5 images, zero-shot top-1 (columns class, category, url"
          " [, image])")
def load_waon_bench(source: str) -> list[Task]:
    table, base, desc = load_table(source)
    return [classification_from_table("waon-bench", table, base_dir=base, source=desc)]


@register("tiny", str(TINY_BENCH_DIR),
          "the tiny synthetic benchmark shipped in samples/tiny_bench (8 classes x 3 images), for tests and demos")
def load_tiny(source: str) -> list[Task]:
    table, base, desc = load_table(source)
    return [classification_from_table("tiny", table, base_dir=base, source=desc)]


RECRUIT_SUBSETS = ("jafood101", "jaflower30", "jafacility20", "jalandmark10")
# The published CSVs name the class `category` (and carry `url`, no image): the dataset's own
# image_downloader.py reads item["category"] and item["url"]. `class`/`label` read local copies in our format.
RECRUIT_LABEL_COLUMNS = ("category", "class", "label")


@register("recruit", "recruit-jp/japanese-image-classification-evaluation-dataset",
          "Recruit's Japanese image classification: jafood101, jaflower30, jafacility20, jalandmark10 "
          "(one CSV per subset with columns category, url, as published; or parquet/folder per subset)")
def load_recruit(source: str) -> list[Task]:
    tasks = []
    root = Path(source)
    for subset in RECRUIT_SUBSETS:
        if root.is_dir():
            found = [p for p in (root / subset, *(root / f"{subset}{ext}" for ext in DATA_FILE_BUILDERS)) if p.exists()]
            if not found:
                raise FileNotFoundError(f"{root}: no {subset}.csv/.parquet/.json(l) or {subset}/ folder")
            table, base, desc = load_table(str(found[0]))
        else:
            table, base, desc = load_table(source, data_files={"test": f"{subset}.csv"})
        tasks.append(classification_from_table(f"recruit/{subset}", table, base_dir=base, source=desc,
                                               label_columns=RECRUIT_LABEL_COLUMNS, category_column=None))
    return tasks


def retrieval_from_table(name: str, table, *, base_dir: Path | None, source: str,
                         all_captions: bool = False) -> RetrievalTask:
    check_not_empty(table, source)
    col = _first_column(table, ("captions", "caption"), "caption")
    captions, t2i = [], []
    for i, value in enumerate(table[col]):
        caps = [value] if isinstance(value, str) else [c for c in (value or []) if c and c.strip()]
        if not caps:
            raise ValueError(f"{source}: row {i} has no caption")
        for c in caps if all_captions else caps[:1]:
            captions.append(c.strip())
            t2i.append(i)
    return RetrievalTask(name=name, source=source, captions=captions, text_to_image=np.array(t2i, dtype=np.int64),
                         images=ImageColumn(table, base_dir=base_dir, source=source))


@register("xm3600", "floschne/xm3600",
          "Crossmodal-3600 Japanese retrieval: 3,600 images, first Japanese caption each, recall@1/5/10 both ways "
          "(columns captions or caption, image)")
def load_xm3600(source: str) -> list[Task]:
    table, base, desc = load_table(source, prefer_splits=("ja", "test", "train"), hub_split="ja")
    return [retrieval_from_table("xm3600", table, base_dir=base, source=desc)]


# The labelled benchmarks (ImageNet-1k, CIFAR, Food-101, Caltech-101) register themselves on import.
import waon_hf.eval.labelled  # noqa: E402, F401
