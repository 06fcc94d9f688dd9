"""Translation: the retry-once-then-drop rules on scripted outputs, batching order, mid-shard resume,
the vLLM error, and the transformers path on a tiny causal LM built locally."""

import json
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from waon_hf.jobs.translate import TranslateJob
from waon_hf.pipeline.runner import ShardsFailedError, run_sharded
from waon_hf.sources.commoncrawl import SourceFile
from waon_hf.steps.translation_filters import (
    DEFAULT_PROMPT,
    STRICT_PROMPT,
    classify_translation,
    clean_translation,
)
from waon_hf.translate import (
    TransformersBackend,
    TranslationConfig,
    VllmBackend,
    check_backend,
    length_sorted_batches,
    read_prompt,
    translate_captions,
)

# source -> (first output, strict-retry output). Real-looking defects of text2dataset's gemma-2 run.
SCRIPT = {
    "A cat sitting on a windowsill": ("窓辺に座っている猫", None),
    "A dog running on the beach": ("浜辺を走る犬。 Please let me know if you have any questions.", None),  # chatty
    "A red apple on a wooden table": ("木桌上的一个红苹果", "木のテーブルの上の赤いりんご"),  # Chinese, fixed
    "Tokyo tower at night": ("夜晚的东京塔", "夜の東京タワー"),  # Chinese, fixed
    "Cherry blossoms in Kyoto": ("교토의 벚꽃", "교토의 벚꽃 사진"),  # Korean twice: dropped
    "Sunset over Mount Fuji": ("Sunset over Mount Fuji", "Sunset over Mount Fuji."),  # echo twice: dropped
    "A bowl of ramen with eggs": ("卵入りのラーメンです。" * 12, None),  # rambling: not retried, dropped
    "Red torii gate and stone stairs": ("Here is the translation: 「赤い鳥居と石の階段」", None),  # chatty prefix
}
EXPECTED = {  # source -> (final caption or None when dropped, drop reason)
    "A cat sitting on a windowsill": ("窓辺に座っている猫", None),
    "A dog running on the beach": ("浜辺を走る犬。", None),
    "A red apple on a wooden table": ("木のテーブルの上の赤いりんご", None),
    "Tokyo tower at night": ("夜の東京タワー", None),
    "Cherry blossoms in Kyoto": (None, "korean"),
    "Sunset over Mount Fuji": (None, "english_echo"),
    "A bowl of ramen with eggs": (None, "too_long"),
    "Red torii gate and stone stairs": ("赤い鳥居と石の階段", None),
}


def numbered_photo(caption: str) -> str:
    """"Photo number 7" -> "7番の写真": a distinct good translation for every generated caption."""
    return "".join(ch for ch in caption if ch.isdigit()) + "番の写真"


@pytest.fixture
def scripted(scripted_translation):
    return scripted_translation(SCRIPT, default=numbered_photo)


def test_retry_once_with_strict_prompt_then_drop_with_reason(scripted):
    config = TranslationConfig(model="scripted-model", backend="scripted")
    sources = list(SCRIPT)
    result = translate_captions(sources, scripted(config), config=config)
    for src, caption, reason in zip(sources, result.captions, result.reasons, strict=True):
        want_caption, want_reason = EXPECTED[src]
        assert reason == want_reason, src
        if want_caption is not None:
            assert caption == want_caption, src
    # first call: every row with the default prompt; second: only Chinese/Korean/echo, strict prompt
    assert len(scripted.calls) == 2
    assert all(t.startswith(DEFAULT_PROMPT) for t in scripted.calls[0]) and len(scripted.calls[0]) == len(SCRIPT)
    retried = [t.rpartition("\n\n")[2] for t in scripted.calls[1]]
    assert retried == ["A red apple on a wooden table", "Tokyo tower at night", "Cherry blossoms in Kyoto",
                       "Sunset over Mount Fuji"]
    assert all(t.startswith(STRICT_PROMPT) for t in scripted.calls[1])
    assert result.retried == [s in retried for s in sources]
    assert result.first_reasons[sources.index("A red apple on a wooden table")] == "chinese"
    assert result.cleaned[sources.index("A dog running on the beach")]
    assert not result.cleaned[sources.index("A cat sitting on a windowsill")]


