"""``waon publish``: model and benchmark cards, and uploads of dataset/model folders to the Hub.

Cards are rendered from ``model_cards/*.md.j2`` with huggingface_hub's card classes; the model
card's ``model-index`` holds exactly the numbers of ``waon eval`` results files (nothing is filled
in for an absent result). Uploads go through ``HfApi.upload_folder`` (huggingface_hub 2.x removed
``upload_large_folder``; ``upload_folder`` now splits large folders into several commits and
resumes an interrupted upload when re-run). The token is resolved by huggingface_hub (``HF_TOKEN``
or the saved login) and never read, printed or logged here.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path

from huggingface_hub import DatasetCard, DatasetCardData, EvalResult, ModelCard, ModelCardData
from huggingface_hub.utils import filter_repo_objects
from huggingface_hub.utils._paths import DEFAULT_IGNORE_PATTERNS

logger = logging.getLogger(__name__)

CLASSIFICATION_METRICS = (("top1", "Top-1 accuracy"), ("top5", "Top-5 accuracy"))
RETRIEVAL_METRICS = ("mean_recall", "image_to_text_recall@1", "text_to_image_recall@1")
PRETTY_BENCHMARKS = {"waon-bench": "WAON-Bench", "xm3600": "XM3600 (ja)", "tiny": "waon_hf tiny benchmark"}
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
    pretty_name: str | None = None,
) -> ModelCard:
    """Render ``model_card.md.j2`` for the model in ``model_dir`` with the results of ``waon eval``."""
    from waon_hf.cards import template_path

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
        base_model=base_model, datasets=datasets or None, language=["ja"], license=license,
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
) -> DatasetCard:
    """Render ``benchmark_card.md.j2`` for a WAON-Bench-like folder of parquet files (``class``,
    ``category``, ``image``/``url``): classes, categories and how to evaluate with ``waon eval``."""
    from waon_hf.cards import size_category, template_path

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
        language=["ja"], license=license, pretty_name=name, size_categories=[size_category(num_rows)],
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


# ---------------------------------------------------------------------------------------- uploads


def ignore_patterns_for(kind: str) -> list[str]:
    """What never leaves the folder: run bookkeeping (``.waon/``...) and huggingface_hub's defaults."""
    from waon_hf.hub import HUB_IGNORE_PATTERNS

    return [*HUB_IGNORE_PATTERNS, *DEFAULT_IGNORE_PATTERNS]


def files_to_upload(folder: str | Path, ignore_patterns: list[str]) -> list[tuple[str, int]]:
    """``(path in repo, size in bytes)`` of the files ``upload_folder`` would send, same filter."""
    folder = Path(folder).expanduser().resolve()
    rel = {p.relative_to(folder).as_posix(): p for p in sorted(folder.glob("**/*")) if p.is_file()}
    kept = filter_repo_objects(rel.keys(), ignore_patterns=ignore_patterns)
    return [(r, rel[r].stat().st_size) for r in kept]


def upload_folder_to_hub(folder: str | Path, repo_id: str, repo_type: str, *, private: bool = False,
                         api=None, commit_message: str | None = None):
    """Create the repo (if needed) and upload ``folder`` with the bookkeeping files left out.

    ``api`` defaults to ``huggingface_hub.HfApi()``, which finds the token itself; pass a stand-in
    to test without network.
    """
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
    logger.info("uploading %s to %s (%s)", folder, repo_id, repo_type)
    return url, api.upload_folder(
        repo_id=repo_id, folder_path=str(folder), repo_type=repo_type,
        ignore_patterns=ignore_patterns_for(repo_type),  # a fresh list: upload_folder appends to it
        commit_message=commit_message or f"Upload {repo_type} with waon_hf",
    )


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def add_publish_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", choices=("dataset", "model", "benchmark"), help="what the folder holds")
    p.add_argument("folder", metavar="DIR", help="dataset folder (data/ + README.md), model folder (config.json...) "
                   "or benchmark folder (parquet with class/category; its card is rendered)")
    p.add_argument("--repo", required=True, help="Hub repo id, org/name")
    p.add_argument("--results", action="append", default=[], metavar="JSON",
                   help="model: `waon eval` results file for the card's model-index (repeatable; none: no numbers)")
    p.add_argument("--base-model", help="model: the Hub id it was fine-tuned from")
    p.add_argument("--dataset", action="append", default=[], dest="datasets", metavar="REPO_ID",
                   help="model: Hub id of a training dataset (repeatable)")
    p.add_argument("--license", default="other", help="model, benchmark: licence id for the card (default other)")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--dry-run", action="store_true", help="print the files that would be uploaded and the card; "
                   "write and upload nothing")


def run_publish(args: argparse.Namespace, api=None) -> int:
    """Publish a dataset or model folder to the Hub (repo creation, card, resumable upload)."""
    folder = Path(args.folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    if args.repo.count("/") != 1:
        raise ValueError(f"--repo must be org/name, got {args.repo!r}")
    readme = folder / "README.md"
    if args.kind == "model":
        card_text = str(render_model_card(folder, args.results, args.repo, args.base_model,
                                          datasets=args.datasets, license=args.license))
    elif args.kind == "benchmark":
        card_text = str(render_benchmark_card(folder, args.repo, license=args.license))
    else:
        if not readme.is_file():
            raise FileNotFoundError(f"{readme}: no dataset card (run `waon extract`/`waon build` to make one)")
        card_text = readme.read_text(encoding="utf-8")
        card_text = re.sub(r'load_dataset\("<org>/[^"]*"', f'load_dataset("{args.repo}"', card_text)
    patterns = ignore_patterns_for(args.kind)
    files = [(f, s) for f, s in files_to_upload(folder, patterns) if f != "README.md"]
    files = sorted([*files, ("README.md", len(card_text.encode("utf-8")))])  # the card as it will be written
    total = sum(s for _, s in files)
    if args.dry_run:
        print(f"dry run: would upload {len(files)} file(s), {_human(total)}, to {args.kind} repo {args.repo}"
              f"{' (private)' if args.private else ''}; ignored: {', '.join(patterns)}")
        for path, size in files:
            print(f"{size:>12,}  {path}")
        print("\n--- README.md ---")
        print(card_text)
        return 0
    readme.write_text(card_text, encoding="utf-8")
    repo_type = "model" if args.kind == "model" else "dataset"  # a benchmark is a dataset repo
    url, commit = upload_folder_to_hub(folder, args.repo, repo_type, private=args.private, api=api)
    print(f"uploaded {len(files)} file(s), {_human(total)}, to {url}")
    return 0
