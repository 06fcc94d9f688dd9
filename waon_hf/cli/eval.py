"""``waon eval``: zero-shot evaluation of a dual encoder on WAON-Bench, Recruit and XM3600."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from waon_hf.cli.options import int_at_least
from waon_hf.cli.registry import command
from waon_hf.config import ConfigError
from waon_hf.io import atomic_write

logger = logging.getLogger(__name__)


def add_image_source_arguments(p: argparse.ArgumentParser) -> None:
    """How the images of URL-only benchmarks are fetched (shared by eval and bench-snapshot)."""
    g = p.add_argument_group("benchmarks that publish only image URLs (WAON-Bench, Recruit)")
    g.add_argument("--cache-dir", help="image cache (default: waon_hf/benchmark-images/ under $HF_DATASETS_CACHE, "
                   "else $HF_HOME/datasets, else ~/.cache/huggingface/datasets)")
    g.add_argument("--offline", action="store_true", help="use cached images only; never send a request")
    g.add_argument("--manifest", help="re-use exactly the image set of an earlier run's manifest "
                   "(<results>.manifest.json); an image whose sha256 differs is an error")
    g.add_argument("--allow-private", action="store_true", help="let the downloader contact private and loopback "
                   "addresses (local test servers only; the SSRF guard refuses them by default)")
    g.add_argument("--user-agent", help="User-Agent of image requests (default: the download step's)")


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    from waon_hf.eval.benchmarks import BENCHMARKS
    from waon_hf.eval.suites import SUITES
    from waon_hf.eval.templates import TEMPLATE_SETS
    from waon_hf.models.dual_encoder import DTYPES

    names = ", ".join(f"{s.name} ({s.default_source})" for s in BENCHMARKS.values())
    p.add_argument("--model", required=True, help="Hub id or local folder of a model AutoModel loads, with "
                   "get_image_features/get_text_features (SigLIP, SigLIP2, CLIP)")
    p.add_argument("--bench", help=f"comma-separated benchmarks, each NAME or NAME=SOURCE (a Hub id, "
                   f"a dataset folder or a parquet/csv file in NAME's format). Known: {names}. With --suite: "
                   "NAME=SOURCE gives a member of the suite another source")
    p.add_argument("--suite", choices=sorted(SUITES), help="a named set of benchmarks: "
                   + "; ".join(f"{k}: {', '.join(v)}" for k, v in SUITES.items())
                   + ". -o is then a folder: one results JSON per benchmark, summary.md, model-index.yaml")
    p.add_argument("-o", "--output", required=True, help="results JSON file (a folder with --suite)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    p.add_argument("--dtype", default="float32", choices=DTYPES, help="model precision; bfloat16/float16 on CUDA "
                   "only (similarities are always computed in float32)")
    p.add_argument("--batch-size", type=int_at_least(1), default=32, help="images per forward pass")
    p.add_argument("--templates", default="default", help=f"prompt template set: {', '.join(TEMPLATE_SETS)}, or a "
                   "UTF-8 file with one template per line containing {}")
    p.add_argument("--skip-missing", action="store_true", help="leave images that could not be read out of the "
                   "denominators (default: they count as wrong); recorded in the results")
    p.add_argument("--padding-side", choices=("left", "right"), help="override the text padding side of the model "
                   "family's recipe (SigLIP/SigLIP2: right, as trained)")
    p.add_argument("--revision", help="model revision (branch, tag or commit) on the Hub")
    add_image_source_arguments(p)


def _summary_table(results: dict) -> str:
    from waon_hf.eval.zeroshot import headline

    lines = ["| benchmark | metric | value (%) | evaluated / total | missing |", "|---|---|---|---|---|"]
    for name, res in results["benchmarks"].items():
        metric, value = headline(res)
        m = res["metrics"]
        shown = f"{100 * value:.2f}" if value is not None else "n/a"
        if "images" in res:  # fetched from URLs: the benchmark's size is the denominator shown
            counts = res["evaluated"].removeprefix("evaluated ").replace(" of ", " / ")
            missing = str(len(res["images"]["unfetched"])) + " not fetched"
        elif "n_total" in m:
            counts, missing = f"{m['n_evaluated']} / {m['n_total']}", str(m["n_missing"])
        elif "n_texts" in m:
            counts, missing = f"{m['n_images']} images, {m['n_texts']} texts", str(m["n_missing_images"])
        else:
            counts, missing = "", ""
        lines.append(f"| {name} | {metric} | {shown} | {counts} | {missing} |")
    return "\n".join(lines)


def manifest_path(results_path: Path) -> Path:
    """``results.json`` -> ``results.manifest.json`` (the image set of that evaluation)."""
    return results_path.with_name(f"{results_path.stem}.manifest.json")


class FetchedImages(list):
    """The fetched images of every URL-only task (``by_task``: per task, one per row), with the
    download options they were fetched under."""

    options: dict
    by_task: dict


def _fetch_images(benchmarks: dict, args: argparse.Namespace) -> FetchedImages:
    """Fetch (or read from the cache) the images of every URL-only task, in place."""
    from waon_hf.eval.hydrate import BENCH_IMAGE_OPTIONS, ImageCache, hydrate_task, make_downloader, read_manifest

    tasks = [t for tasks in benchmarks.values() for t in tasks if t.images.url_only]
    out = FetchedImages()
    out.by_task = {}
    if not tasks:
        return out
    cache = ImageCache(args.cache_dir)
    manifest = read_manifest(args.manifest) if args.manifest else None
    overrides = {"user_agent": args.user_agent} if args.user_agent else {}
    downloader = None if args.offline else make_downloader(allow_private=args.allow_private, **overrides)
    for task in tasks:
        out.by_task[task.name] = hydrate_task(task, cache=cache, downloader=downloader, offline=args.offline,
                                              manifest=manifest)
        out += out.by_task[task.name]
    out.options = {**BENCH_IMAGE_OPTIONS, "cache_dir": str(cache.root), "offline": args.offline,
                   "from_manifest": args.manifest}
    return out


def _quiet_transformers() -> None:
    """No per-weight progress bar in CLI output (our logging says what is being loaded)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