def test_custom_prompt_and_empty_sources_not_sent(scripted, tmp_path):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Translate into Japanese.\n")
    config = TranslationConfig(model="m", backend="scripted", instruction=read_prompt(f"@{prompt}"))
    result = translate_captions(["A cat sitting on a windowsill", "", None], scripted(config), config=config)
    assert scripted.calls == [["Translate into Japanese.\n\nA cat sitting on a windowsill"]]
    assert result.reasons == [None, "empty", "empty"]
    assert read_prompt("plain instruction") == "plain instruction"


def test_length_sorted_batches():
    lengths = [5, 1, 9, 1, 3, 7]
    batches = length_sorted_batches(lengths, 2)
    assert batches == [[1, 3], [4, 0], [5, 2]]
    assert sorted(i for b in batches for i in b) == list(range(6))


class _FakeModel:
    """Stands in for a causal LM: 'generates' the last two prompt tokens reversed, records batch widths."""

    def __init__(self, eos):
        import torch

        self.device = torch.device("cpu")
        self.widths = []
        self.generation_config = type("GC", (), {"eos_token_id": eos})()

    def generate(self, input_ids, attention_mask, generation_config, pad_token_id, **kwargs):
        import torch

        self.widths.append((input_ids.shape[0], input_ids.shape[1]))
        new = torch.stack([input_ids[:, -1], input_ids[:, -2]], dim=1)
        return torch.cat([input_ids, new], dim=1)


def test_transformers_backend_sorts_by_length_and_restores_order(tiny_lm):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    model = _FakeModel(tokenizer.eos_token_id)
    backend = TransformersBackend(TranslationConfig(model="fake", batch_size=2), tokenizer=tokenizer, model=model)
    turns = ["a b c d e f g h", "x", "a b c d", "y z", "one two three four five six seven eight nine ten", "q"]
    outputs = backend.generate(turns)
    encoded = backend.encode(turns)
    expected = [tokenizer.decode([ids[-1], ids[-2]], skip_special_tokens=True) for ids in encoded]
    assert outputs == expected  # each output at its prompt's index
    lengths = sorted(len(ids) for ids in encoded)
    assert model.widths == [(2, lengths[1]), (2, lengths[3]), (2, lengths[5])]  # sorted batches pad little
    assert backend.padded_positions == sum(lengths[i + 1] - lengths[i] for i in (0, 2, 4))


def test_vllm_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError, installed or not
    config = TranslationConfig(model="google/gemma-2-9b-it", backend="vllm")
    with pytest.raises(RuntimeError, match="vllm package, which is not installed"):
        check_backend(config)
    with pytest.raises(RuntimeError, match="pip install vllm"):
        VllmBackend(config).generate(["x"])


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown translation backend"):
        TranslationConfig(model="m", backend="nope")


# --- the shard job: resume mid-shard, exact counts -------------------------------------------------

def _shard_input(tmp_path, n=20):
    captions = [list(SCRIPT)[i % len(SCRIPT)] if i % 3 else f"Photo number {i}" for i in range(n)]
    path = tmp_path / "in" / "part-00000.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({"url": [f"https://img.example/{i}.jpg" for i in range(n)], "caption_en": captions,
                             "source": ["relaion"] * n}), path)
    return path, captions


def _job(chunk_rows=4):
    config = TranslationConfig(model="scripted-model", backend="scripted")
    return TranslateJob(translation=config, chunk_rows=chunk_rows)


