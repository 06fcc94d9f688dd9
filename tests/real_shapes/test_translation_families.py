"""Translation on tiny replicas of real chat LLM formats: Qwen3's thinking template, Qwen2.5's
generation_config, gemma-2's template. Each replica's generation is fixed in advance (its next token
depends only on the current one), so the real code path -- chat template, generate, decode, clean-up,
quality filter, shard writing -- is checked against known outputs."""

import json

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.real_shapes.fixtures import load_facts
from waon_hf.cli import main
from waon_hf.steps.translation_filters import DEFAULT_PROMPT
from waon_hf.testing.tiny_models import build_tiny_chain_lm
from waon_hf.translate import TransformersBackend, TranslationConfig, chat_template_kwargs, translate_captions

ANSWER = "窓辺に座っている猫"
REASONING = "\nOkay, the user wants this caption in Japanese. A cat on a windowsill: 窓辺の猫.\n"
CAPTION = "A cat sitting on a windowsill"


@pytest.fixture(scope="module")
def qwen3(tmp_path_factory):
    """Qwen3's real template and token flags; answers like Qwen3 does: a <think> block when the prompt ends
    on the bare assistant turn, the answer alone after the template's empty '<think>\\n\\n</think>\\n\\n'."""
    facts = load_facts("qwen3_8b.json")
    chain = {"\n": "<think>", "<think>": REASONING, REASONING: "</think>", "</think>": "\n\n", "\n\n": ANSWER,
             ANSWER: facts["eos_token"]}
    return build_tiny_chain_lm(
        tmp_path_factory.mktemp("qwen3"), chat_template=facts["chat_template"], chain=chain,
        special_tokens=tuple(facts["special_tokens"]),
        plain_tokens=(*facts["added_tokens_not_special"], "\n", "\n\n", REASONING, ANSWER),
        eos_token=facts["eos_token"], pad_token=facts["pad_token"], bos_token=facts["bos_token"])


def _en_file(path, n=3):
    pq.write_table(pa.table({"URL": [f"https://img.example/{i}.jpg" for i in range(n)], "TEXT": [CAPTION] * n,
                             "WIDTH": [300] * n, "HEIGHT": [300] * n}), path)
    return path


def test_qwen3_replica_has_the_real_token_flags(qwen3):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(qwen3)
    ids = tokenizer.convert_tokens_to_ids(["<think>", "</think>"])
    assert tokenizer.decode(ids, skip_special_tokens=True) == "<think></think>"  # not special: decode keeps them
    assert chat_template_kwargs(tokenizer.chat_template) == {"enable_thinking": False}
    assert chat_template_kwargs(tokenizer.chat_template, {"enable_thinking": True}) == {"enable_thinking": True}


def test_waon_translate_with_qwen3_writes_japanese_without_reasoning(qwen3, tmp_path):
    src = _en_file(tmp_path / "en.parquet")
    out = tmp_path / "out"
    assert main(["translate", str(src), "-o", str(out), "--model", qwen3, "--backend", "transformers",
                 "--device", "cpu", "--max-new-tokens", "16"]) == 0
    ds = datasets.load_dataset(str(out), split="train")
    assert ds["caption"] == [ANSWER]  # three rows, one caption after the exact caption dedup
    stats = json.loads((out / "stats.json").read_text())
    assert stats["translation_quality.kept"] == 3
    assert not any(k.startswith("translate.reasoning_") for k in stats)  # the template skipped thinking
    step = json.loads((out / "pipeline.json").read_text())["stages"][0]["steps"]
    config = next(s["config"] for s in step if s["name"] == "translate")
    assert config["generation"]["from"] == "explicit" and config["generation"]["repetition_penalty"] == 1.0


def test_thinking_output_is_stripped_and_counted(qwen3, tmp_path):
    src = _en_file(tmp_path / "en.parquet")
    out = tmp_path / "out"
    assert main(["translate", str(src), "-o", str(out), "--model", qwen3, "--backend", "transformers",
                 "--device", "cpu", "--max-new-tokens", "16",
                 "--chat-template-kwargs", '{"enable_thinking": true}']) == 0
    assert datasets.load_dataset(str(out), split="train")["caption"] == [ANSWER]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["translate.reasoning_closed"] == 3 and stats["translation_quality.kept"] == 3


