"""Tiny random SigLIP-family models (model + processor) built on the spot, for tests, demos and benchmarks.

Nothing is downloaded. Three families, each with the classes and file layout of the real checkpoints:

============ ===================================== ===================================================
family       real checkpoint it replicates          classes
============ ===================================== ===================================================
``naflex``   ``google/siglip2-base-patch16-naflex`` ``Siglip2Model``, ``Siglip2ImageProcessor``
                                                    (``max_num_patches``), ``Siglip2Tokenizer``
``fixres``   ``google/siglip2-base-patch16-256``,   ``SiglipModel`` (``model_type: siglip``),
             WAON's ``llm-jp/waon-siglip2-base-    ``SiglipImageProcessor`` (fixed size, bilinear),
             patch16-256``                          ``GemmaTokenizer`` (no ``<bos>``, ``<eos>`` added)
``siglip``   ``google/siglip-base-patch16-224``     ``SiglipModel``, ``SiglipImageProcessor`` (fixed
                                                    size, bicubic), ``SiglipTokenizer`` (SentencePiece,
                                                    pad = eos = ``</s>``)
============ ===================================== ===================================================

``build_tiny_model(family, out_dir, seed)`` builds any of them (:data:`TINY_FAMILIES`). The NaFlex
recipe (see FINDINGS.md, "Tiny SigLIP2 with no download"):

* a byte-fallback BPE trained with ``tokenizers`` on a few Japanese lines (lowercase normaliser,
  ``▁`` for spaces, special tokens ``<pad> <eos> <bos> <unk> <mask>`` then the 256 byte tokens
  ``<0x00>``..``<0xFF>``), wrapped as ``Siglip2Tokenizer(vocab=..., merges=...)``. A BPE
  round-trips through ``AutoProcessor``; a Unigram saved as ``PreTrainedTokenizerFast`` comes back
  as a BPE with different ids.
* ``Siglip2Processor(Siglip2ImageProcessor(max_num_patches=64, patch_size=16), tokenizer)``.
* ``Siglip2Model(Siglip2Config(...))`` with hidden size 32 and 2 layers in each tower.

FixRes and SigLIP 1 (sources, checked against the published files):

* ``google/siglip2-base-patch16-512`` ``config.json`` is ``model_type: siglip`` with
  ``text_config.vocab_size: 256000``; its ``preprocessor_config.json`` is ``SiglipImageProcessor``
  with ``size {height, width}``, ``resample: 2`` (bilinear), mean/std 0.5, ``processor_class:
  SiglipProcessor`` (https://huggingface.co/JackIsNotInTheBox/Generate_Audio_for_Video_Checkpoints,
  a mirror of google/siglip2-base-patch16-512@a89f5c50); the 224/256 checkpoints differ only in size.
  ``google/siglip2-base-patch16-224`` ``tokenizer_config.json``: ``GemmaTokenizer``,
  ``add_bos_token: false``, ``add_eos_token: true``, ``<pad>`` 0, ``<eos>`` 1, ``<bos>`` 2 (quoted in
  https://github.com/huggingface/transformers/pull/47613).
* ``google/siglip-base-patch16-224``: ``SiglipModel``; ``SiglipImageProcessor`` 224x224,
  ``resample: 3`` (bicubic), mean/std 0.5; ``SiglipTokenizer`` on ``spiece.model`` with ``</s>`` as
  eos and pad, ``<unk>``, ``model_max_length: 64``
  (https://huggingface.co/google/siglip-base-patch16-224/blob/7c23f8b1bcb7431520472026ebd6f9a2658cd7cc/tokenizer_config.json,
  https://huggingface.co/google/siglip-base-patch16-224/commit/d0ffe3fe6b24d37e1fc878f6f6c12837e82e8d21).
  The tiny replica trains its SentencePiece model with ``sentencepiece`` (what the real tokenizer
  needs to load, too).

``build_tiny_siglip2(out_dir, seed)`` writes both with ``save_pretrained`` and returns the folder;
load it back with ``AutoModel/AutoProcessor.from_pretrained(folder, local_files_only=True)``. The
saved files are identical for identical arguments (the weights depend only on ``seed``).

``build_tiny_causal_lm(out_dir, seed)`` does the same for a tiny Llama-architecture causal LM with a
gemma-like chat template (translation tests and benchmarks); its output head is not tied to the
embeddings, so even random weights write varied text rather than repeating the last prompt token.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

# Lines the tokenizer is trained on: the evaluation templates and everyday Japanese captions.
# Anything else still tokenizes (byte fallback), only in more pieces.
TRAINING_LINES = (
    "{}の写真", "{}の画像", "{}が写っている写真", "これは{}の写真です", "{}を撮影した写真",
    "{}のクローズアップ写真", "{}の鮮明な写真", "日本の{}の写真",
    "赤い鳥居と石の階段", "富士山と桜の風景", "夏祭りの屋台と提灯", "寿司とお茶の写真",
    "京都の古いお寺の庭", "雪の積もった合掌造りの家", "柴犬が公園を散歩している", "浴衣を着た人と花火",
    "ラーメンと餃子のセット", "紅葉した山と川", "東京の夜景とタワー", "お正月の門松と鏡餅",
    "たこ焼き", "抹茶", "金魚", "招き猫", "だるま", "こけし", "神社", "城", "田んぼ", "海",
    "a photo of a cat", "red blue green yellow",
)
SPECIAL_TOKENS = ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>")
BYTE_TOKENS = tuple(f"<0x{b:02X}>" for b in range(256))

# Siglip2Config arguments of the tiny model; ``build_tiny_siglip2(..., **overrides)`` merges into these.
TINY_TEXT_CONFIG = {
    "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
    "max_position_embeddings": 64, "projection_size": 32,
}
TINY_VISION_CONFIG = {
    "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
    "num_patches": 64, "patch_size": 16, "num_channels": 3,
}


def train_byte_bpe(lines: tuple[str, ...] = TRAINING_LINES, vocab_size: int = 600) -> tuple[dict[str, int], list]:
    """Train the byte-fallback BPE; returns ``(vocab, merges)`` as ``Siglip2Tokenizer`` takes them."""
    from tokenizers import Tokenizer, normalizers, trainers
    from tokenizers.models import BPE

    tok = Tokenizer(BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Replace(" ", "▁")])
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[*SPECIAL_TOKENS, *BYTE_TOKENS], show_progress=False,
    )
    tok.train_from_iterator(lines, trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return dict(model["vocab"]), merges


@contextlib.contextmanager
def without_default_token_id_warning():
    """Drop transformers' "bos_token_id must be ... within the vocabulary ... got 49406" warning.

    ``save_pretrained`` diffs the config against a default ``SiglipTextConfig()``, whose class defaults
    (vocab 32000, CLIP's bos/eos 49406/49407) fail transformers' own validation; the saved config's
    ids are fine (https://github.com/huggingface/transformers/issues/47612). Only that message about
    those two default ids is dropped."""
    import logging

    def keep(record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not ("token_id must be" in msg and ("got 49406" in msg or "got 49407" in msg))

    target = logging.getLogger("transformers.configuration_utils")
    target.addFilter(keep)
    try:
        yield
    finally:
        target.removeFilter(keep)


def _save(model, processor, out: Path) -> str:
    with without_default_token_id_warning():
        model.save_pretrained(out)
        processor.save_pretrained(out)
    return str(out)


def _random_model(model_cls, config, seed: int):
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return model_cls(config).eval()


def build_tiny_siglip2(out_dir: str | Path, seed: int = 0, *, max_num_patches: int = 64,
                       text_config: dict | None = None, vision_config: dict | None = None) -> str:
    """Build, save and return the folder of a random NaFlex SigLIP2 (``Siglip2Model``) with its processor.

    ``text_config`` / ``vision_config`` override entries of ``TINY_TEXT_CONFIG`` /
    ``TINY_VISION_CONFIG`` (the benchmarks use a bigger one). The global torch RNG is left as it was.
    """
    from transformers import (
        Siglip2Config,
        Siglip2ImageProcessor,
        Siglip2Model,
        Siglip2Processor,
        Siglip2TextConfig,
        Siglip2Tokenizer,
        Siglip2VisionConfig,
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab, merges = train_byte_bpe()
    tokenizer = Siglip2Tokenizer(vocab=vocab, merges=merges)
    tcfg = {**TINY_TEXT_CONFIG, **(text_config or {})}
    vcfg = {**TINY_VISION_CONFIG, **(vision_config or {})}
    image_processor = Siglip2ImageProcessor(max_num_patches=max_num_patches, patch_size=vcfg["patch_size"])
    processor = Siglip2Processor(image_processor=image_processor, tokenizer=tokenizer)
    config = Siglip2Config(
        text_config=Siglip2TextConfig(**tcfg, vocab_size=len(vocab), pad_token_id=vocab["<pad>"],
                                      bos_token_id=vocab["<bos>"], eos_token_id=vocab["<eos>"]),
        vision_config=Siglip2VisionConfig(**vcfg),
    )
    return _save(_random_model(Siglip2Model, config, seed), processor, out)


# Fixed-resolution vision tower of the tiny FixRes / SigLIP 1 models: 64x64 images in 16 px patches
# (the same 16 patches x hidden 32 as the NaFlex tower's budget of 64 patches, at a quarter of it).
TINY_FIXED_IMAGE_SIZE = 64


def _fixed_vision_config(vision_config: dict | None) -> dict:
    vcfg = {**TINY_VISION_CONFIG, "image_size": TINY_FIXED_IMAGE_SIZE, **(vision_config or {})}
    vcfg.pop("num_patches", None)  # a NaFlex-only field: SiglipVisionConfig derives it from image_size
    return vcfg


def _siglip_model(text: dict, vision: dict, vocab_size: int, ids: dict, seed: int):
    from transformers import SiglipConfig, SiglipModel, SiglipTextConfig, SiglipVisionConfig

    config = SiglipConfig(
        text_config=SiglipTextConfig(**text, vocab_size=vocab_size, **ids),
        vision_config=SiglipVisionConfig(**vision),
    )
    return _random_model(SiglipModel, config, seed)


def build_tiny_siglip2_fixres(out_dir: str | Path, seed: int = 0, *, text_config: dict | None = None,
                              vision_config: dict | None = None) -> str:
    """A random FixRes SigLIP2 as Google ships it: ``SiglipModel`` + ``SiglipProcessor`` of a fixed-size
    ``SiglipImageProcessor`` (64x64 here, bilinear, mean/std 0.5) and a ``GemmaTokenizer`` that adds
    ``<eos>`` and no ``<bos>``. The tokenizer is the same byte-fallback BPE as the NaFlex model's."""
    from transformers import GemmaTokenizer, SiglipImageProcessor, SiglipProcessor

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab, merges = train_byte_bpe()
    tokenizer = GemmaTokenizer(vocab=vocab, merges=merges, add_bos_token=False, add_eos_token=True,
                               model_max_length=TINY_TEXT_CONFIG["max_position_embeddings"])
    vcfg = _fixed_vision_config(vision_config)
    size = vcfg["image_size"]
    image_processor = SiglipImageProcessor(size={"height": size, "width": size}, resample=2,
                                           image_mean=[0.5] * 3, image_std=[0.5] * 3)
    processor = SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer)
    ids = {"pad_token_id": vocab["<pad>"], "bos_token_id": vocab["<bos>"], "eos_token_id": vocab["<eos>"]}
    model = _siglip_model({**TINY_TEXT_CONFIG, **(text_config or {})}, vcfg, len(vocab), ids, seed)
    return _save(model, processor, out)


def train_sentencepiece(lines: tuple[str, ...] = TRAINING_LINES, vocab_size: int = 700) -> bytes:
    """A byte-fallback unigram SentencePiece model with SigLIP's ids: ``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2
    (no bos). Single-threaded, so the same lines give the same bytes."""
    import io

    import sentencepiece as spm

    buf = io.BytesIO()
    text = [line.replace("{}", " ").strip() for line in lines]
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text), model_writer=buf, vocab_size=vocab_size, hard_vocab_limit=False,
        model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1, byte_fallback=True,
        character_coverage=1.0, normalization_rule_name="identity", num_threads=1, minloglevel=2,
    )
    return buf.getvalue()


