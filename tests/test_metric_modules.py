"""The evaluate modules load from any folder through the package's path, as their cards say."""

from importlib.resources import files
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name, kwargs, key, expected", [
    ("waon_bench", {"predictions": [1, 1], "references": [1, 0]}, "top1", 0.5),
    ("xm3600_retrieval", {"predictions": [[0.9, 0.1], [0.2, 0.8]], "references": [0, 1]},
     "text_to_image_recall@1", 1.0),
])
def test_evaluate_load_from_another_folder(tmp_path, monkeypatch, name, kwargs, key, expected):
    import evaluate

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    metric = evaluate.load(str(files("waon_hf.metrics") / name), keep_in_memory=True)
    assert metric.compute(**kwargs)[key] == expected


@pytest.mark.parametrize("name", ["waon_bench", "xm3600_retrieval"])
def test_metric_cards_name_only_files_that_exist(name):
    folder = REPO / "waon_hf" / "metrics" / name
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "app.py" not in card and "app_file" not in card
    assert f'files("waon_hf.metrics") / "{name}"' in card