def test_reasoning_past_max_new_tokens_is_dropped_as_reasoning_only(qwen3):
    config = TranslationConfig(model=qwen3, backend="transformers", device="cpu", max_new_tokens=2,
                               chat_template_kwargs={"enable_thinking": True})
    backend = TransformersBackend(config)
    assert backend.generate([f"{DEFAULT_PROMPT}\n\n{CAPTION}"]) == ["<think>" + REASONING]
    result = translate_captions([CAPTION], backend, config=config)
    assert result.reasons == ["reasoning_only"] and result.reasoning == ["unterminated"]


# --- Qwen2.5: the checkpoint's sampling defaults and repetition penalty ------------------------------

@pytest.fixture(scope="module")
def qwen25(tmp_path_factory):
    """Every step's logits are 猫 1.0, 犬 0.99, the rest 0: greedy writes 猫 throughout, while Qwen2.5's
    repetition_penalty 1.05 (from its real generation_config.json) turns the second token into 犬."""
    facts = load_facts("qwen2_5_instruct_generation_config.json")
    qwen3_facts = load_facts("qwen3_8b.json")  # the same ChatML tokens; the template matters little here
    return build_tiny_chain_lm(
        tmp_path_factory.mktemp("qwen25"), chat_template=qwen3_facts["chat_template"], chain={},
        constant={"猫": 1.0, "犬": 0.99}, special_tokens=("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        plain_tokens=("猫", "犬"), eos_token="<|im_end|>", pad_token="<|endoftext|>",
        generation_config=facts["generation_config"])


def test_greedy_ignores_the_checkpoints_generation_defaults(qwen25):
    from transformers import GenerationConfig

    assert GenerationConfig.from_pretrained(qwen25).repetition_penalty == 1.05  # the replica carries them
    backend = TransformersBackend(TranslationConfig(model=qwen25, backend="transformers", device="cpu",
                                                    max_new_tokens=4))
    assert backend.generate(["x", "y"]) == ["猫猫猫猫", "猫猫猫猫"]
    used = backend.generation_config()
    assert (used.do_sample, used.repetition_penalty, used.num_beams) == (False, 1.0, 1)


def test_generation_config_model_uses_the_checkpoints_defaults(qwen25):
    import torch

    config = TranslationConfig(model=qwen25, backend="transformers", device="cpu", max_new_tokens=4,
                               generation_config="model")
    backend = TransformersBackend(config)
    torch.manual_seed(0)
    assert len(backend.generate(["x"])) == 1
    used = backend.generation_config()
    assert (used.do_sample, used.temperature, used.top_p, used.top_k, used.repetition_penalty) == \
        (True, 0.7, 0.8, 20, 1.05)


# --- gemma-2: no system role, '<end_of_turn>' ends the answer -----------------------------------------

def test_gemma2_template_translates_without_template_kwargs(tmp_path):
    facts = load_facts("gemma_2_9b_it.json")
    chain = {"\n": ANSWER, ANSWER: "<end_of_turn>"}
    model = build_tiny_chain_lm(tmp_path / "gemma2", chat_template=facts["chat_template"], chain=chain,
                                special_tokens=tuple(facts["special_tokens"]), plain_tokens=("\n", ANSWER),
                                eos_token=facts["eos_token"], pad_token=facts["pad_token"],
                                bos_token=facts["bos_token"], generation_config={"cache_implementation": "hybrid"})
    backend = TransformersBackend(TranslationConfig(model=model, backend="transformers", device="cpu",
                                                    max_new_tokens=4))
    backend.load()
    assert backend.template_kwargs() == {}
    text = backend.tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True,
                                                 tokenize=False)
    assert text == "<bos><start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n"
    result = translate_captions([CAPTION], backend, config=backend.config)
    assert result.captions == [ANSWER] and result.reasons == [None]