@command("eval", add_eval_arguments)
def run_eval(args: argparse.Namespace) -> int:
    """Zero-shot evaluation of a model on WAON-Bench, Recruit, XM3600 and the llm-jp-clip suite."""
    from waon_hf.eval.benchmarks import parse_bench_list
    from waon_hf.eval.suites import suite_benchmarks
    from waon_hf.eval.templates import get_templates
    from waon_hf.eval.zeroshot import evaluate_model, load_benchmarks
    from waon_hf.models.dual_encoder import DualEncoder

    templates = get_templates(args.templates)
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.suite:
        chosen = suite_benchmarks(args.suite, parse_bench_list(args.bench) if args.bench else [])
    elif args.bench:
        chosen = parse_bench_list(args.bench)
    else:
        raise ConfigError("give --bench or --suite")
    benchmarks = load_benchmarks(chosen)  # before the model: a bad source fails fast
    out = Path(args.output)
    if args.suite and out.suffix == ".json":
        raise ConfigError(f"with --suite, -o is a folder (one results JSON per benchmark), got {out}")
    fetched = _fetch_images(benchmarks, args)
    _quiet_transformers()
    encoder = DualEncoder.from_pretrained(args.model, device=args.device, dtype=args.dtype, revision=args.revision,
                                          padding_side=args.padding_side)
    logger.info("model %s (%s), %d template(s)", args.model, encoder.describe()["model_class"], len(templates))
    results = evaluate_model(encoder, benchmarks, templates=templates, template_set=args.templates,
                             batch_size=args.batch_size, skip_missing=args.skip_missing)
    if args.suite:
        results["suite"] = args.suite
    manifest = None
    if fetched:
        from waon_hf.eval.hydrate import write_manifest

        results["image_download"] = fetched.options
        manifest = out / "images.manifest.json" if args.suite else manifest_path(out)
        manifest.parent.mkdir(parents=True, exist_ok=True)
        write_manifest(manifest, fetched, download_options=fetched.options)
        results["image_download"]["manifest"] = str(manifest)
    if args.suite:
        _write_suite(out, results, benchmarks, args.model)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        _write_json(out, results)
    print(_summary_table(results))
    if manifest is not None:
        print(f"image manifest written to {manifest}")
    print(f"\nresults written to {out}")
    return 0


