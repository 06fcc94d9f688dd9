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
    p.add_argument("--batch-size", type=int_at_least(1), default=32, help="images per forward pass")
    p.add_argument("--templates", default="default", help=f"prompt template set: {', '.join(TEMPLATE_SETS)}, or a "
                   "UTF-8 file with one template per line containing {}")
    p.add_argument("--skip-missing", action="store_true", help="leave images that could not be read out of the "
                   "denominators (default: they count as wrong); recorded in the results")
    p.add_argument("--padding-side", choices=("left", "right"), help="override the text padding side of the model "
                   "family's recipe (SigLIP/SigLIP2: right, as trained)")
    p.add_argument("--revision", help="model revision (branch, tag or commit) on the Hub")


def _summary_table(results: dict) -> str:
    from waon_hf.eval.zeroshot import headline

    lines = ["| benchmark | metric | value (%) | evaluated / total | missing |", "|---|---|---|---|---|"]
    for name, res in results["benchmarks"].items():
        metric, value = headline(res)
        m = res["metrics"]
        shown = f"{100 * value:.2f}" if value is not None else "n/a"
        if "n_total" in m:
            counts, missing = f"{m['n_evaluated']} / {m['n_total']}", str(m["n_missing"])
        elif "n_texts" in m:
            counts, missing = f"{m['n_images']} images, {m['n_texts']} texts", str(m["n_missing_images"])
        else:
            counts, missing = "", ""
        lines.append(f"| {name} | {metric} | {shown} | {counts} | {missing} |")
    return "\n".join(lines)


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
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    benchmarks = load_benchmarks(parse_bench_list(args.bench))  # before the model: a bad source fails fast
    _quiet_transformers()
    encoder = DualEncoder.from_pretrained(args.model, device=args.device, dtype=args.dtype, revision=args.revision,
                                          padding_side=args.padding_side)
    logger.info("model %s (%s), %d template(s)", args.model, encoder.describe()["model_class"], len(templates))
    results = evaluate_model(encoder, benchmarks, templates=templates, template_set=args.templates,
                             batch_size=args.batch_size, skip_missing=args.skip_missing)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "w", encoding="utf-8") as f:
        f.write(json.dumps(results, ensure_ascii=False, indent=2) + "\n")
    print(_summary_table(results))
    print(f"\nresults written to {out}")
    return 0