def build_tiny_siglip(out_dir: str | Path, seed: int = 0, *, text_config: dict | None = None,
                      vision_config: dict | None = None) -> str:
    """A random SigLIP 1 as Google ships it: ``SiglipModel`` + ``SiglipProcessor`` of a fixed-size
    ``SiglipImageProcessor`` (64x64 here, bicubic, mean/std 0.5) and a ``SiglipTokenizer`` on a
    SentencePiece model (``spiece.model``; ``</s>`` is both eos and pad)."""
    from transformers import SiglipImageProcessor, SiglipProcessor, SiglipTokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spiece = out / "spiece.model"
    spiece.write_bytes(train_sentencepiece())
    tokenizer = SiglipTokenizer(vocab_file=str(spiece), model_max_length=TINY_TEXT_CONFIG["max_position_embeddings"])
    vcfg = _fixed_vision_config(vision_config)
    size = vcfg["image_size"]
    image_processor = SiglipImageProcessor(size={"height": size, "width": size}, resample=3,
                                           image_mean=[0.5] * 3, image_std=[0.5] * 3)
    processor = SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer)
    # Google's SigLIP has no bos token: the config carries None rather than an id outside the vocabulary.
    ids = {"pad_token_id": tokenizer.pad_token_id, "bos_token_id": None, "eos_token_id": tokenizer.eos_token_id}
    model = _siglip_model({**TINY_TEXT_CONFIG, **(text_config or {})}, vcfg, len(tokenizer), ids, seed)
    return _save(model, processor, out)


