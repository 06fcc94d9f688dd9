"""Test isolation: no network to any hub, and a private datasets cache for this session."""

import os
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("HF_DATASETS_CACHE", tempfile.mkdtemp(prefix="waon-test-datasets-"))


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """``tiny_model_dir(family) -> folder`` of the tiny model of ``family`` (``naflex``, ``fixres``,
    ``siglip``; see ``waon_hf.testing.tiny_models``), built once per session. Read-only: a test that
    changes a model builds its own."""
    from waon_hf.testing.tiny_models import build_tiny_model

    built: dict[str, str] = {}

    def get(family: str) -> str:
        if family not in built:
            built[family] = build_tiny_model(family, tmp_path_factory.mktemp(f"tiny-{family}"), seed=0)
        return built[family]

    return get
