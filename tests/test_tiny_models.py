"""The tiny models of each SigLIP family: the classes and files of the real checkpoints, deterministic, quiet."""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")

from waon_hf.testing.tiny_models import TINY_FAMILIES, build_tiny_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# What the real checkpoints load as (see the sources in waon_hf/testing/tiny_models.py)
EXPECTED = {
    "naflex": ("Siglip2Model", "siglip2", "Siglip2Processor", "Siglip2Tokenizer", "Siglip2ImageProcessor"),
    "fixres": ("SiglipModel", "siglip", "SiglipProcessor", "GemmaTokenizer", "SiglipImageProcessor"),
    "siglip": ("SiglipModel", "siglip", "SiglipProcessor", "SiglipTokenizer", "SiglipImageProcessor"),
}


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_tiny_model_has_the_real_checkpoints_classes_and_reloads_offline(family, tiny_model_dir, tmp_path):
    from transformers import AutoModel, AutoProcessor

    folder = Path(tiny_model_dir(family))
    model = AutoModel.from_pretrained(folder, local_files_only=True)
    processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
    got = (type(model).__name__, model.config.model_type, type(processor).__name__, type(processor.tokenizer).__name__,
           type(processor.image_processor).__name__)
    assert got == EXPECTED[family]
    tok = processor.tokenizer
    ids = tok("富士山の写真 xyz")["input_ids"]
    assert tok.unk_token_id not in ids  # byte fallback: nothing is unknown
    if family != "naflex":  # Google's FixRes and SigLIP tokenizers close the text with eos and add no bos
        assert ids[-1] == tok.eos_token_id
        assert processor.image_processor.size.height == processor.image_processor.size.width == 64
        assert model.config.vision_config.image_size == 64
        assert ids[0] != tok.convert_tokens_to_ids("<bos>")
    text_config = model.config.text_config
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        value = getattr(text_config, name)
        assert value is None or 0 <= value < text_config.vocab_size, name
    again = Path(build_tiny_model(family, tmp_path / "again", seed=0))
    for f in folder.iterdir():
        assert (again / f.name).read_bytes() == f.read_bytes(), f.name
    other = Path(build_tiny_model(family, tmp_path / "other", seed=1))
    assert (other / "model.safetensors").read_bytes() != (again / "model.safetensors").read_bytes()


def test_building_logs_no_token_id_warning(tmp_path):
    """transformers warns about its own default SiglipTextConfig ids (49406/49407) when saving; the
    builders drop exactly that message. A fresh interpreter: the warning is emitted once per process."""
    code = ("import sys; from waon_hf.testing.tiny_models import TINY_FAMILIES, build_tiny_model; "
            "[build_tiny_model(f, sys.argv[1] + '/' + f) for f in TINY_FAMILIES]")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "token_id must be" not in result.stderr


def test_unknown_family_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown tiny model family"):
        build_tiny_model("clip", tmp_path)