# family -> builder; every builder takes ``(out_dir, seed=0, *, text_config=None, vision_config=None)``.
TINY_BUILDERS = {"naflex": build_tiny_siglip2, "fixres": build_tiny_siglip2_fixres, "siglip": build_tiny_siglip}
TINY_FAMILIES = tuple(TINY_BUILDERS)


def build_tiny_model(family: str, out_dir: str | Path, seed: int = 0, **overrides) -> str:
    """Build the tiny model of ``family`` (one of :data:`TINY_FAMILIES`) and return its folder."""
    if family not in TINY_BUILDERS:
        raise ValueError(f"unknown tiny model family {family!r}; choose from {', '.join(TINY_FAMILIES)}")
    return TINY_BUILDERS[family](out_dir, seed, **overrides)


# --- a tiny causal LM with a chat template (translation tests and benchmarks) --------------------

# Lines the causal LM's tokenizer is trained on: English captions and Japanese translations.
CAUSAL_TRAINING_LINES = (
    "A cat sitting on a windowsill", "A dog running on the beach", "Sunset over Mount Fuji",
    "Red torii gate and stone stairs", "A bowl of ramen with eggs", "Cherry blossoms in Kyoto",
    "You are an excellent English-Japanese translator.", "Output only the translation.",
    "Translate the following English image caption into natural Japanese.",
    "窓辺に座っている猫", "浜辺を走る犬", "富士山の夕焼け", "赤い鳥居と石の階段", "卵入りのラーメン", "京都の桜",
    "夏祭りの屋台と提灯", "東京の夜景とタワー", "柴犬が公園を散歩している",
)
CHAT_TOKENS = ("<start_of_turn>", "<end_of_turn>")

