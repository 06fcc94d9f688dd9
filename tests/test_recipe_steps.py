"""Per-shard steps of the recipes: adult text (HojiChar), nouns, unknown tokens, character entropy, pixel std."""

import io

import numpy as np
import pytest
from PIL import Image

from waon_hf.steps.base import build_step
from waon_hf.steps.image_filters import ImageQuality, pixel_std
from waon_hf.steps.recipe_text import AdultTextJa, CharEntropy, ContainsNoun, UnknownTokens, char_entropy


def test_adult_text_uses_hojichar_keywords(tmp_path):
    words = tmp_path / "ng.txt"
    words.write_text("禁止語\n", encoding="utf-8")
    batch = {"caption": ["ほうじ茶の写真", "これは禁止語です", None]}
    assert AdultTextJa(dict_path=str(words)).drop_reasons(batch) == [None, "adult_text", "no_caption"]
    assert AdultTextJa().drop_reasons({"caption": ["ほうじ茶の写真", "アスパラガス"]}) == [None, "adult_text"]


def test_contains_noun():
    step = ContainsNoun()
    batch = {"caption": ["東京タワーの夜景", "とても美しい", "走った", None]}
    assert step.drop_reasons(batch) == [None, "no_noun", "no_noun", "no_caption"]


def test_char_entropy():
    assert char_entropy("ーーーー") == 0
    assert char_entropy("あい") == pytest.approx(1.0)
    step = CharEntropy(min_bits=2.0)
    assert step.drop_reasons({"caption": ["ーーーー", "★★★☆☆", "東京タワー"]}) == ["low_char_entropy"] * 2 + [None]


def test_unknown_tokens_under_a_word_level_tokenizer(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = {"[UNK]": 0, "東京": 1, "タワー": 2}
    core = Tokenizer(models.WordLevel(vocab=words, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]").save_pretrained(tmp_path / "tok")
    step = UnknownTokens(tokenizer=str(tmp_path / "tok"), max_unknown=2)
    batch = {"caption": ["東京 タワー", "東京 α β", "東京 α β γ", None]}
    assert step.drop_reasons(batch) == [None, None, "unknown_tokens", "no_caption"]
    with pytest.raises(RuntimeError, match="cannot load tokenizer"):
        UnknownTokens(tokenizer=str(tmp_path / "missing")).drop_reasons({"caption": ["x"]})


def _jpeg(img) -> dict:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


def test_pixel_std_check_drops_flat_images():
    rng = np.random.default_rng(0)
    noisy = Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8))
    almost_flat = Image.fromarray(np.full((200, 200, 3), 120, np.uint8))
    almost_flat.putpixel((5, 5), (130, 130, 130))
    assert pixel_std(almost_flat) < 2 < pixel_std(noisy)
    step = ImageQuality(min_colors=None, min_pixel_std=2.0)
    assert step.drop_reasons({"image": [_jpeg(noisy), _jpeg(almost_flat)]}) == [None, "flat_intensity"]
    assert ImageQuality(min_colors=None).drop_reasons({"image": [_jpeg(almost_flat)]}) == [None]  # off by default


def test_registered_by_name():
    for name in ("adult_text_ja", "contains_noun", "unknown_tokens", "char_entropy"):
        assert build_step(name).name == name