def test_translate_job_counts_and_columns(scripted, tmp_path):
    path, captions = _shard_input(tmp_path)
    stats = run_sharded([SourceFile(str(path), "")], tmp_path / "out", _job())
    table = pq.read_table(tmp_path / "out" / "data")
    assert table.column_names == ["url", "caption", "caption_en", "source", "translation_model"]
    assert set(table.column("translation_model").to_pylist()) == {"scripted-model"}
    dropped = {k.removeprefix("translation_quality.dropped_"): v for k, v in stats.items()
               if k.startswith("translation_quality.dropped_")}
    want = {}
    for c in captions:
        reason = EXPECTED.get(c, (None, None))[1]
        if reason:
            want[reason] = want.get(reason, 0) + 1
    assert dropped == want
    assert stats["translation_quality.in"] == len(captions) == stats["translation_quality.kept"] + sum(dropped.values())
    assert stats["exact_dedup.in"] == stats["translation_quality.kept"]
    assert table.num_rows == stats["exact_dedup.kept"] == len(set(table.column("caption").to_pylist()))
    assert stats["translate.retried"] == sum(c in EXPECTED and SCRIPT[c][1] is not None for c in captions)
    chunks = [captions[i:i + 4] for i in range(0, len(captions), 4)]  # _job() has chunks of 4 rows
    assert stats["translate.reused_duplicate_source"] == sum(len(c) - len(set(c)) for c in chunks)
    card = (tmp_path / "out" / "README.md").read_text()
    assert "| after translation_quality |" in card and "korean" in card
    assert not (tmp_path / "out" / ".waon" / "shards" / "00000.translate").exists()  # chunks cleaned up


def test_resume_mid_shard_does_not_retranslate_finished_chunks(scripted, tmp_path):
    path, captions = _shard_input(tmp_path)
    reference = run_sharded([SourceFile(str(path), "")], tmp_path / "ref", _job())
    calls_uninterrupted = len(scripted.calls)
    ref_rows = pq.read_table(tmp_path / "ref" / "data").to_pylist()

    scripted.calls = []
    scripted.fail_on_call = 5  # chunks of 4 rows, two calls each for chunks with retries: crash inside chunk 3
    with pytest.raises(ShardsFailedError):
        run_sharded([SourceFile(str(path), "")], tmp_path / "out", _job())
    chunk_dir = tmp_path / "out" / ".waon" / "shards" / "00000.translate"
    finished = sorted(p.name for p in chunk_dir.glob("chunk-*.parquet"))
    assert finished and len(finished) < 5
    before_crash = [t for call in scripted.calls for t in call]

    scripted.calls = []
    scripted.fail_on_call = None
    stats = run_sharded([SourceFile(str(path), "")], tmp_path / "out", _job())
    # first attempts after the restart: exactly the rows of the unfinished chunks, in order
    done_rows = 4 * len(finished)
    first_attempts = [t.rpartition("\n\n")[2] for call in scripted.calls for t in call if t.startswith(DEFAULT_PROMPT)]
    assert first_attempts == captions[done_rows:]
    assert len(scripted.calls) < calls_uninterrupted
    assert len([t for t in before_crash if t.startswith(DEFAULT_PROMPT)]) >= done_rows
    assert pq.read_table(tmp_path / "out" / "data").to_pylist() == ref_rows
    assert {k: v for k, v in stats.items() if not k.startswith("shard.")} == \
        {k: v for k, v in reference.items() if not k.startswith("shard.")}


def test_changed_input_retranslates_a_chunk_of_the_wrong_size(scripted, tmp_path):
    path, _ = _shard_input(tmp_path, n=6)
    job = _job(chunk_rows=4)
    chunk_dir = tmp_path / "out" / ".waon" / "shards" / "00000.translate"
    chunk_dir.mkdir(parents=True)
    pq.write_table(pa.table({"caption": ["x"]}), chunk_dir / "chunk-00000.parquet")  # 1 row, 4 expected
    run_sharded([SourceFile(str(path), "")], tmp_path / "out", job)
    assert sum(len(c) for c in scripted.calls[:1]) >= 4  # chunk 0 was translated again


# --- the transformers backend on a tiny causal LM ---------------------------------------------------

@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    from waon_hf.testing.tiny_models import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"), seed=1)


