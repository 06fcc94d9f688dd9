"""Named sets of benchmarks, and one results document per benchmark.

``llm-jp-clip``: the seven benchmarks llm-jp-clip reports (ImageNet-1k, Recruit, CIFAR-10,
CIFAR-100, Food-101, Caltech-101, XM3600 retrieval); ``waon``: WAON-Bench, Recruit and XM3600,
the Japanese-culture set of the WAON paper.
"""

from __future__ import annotations

SUITES: dict[str, tuple[str, ...]] = {
    "llm-jp-clip": ("imagenet-1k", "recruit", "cifar10", "cifar100", "food101", "caltech101", "xm3600"),
    "waon": ("waon-bench", "recruit", "xm3600"),
}


def suite_benchmarks(suite: str, overrides: list[tuple[str, str | None]] = ()) -> list[tuple[str, str | None]]:
    """``[(name, source or None)]`` of ``suite``; ``overrides`` give other sources to some of its members."""
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; available: {', '.join(SUITES)}")
    members = SUITES[suite]
    sources = dict.fromkeys(members)
    for name, source in overrides:
        if name not in sources:
            raise ValueError(f"{name!r} is not in suite {suite!r} ({', '.join(members)})")
        sources[name] = source
    return list(sources.items())


def split_results(results: dict, benchmarks: dict[str, list]) -> dict[str, dict]:
    """``{benchmark: results document}``: the shared header plus that benchmark's entries (its
    subsets and their mean, for Recruit)."""
    header = {k: v for k, v in results.items() if k != "benchmarks"}
    out = {}
    for name, tasks in benchmarks.items():
        keys = [t.name for t in tasks] + ([name] if name not in {t.name for t in tasks} else [])
        out[name] = {**header, "benchmarks": {k: results["benchmarks"][k] for k in keys if k in results["benchmarks"]}}
    return out
