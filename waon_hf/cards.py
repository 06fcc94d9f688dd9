"""Render the cards under ``model_cards/`` with huggingface_hub's card classes."""

from __future__ import annotations

from importlib import resources

import datasets
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCard, DatasetCardData


def template_path(name: str) -> str:
    return str(resources.files("waon_hf.model_cards").joinpath(name))


def size_category(n: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
    for bound, label in bounds:
        if n < bound:
            return label
    return "1B<n<10B"


def dataset_info_for(features: datasets.Features, num_rows: int, num_bytes: int) -> datasets.DatasetInfo:
    """The ``dataset_info`` block of a card: features, split sizes and byte counts.

    Besides documenting the schema, it keys ``load_dataset``'s cache: datasets 5 hashes the card's
    metadata, not the data files, for a local folder, so a folder rebuilt under the same name with
    no ``dataset_info`` would be served from the stale cache.
    """
    splits = datasets.SplitDict()
    splits.add(datasets.SplitInfo(name="train", num_bytes=num_bytes, num_examples=num_rows))
    return datasets.DatasetInfo(features=features, splits=splits, download_size=num_bytes, dataset_size=num_bytes)


def render_dataset_card(
    *, num_rows: int, pretty_name: str, info: datasets.DatasetInfo | None = None, source: str = "commoncrawl",
    **context,
) -> DatasetCard:
    """Render ``dataset_card.md.j2``; the YAML header makes ``load_dataset(<repo>)`` find ``data/``."""
    card_data = DatasetCardData(
        language=["ja"],
        license="other",
        pretty_name=pretty_name,
        size_categories=[size_category(num_rows)],
        task_categories=["image-to-text", "zero-shot-image-classification"],
        tags=["waon", "relaion" if source == "relaion" else "common-crawl", "image-text-pairs"],
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}],
    )
    if info is not None:
        DatasetInfosDict({"default": info}).to_dataset_card_data(card_data)
    card = DatasetCard.from_template(
        card_data, template_path=template_path("dataset_card.md.j2"),
        num_rows=num_rows, pretty_name=pretty_name, source=source, **context,
    )
    # Round-trip: the header must parse back into the same metadata.
    reparsed = DatasetCard(str(card))
    if reparsed.data.to_dict().get("configs") != card_data.to_dict()["configs"]:
        raise ValueError("rendered dataset card lost its configs header")
    return card