def test_tiny_causal_lm_chat_template(tiny_lm):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True,
                                         tokenize=False)
    assert text == "<bos><start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n"
    with pytest.raises(Exception, match="System role not supported"):
        tokenizer.apply_chat_template([{"role": "system", "content": "x"}], tokenize=False)
    ids = tokenizer("窓辺に座っている猫 and a cat", add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == "窓辺に座っている猫 and a cat"  # byte fallback round-trips


def test_transformers_backend_on_tiny_model(tiny_lm, tmp_path):
    config = TranslationConfig(model=tiny_lm, batch_size=3, max_new_tokens=6)
    backend = TransformersBackend(config)
    sources = ["A cat sitting on a windowsill", "A dog", "Sunset over Mount Fuji with clouds and a lake", "Ramen"]
    first = backend.generate([f"{DEFAULT_PROMPT}\n\n{s}" for s in sources])
    assert len(first) == 4 and all(isinstance(o, str) for o in first)
    assert 0 < backend.generated_tokens <= 4 * 6
    assert backend.tokenizer.padding_side == "left"
    # greedy: the same prompts give the same outputs, whatever the batch they fall in
    again = TransformersBackend(TranslationConfig(model=tiny_lm, batch_size=4, max_new_tokens=6))
    assert again.generate([f"{DEFAULT_PROMPT}\n\n{s}" for s in sources]) == first

    # translate_captions records the model's (cleaned) outputs: the first attempt's, or the strict retry's
    result = translate_captions(sources, backend, config=config)
    assert any(result.captions)  # random weights, but real text comes out (untied head, byte-fallback BPE)
    strict = again.generate([f"{STRICT_PROMPT}\n\n{s}" for s in sources])
    for i in range(len(sources)):
        assert result.captions[i] == clean_translation(strict[i] if result.retried[i] else first[i])
        assert result.reasons[i] == classify_translation(sources[i], result.captions[i])

    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"url": [f"https://x/{i}" for i in range(4)], "caption_en": sources}), path)
    stats = run_sharded([SourceFile(str(path), "")], tmp_path / "out",
                        TranslateJob(translation=config, chunk_rows=2))
    assert stats["translation_quality.in"] == 4
    assert stats["translation_quality.kept"] + sum(v for k, v in stats.items()
                                                   if k.startswith("translation_quality.dropped_")) == 4
    table = pq.read_table(tmp_path / "out" / "data")
    assert table.column("caption").to_pylist() == [c for c, r in zip(result.captions, result.reasons, strict=True)
                                                   if r is None]
    assert set(table.column("translation_model").to_pylist()) <= {tiny_lm}
    pipeline = json.loads((tmp_path / "out" / "pipeline.json").read_text())
    assert pipeline["stages"][0]["steps"][0]["config"]["model"] == tiny_lm


def test_missing_model_is_a_clear_error(tmp_path):
    backend = TransformersBackend(TranslationConfig(model=str(tmp_path / "no-such-model")))
    with pytest.raises(RuntimeError, match="cannot load translation model"):
        backend.generate(["x"])


def test_shard_of_empty_sources_calls_no_model(scripted, tmp_path):
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"url": ["https://x/1", "https://x/2"], "caption_en": ["", None]}), path)
    stats = run_sharded([SourceFile(str(path), "")], tmp_path / "out", _job())
    assert scripted.calls == []
    assert stats["translation_quality.dropped_empty"] == 2 and stats["translation_quality.kept"] == 0
    assert pq.read_table(tmp_path / "out" / "data").column_names == ["url", "caption", "caption_en",
                                                                      "translation_model"]


