import pickle

import datasets
import pytest

from waon_hf.config import job_from_dict
from waon_hf.stats import Stats
from waon_hf.steps.base import apply_steps, apply_steps_to_batch, build_step
from waon_hf.steps.text_filters import (
    CaptionLength,
    DomainBlocklist,
    EmojiLimit,
    JapaneseCaption,
    NGWords,
    NormalizeCaption,
    NotFilenameLike,
    RepeatedChars,
    default_caption_steps,
    normalize_caption,
)


def reasons(step, captions, column="caption"):
    return step.drop_reasons({column: captions})


def test_normalize_caption():
    assert normalize_caption("ＩＭＧ＿１２３４．ＪＰＧ") == "IMG_1234.JPG"
    assert normalize_caption("ｶﾀｶﾅ\u3000と\n\t空白\u200b ") == "カタカナ と 空白"
    assert normalize_caption("①㈱") == "1(株)"


def test_caption_length_bounds():
    step = CaptionLength(min_chars=3, max_chars=5)
    assert reasons(step, ["ab", "abc", "abcde", "abcdef"]) == ["too_short", None, None, "too_long"]


def test_japanese_caption():
    captions = ["桜の写真", "カメラ", "東京都庁舎", "北京天安门", "서울 타워", "Tokyo tower"]
    assert reasons(JapaneseCaption(), captions) == [None, None, "kanji_only", "kanji_only", "not_japanese",
                                                    "not_japanese"]
    assert reasons(JapaneseCaption(allow_kanji_only=True), captions)[:5] == [None, None, None, None, "not_japanese"]


@pytest.mark.parametrize("caption, dropped", [
    ("IMG_1234.JPG", True), ("DSC01234", True), ("photo-2023_05.png", True),
    ("3f2a9c0d1e4b5a6978c0d1e2f3a4b5c6", True),
    ("2024-05-01", True), ("桜の写真.jpg", True), ("富士山と桜の写真", False), ("iPhone 15で撮影した夜景", False),
])
def test_filename_like(caption, dropped):
    assert (reasons(NotFilenameLike(), [caption])[0] == "filename_like") is dropped


def test_repeated_chars_and_emoji():
    assert reasons(RepeatedChars(max_run=3), ["すごーーい", "すごーーーーい"]) == [None, "repeated_chars"]
    assert reasons(EmojiLimit(max_emoji=1), ["花🌸", "花🌸🌸"]) == [None, "too_many_emoji"]


def test_ng_words_default_and_custom(tmp_path):
    assert reasons(NGWords(), ["無修正の動画", "猫の写真"]) == ["ng_word", None]
    words = tmp_path / "ng.txt"
    words.write_text("# comment\n猫\nＡＢＣ\n", encoding="utf-8")
    assert reasons(NGWords(path=str(words)), ["猫の写真", "abcの写真", "犬の写真"]) == ["ng_word", "ng_word", None]


def test_domain_blocklist(tmp_path):
    blocked = tmp_path / "domains.txt"
    blocked.write_text("ads.example.jp\ntracker.net\n", encoding="utf-8")
    step = DomainBlocklist(path=str(blocked))
    batch = {
        "url": ["https://ads.example.jp/a.jpg", "https://cdn.tracker.net/p.gif", "https://example.jp/ok.jpg",
                "https://example.jp/ok2.jpg", "http://[::1/bad"],
        "page_url": ["https://a.jp/", "https://a.jp/", "https://a.jp/", "https://sub.ads.example.jp/", "https://a.jp/"],
    }
    assert step.drop_reasons(batch) == ["blocked_domain", "blocked_domain", None, "blocked_domain", None]


