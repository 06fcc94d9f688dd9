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


def build_sample(root: Path, out_name: str = "out", siglip_model: str | Path | None = None):
    """The tiny SigLIP2 (``siglip_model`` when given, else a new NaFlex one) and `waon build` of the sample
    under ``root``: ``(model dir, output dir, stats, config)``."""
    from waon_hf.build import BuildConfig, run_build
    from waon_hf.sources.commoncrawl import SourceFile
    from waon_hf.testing.tiny_models import build_tiny_siglip2

    model = str(siglip_model) if siglip_model else build_tiny_siglip2(Path(root) / "tiny-siglip2")
    config = write_sample_config(root, model)
    out = Path(root) / out_name
    stats = run_build([SourceFile(str(SAMPLE_WARC), "")], out, BuildConfig.from_file(str(config)))
    return model, out, stats, config
