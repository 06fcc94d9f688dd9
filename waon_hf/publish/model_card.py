"""Model and benchmark cards, rendered from ``model_cards/*.md.j2`` with huggingface_hub's card classes.

The model card's ``model-index`` holds exactly the numbers of ``waon eval`` results files (nothing
is filled in for an absent result).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path

from huggingface_hub import DatasetCard, DatasetCardData, EvalResult, ModelCard, ModelCardData

from waon_hf.cards import license_fields, size_category, template_path

logger = logging.getLogger(__name__)

CLASSIFICATION_METRICS = (("top1", "Top-1 accuracy"), ("top5", "Top-5 accuracy"))
RETRIEVAL_METRICS = ("mean_recall", "image_to_text_recall@1", "text_to_image_recall@1")
PRETTY_BENCHMARKS = {"waon-bench": "WAON-Bench", "xm3600": "XM3600 (ja)", "tiny": "waon_hf tiny benchmark",
                     "recruit": "Recruit", "imagenet-1k": "ImageNet-1k (ja)", "cifar10": "CIFAR-10 (ja)",
                     "cifar100": "CIFAR-100 (ja)", "food101": "Food-101 (ja)", "caltech101": "Caltech-101 (ja)"}
_SOURCE = re.compile(r"^(?P<src>.*?)(?: \(split (?P<split>[^)]+)\))?$")


# ---------------------------------------------------------------------------------------- results


def _dataset_of(name: str, res: dict) -> tuple[str, str, str | None, str | None]:
    """``(dataset_type, dataset_name, split, config)`` of one benchmark entry of a results JSON.

    A Hub source (``hf://datasets/owner/name``) gives its id as the type; a local folder or file
    gives the benchmark's registered name (``recruit`` for ``recruit/jafood101``, whose subset
    becomes the config), since we cannot tell which Hub dataset it copies.
    """
    m = _SOURCE.match(res.get("source") or "")
    src, split = (m.group("src"), m.group("split")) if m else ("", None)
    base, _, subset = name.partition("/")
    dataset_type = src[len("hf://datasets/"):] if src.startswith("hf://datasets/") else base
    pretty = PRETTY_BENCHMARKS.get(base, base)
    return dataset_type, f"{pretty} {subset}" if subset else pretty, split, subset or None


def _pct(value: float) -> float:
    return round(100.0 * float(value), 2)


def eval_results_from(results: dict) -> tuple[list[EvalResult], list[dict]]:
    """Model-index entries and table rows for the benchmarks of one ``waon eval`` results dict.

    Classification: top-1 and top-5 accuracy; retrieval: mean recall and recall@1 both ways; all
    in percent rounded to 2 decimals. Derived means over subsets (no source of their own) and
    metrics that are absent or ``None`` are left out.
    """
    entries, rows = [], []
    for name, res in results.get("benchmarks", {}).items():
        if "source" not in res:  # e.g. the unweighted mean over Recruit's subsets
            continue
        m = res.get("metrics", {})
        dataset_type, dataset_name, split, config = _dataset_of(name, res)
        if res.get("task") == "image-text retrieval":
            task_type, task_name = "image-text-retrieval", "Zero-shot image-text retrieval"
            metrics = [(key, "recall", key.replace("_", " ")) for key in RETRIEVAL_METRICS]
            counts = f"{m.get('n_images', '')} images, {m.get('n_texts', '')} texts"
        else:
            task_type, task_name = "zero-shot-image-classification", "Zero-shot image classification"
            metrics = [(key, "accuracy", label) for key, label in CLASSIFICATION_METRICS]
            counts = f"{m.get('n_evaluated', '')} / {m.get('n_total', '')}"
        if "n_benchmark_rows" in m:  # images fetched from URLs: out of the benchmark's full size
            counts = res.get("evaluated") or counts
        for key, metric_type, label in metrics:
            if m.get(key) is None:
                continue
            value = _pct(m[key])
            entries.append(EvalResult(
                task_type=task_type, task_name=task_name, dataset_type=dataset_type, dataset_name=dataset_name,
                dataset_split=split, dataset_config=config, metric_type=metric_type, metric_name=f"{label} (%)",
                metric_config=key, metric_value=value,
            ))
            rows.append({"benchmark": name, "metric": key, "value": value, "split": split, "counts": counts})
    return entries, rows


def _read_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------ cards


def render_model_card(
    model_dir: str | Path, results_paths: Iterable[str | Path] = (), repo_id: str = "<org>/<model>",
    base_model: str | None = None, *, datasets: list[str] | None = None, license: str = "other",
    pretty_name: str | None = None, license_name: str | None = None, license_link: str | None = None,
) -> ModelCard:
    """Render ``model_card.md.j2`` for the model in ``model_dir`` with the results of ``waon eval``."""
    model_dir = Path(model_dir)
    config_path = model_dir / "config.json"
    config = _read_json(config_path) if config_path.is_file() else {}
    # training_args.json (written by the fine-tuning script): the base model, its family, the data
    training_path = model_dir / "training_args.json"
    training = _read_json(training_path) if training_path.is_file() else {}
    if base_model is None and training.get("base_model") and not training.get("base_model_is_local"):
        base_model = training["base_model"]
    if not datasets and training.get("train_data") and not training.get("train_data_is_local"):
        datasets = [training["train_data"]]
    family = (training.get("base_model_family") or {}).get("family")
    entries, rows = [], []
    templates, template_set, n_parameters, max_length = [], "", None, None
    for path in results_paths:
        results = _read_json(path)
        e, r = eval_results_from(results)
        entries += e
        rows += r
        templates = templates or results.get("templates", {}).get("templates", [])
        template_set = template_set or results.get("templates", {}).get("set", "")
        n_parameters = n_parameters or results.get("model", {}).get("n_parameters")
        max_length = max_length or results.get("model", {}).get("text_preprocessing", {}).get("max_length")
    model_name = pretty_name or repo_id.split("/")[-1]
    card_data = ModelCardData(
        base_model=base_model, datasets=datasets or None, language=["ja"],
        **license_fields(license, license_name, license_link),
        library_name="transformers", pipeline_tag="zero-shot-image-classification",
        tags=["waon", "siglip2", "japanese", "vision-language"],
        model_name=model_name, eval_results=entries or None,
    )
    text_config = config.get("text_config", {})
    card = ModelCard.from_template(
        card_data, template_path=template_path("model_card.md.j2"),
        pretty_name=model_name, repo_id=repo_id, base_model=base_model, datasets=datasets or [],
        license=license, model_type=config.get("model_type", "dual encoder"), n_parameters=n_parameters,
        results=rows, templates=templates, template_set=template_set,
        max_length=max_length or text_config.get("max_position_embeddings", 64),
        family=family, local_base_model=training.get("base_model") if training.get("base_model_is_local") else None,
        local_train_data=training.get("train_data") if training.get("train_data_is_local") else None,
    )
    # Round-trip: the header must parse back with the same model-index.
    reparsed = ModelCard(str(card))
    if len(reparsed.data.eval_results or []) != len(entries):
        raise ValueError("rendered model card lost its model-index")
    return card


def _benchmark_rows(dataset_dir: Path):
    import pyarrow.parquet as pq

    files = sorted(p for p in dataset_dir.rglob("*.parquet") if not any(part.startswith(".") for part in p.parts))
    if not files:
        raise FileNotFoundError(f"{dataset_dir}: no parquet file")
    tables = [pq.read_table(p, columns=[c for c in ("class", "category") if c in pq.read_schema(p).names])
              for p in files]
    columns = pq.read_schema(files[0]).names
    return files, tables, columns


def render_benchmark_card(
    dataset_dir: str | Path, repo_id: str = "<org>/<benchmark>", *, pretty_name: str | None = None,
    bench_name: str = "waon-bench", license: str = "other", split: str = "test", description: str | None = None,
    license_name: str | None = None, license_link: str | None = None,
) -> DatasetCard:
    """Render ``benchmark_card.md.j2`` for a WAON-Bench-like folder of parquet files (``class``,
    ``category``, ``image``/``url``): classes, categories and how to evaluate with ``waon eval``."""
    dataset_dir = Path(dataset_dir)
    files, tables, columns = _benchmark_rows(dataset_dir)
    if "class" not in columns:
        raise ValueError(f"{dataset_dir}: a benchmark needs a `class` column, found {columns}")
    classes: dict[str, str | None] = {}
    per_category_rows: dict[str, int] = {}
    num_rows = 0
    for t in tables:
        num_rows += t.num_rows
        cats = t["category"].to_pylist() if "category" in t.column_names else [None] * t.num_rows
        for cls, cat in zip(t["class"].to_pylist(), cats, strict=True):
            classes.setdefault(cls, cat)
            if cat is not None:
                per_category_rows[cat] = per_category_rows.get(cat, 0) + 1
    categories = [{"name": c, "rows": n, "classes": sum(1 for v in classes.values() if v == c)}
                  for c, n in sorted(per_category_rows.items())]
    name = pretty_name or repo_id.split("/")[-1]
    data_files = [p.relative_to(dataset_dir).as_posix() for p in files]
    card_data = DatasetCardData(
        language=["ja"], **license_fields(license, license_name, license_link), pretty_name=name,
        size_categories=[size_category(num_rows)],
        task_categories=["zero-shot-image-classification"], tags=["waon", "benchmark", "japanese-culture"],
        configs=[{"config_name": "default", "data_files": [{"split": split, "path": data_files}]}],
    )
    card = DatasetCard.from_template(
        card_data, template_path=template_path("benchmark_card.md.j2"),
        pretty_name=name, repo_id=repo_id, bench_name=bench_name, license=license, split=split,
        description=description or "A zero-shot image classification benchmark of Japanese classes, in the "
                                   "format of WAON-Bench: one row per image with its Japanese class name and category.",
        num_rows=num_rows, num_classes=len(classes), categories=categories, columns=columns,
    )
    if DatasetCard(str(card)).data.to_dict().get("configs") != card_data.to_dict()["configs"]:
        raise ValueError("rendered benchmark card lost its configs header")
    return card
