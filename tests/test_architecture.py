"""The layers and the private-name rule (pyproject's import-linter contracts) hold, and catch a violation."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")



def lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=120)


@pytest.fixture
def copy(tmp_path):
    for name in ("waon_hf", "tools"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_repository_keeps_its_contracts():
    result = lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_a_lower_layer_importing_a_command_breaks_the_layers(copy):
    stats = copy / "waon_hf" / "stats.py"
    stats.write_text(stats.read_text(encoding="utf-8") + "\nfrom waon_hf.cli import registry  # noqa\n")
    result = lint(copy)
    assert result.returncode != 0
    assert "waon_hf.stats" in result.stdout and "waon_hf.cli" in result.stdout


def test_importing_a_private_name_breaks_the_private_names_contract(copy):
    card = copy / "waon_hf" / "funnel.py"
    card.write_text(card.read_text(encoding="utf-8") + "\nfrom waon_hf.io import fsync_dir as _f, TMP_INFIX  # noqa\n"
                    "from waon_hf.pipeline.executors import _run_shard_task  # noqa\n")
    result = lint(copy)
    assert result.returncode != 0
    assert "waon_hf.funnel (line" in result.stdout and "_run_shard_task" in result.stdout
