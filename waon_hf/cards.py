"""What every card renderer shares: the templates under ``model_cards/`` and the Hub's size categories."""

from __future__ import annotations

from importlib import resources


def template_path(name: str) -> str:
    return str(resources.files("waon_hf.model_cards").joinpath(name))


def size_category(n: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
    for bound, label in bounds:
        if n < bound:
            return label
    return "1B<n<10B"