def test_vllm_backend_calls_llm_chat(monkeypatch):
    """Against a stand-in module with vLLM's documented names (vLLM itself needs a GPU: not run here)."""
    import types

    seen = {}

    class SamplingParams:
        def __init__(self, **kwargs):
            seen["params"] = kwargs

    class LLM:
        def __init__(self, model, **kwargs):
            seen["llm"] = {"model": model, **kwargs}

        def get_tokenizer(self):
            return types.SimpleNamespace(chat_template="{% if enable_thinking is defined %}{% endif %}")

        def chat(self, conversations, sampling_params=None, use_tqdm=True, chat_template_kwargs=None):
            seen["conversations"] = conversations
            seen["template_kwargs"] = chat_template_kwargs
            out = types.SimpleNamespace
            return [out(outputs=[out(text=f"訳{i}")]) for i in range(len(conversations))]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams))
    config = TranslationConfig(model="google/gemma-2-9b-it", backend="vllm", dtype="bfloat16", max_new_tokens=64,
                               engine_kwargs={"tensor_parallel_size": 2})
    check_backend(config)
    outputs = VllmBackend(config).generate(["a", "b"])
    assert outputs == ["訳0", "訳1"]
    assert seen["llm"] == {"model": "google/gemma-2-9b-it", "dtype": "bfloat16", "tensor_parallel_size": 2}
    # the same explicit settings as the transformers backend: greedy, no cut-offs, no penalties
    assert seen["params"] == {"temperature": 0.0, "top_p": 1.0, "top_k": -1, "min_p": 0.0, "repetition_penalty": 1.0,
                              "presence_penalty": 0.0, "frequency_penalty": 0.0, "max_tokens": 64}
    assert seen["template_kwargs"] == {"enable_thinking": False}  # the template reads enable_thinking
    assert seen["conversations"] == [[{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]]


@pytest.mark.parametrize(("installed", "cuda", "expected"), [
    (False, True, "transformers"), (True, False, "transformers"), (True, True, "vllm")])
def test_auto_backend_picks_vllm_only_when_installed_with_cuda(monkeypatch, caplog, installed, cuda, expected):
    import importlib.util

    import torch

    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args):
        return (object() if installed else None) if name == "vllm" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    with caplog.at_level("INFO", logger="waon_hf.translate"):
        config = TranslationConfig(model="m")  # backend defaults to auto
    assert config.backend == expected
    assert f"translation backend: {expected}" in caplog.text


def test_a_repeated_source_is_sent_once_and_shares_its_translation(scripted):
    config = TranslationConfig(model="scripted-model", backend="scripted")
    cat, blossoms = "A cat sitting on a windowsill", "Cherry blossoms in Kyoto"
    sources = [cat, "Photo number 1", cat, blossoms, blossoms, "", cat]
    result = translate_captions(sources, scripted(config), config=config)
    first_prompts = [t.rpartition("\n\n")[2] for t in scripted.calls[0]]
    assert first_prompts == [cat, "Photo number 1", blossoms]  # distinct, first-seen order; "" never sent
    assert [t.rpartition("\n\n")[2] for t in scripted.calls[1]] == [blossoms]  # the retry too
    assert result.reused == [False, False, True, False, True, False, True]
    assert result.captions[0] == result.captions[2] == result.captions[6] == "窓辺に座っている猫"
    assert result.reasons[3] == result.reasons[4] == "korean" and result.retried[3] and result.retried[4]
    alone = translate_captions([blossoms], scripted(config), config=config)
    assert (alone.captions[0], alone.reasons[0]) == (result.captions[4], result.reasons[4])


def test_vllm_generation_config_model_takes_vllms_reading_of_the_checkpoint(monkeypatch):
    import types

    seen = {}
    defaults = types.SimpleNamespace(temperature=0.7, top_p=0.8, top_k=20, repetition_penalty=1.05, max_tokens=16)

    class LLM:
        def __init__(self, model, **kwargs):
            pass

        def get_default_sampling_params(self):
            return defaults

        def get_tokenizer(self):
            return types.SimpleNamespace(chat_template="{{ messages }}")

        def chat(self, conversations, sampling_params=None, use_tqdm=True, chat_template_kwargs=None):
            seen["params"], seen["template_kwargs"] = sampling_params, chat_template_kwargs
            out = types.SimpleNamespace
            return [out(outputs=[out(text="訳")]) for _ in conversations]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=None))
    config = TranslationConfig(model="Qwen/Qwen2.5-7B-Instruct", backend="vllm", max_new_tokens=64,
                               generation_config="model")
    assert VllmBackend(config).generate(["a"]) == ["訳"]
    assert seen["params"] is defaults and defaults.max_tokens == 64 and defaults.repetition_penalty == 1.05
    assert seen["template_kwargs"] == {}  # the template does not read enable_thinking
