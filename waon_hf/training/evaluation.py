"""Periodic zero-shot evaluation during training, through ``waon_hf.eval`` (same prompts and metrics as
``waon eval``, so the numbers logged, kept with the best checkpoint and put on the model card are the
ones ``waon eval`` gives for that checkpoint)."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def parse_eval_bench(spec: str) -> list[tuple[str, str | None]]:
    """``NAME``, ``NAME=SOURCE``, ``NAME:SOURCE`` (a known benchmark name) or a bare Hub id / folder,
    read as WAON-Bench format: ``tiny:samples/tiny_bench``, ``waon-bench``, ``org/WAON-Bench``."""
    from waon_hf.eval.benchmarks import BENCHMARKS, parse_bench_list

    spec = spec.strip()
    name, sep, source = spec.partition(":")
    if sep and name.strip().lower() in BENCHMARKS:
        spec = f"{name}={source}"
    first = spec.split(",")[0].partition("=")[0].strip().lower()
    if first not in BENCHMARKS:
        spec = f"waon-bench={spec}"
    return parse_bench_list(spec)


def headline_metric(results: dict) -> tuple[str, float]:
    """The selection metric: the first benchmark's headline (a mean over subsets when there is one)."""
    from waon_hf.eval.zeroshot import headline

    benches = results["benchmarks"]
    means = [k for k, v in benches.items() if v.get("task") == "mean over subsets"]
    key = means[0] if means else next(iter(benches))
    metric, value = headline(benches[key])
    if value is None:
        raise RuntimeError(f"evaluation of {key!r} gave no {metric}")
    return f"{key}/{metric}", float(value)


def flat_metrics(results: dict) -> dict[str, float]:
    """``{"eval/<benchmark>/<metric>": value}`` of every headline, for the trackers."""
    from waon_hf.eval.zeroshot import headline

    out = {}
    for name, res in results["benchmarks"].items():
        metric, value = headline(res)
        if value is not None:
            out[f"eval/{name}/{metric}"] = float(value)
    return out


def evaluate_zeroshot(model, processor, benchmarks: dict, *, name: str, device: str = "cpu",
                      templates: str = "default", batch_size: int = 32) -> dict:
    """Results document of ``waon_hf.eval.zeroshot.evaluate_model`` for an in-memory model.

    The model is put in eval mode and back in train mode after (the caller's towers keep their
    ``requires_grad``)."""
    from waon_hf.eval.templates import get_templates
    from waon_hf.eval.zeroshot import evaluate_model
    from waon_hf.models.dual_encoder import DualEncoder

    was_training = model.training
    try:
        encoder = DualEncoder(model, processor, name=name, device=device)
        return evaluate_model(encoder, benchmarks, templates=get_templates(templates), template_set=templates,
                              batch_size=batch_size)
    finally:
        model.train(was_training)
