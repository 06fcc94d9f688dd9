"""``evaluate`` metric modules shipped with waon_hf.

Each lives in a folder named like its script (``waon_bench/waon_bench.py``), which is what
``evaluate.load(<folder>)`` looks for, next to its metric card (``README.md``). From any folder,
installed or from a checkout: ``evaluate.load(metric_path("waon_bench"))``, the same as
``evaluate.load(str(importlib.resources.files("waon_hf.metrics") / "waon_bench"))``; the relative
``evaluate.load("waon_hf/metrics/waon_bench")`` works only from a checkout's root. Loading a local
path never touches the network (it works with ``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

from pathlib import Path

METRICS = ("waon_bench", "xm3600_retrieval")


def metric_path(name: str) -> str:
    """The folder to pass to ``evaluate.load`` for one of ``METRICS``."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; available: {', '.join(METRICS)}")
    return str(Path(__file__).resolve().parent / name)