# Gemma's turn format: no system role, the assistant is called "model", the prompt ends on the
# model's opening turn when ``add_generation_prompt`` is set.
GEMMA_LIKE_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{{ '<start_of_turn>' + ('model' if message['role'] == 'assistant' else message['role']) + '\n' }}"
    "{{ message['content'] | trim }}{{ '<end_of_turn>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)

# LlamaConfig arguments of the tiny model; ``build_tiny_causal_lm(..., config=...)`` merges into these.
TINY_CAUSAL_CONFIG = {
    "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
    "num_key_value_heads": 1, "max_position_embeddings": 512, "tie_word_embeddings": False,
}


def _causal_tokenizer(vocab_size: int, lines: tuple[str, ...] = CAUSAL_TRAINING_LINES):
    """A case-preserving byte-fallback BPE wrapped as ``PreTrainedTokenizerFast`` with the chat tokens."""
    from tokenizers import Tokenizer, decoders, normalizers, trainers
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  special_tokens=[*SPECIAL_TOKENS, *CHAT_TOKENS, *BYTE_TOKENS])
    tok.train_from_iterator(lines, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", unk_token="<unk>", pad_token="<pad>",
        additional_special_tokens=list(CHAT_TOKENS), chat_template=GEMMA_LIKE_CHAT_TEMPLATE,
        padding_side="left",
    )


