"""Training data, collate, optimizer groups, checkpoints helpers and the accelerate configs (no training)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
datasets = pytest.importorskip("datasets")

from tests.fake_hub import FakeHfApi  # noqa: E402
from waon_hf.training import checkpoints as ckpt  # noqa: E402
from waon_hf.training.data import (  # noqa: E402
    EpochShuffleSampler,
    SiglipCollator,
    load_pairs,
    make_train_loader,
)

REPO = Path(__file__).resolve().parent.parent
N_ROWS, BATCH, WORLD = 42, 4, 2


def _ids(rows):
    return [r["idx"] for r in rows]


def _index_dataset():
    return datasets.Dataset.from_dict({"idx": list(range(N_ROWS))})


def _map_style_rank_batches(rank: int, epoch: int) -> list[list[int]]:
    """The batches one rank gets from the training loader once accelerate has sharded it."""
    from accelerate.data_loader import prepare_data_loader

    loader, set_epoch = make_train_loader(_index_dataset(), _ids, batch_size=BATCH, seed=3)
    sharded = prepare_data_loader(loader, num_processes=WORLD, process_index=rank, put_on_device=False)
    set_epoch(epoch)
    sharded.set_epoch(epoch)
    return list(sharded)


def test_sampler_is_seeded_and_reshuffles_per_epoch():
    s = EpochShuffleSampler(N_ROWS, seed=7)
    first = list(s)
    assert sorted(first) == list(range(N_ROWS)) and first == list(s)
    s.set_epoch(1)
    assert list(s) != first and sorted(s) == list(range(N_ROWS))
    assert list(EpochShuffleSampler(N_ROWS, seed=8)) != first


def test_map_style_shards_are_disjoint_and_cover_the_dataset():
    per_epoch = []
    for epoch in (0, 1):
        rank_rows = [[i for b in _map_style_rank_batches(r, epoch) for i in b] for r in range(WORLD)]
        assert not set(rank_rows[0]) & set(rank_rows[1])
        assert all(len(rows) == len(set(rows)) for rows in rank_rows)
        covered = set(rank_rows[0]) | set(rank_rows[1])
        # drop_last keeps equal micro-batches on every rank: fewer than BATCH * WORLD rows wait for the next epoch
        assert len(covered) == N_ROWS // (BATCH * WORLD) * BATCH * WORLD
        per_epoch.append(rank_rows)
    assert per_epoch[0] != per_epoch[1]
    assert _map_style_rank_batches(0, 1) == _map_style_rank_batches(0, 1)  # reproducible


def test_streaming_shards_are_disjoint_and_reshuffled():
    stream = _index_dataset().to_iterable_dataset(num_shards=4)
    runs = {}
    for epoch in (0, 1):
        for rank in range(WORLD):
            loader, set_epoch = make_train_loader(stream, _ids, batch_size=BATCH, seed=3, streaming=True, rank=rank,
                                                  world_size=WORLD, shuffle_buffer=16)
            set_epoch(epoch)
            runs[epoch, rank] = [i for b in loader for i in b]
        rows0, rows1 = runs[epoch, 0], runs[epoch, 1]
        assert not set(rows0) & set(rows1) and len(rows0) == len(set(rows0))
        assert len(set(rows0) | set(rows1)) >= N_ROWS - WORLD * BATCH
    assert runs[0, 0] != runs[1, 0]


FAMILIES = ("naflex", "fixres", "siglip")


def _load(folder):
    from transformers import AutoModel, AutoProcessor

    return AutoModel.from_pretrained(folder, local_files_only=True), AutoProcessor.from_pretrained(
        folder, local_files_only=True)


@pytest.fixture(scope="module")
def naflex(tiny_model_dir):
    return _load(tiny_model_dir("naflex"))


@pytest.fixture(scope="module")
def processor(naflex):
    return naflex[1]


@pytest.fixture(scope="module")
def naflex_family(naflex):
    return model_family_of(*naflex)


@pytest.fixture(scope="module", params=FAMILIES)
def loaded(request, tiny_model_dir):
    """``(family name, model, processor, ModelFamily)`` of each tiny family."""
    from waon_hf.training.family import model_family

    model, proc = _load(tiny_model_dir(request.param))
    return request.param, model, proc, model_family(model, proc)


def _png(color=(200, 30, 30), size=(40, 24)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def test_family_is_read_from_the_checkpoint(loaded):
    name, model, proc, family = loaded
    expected = {"naflex": ("siglip2-naflex", "Siglip2Model", "Siglip2EncoderLayer"),
                "fixres": ("siglip2-fixres", "SiglipModel", "SiglipEncoderLayer"),
                "siglip": ("siglip", "SiglipModel", "SiglipEncoderLayer")}[name]
    assert (family.name, family.model_class, family.encoder_layer_classes) == (expected[0], expected[1],
                                                                               (expected[2],))
    assert type(model).__name__ == family.model_class
    assert (family.max_length, family.padding_side, family.lowercase) == (64, "right", True)
    if name == "naflex":
        assert family.image_kwargs == {"max_num_patches": 64, "patch_size": 16}
    else:
        assert family.image_kwargs == {} and "pixel_attention_mask" not in family.tensor_keys
        with pytest.raises(ValueError, match="NaFlex"):
            model_family_of(model, proc, max_num_patches=64)
    with pytest.raises(ValueError, match="exceeds"):
        model_family_of(model, proc, max_length=65)


def model_family_of(model, proc, **kwargs):
    from waon_hf.training.family import model_family

    return model_family(model, proc, **kwargs)


def test_family_rejects_a_model_that_is_not_siglip(processor):
    from types import SimpleNamespace

    with pytest.raises(ValueError, match="not a SigLIP-family model"):
        model_family_of(SimpleNamespace(config=SimpleNamespace(model_type="clip")), processor)


def test_collate_gives_the_tensors_each_family_takes(loaded):
    from waon_hf.training.data import model_inputs
    from waon_hf.training.loss import SigmoidLoss
    from waon_hf.training.model import ContrastiveSiglip

    name, model, proc, family = loaded
    rows = [{"image": {"bytes": _png(size=size), "path": None}, "caption": cap}
            for size, cap in (((40, 24), "赤い鳥居"), ((30, 90), "A Photo Of A Cat"), ((64, 64), "青い空"))]
    batch = SiglipCollator(proc, family)(rows)
    assert set(model_inputs(batch)) == set(family.tensor_keys)
    if name == "naflex":
        assert batch["pixel_values"].shape[:2] == (3, 64) and batch["spatial_shapes"].shape == (3, 2)
    else:  # fixed size: the processor's 64x64, whatever the image's shape
        assert batch["pixel_values"].shape == (3, 3, 64, 64)
    # the wrapped model trains on it: a finite loss with a gradient on both towers and the logit bias
    module = ContrastiveSiglip(model, SigmoidLoss()).train()
    loss = module(**model_inputs(batch))
    loss.backward()
    assert torch.isfinite(loss)
    assert model.logit_bias.grad is not None
    assert model.text_model.embeddings.token_embedding.weight.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.vision_model.parameters())
    model.zero_grad(set_to_none=True)


def test_collate_skips_and_counts_bad_rows(processor, naflex_family):
    good = {"bytes": _png(), "path": None}
    rows = [
        {"image": good, "caption": "赤い鳥居"},
        {"image": {"bytes": b"not an image", "path": None}, "caption": "壊れた画像"},
        {"image": {"bytes": _png()[:40], "path": None}, "caption": "途中で切れた画像"},
        {"image": None, "caption": "画像なし"},
        {"image": good, "caption": "  "},
        {"image": {"bytes": _png((0, 0, 255)), "path": None}, "caption": "青い空"},
    ]
    batch = SiglipCollator(processor, naflex_family)(rows)
    assert batch["input_ids"].shape == (2, 64)
    assert batch["pixel_values"].shape[0] == 2 and batch["spatial_shapes"].shape == (2, 2)
    assert batch["pixel_values"].shape[1] == processor.image_processor.max_num_patches  # the checkpoint's, not 256
    assert int(batch["n_skipped"]) == 4
    assert batch["skip_reasons"] == {"undecodable_image": 2, "no_image_bytes": 1, "empty_caption": 1}


def test_collate_text_is_lowercased_and_right_padded(loaded):
    _, model, processor, _ = loaded
    img = {"bytes": _png(), "path": None}
    collate = SiglipCollator(processor, model_family_of(model, processor, max_length=16))
    upper = collate([{"image": img, "caption": "A PHOTO OF A CAT"}])["input_ids"]
    lower = collate([{"image": img, "caption": "a photo of a cat"}])["input_ids"]
    assert torch.equal(upper, lower) and upper.shape == (1, 16)
    pad = processor.tokenizer.pad_token_id
    assert upper[0, 0] != pad and upper[0, -1] == pad


def test_collate_of_only_bad_rows_gives_an_empty_batch(processor, naflex_family):
    batch = SiglipCollator(processor, naflex_family)([{"image": {"bytes": b"x", "path": None}, "caption": "a"}])
    assert batch["input_ids"].shape[0] == 0 and int(batch["n_skipped"]) == 1


def test_load_pairs_keeps_images_undecoded_and_checks_columns(tmp_path):
    folder = tmp_path / "pairs"
    ds = datasets.Dataset.from_dict({"image": [{"bytes": _png(), "path": None}], "caption": ["赤い花"], "url": ["u"]})
    ds.cast_column("image", datasets.Image()).to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))
    loaded = load_pairs(str(folder))
    assert loaded.column_names == ["image", "caption"]
    assert isinstance(loaded[0]["image"], dict) and loaded[0]["image"]["bytes"] == _png()
    with pytest.raises(ValueError, match="no column"):
        load_pairs(str(folder), caption_column="text")
    with pytest.raises(RuntimeError, match="could not load training data"):
        load_pairs(str(tmp_path / "nothing-here"))


@pytest.mark.parametrize("family", FAMILIES)
def test_param_groups_leave_norms_biases_and_logit_params_undecayed(family, tiny_model_dir):
    from waon_hf.training.model import freeze_tower
    from waon_hf.training.optim import param_groups

    model, _ = _load(tiny_model_dir(family))  # a fresh copy: freezing changes it
    names = {id(p): n for n, p in model.named_parameters()}
    decay, no_decay = (sorted(names[id(p)] for p in g["params"]) for g in param_groups(model, 0.1))
    assert {"logit_scale", "logit_bias"} <= set(no_decay)
    assert all(n.endswith("bias") or "norm" in n or n == "logit_scale" for n in no_decay)
    assert decay and all("norm" not in n and not n.endswith("bias") and not n.startswith("logit") for n in decay)
    freeze_tower(model, "vision")
    kept = {names[id(p)] for g in param_groups(model, 0.1) for p in g["params"]}
    assert not any(n.startswith("vision_model.") for n in kept) and "logit_scale" in kept
    assert any(n.startswith("text_model.") for n in kept)


def test_parse_eval_bench_forms():
    from waon_hf.training.evaluation import parse_eval_bench

    assert parse_eval_bench("tiny:samples/tiny_bench") == [("tiny", "samples/tiny_bench")]
    assert parse_eval_bench("tiny=samples/tiny_bench") == [("tiny", "samples/tiny_bench")]
    assert parse_eval_bench("waon-bench") == [("waon-bench", None)]
    assert parse_eval_bench("org/WAON-Bench") == [("waon-bench", "org/WAON-Bench")]


def test_resume_resolution_and_pruning(tmp_path):
    assert ckpt.resolve_resume("latest", tmp_path) is None
    for step in (5, 10, 20):
        ckpt.step_dir(tmp_path, step).mkdir(parents=True)
    assert ckpt.resolve_resume("latest", tmp_path) == ckpt.step_dir(tmp_path, 20)
    assert ckpt.resolve_resume(str(ckpt.step_dir(tmp_path, 5)), tmp_path) == ckpt.step_dir(tmp_path, 5)
    with pytest.raises(FileNotFoundError):
        ckpt.resolve_resume(str(tmp_path / "nope"), tmp_path)
    assert ckpt.prune_checkpoints(tmp_path, 2) == [ckpt.step_dir(tmp_path, 5)]
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [10, 20]


CONFIGS = REPO / "training" / "configs"


@pytest.mark.parametrize("name,processes,distributed", [
    ("single_gpu", 1, "NO"), ("multi_gpu", 8, "MULTI_GPU"), ("fsdp", 8, "FSDP"), ("multi_node", 16, "MULTI_GPU"),
])
def test_accelerate_configs_parse(name, processes, distributed):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(CONFIGS / f"{name}.yaml"))
    assert config.num_processes == processes
    assert str(config.distributed_type).split(".")[-1] == distributed
    assert config.mixed_precision == "bf16"
    if name == "fsdp":  # the wrap unit is not named: it comes from the loaded model
        assert config.fsdp_config["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
        assert not config.fsdp_config.get("fsdp_transformer_layer_cls_to_wrap")
    if name == "multi_node":
        assert config.num_machines == 2 and config.main_process_ip


def _fsdp_wrap_names(path) -> list[str] | None:
    """What ``accelerate launch --config_file path`` hands the script as the layer classes to wrap
    (``FSDP_TRANSFORMER_CLS_TO_WRAP``, read by ``FullyShardedDataParallelPlugin``), or None."""
    from accelerate.commands.config.config_args import load_config_from_file

    value = load_config_from_file(str(path)).fsdp_config.get("fsdp_transformer_layer_cls_to_wrap")
    return value.split(",") if value else None


def test_fsdp_wrap_classes_resolve_on_every_loaded_family(loaded, tmp_path):
    from waon_hf.training.family import resolve_wrap_classes

    name, model, _, family = loaded
    wrapped = resolve_wrap_classes(model, _fsdp_wrap_names(CONFIGS / "fsdp.yaml"))
    assert wrapped == list(family.encoder_layer_classes) and len(wrapped) == 1
    layers = [m for m in model.modules() if type(m).__name__ == wrapped[0]]
    assert len(layers) == 4  # 2 layers in each tower: one FSDP unit each
    # a config written for the other family is an error before training, naming the model's own layers
    other = "SiglipEncoderLayer" if name == "naflex" else "Siglip2EncoderLayer"
    text = (CONFIGS / "fsdp.yaml").read_text().replace("fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP",
                                                       "fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP\n"
                                                       f"  fsdp_transformer_layer_cls_to_wrap: {other}")
    (tmp_path / "other.yaml").write_text(text)
    assert _fsdp_wrap_names(tmp_path / "other.yaml") == [other]
    with pytest.raises(ValueError, match=f"wraps \\['{other}'\\].*{wrapped[0]}"):
        resolve_wrap_classes(model, _fsdp_wrap_names(tmp_path / "other.yaml"))
    assert resolve_wrap_classes(model, [wrapped[0]]) == wrapped


def test_fsdp_wrap_resolution_fails_early_in_the_script(tiny_model_dir, tmp_path, monkeypatch):
    """The script resolves the wrap classes right after loading the model: a plugin naming a class the
    model lacks stops it before the data is read (the plugin is faked: FSDP cannot start on a CPU)."""
    import importlib.util
    import sys
    from types import SimpleNamespace

    from accelerate import PartialState

    PartialState(cpu=True)  # the script logs through accelerate's logger
    spec = importlib.util.spec_from_file_location("finetune_siglip2", REPO / "training" / "finetune_siglip2.py")
    script = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, script)  # its dataclasses look their module up
    spec.loader.exec_module(script)
    cfg = script.parse_args(["--model", tiny_model_dir("fixres"), "--train-data", str(tmp_path / "absent"),
                             "--output-dir", str(tmp_path / "out")])
    plugin = SimpleNamespace(transformer_cls_names_to_wrap=["Siglip2EncoderLayer"])
    with pytest.raises(ValueError, match="SiglipEncoderLayer"):
        script.load_for_training(cfg, SimpleNamespace(state=SimpleNamespace(fsdp_plugin=plugin)))
    plugin.transformer_cls_names_to_wrap = None
    script.load_for_training(cfg, SimpleNamespace(state=SimpleNamespace(fsdp_plugin=plugin)))
    assert plugin.transformer_cls_names_to_wrap == ["SiglipEncoderLayer"]


def test_warmup_longer_than_the_run_is_clamped(caplog):
    from waon_hf.training.optim import build_scheduler, clamp_warmup

    assert clamp_warmup(5, 20) == 5 and not caplog.records
    with caplog.at_level("WARNING", logger="waon_hf.training.optim"):
        assert clamp_warmup(500, 20) == 2
        assert clamp_warmup(20, 20) == 2 and clamp_warmup(9, 5) == 1
    assert "not shorter than the run" in caplog.text
    # with the clamped warmup the run reaches the base LR (500 steps would peak at 21/500 of it)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_scheduler(opt, warmup_steps=clamp_warmup(500, 20), total_steps=20)
    lrs = []
    for _ in range(20):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    assert max(lrs) == pytest.approx(1.0, abs=0.02)


def test_push_writes_a_card_with_the_real_results(tmp_path):
    import json

    folder = tmp_path / "best"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "siglip2"}))
    results = {"benchmarks": {"tiny": {"task": "zero-shot classification", "source": "samples/tiny_bench",
                                       "metrics": {"top1": 0.375, "top5": 0.875, "n_evaluated": 24, "n_total": 24}}}}
    ckpt.write_results(folder, results)
    api = FakeHfApi()
    ckpt.push_model_folder(folder, "org/model", base_model="org/base", datasets=["org/data"], api=api)
    card = (folder / "README.md").read_text()
    assert "37.5" in card and "87.5" in card and "org/base" in card
    assert api.calls[0][:2] == ("create_repo", "org/model") and "README.md" in api.uploaded_files()


def test_model_card_names_the_base_model_family_and_data_that_training_recorded(tmp_path):
    import json

    from waon_hf.publish.model_card import render_model_card

    folder = tmp_path / "best"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "siglip"}))
    assert "base model not recorded" in str(render_model_card(folder, [], "org/model"))
    record = {"base_model": "google/siglip2-base-patch16-256", "base_model_is_local": False,
              "base_model_family": {"family": "siglip2-fixres"}, "train_data": "org/waon", "train_data_is_local": False}
    (folder / ckpt.TRAINING_FILE).write_text(json.dumps(record))
    card = render_model_card(folder, [], "org/model")
    assert card.data.base_model == "google/siglip2-base-patch16-256" and card.data.datasets == ["org/waon"]
    text = str(card)
    assert "family `siglip2-fixres`" in text and "not recorded" not in text
    record.update(base_model="/runs/tiny", base_model_is_local=True, train_data="demo_out", train_data_is_local=True)
    (folder / ckpt.TRAINING_FILE).write_text(json.dumps(record))
    card = render_model_card(folder, [], "org/model")
    assert card.data.base_model is None  # a local path is no Hub id for the metadata
    assert "local checkpoint `/runs/tiny`" in str(card) and "local dataset `demo_out`" in str(card)


def test_truncate_log_drops_steps_after_the_checkpoint(tmp_path):
    import json

    path = tmp_path / "train_log.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": 1.0 / s}) + "\n" for s in range(1, 7)))
    assert ckpt.truncate_log(path, 4) == 2
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2, 3, 4]
    assert ckpt.truncate_log(tmp_path / "absent.jsonl", 4) == 0


def test_best_is_replaced_only_by_a_better_metric(tmp_path):
    state = ckpt.TrainerState(step=1)
    (tmp_path / "last").mkdir()
    (tmp_path / "last" / "marker").write_text("1")
    assert ckpt.update_best(tmp_path, state, "tiny/top1", 0.25)
    (tmp_path / "last" / "marker").write_text("2")
    state.step = 2
    assert not ckpt.update_best(tmp_path, state, "tiny/top1", 0.25)  # ties keep the earlier checkpoint
    assert (tmp_path / "best" / "marker").read_text() == "1" and state.best_step == 1
    state.step = 3
    assert ckpt.update_best(tmp_path, state, "tiny/top1", 0.5)
    assert (tmp_path / "best" / "marker").read_text() == "2" and (state.best_step, state.best_metric) == (3, 0.5)
