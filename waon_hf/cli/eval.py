"""``waon eval``: zero-shot evaluation of a dual encoder on WAON-Bench, Recruit and XM3600."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from waon_hf.cli.registry import command
from waon_hf.io import atomic_write

logger = logging.getLogger(__name__)


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    from waon_hf.eval.benchmarks import BENCHMARKS
    from waon_hf.eval.templates import TEMPLATE_SETS
    from waon_hf.models.dual_encoder import DTYPES

    names = ", ".join(f"{s.name} ({s.default_source})" for s in BENCHMARKS.values())
    p.add_argument("--model", required=True, help="Hub id or local folder of a model AutoModel loads, with "
                   "get_image_features/get_text_features (SigLIP, SigLIP2, CLIP)")
    p.add_argument("--bench", required=True, help=f"comma-separated benchmarks, each NAME or NAME=SOURCE (a Hub id, "
                   f"a dataset folder or a parquet/csv file in NAME's format). Known: {names}")
    p.add_argument("-o", "--output", required=True, help="results JSON file")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    p.add_argument("--dtype", default="float32", choices=DTYPES, help="model precision; bfloat16/float16 on CUDA "
                   "only (similarities are always computed in float32)")
    p.add_argument("--batch-size", type=int, default=32, help="images per forward pass")
    p.add_argument("--templates", default="default", help=f"prompt template set: {', '.join(TEMPLATE_SETS)}, or a "
                   "UTF-8 file with one template per line containing {}")
    p.add_argument("--skip-missing", action="store_true", help="leave images that could not be read out of the "
                   "denominators (default: they count as wrong); recorded in the results")
    p.add_argument("--padding-side", choices=("left", "right"), help="override the text padding side of the model "
                   "family's recipe (SigLIP/SigLIP2: right, as trained)")
    p.add_argument("--revision", help="model revision (branch, tag or commit) on the Hub")
    g = p.add_argument_group("benchmarks that publish only image URLs (WAON-Bench, Recruit)")
    g.add_argument("--cache-dir", help="image cache (default: waon_hf/benchmark-images/ under $HF_DATASETS_CACHE, "
                   "else $HF_HOME/datasets, else ~/.cache/huggingface/datasets)")
    g.add_argument("--offline", action="store_true", help="use cached images only; never send a request")
    g.add_argument("--manifest", help="re-use exactly the image set of an earlier run's manifest "
                   "(<results>.manifest.json); an image whose sha256 differs is an error")
    g.add_argument("--allow-private", action="store_true", help="let the downloader contact private and loopback "
                   "addresses (local test servers only; the SSRF guard refuses them by default)")
    g.add_argument("--user-agent", help="User-Agent of image requests (default: the download step's)")


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
    """The fetched images of every URL-only task, with the download options they were fetched under."""

    options: dict


def _fetch_images(benchmarks: dict, args: argparse.Namespace) -> FetchedImages:
    """Fetch (or read from the cache) the images of every URL-only task, in place."""
    from waon_hf.eval.hydrate import BENCH_IMAGE_OPTIONS, ImageCache, hydrate_task, make_downloader, read_manifest

    tasks = [t for tasks in benchmarks.values() for t in tasks if t.images.url_only]
    out = FetchedImages()
    if not tasks:
        return out
    cache = ImageCache(args.cache_dir)
    manifest = read_manifest(args.manifest) if args.manifest else None
    overrides = {"user_agent": args.user_agent} if args.user_agent else {}
    downloader = None if args.offline else make_downloader(allow_private=args.allow_private, **overrides)
    for task in tasks:
        out += hydrate_task(task, cache=cache, downloader=downloader, offline=args.offline, manifest=manifest)
    out.options = {**BENCH_IMAGE_OPTIONS, "cache_dir": str(cache.root), "offline": args.offline,
                   "from_manifest": args.manifest}
    return out


def _quiet_transformers() -> None:
    """No per-weight progress bar in CLI output (our logging says what is being loaded)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


@command("eval", add_eval_arguments)
def run_eval(args: argparse.Namespace) -> int:
    """Zero-shot evaluation of a model on WAON-Bench, Recruit and XM3600; writes a results JSON."""
    from waon_hf.eval.benchmarks import parse_bench_list
    from waon_hf.eval.templates import get_templates
    from waon_hf.eval.zeroshot import evaluate_model, load_benchmarks
    from waon_hf.models.dual_encoder import DualEncoder

    templates = get_templates(args.templates)
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    benchmarks = load_benchmarks(parse_bench_list(args.bench))  # before the model: a bad source fails fast
    out = Path(args.output)
    fetched = _fetch_images(benchmarks, args)
    _quiet_transformers()
    encoder = DualEncoder.from_pretrained(args.model, device=args.device, dtype=args.dtype, revision=args.revision,
                                          padding_side=args.padding_side)
    logger.info("model %s (%s), %d template(s)", args.model, encoder.describe()["model_class"], len(templates))
    results = evaluate_model(encoder, benchmarks, templates=templates, template_set=args.templates,
                             batch_size=args.batch_size, skip_missing=args.skip_missing)
    if fetched:
        results["image_download"] = fetched.options
    out.parent.mkdir(parents=True, exist_ok=True)
    if fetched:
        from waon_hf.eval.hydrate import write_manifest

        manifest = manifest_path(out)
        write_manifest(manifest, fetched, download_options=results["image_download"])
        results["image_download"]["manifest"] = str(manifest)
    with atomic_write(out, "w", encoding="utf-8") as f:
        f.write(json.dumps(results, ensure_ascii=False, indent=2) + "\n")
    print(_summary_table(results))
    if fetched:
        print(f"image manifest written to {manifest}")
    print(f"\nresults written to {out}")
    return 0
