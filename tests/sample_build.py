"""The demo's `waon build` of the shipped sample, with absolute paths, for tests that need a built dataset."""

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
SAMPLE_WARC = REPO / "samples" / "sample.warc.gz"


def write_sample_config(root: Path, siglip_model: str | Path) -> Path:
    """Write configs/sample.yaml with absolute sample paths and ``siglip_model``; returns its path."""
    config = yaml.safe_load((REPO / "configs" / "sample.yaml").read_text())
    config["download"]["warc_sources"] = [str(REPO / "samples" / "sample-images.warc.gz")]
    config["image_dedup"]["against"] = [str(REPO / "samples" / "tiny_bench")]
    config["siglip"]["model"] = str(siglip_model)
    path = Path(root) / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path
