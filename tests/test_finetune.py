"""training/finetune_siglip2.py end to end on CPU: a tiny SigLIP2 fine-tuned on a `waon build` of the sample.

Every run is a fresh interpreter (``subprocess``): accelerate's state is per process, and forking
after torch is imported can hang.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")
datasets = pytest.importorskip("datasets")

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "training" / "finetune_siglip2.py"
BAD_ROWS = (1, 7, 20)  # image bytes replaced by garbage in the `bad` copy of the dataset
STEPS = 6
# the families fine-tuned end to end: FixRes (SiglipModel, what WAON fine-tuned) and NaFlex (Siglip2Model)
TRAIN_FAMILIES = ("fixres", "naflex")
MODEL_CLASS = {"fixres": "SiglipModel", "naflex": "Siglip2Model", "siglip": "SiglipModel"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, tiny_model_dir):
    """The sample built by `waon build` (42 pairs) and a copy with three broken images."""
    from tests.sample_build import build_sample

    root = tmp_path_factory.mktemp("finetune")
    _, built, _, _ = build_sample(root, "built", siglip_model=tiny_model_dir("naflex"))

    ds = datasets.load_dataset(str(built), split="train").cast_column("image", datasets.Image(decode=False))
    assert len(ds) >= 24

    def corrupt(row, i):
        if i in BAD_ROWS:
            row["image"] = {"bytes": b"this is not an image", "path": None}
        return row

    bad = root / "bad"
    ds.map(corrupt, with_indices=True).to_parquet(str(bad / "data" / "train-00000-of-00001.parquet"))
    return {"clean": str(built), "bad": str(bad), "n_rows": len(ds)}


@pytest.fixture(scope="module", params=TRAIN_FAMILIES)
def data(request, dataset, tiny_model_dir):
    """The datasets and the tiny model of one family."""
    return {**dataset, "model": tiny_model_dir(request.param), "family": request.param}


def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _args(data: dict, out: Path, train: str, *extra: str) -> list[str]:
    return ["--model", data["model"], "--train-data", data[train], "--output-dir", str(out), "--batch-size", "8",
            "--learning-rate", "1e-3", "--warmup-steps", "1", "--num-workers", "0", "--log-every", "1",
            "--max-steps", str(STEPS), *extra]


def _train(args: list[str], launcher: list[str] | None = None) -> list[dict]:
    cmd = [*(launcher or [sys.executable]), str(SCRIPT), *args]
    result = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    out = Path(args[args.index("--output-dir") + 1])
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def full_run(data, tmp_path_factory):
    """Six uninterrupted steps on the copy with broken images, evaluated every 3 steps on the tiny benchmark."""
    out = tmp_path_factory.mktemp("full") / "run"
    log = _train(_args(data, out, "bad", "--eval-bench", "tiny:samples/tiny_bench", "--eval-every", "3",
                       "--checkpointing-steps", "3"))
    return out, log


def _fixed_batch(data: dict, folder):
    from transformers import AutoModel, AutoProcessor

    from waon_hf.training.data import SiglipCollator, load_pairs, model_inputs
    from waon_hf.training.family import model_family

    processor = AutoProcessor.from_pretrained(folder)
    family = model_family(AutoModel.from_pretrained(folder), processor)
    rows = load_pairs(data["clean"]).select(range(16))
    return model_inputs(SiglipCollator(processor, family)(list(rows)))


def _loss_and_embeddings(model, batch):
    from waon_hf.training.loss import SigmoidLoss

    model.eval()
    with torch.no_grad():
        out = model(**batch)
        loss = SigmoidLoss()(out.image_embeds, out.text_embeds, model.logit_scale, model.logit_bias)
    return loss.item(), out.image_embeds, out.text_embeds


def test_training_reduces_the_loss_and_writes_checkpoints(data, full_run):
    from transformers import AutoModel

    out, log = full_run
    assert [r["step"] for r in log] == list(range(1, STEPS + 1))
    assert log[0]["lr"] == pytest.approx(1e-3) and log[-1]["lr"] == pytest.approx(0.0, abs=1e-12)  # warmup + cosine
    batch = _fixed_batch(data, data["model"])
    before, *_ = _loss_and_embeddings(AutoModel.from_pretrained(data["model"]), batch)
    after, *_ = _loss_and_embeddings(AutoModel.from_pretrained(out / "last"), batch)
    assert after < before - 0.05
    # the broken images were skipped and counted each time a batch held one: 5 batches of epoch 0, 1 of epoch 1
    from waon_hf.training.data import EpochShuffleSampler

    sampler, seen = EpochShuffleSampler(data["n_rows"], seed=42), []
    for epoch, batches in ((0, 5), (1, 1)):
        sampler.set_epoch(epoch)
        seen += list(sampler)[:8 * batches]
    expected = sum(i in BAD_ROWS for i in seen)
    assert expected >= 1
    assert log[-1]["skipped_rows"] == {"undecodable_image": expected, "trimmed_to_common_size": 0}
    for name in ("last", "best"):
        results = json.loads((out / name / "eval_results.json").read_text())
        assert results["benchmarks"]["tiny"]["metrics"]["n_total"] == 24
        assert (out / name / "model.safetensors").is_file() and (out / name / "tokenizer.json").is_file()
    assert json.loads((out / "last" / "eval_results.json").read_text())["training"]["step"] == STEPS
    assert [p.name for p in sorted((out / "checkpoints").iterdir())] == ["step_00000003", "step_00000006"]
    assert list((out / "logs").rglob("events.out.tfevents.*")), "no tensorboard events"


def test_saved_model_reloads_with_the_trained_weights(data, full_run):
    from safetensors.torch import load_file
    from transformers import AutoModel

    from waon_hf.training.checkpoints import strip_prefix

    out, _ = full_run
    batch = _fixed_batch(data, out / "last")
    reloaded = _loss_and_embeddings(AutoModel.from_pretrained(out / "last"), batch)
    trained = AutoModel.from_pretrained(data["model"])  # the weights of the training state at the last step
    state = strip_prefix(load_file(out / "checkpoints" / f"step_{STEPS:08d}" / "model.safetensors"), "model.")
    trained.load_state_dict(state, strict=True)
    from_state = _loss_and_embeddings(trained, batch)
    base = _loss_and_embeddings(AutoModel.from_pretrained(data["model"]), batch)
    for got, want, old in zip(reloaded[1:], from_state[1:], base[1:], strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
        assert (got - old).abs().max() > 1e-4  # training changed them
    assert reloaded[0] == pytest.approx(from_state[0], abs=1e-6)


def test_best_reloads_with_the_weights_of_its_step_and_records_its_training(data, full_run):
    """best/ is an ``AutoModel`` of the family's class with the embeddings of the training state at the best
    evaluation, and names its base model, family and training data."""
    from safetensors.torch import load_file
    from transformers import AutoModel

    from waon_hf.training.checkpoints import strip_prefix

    out, _ = full_run
    record = json.loads((out / "best" / "training_args.json").read_text())
    assert record["step"] in (3, 6) and record["base_model"] == data["model"] and record["train_data"] == data["bad"]
    family = record["base_model_family"]
    assert family["family"] == {"fixres": "siglip2-fixres", "naflex": "siglip2-naflex"}[data["family"]]
    assert family["model_class"] == MODEL_CLASS[data["family"]]
    best = AutoModel.from_pretrained(out / "best")
    assert type(best).__name__ == MODEL_CLASS[data["family"]]
    trained = AutoModel.from_pretrained(data["model"])
    step_state = load_file(out / "checkpoints" / f"step_{record['step']:08d}" / "model.safetensors")
    trained.load_state_dict(strip_prefix(step_state, "model."), strict=True)
    batch = _fixed_batch(data, out / "best")
    for got, want in zip(_loss_and_embeddings(best, batch)[1:], _loss_and_embeddings(trained, batch)[1:], strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    results = json.loads((out / "best" / "eval_results.json").read_text())
    assert results["training"]["base_model_family"] == family["family"]


def test_resume_continues_exactly_like_an_uninterrupted_run(data, full_run, tmp_path):
    _, full = full_run
    out = tmp_path / "run"
    common = ("--eval-bench", "tiny:samples/tiny_bench", "--eval-every", "3", "--checkpointing-steps", "3")
    first = _train(_args(data, out, "bad", *common, "--stop-at-step", "4"))
    assert [r["step"] for r in first] == [1, 2, 3, 4]
    # resume from step 3 as if the job had died after logging step 4: the log's step 4 is dropped and redone
    step3 = str(out / "checkpoints" / "step_00000003")
    log = _train(_args(data, out, "bad", *common, "--resume-from-checkpoint", step3))
    assert [r["step"] for r in log] == list(range(1, STEPS + 1))
    assert log[-1]["epoch"] == 1  # the run crossed an epoch boundary after the resume (5 batches per epoch)
    for resumed, uninterrupted in zip(log, full, strict=True):
        assert resumed["loss"] == pytest.approx(uninterrupted["loss"], abs=1e-6), resumed["step"]
        assert resumed["lr"] == pytest.approx(uninterrupted["lr"], abs=1e-12)
        assert resumed["logit_scale"] == pytest.approx(uninterrupted["logit_scale"], abs=1e-6)
        assert resumed["samples"] == uninterrupted["samples"]
        assert resumed["skipped_rows"] == uninterrupted["skipped_rows"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("exchange", ["all_gather", "ring"])
def test_two_processes_train_like_one_process_with_the_concatenated_batch(data, tmp_path, exchange):
    """DDP on 2 CPU processes (gloo), 4 pairs each, follows the single process with 8: same rows per step
    (accelerate hands consecutive batches of the shared permutation to the ranks) and the loss sees
    every rank's negatives. ``--cpu --num_processes 2`` would silently run one process, hence ``--multi_gpu``
    with ``ACCELERATE_USE_CPU``."""
    one = _train(_args(data, tmp_path / "one", "clean", "--max-steps", "3", "--report-to", "none"))
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                "--main_process_port", str(_free_port())]
    os.environ["ACCELERATE_USE_CPU"] = "true"
    try:
        args = _args(data, tmp_path / "two", "clean", "--max-steps", "3", "--report-to", "none",
                     "--checkpointing-steps", "2", "--loss-exchange", exchange)
        args[args.index("--batch-size") + 1] = "4"
        two = _train(args, launcher)
    finally:
        del os.environ["ACCELERATE_USE_CPU"]
    assert [r["step"] for r in two] == [1, 2, 3] and two[-1]["samples"] == one[-1]["samples"] == 24
    for a, b in zip(two, one, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
        assert a["logit_scale"] == pytest.approx(b["logit_scale"], abs=1e-5)
    assert (tmp_path / "two" / "checkpoints" / "step_00000002" / "model.safetensors").is_file()
    assert (tmp_path / "two" / "last" / "model.safetensors").is_file()


@pytest.mark.slow
def test_streaming_resume_continues_exactly(data, tmp_path):
    """``--streaming``: the stream is re-read up to the checkpoint's position, so the resumed run
    sees the same batches (7 steps cross an epoch boundary of the shuffle buffer's stream)."""
    stream = ("--streaming", "--shuffle-buffer", "16", "--max-steps", "7", "--report-to", "none",
              "--checkpointing-steps", "2")
    full = _train(_args(data, tmp_path / "full", "bad", *stream))
    _train(_args(data, tmp_path / "cut", "bad", *stream, "--stop-at-step", "3"))
    log = _train(_args(data, tmp_path / "cut", "bad", *stream, "--resume-from-checkpoint", "latest"))
    assert [r["step"] for r in log] == list(range(1, 8)) and log[-1]["epoch"] >= 1
    for resumed, uninterrupted in zip(log, full, strict=True):
        assert resumed["loss"] == pytest.approx(uninterrupted["loss"], abs=1e-6), resumed["step"]
        assert resumed["skipped_rows"] == uninterrupted["skipped_rows"]


@pytest.mark.slow
def test_frozen_vision_tower_with_accumulation_and_checkpointing(data, tmp_path):
    """LiT-style ``--freeze vision`` with gradient accumulation and gradient checkpointing: the vision
    weights come out unchanged, the text tower and the logit scale/bias are trained."""
    from safetensors.torch import load_file

    out = tmp_path / "lit"
    log = _train(_args(data, out, "clean", "--max-steps", "3", "--freeze", "vision", "--gradient-accumulation-steps",
                       "2", "--gradient-checkpointing", "--report-to", "none"))
    # 5 micro-batches per epoch: accelerate syncs at the end of the DataLoader, so step 3 holds only the 5th
    assert [r["step"] for r in log] == [1, 2, 3] and [r["samples"] for r in log] == [16, 32, 40]
    before = load_file(Path(data["model"]) / "model.safetensors")
    after = load_file(out / "last" / "model.safetensors")
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and not any(k.startswith("vision_model.") for k in changed)
    assert any(k.startswith("text_model.") for k in changed) and "logit_scale" in changed


def test_eval_results_are_what_waon_eval_gives_for_the_checkpoint(full_run, tmp_path):
    from waon_hf.cli import main

    out, _ = full_run
    in_training = json.loads((out / "last" / "eval_results.json").read_text())["benchmarks"]["tiny"]["metrics"]
    assert main(["eval", "--model", str(out / "last"), "--bench", "tiny", "-o", str(tmp_path / "eval.json")]) == 0
    standalone = json.loads((tmp_path / "eval.json").read_text())["benchmarks"]["tiny"]["metrics"]
    for key in ("top1", "top5", "n_evaluated", "n_total"):
        assert in_training[key] == standalone[key], key