def test_datasets_path_equals_batch_path():
    captions = ["ｎｅｋｏ＿ねこ＿００１.jpg", "桜の写真です", "すごーーーーーーーい写真", "無修正の画像です",
                "北京的照片很好", "夜景の写真です🌃🌃🌃", "桜の写真です", "ok"]
    batch = {"caption": captions, "url": [f"https://e.jp/{i}.jpg" for i in range(len(captions))],
             "page_url": ["https://e.jp/"] * len(captions)}
    s1, s2 = Stats(), Stats()
    plain = apply_steps_to_batch(default_caption_steps(), dict(batch), s1)
    ds = apply_steps(default_caption_steps(), datasets.Dataset.from_dict(batch), s2, batch_size=3)
    assert ds.to_dict() == plain
    assert s1 == s2
    assert plain["caption"] == ["桜の写真です", "桜の写真です"]
    assert s1["caption_length.dropped_too_short"] == 1
    assert s1["filename_like.dropped_filename_like"] == 1
    assert s1["repeated_chars.dropped_repeated_chars"] == 1
    assert s1["ng_words.dropped_ng_word"] == 1
    assert s1["japanese_caption.dropped_kanji_only"] == 1
    assert s1["emoji_limit.dropped_too_many_emoji"] == 1
    for stage in s1.stages():
        counts = s1.stage(stage)
        assert counts["in"] == counts["kept"] + sum(v for k, v in counts.items() if k.startswith("dropped_"))


def test_datasets_path_with_two_processes():
    captions = [f"写真その{i}です" if i % 3 else "x" for i in range(200)]
    stats = Stats()
    ds = CaptionLength().apply(datasets.Dataset.from_dict({"caption": captions}), stats, num_proc=2, batch_size=16)
    assert len(ds) == sum(1 for c in captions if len(c) >= 5)
    assert stats["caption_length.dropped_too_short"] == 200 - len(ds)


def test_steps_pickle_without_caches():
    step = NGWords()
    step.drop_reasons({"caption": ["猫"]})  # loads the word list
    assert "_cache_re" in step.__dict__
    clone = pickle.loads(pickle.dumps(step))
    assert "_cache_re" not in clone.__dict__
    assert clone.drop_reasons({"caption": ["無修正"]}) == ["ng_word"]


def test_build_step_and_config_errors():
    assert isinstance(build_step("normalize_caption"), NormalizeCaption)
    with pytest.raises(ValueError, match="unknown step"):
        build_step("nope")
    with pytest.raises(ValueError, match="no option"):
        build_step("caption_length", minimum=3)
    job = job_from_dict({"steps": ["normalize_caption", {"caption_length": {"min_chars": 2}}],
                         "dedup": {"columns": ["url"]}, "extract": {"langid": "fasttext"}})
    assert [s.name for s in job.steps] == ["normalize_caption", "caption_length"]
    assert job.steps[1].min_chars == 2 and job.dedup.columns == ("url",) and job.extract.langid == "fasttext"
    with pytest.raises(ValueError, match="unknown key"):
        job_from_dict({"stepz": []})


def test_stats_merge_keeps_order():
    a, b = Stats({"x.in": 2, "x.kept": 1}), Stats({"y.in": 1, "x.in": 3})
    merged = Stats.merged([a, b])
    assert merged == {"x.in": 5, "x.kept": 1, "y.in": 1} and merged.stages() == ["x", "y"]


@pytest.mark.parametrize("url", ["https://Ads.Example.JP:8080/a.jpg?x#y", "http://user:pw@cdn.tracker.net./p.gif",
                                 "https://e.jp", "nohost/a", "http://[::1]:80/a", "https://e.jp?q=1"])
def test_url_host_matches_urlsplit(url):
    from urllib.parse import urlsplit

    from waon_hf.steps.text_filters import url_host

    expected = urlsplit(url).hostname or ""
    expected = "" if ":" in expected else expected.rstrip(".")
    assert url_host(url) == expected


def test_map_step_declares_output_features():
    import dataclasses

    from waon_hf.steps.base import MapStep

    @dataclasses.dataclass
    class AddImage(MapStep):
        name = "add_image"
        column: str = "url"

        def output_features(self):
            return {"image": datasets.Image()}

        def process_batch(self, batch):
            import io

            from PIL import Image

            def png(i):
                buf = io.BytesIO()
                Image.new("RGB", (2 + i, 3), (i, 0, 0)).save(buf, format="PNG")
                return {"bytes": buf.getvalue(), "path": None}
            return {**batch, "image": [png(i) for i in range(len(batch["url"]))]}

    ds = AddImage().apply(datasets.Dataset.from_dict({"url": ["a", "b"]}), Stats())
    assert isinstance(ds.features["image"], datasets.Image)
    assert ds[1]["image"].size == (3, 3)