def build_tiny_causal_lm(out_dir: str | Path, seed: int = 0, *, config: dict | None = None,
                         vocab_size: int = 700, training_lines: tuple[str, ...] | None = None) -> str:
    """Build, save and return the folder of a random Llama-architecture causal LM with a gemma-like chat
    template (user/model turns, no system role) and a byte-fallback BPE, loadable offline with
    ``AutoTokenizer/AutoModelForCausalLM.from_pretrained(folder)``.

    Generation stops at ``<eos>`` or ``<end_of_turn>`` (as gemma's does). ``config`` overrides entries of
    :data:`TINY_CAUSAL_CONFIG` (the translation benchmark uses a bigger one); ``training_lines`` replaces
    the tokenizer's training text (a benchmark trains it on its captions for realistic token counts). The
    weights depend only on ``seed``; the global torch RNG is left as it was.
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _causal_tokenizer(vocab_size, tuple(training_lines or CAUSAL_TRAINING_LINES))
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<pad>", "<bos>", "<eos>", "<end_of_turn>")}
    model_config = LlamaConfig(**{**TINY_CAUSAL_CONFIG, **(config or {})}, vocab_size=len(tokenizer),
                               pad_token_id=ids["<pad>"], bos_token_id=ids["<bos>"], eos_token_id=ids["<eos>"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(model_config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<bos>"], pad_token_id=ids["<pad>"], eos_token_id=[ids["<eos>"], ids["<end_of_turn>"]],
        do_sample=False,
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


# --- a tiny causal LM whose greedy continuation is fixed (replicas of real chat formats) ----------

def build_tiny_chain_lm(out_dir: str | Path, *, chat_template: str, chain: dict[str, str],
                        constant: dict[str, float] | None = None, special_tokens: tuple[str, ...] = (),
                        plain_tokens: tuple[str, ...] = (), eos_token: str, pad_token: str,
                        bos_token: str | None = None, generation_config: dict | None = None) -> str:
    """Build, save and return the folder of a Llama-architecture LM whose next token depends only on
    the current one, so its greedy output is known in advance (a stand-in for a real model's answer).

    * ``chain`` maps a token to the token that follows it (``{"\\n": "<think>", "<think>": ...}``); a
      token absent from ``chain`` is followed by ``eos_token``.
    * ``constant`` instead gives every step the same logits (``{"猫": 1.0, "犬": 0.99}``, the rest 0):
      a small margin that a repetition penalty flips, which is how a checkpoint's sampling defaults
      become visible in a greedy test.
    * ``special_tokens`` are added as special (skipped by ``decode(skip_special_tokens=True)``),
      ``plain_tokens`` as added tokens that are not special (Qwen3's ``<think>``); every token named
      in ``chain``/``constant`` must be one of them, or the eos/pad/bos token.
    * ``generation_config`` is saved as the checkpoint's ``generation_config.json`` (the real model's
      facts: sampling defaults, penalties); eos and pad ids are filled in.

    How: the hidden size equals the vocabulary size, each token embeds as its one-hot vector, every
    attention and MLP output projection is zero (the residual stream stays the embedding), and the
    untied output head is the transition matrix. No weight is random; the files depend only on the
    arguments.
    """
    import torch
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, trainers
    from tokenizers.models import BPE
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    named = {eos_token, pad_token, *([bos_token] if bos_token else [])}
    tok = Tokenizer(BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    specials = list(dict.fromkeys(["<unk>", *sorted(named), *special_tokens]))
    trainer = trainers.BpeTrainer(vocab_size=len(specials) + 256 + 40, show_progress=False,
                                  special_tokens=[*specials, *BYTE_TOKENS])
    tok.train_from_iterator(CAUSAL_TRAINING_LINES[:6], trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in plain_tokens])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos_token, eos_token=eos_token, unk_token="<unk>", pad_token=pad_token,
        additional_special_tokens=[t for t in special_tokens if t not in named], chat_template=chat_template,
        padding_side="left",
    )
    vocab = len(tokenizer)

    def tid(token: str) -> int:
        i = tokenizer.convert_tokens_to_ids(token)
        if i is None or i == tokenizer.unk_token_id or tokenizer.convert_ids_to_tokens(i) != token:
            raise ValueError(f"{token!r} is not a single token of the tiny vocabulary")
        return i

    eos = tid(eos_token)
    config = LlamaConfig(hidden_size=vocab, intermediate_size=8, num_hidden_layers=1, num_attention_heads=1,
                         num_key_value_heads=1, head_dim=vocab, max_position_embeddings=1024,
                         tie_word_embeddings=False, vocab_size=vocab, pad_token_id=tid(pad_token),
                         bos_token_id=tid(bos_token) if bos_token else None, eos_token_id=eos, rms_norm_eps=1e-12)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.model.embed_tokens.weight.copy_(torch.eye(vocab))
        model.model.norm.weight.fill_(1.0)
        for layer in model.model.layers:
            layer.input_layernorm.weight.fill_(1.0)
            layer.post_attention_layernorm.weight.fill_(1.0)
        # RMSNorm turns the one-hot e_t into sqrt(vocab) * e_t: divide the head by it
        scale = 1.0 / vocab ** 0.5
        head = torch.zeros(vocab, vocab)
        if constant:
            for token, logit in constant.items():
                head[tid(token), :] = logit * scale
        else:
            head[eos, :] = 10.0 * scale
            for token, nxt in chain.items():
                head[:, tid(token)] = 0.0
                head[tid(nxt), tid(token)] = 10.0 * scale
        model.lm_head.weight.copy_(head)
    gen = {k: v for k, v in (generation_config or {}).items() if k not in ("eos_token_id", "pad_token_id",
                                                                           "bos_token_id", "transformers_version")}
    model.generation_config = GenerationConfig(**gen, eos_token_id=eos, pad_token_id=tid(pad_token))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)
