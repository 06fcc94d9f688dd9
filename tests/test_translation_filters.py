import datasets
import pytest

from waon_hf.stats import Stats
from waon_hf.steps.base import apply_steps, apply_steps_to_batch, build_step
from waon_hf.steps.translation_filters import (
    DEFAULT_PROMPT,
    STRICT_PROMPT,
    CleanTranslation,
    TranslationQuality,
    build_prompt,
    classify_translation,
    clean_translation,
    needs_retry,
)

SRC = "A cat sitting on a windowsill"
GOOD = "窓辺に座っている猫"
RAMBLING = (
    "窓辺に座っている猫。この猫はとても可愛くて、毎日窓の外を眺めています。飼い主によると、"
    "この猫は鳥を見るのが大好きで、何時間でも座っていられるそうです。写真は春に撮影されました。"
)


@pytest.mark.parametrize(("raw", "clean"), [
    ("Here is the translation:\n\n窓辺に座っている猫", GOOD),
    ("窓辺に座っている猫。Please let me know if you have any questions.", GOOD + "。"),
    ("窓辺に座っている猫。 I hope this helps!", GOOD + "。"),
    ("窓辺に座っている猫。他に質問があればお知らせください。", GOOD + "。"),
    ("「窓辺に座っている猫」", GOOD),
    ('"窓辺に座っている猫"', GOOD),
    ("'窓辺に座っている猫'", GOOD),
    ("Translation: 窓辺に座っている猫", GOOD),
    ("翻訳：窓辺に座っている猫", GOOD),
    ("日本語訳: 窓辺に座っている猫", GOOD),
    ("以下が翻訳です。\n窓辺に座っている猫", GOOD),
    ("窓辺に座っている猫（注：windowsillは「窓辺」と訳しました）", GOOD),
    ("窓辺に座っている猫\n\nNote: I translated windowsill as 窓辺.", GOOD),
    ("**窓辺に座っている猫**", GOOD),
    ("- `窓辺に座っている猫`", GOOD),
    ("Sure! Here's the Japanese translation of the caption:\n\n「窓辺に座っている猫」\n\nI hope this helps!", GOOD),
    ("Please let me know if you have any questions.", ""),
])
def test_clean_translation_strips_chatter(raw, clean):
    assert clean_translation(raw) == clean


@pytest.mark.parametrize("text", [
    GOOD,
    "「A」と「B」の比較",  # quotes that do not wrap the whole output stay
    "東京タワーの夜景",
    "注意書きのある看板",  # 注 inside text is not a note
])
def test_clean_translation_keeps_good_outputs(text):
    assert clean_translation(text) == text


@pytest.mark.parametrize(("output", "reason"), [
    ("", "empty"),
    ("「」", "empty"),
    ("一只猫坐在窗台上", "chinese"),
    ("一只可爱的小猫正坐在窗台上看着外面的风景の写真", "chinese"),  # a stray の does not make it Japanese
    ("창가에 앉아 있는 고양이", "korean"),
    (SRC, "english_echo"),
    ("A cat sitting on a windowsill.", "english_echo"),
    (RAMBLING, "too_long"),
    ("窓の", "too_short"),
    (GOOD, None),
    ("窓辺でくつろぐ猫の写真", None),
])
def test_classify_translation(output, reason):
    assert classify_translation(SRC, output) == reason


def test_classify_kanji_heavy_japanese_passes():
    src = "Night view of Shinjuku from the observatory of the Tokyo Metropolitan Government Building No. 1"
    assert classify_translation(src, "東京都庁第一本庁舎展望室から見た新宿夜景") is None
    assert classify_translation("Commemorative ceremony venue for the enforcement of the Constitution of Japan",
                                "日本国憲法施行記念式典会場の様子") is None


def test_classify_options():
    assert classify_translation("Mount Fuji", "富士山") == "chinese"  # kanji only: Chinese by script
    assert classify_translation("Mount Fuji", "富士山", allow_kanji_only=True) is None  # CLD2 says ja
    assert classify_translation("A cat sitting on a windowsill", "一只猫坐在窗台上", allow_kanji_only=True) == "chinese"
    assert classify_translation("DJ", "ディスクジョッキー") is None  # short sources may grow
    assert classify_translation(SRC, RAMBLING, max_ratio=5.0) is None
    assert classify_translation("BTS 방탄소년단 poster", "BTS 방탄소년단のポスター") is None  # hangul from the source


def test_needs_retry():
    assert [r for r in ("empty", "chinese", "korean", "english_echo", "too_long", "too_short", None)
            if needs_retry(r)] == ["chinese", "korean", "english_echo"]


def test_prompts():
    assert DEFAULT_PROMPT.startswith("You are an excellent English-Japanese translator.")
    assert "Output only the translation" in DEFAULT_PROMPT
    for word in ("Chinese", "Korean", "explanations"):
        assert word in STRICT_PROMPT
    assert build_prompt(SRC, strict=True) == f"{STRICT_PROMPT}\n\n{SRC}"


def test_steps_on_dataset():
    rows = [
        (SRC, "Here is the translation: 「窓辺に座っている猫」"),
        (SRC, "窓辺に座っている猫。Please let me know if you have any questions."),
        (SRC, "一只猫坐在窗台上"),
        (SRC, "창가에 앉아 있는 고양이"),
        (SRC, SRC),
        (SRC, RAMBLING),
        ("Tokyo Tower at night", "夜の東京タワー"),
        ("A bowl of ramen", "Translation: **ラーメン一杯**\n\nI hope this helps!"),
    ]
    batch = {"caption_en": [r[0] for r in rows], "caption": [r[1] for r in rows], "url": [str(i) for i in range(8)]}
    steps = [CleanTranslation(), TranslationQuality()]
    s1, s2 = Stats(), Stats()
    ds = apply_steps(steps, datasets.Dataset.from_dict(batch), s2, batch_size=3)
    plain = apply_steps_to_batch(steps, dict(batch), s1)
    assert ds.to_dict() == plain
    assert s1 == s2
    assert plain["caption"] == [GOOD, GOOD + "。", "夜の東京タワー", "ラーメン一杯"]
    assert plain["url"] == ["0", "1", "6", "7"]
    assert s2.stage("translation_quality") == {
        "in": 8, "kept": 4, "dropped_chinese": 1, "dropped_korean": 1, "dropped_english_echo": 1,
        "dropped_too_long": 1,
    }
    assert s2.stage("clean_translation") == {"in": 8, "kept": 8}


def test_steps_by_name():
    step = build_step("translation_quality", source_column="en", max_ratio=2.0)
    assert isinstance(step, TranslationQuality) and step.input_columns() == ["caption", "en"]
    assert isinstance(build_step("clean_translation"), CleanTranslation)


def test_strip_reasoning_blocks():
    from waon_hf.steps.translation_filters import strip_reasoning

    assert strip_reasoning("<think>\nthe user wants Japanese\n</think>\n\n窓辺の猫") == ("窓辺の猫", "closed")
    assert strip_reasoning("thinking opened by the template\n</think>\n\n窓辺の猫") == ("窓辺の猫", "closed")
    assert strip_reasoning("<think>\nstill thinking when max_new_tokens ran out") == ("", "unterminated")
    assert strip_reasoning("窓辺の猫") == ("窓辺の猫", None)
    assert clean_translation("<think>\nok\n</think>\n\nHere is the translation: 「窓辺の猫」") == "窓辺の猫"
