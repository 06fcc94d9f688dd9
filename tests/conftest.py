"""Test isolation (no network to any hub, a private datasets cache for this session) and shared fixtures."""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("HF_DATASETS_CACHE", tempfile.mkdtemp(prefix="waon-test-datasets-"))


def _dataset_rows(folder: Path) -> list[dict]:
    """Rows of a dataset folder as the pipeline writes it: its data/train-*.parquet shards, in shard order."""
    import pyarrow.parquet as pq

    return [r for p in sorted((folder / "data").glob("train-*.parquet")) for r in pq.read_table(p).to_pylist()]


@pytest.fixture(scope="session")
def read_rows() -> Callable[[Path], list[dict]]:
    """``read_rows(folder)``: the rows of a written dataset folder, as dicts (usable from fixtures of any scope)."""
    return _dataset_rows