def _write_json(path: Path, doc: dict) -> None:
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")


def _write_suite(out: Path, results: dict, benchmarks: dict, model: str) -> None:
    """``out/<benchmark>.json`` each, ``summary.md`` (the model card's results table) and ``model-index.yaml``."""
    import yaml
    from huggingface_hub.repocard_data import eval_results_to_model_index

    from waon_hf.eval.suites import split_results
    from waon_hf.publish.model_card import eval_results_from

    out.mkdir(parents=True, exist_ok=True)
    for name, doc in split_results(results, benchmarks).items():
        _write_json(out / f"{name.replace('/', '_')}.json", doc)
    entries, _ = eval_results_from(results)
    summary = f"## Results ({results['suite']})\n\n{_summary_table(results)}\n"
    with atomic_write(out / "summary.md", "w", encoding="utf-8") as f:
        f.write(summary)
    index = eval_results_to_model_index(model, entries) if entries else []
    with atomic_write(out / "model-index.yaml", "w", encoding="utf-8") as f:
        f.write(yaml.safe_dump({"model-index": index}, allow_unicode=True, sort_keys=False))


def add_snapshot_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bench", required=True, help="a URL-only benchmark, NAME or NAME=SOURCE (waon-bench, recruit)")
    p.add_argument("-o", "--output", required=True, help="folder to write the snapshot dataset to")
    p.add_argument("--publish", metavar="REPO", help="upload the snapshot to this Hub dataset repository")
    p.add_argument("--public", action="store_true", help="with --publish: a public repository (default private: "
                   "the images keep their owners' rights)")
    add_image_source_arguments(p)


@command("bench-snapshot", add_snapshot_arguments)
def run_bench_snapshot(args: argparse.Namespace, api=None) -> int:
    """Freeze a URL-only benchmark (its fetchable images embedded) into a Hub-ready dataset folder."""
    from waon_hf.eval.benchmarks import parse_bench_list
    from waon_hf.eval.hydrate import write_manifest
    from waon_hf.eval.snapshot import write_snapshot
    from waon_hf.eval.zeroshot import load_benchmarks

    chosen = parse_bench_list(args.bench)
    if len(chosen) != 1:
        raise ValueError("bench-snapshot takes one benchmark")
    benchmarks = load_benchmarks(chosen)
    (name, tasks), = benchmarks.items()
    if not all(t.images.url_only for t in tasks):
        raise ValueError(f"{name}: its rows already carry images (a snapshot is for URL-only benchmarks)")
    fetched = _fetch_images(benchmarks, args)
    out = Path(args.output)
    written = write_snapshot(out, name, tasks, fetched.by_task, source=tasks[0].source)
    write_manifest(out / "images.manifest.json", fetched, download_options=fetched.options)
    for task_name, n in written.items():
        print(f"{task_name}: {n:,} of {len(fetched.by_task[task_name]):,} rows with an image")
    print(f"snapshot written to {out}")
    if args.publish:
        from waon_hf.publish.upload import upload_folder_to_hub

        url, _ = upload_folder_to_hub(out, args.publish, "dataset", private=not args.public, api=api,
                                      commit_message=f"Snapshot of {name} with waon_hf")
        print(f"published to {url}")
    return 0
