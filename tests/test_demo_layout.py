"""`make demo` writes its tiny model and evaluation beside the dataset, so publishing the dataset folder
publishes only the dataset."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_demo_writes_model_and_eval_outside_the_dataset_folder():
    printed = subprocess.run(["make", "-n", "-s", "demo", "DEMO_OUT=OUTDIR"], cwd=REPO, capture_output=True,
                             text=True, check=True, timeout=60).stdout
    model = re.search(r"build_tiny_model\('fixres', '([^']+)'\)", printed).group(1)
    outputs = re.findall(r"waon_hf\.cli (\w+) .*?-o (\S+)", printed)
    assert ("build", "OUTDIR") in outputs
    written = [model, *(path for cmd, path in outputs if cmd != "build")]
    assert written and not any(p == "OUTDIR" or p.startswith("OUTDIR/") for p in written), written
    assert re.search(rf"eval --model {re.escape(model)} ", printed)
    config = yaml.safe_load((REPO / "configs" / "sample.yaml").read_text())
    assert config["siglip"]["model"] == model  # the demo's build scores with the model the Makefile built
