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


class ScriptedTranslation:
    """A translation backend double (registered as ``backend="scripted"``): each prompt's caption is answered
    from ``script`` (``caption -> (first answer, answer to the strict retry or None)``), else by ``default``;
    every call is recorded in ``calls``; ``fail_on_call = n`` raises on the n-th call (a lost GPU)."""

    script: dict = {}
    default = None
    calls: list = []
    fail_on_call: int | None = None

    def __init__(self, config):
        self.config = config

    def generate(self, user_turns):
        from waon_hf.steps.translation_filters import STRICT_PROMPT

        cls = type(self)
        if cls.fail_on_call is not None and len(cls.calls) == cls.fail_on_call:
            raise RuntimeError("simulated crash (GPU lost)")
        cls.calls.append(list(user_turns))
        outputs = []
        for turn in user_turns:
            instruction, _, caption = turn.rpartition("\n\n")
            first, strict = cls.script.get(caption) or (cls.default(caption), None)
            outputs.append(strict if instruction == STRICT_PROMPT and strict is not None else first)
        return outputs


@pytest.fixture
def scripted_translation(monkeypatch):
    """``scripted_translation(script, default=None)`` registers a fresh :class:`ScriptedTranslation` as the
    ``scripted`` backend for this test and returns its class (its ``calls``, ``fail_on_call``)."""
    from waon_hf.translate import BACKENDS

    def install(script: dict, default=None) -> type[ScriptedTranslation]:
        cls = type("Scripted", (ScriptedTranslation,), {
            "script": dict(script), "calls": [], "fail_on_call": None,
            "default": staticmethod(default or (lambda caption: caption))})
        monkeypatch.setitem(BACKENDS, "scripted", cls)
        return cls
    return install
