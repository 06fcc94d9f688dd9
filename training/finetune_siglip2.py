"""Fine-tune SigLIP2 (FixRes or NaFlex) or SigLIP on WAON-style image-caption pairs with Accelerate.

    accelerate launch training/finetune_siglip2.py --model google/siglip2-base-patch16-256 \
        --train-data org/waon --eval-bench org/WAON-Bench --max-steps 30000 --batch-size 256 \
        --output-dir runs/waon-siglip2 --push-to-hub org/waon-siglip2-base-patch16-256
    accelerate launch --config_file training/configs/multi_gpu.yaml training/finetune_siglip2.py ...
    accelerate launch training/finetune_siglip2.py ... --resume-from-checkpoint latest

The checkpoint's family (``SiglipModel``: FixRes SigLIP2 and SigLIP 1; ``Siglip2Model``: NaFlex) is read
from its config (``waon_hf.training.family``) and fixes the preprocessing and the FSDP wrap unit.
``main`` wires the parts; ``train_one_epoch`` is the step loop.

The loss is the SigLIP sigmoid loss with the negatives of every rank (``waon_hf.training.loss``):
the contrastive batch is ``--batch-size`` x the number of processes. Gradient accumulation does not
enlarge it (each micro-batch is scored on its own), so it is no substitute for more devices.

Outputs under ``--output-dir``: ``checkpoints/step_N`` (resumable state), ``last`` and ``best``
(``AutoModel.from_pretrained``-able, with ``eval_results.json``), ``logs`` (tensorboard) and
``train_log.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DistributedType, ProjectConfiguration, set_seed

from waon_hf.training import checkpoints as ckpt
from waon_hf.training.data import SiglipCollator, batch_rows, load_pairs, make_train_loader, model_inputs
from waon_hf.training.evaluation import evaluate_zeroshot, flat_metrics, headline_metric, parse_eval_bench
from waon_hf.training.family import model_family, resolve_wrap_classes
from waon_hf.training.loss import EXCHANGES, SigmoidLoss
from waon_hf.training.model import ContrastiveSiglip, freeze_tower, load_model_and_processor
from waon_hf.training.optim import build_optimizer, build_scheduler, clamp_warmup

logger = get_logger(__name__)


@dataclass
class TrainConfig:
    model: str
    train_data: str
    output_dir: str
    eval_bench: str | None = None
    eval_every: int = 500
    eval_batch_size: int = 64
    eval_templates: str = "default"
    max_steps: int = 1000
    stop_at_step: int | None = None
    batch_size: int = 32
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-5
    weight_decay: float = 1e-4
    warmup_steps: int = 500
    max_grad_norm: float = 1.0
    loss_exchange: str = "all_gather"
    mixed_precision: str = "auto"
    gradient_checkpointing: bool = False
    freeze: str | None = None
    seed: int = 42
    num_workers: int = 4
    streaming: bool = False
    shuffle_buffer: int = 10_000
    split: str = "train"
    image_column: str = "image"
    caption_column: str = "caption"
    max_length: int | None = None
    max_num_patches: int | None = None
    checkpointing_steps: int | None = 1000
    checkpoints_total_limit: int | None = 3
    resume_from_checkpoint: str | None = None
    report_to: str = "tensorboard"
    log_every: int = 10
    push_to_hub: str | None = None
    hub_private: bool = False


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    d = TrainConfig(model="", train_data="", output_dir="")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="Hub id or local folder of a SigLIP2 (FixRes or NaFlex) "
                   "or SigLIP checkpoint")
    p.add_argument("--train-data", required=True, help="Hub dataset id or local folder made by `waon build`")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--eval-bench", help="zero-shot benchmark: NAME, NAME=SOURCE, NAME:SOURCE (e.g. "
                   "tiny:samples/tiny_bench) or a Hub id/folder in WAON-Bench format (e.g. org/WAON-Bench)")
    p.add_argument("--eval-every", type=int, default=d.eval_every, help="optimizer steps between evaluations")
    p.add_argument("--eval-batch-size", type=int, default=d.eval_batch_size)
    p.add_argument("--eval-templates", default=d.eval_templates, help="prompt template set of waon eval")
    p.add_argument("--max-steps", type=int, default=d.max_steps, help="optimizer steps of the whole schedule")
    p.add_argument("--stop-at-step", type=int, help="stop (with a checkpoint) after this step; the schedule "
                   "still spans --max-steps (time-sliced jobs: resume with --resume-from-checkpoint latest)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="pairs per device per micro-batch")
    p.add_argument("--gradient-accumulation-steps", type=int, default=d.gradient_accumulation_steps)
    p.add_argument("--learning-rate", type=float, default=d.learning_rate)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    p.add_argument("--max-grad-norm", type=float, default=d.max_grad_norm, help="0 disables clipping")
    p.add_argument("--loss-exchange", default=d.loss_exchange, choices=EXCHANGES,
                   help="how the ranks share text embeddings for the loss: all_gather (one collective) or ring "
                   "(neighbour exchanges, two blocks in memory); same loss and gradients")
    p.add_argument("--mixed-precision", default=d.mixed_precision, choices=("auto", "no", "fp16", "bf16"),
                   help="auto: accelerate's launch setting if any, else bf16 on a GPU and no on a CPU")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--freeze", choices=("vision", "text"), help="freeze one tower (LiT-style)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--num-workers", type=int, default=d.num_workers, help="DataLoader workers per process")
    p.add_argument("--streaming", action="store_true", help="stream the training data instead of loading it")
    p.add_argument("--shuffle-buffer", type=int, default=d.shuffle_buffer, help="streaming shuffle buffer")
    p.add_argument("--split", default=d.split)
    p.add_argument("--image-column", default=d.image_column)
    p.add_argument("--caption-column", default=d.caption_column)
    p.add_argument("--max-length", type=int, help="text tokens (default: the text tower's positions, 64 for "
                   "Google's checkpoints)")
    p.add_argument("--max-num-patches", type=int, help="NaFlex SigLIP2 only: image patches (default: the "
                   "checkpoint's processor); fixed-resolution checkpoints use their processor's size")
    p.add_argument("--checkpointing-steps", type=int, default=d.checkpointing_steps,
                   help="optimizer steps between resumable checkpoints (0: only at the end)")
    p.add_argument("--checkpoints-total-limit", type=int, default=d.checkpoints_total_limit,
                   help="keep this many step checkpoints (0: keep all)")
    p.add_argument("--resume-from-checkpoint", help="a checkpoints/step_N folder, or `latest`")
    p.add_argument("--report-to", default=d.report_to, help="accelerate tracker(s): tensorboard, wandb, all, none")
    p.add_argument("--log-every", type=int, default=d.log_every)
    p.add_argument("--push-to-hub", metavar="REPO", help="upload best (else last) with a model card of its "
                   "real eval results")
    p.add_argument("--hub-private", action="store_true")
    cfg = TrainConfig(**{k.replace("-", "_"): v for k, v in vars(p.parse_args(argv)).items()})
    for name in ("max_steps", "batch_size", "gradient_accumulation_steps", "eval_every", "log_every"):
        if getattr(cfg, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if cfg.push_to_hub and cfg.push_to_hub.count("/") != 1:
        p.error(f"--push-to-hub must be a Hub repo id org/name, got {cfg.push_to_hub!r}")
    return cfg


def resolve_mixed_precision(value: str) -> str:
    if value != "auto":
        return value
    if os.environ.get("ACCELERATE_MIXED_PRECISION"):
        return os.environ["ACCELERATE_MIXED_PRECISION"]
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"


def min_over_ranks(accelerator: Accelerator, n: int) -> int:
    """The smallest micro-batch over ranks: the collate skips different rows on each rank, and the loss's
    all-gather needs equal sizes, so every rank trims to the smallest."""
    if accelerator.num_processes == 1:
        return n
    return int(accelerator.gather(torch.tensor([n], device=accelerator.device)).min().item())


def build_accelerator(cfg: TrainConfig) -> Accelerator:
    out = Path(cfg.output_dir)
    accelerator = Accelerator(
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        mixed_precision=resolve_mixed_precision(cfg.mixed_precision),
        log_with=None if cfg.report_to == "none" else cfg.report_to,
        project_config=ProjectConfiguration(project_dir=str(out), logging_dir=str(out / "logs")),
    )
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    logger.info(accelerator.state, main_process_only=False)
    if cfg.gradient_accumulation_steps > 1:
        logger.warning(
            "gradient accumulation (%d steps) averages gradients of separate micro-batches; it does NOT make a "
            "bigger contrastive batch: negatives come only from the current micro-batch of every rank "
            "(%d pairs x %d processes)", cfg.gradient_accumulation_steps, cfg.batch_size, accelerator.num_processes)
    return accelerator


def load_for_training(cfg: TrainConfig, accelerator: Accelerator):
    """The model (towers frozen, checkpointing set), its processor and its family; under FSDP, the layer
    classes to wrap are resolved on the loaded model here, so a config for the other family fails now."""
    model, processor = load_model_and_processor(cfg.model)
    family = model_family(model, processor, max_length=cfg.max_length, max_num_patches=cfg.max_num_patches)
    logger.info("%s is a %s checkpoint (%s): batches hold %s, image settings %s, text padded to %d", cfg.model,
                family.name, family.model_class, ", ".join(family.tensor_keys), family.image_kwargs or "fixed size",
                family.max_length)
    plugin = getattr(accelerator.state, "fsdp_plugin", None)
    if plugin is not None:
        plugin.transformer_cls_names_to_wrap = resolve_wrap_classes(model, plugin.transformer_cls_names_to_wrap)
        logger.info("FSDP wraps %s", plugin.transformer_cls_names_to_wrap)
    freeze_tower(model, cfg.freeze)
    if cfg.gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    return model.train(), processor, family


@dataclass
class Run:
    """What the step loop and the checkpoint writers share (wired once by ``main``)."""

    cfg: TrainConfig
    accelerator: Accelerator
    module: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    loader: object
    set_data_epoch: object
    processor: object
    family: object
    benchmarks: dict | None
    state: ckpt.TrainerState
    stop_at: int
    warmup_steps: int
    train_log: object = None
    skipped: Counter = field(default_factory=Counter)
    last_eval_step: int = -1

    @property
    def out(self) -> Path:
        return Path(self.cfg.output_dir)

    def training_record(self) -> dict:
        """How this model was trained (``training_args.json`` of ``last/`` and ``best/``; the model card)."""
        cfg = self.cfg
        local_data = Path(cfg.train_data).exists()
        return {"step": self.state.step, "base_model": cfg.model, "base_model_is_local": Path(cfg.model).is_dir(),
                "base_model_family": self.family.describe(), "train_data": cfg.train_data,
                "train_data_is_local": local_data, "split": cfg.split, "max_steps": cfg.max_steps,
                "warmup_steps": self.warmup_steps, "samples": self.state.samples,
                "contrastive_batch": cfg.batch_size * self.accelerator.num_processes,
                "num_processes": self.accelerator.num_processes,
                "args": {k: v for k, v in asdict(cfg).items() if k not in ("push_to_hub", "hub_private")}}


def save_resumable(run: Run) -> None:
    run.accelerator.save_state(str(ckpt.step_dir(run.out, run.state.step)))
    if run.accelerator.is_main_process:
        ckpt.prune_checkpoints(run.out, run.cfg.checkpoints_total_limit)


def save_and_evaluate(run: Run) -> dict | None:
    """Write last/ (all ranks: FSDP gathers the weights), evaluate it on the main process, copy to best/."""
    accelerator, cfg, state = run.accelerator, run.cfg, run.state
    inner = accelerator.unwrap_model(run.module).model
    full_state = ckpt.strip_prefix(accelerator.get_state_dict(run.module), "model.")
    metrics = None
    if accelerator.is_main_process:
        record = run.training_record()
        last = ckpt.save_model_folder(inner, run.processor, run.out / "last", state_dict=full_state,
                                      training=record)
        if run.benchmarks is not None:
            if accelerator.distributed_type == DistributedType.FSDP:  # sharded in memory: use the saved copy
                from transformers import AutoModel

                eval_model = AutoModel.from_pretrained(last).to(accelerator.device)
            else:
                eval_model = inner
            results = evaluate_zeroshot(eval_model, run.processor, run.benchmarks, name=str(last),
                                        device=str(accelerator.device), templates=cfg.eval_templates,
                                        batch_size=cfg.eval_batch_size)
            results["training"] = {k: record[k] for k in ("step", "base_model", "train_data")}
            results["training"]["base_model_family"] = run.family.name
            ckpt.write_results(last, results)
            name, value = headline_metric(results)
            improved = ckpt.update_best(run.out, state, name, value)
            metrics = {**flat_metrics(results), "eval/best": state.best_metric}
            logger.info("step %d: %s = %.4f%s", state.step, name, value, " (best so far)" if improved else "")
            accelerator.log(metrics, step=state.step)
    accelerator.wait_for_everyone()
    return metrics


def log_step(run: Run, step_loss: float) -> None:
    """One ``train_log.jsonl`` line per optimizer step; the trackers every ``--log-every`` steps."""
    accelerator, state = run.accelerator, run.state
    inner = accelerator.unwrap_model(run.module).model
    record = {"step": state.step, "epoch": state.epoch, "loss": step_loss, "lr": run.scheduler.get_last_lr()[0],
              "logit_scale": _scalar(inner.logit_scale, exp=True), "logit_bias": _scalar(inner.logit_bias),
              "samples": state.samples, "skipped_rows": dict(run.skipped)}
    if run.train_log is not None:
        run.train_log.write(json.dumps(record) + "\n")
        run.train_log.flush()
    if state.step % run.cfg.log_every == 0 or state.step == run.stop_at:
        skip_total = accelerator.reduce(torch.tensor(sum(run.skipped.values()), device=accelerator.device),
                                        reduction="sum").item()
        scalars = {"train/loss": step_loss, "train/lr": record["lr"], "train/logit_scale": record["logit_scale"],
                   "train/logit_bias": record["logit_bias"], "train/samples": state.samples,
                   "data/skipped_rows": skip_total}
        accelerator.log({k: v for k, v in scalars.items() if v is not None}, step=state.step)
        logger.info("step %d/%d loss %.4f lr %.3g skipped rows %d", state.step, run.cfg.max_steps, step_loss,
                    record["lr"], skip_total)


def epoch_batches(run: Run):
    """This epoch's micro-batches, after those a resumed checkpoint already used."""
    cfg, state, loader = run.cfg, run.state, run.loader
    run.set_data_epoch(state.epoch)
    batches = loader
    if state.batches_in_epoch:
        if cfg.streaming:  # no random access: read and drop what this epoch already used
            logger.warning("streaming resume: re-reading %d micro-batches of epoch %d", state.batches_in_epoch,
                           state.epoch)
            batches = _drop(loader, state.batches_in_epoch)
        else:
            batches = run.accelerator.skip_first_batches(loader, state.batches_in_epoch)
    if hasattr(batches, "set_epoch"):
        batches.set_epoch(state.epoch)  # a prepared loader re-seeds its sampler from this
    return batches


def train_one_epoch(run: Run) -> bool:
    """Train until the epoch runs out (then move to the next; returns False) or ``stop_at`` is reached
    (returns True). Evaluates and checkpoints on the configured steps."""
    accelerator, cfg, state = run.accelerator, run.cfg, run.state
    resumed_within_epoch, used_in_epoch = state.batches_in_epoch, 0
    loss_sum, loss_count, rows_this_step = torch.zeros((), device=accelerator.device), 0, 0
    for batch in epoch_batches(run):
        state.batches_in_epoch += 1
        run.skipped.update(batch.get("skip_reasons", {}))
        n = min_over_ranks(accelerator, batch_rows(batch))
        if n == 0:  # every row of some rank's micro-batch was bad: all ranks skip it together
            run.skipped["empty_micro_batch"] += 1
            continue
        run.skipped["trimmed_to_common_size"] += batch_rows(batch) - n
        inputs = {k: v.to(accelerator.device) for k, v in model_inputs(batch, n).items()}
        used_in_epoch += 1
        with accelerator.accumulate(run.module):
            loss = run.module(**inputs)
            accelerator.backward(loss)
            if accelerator.sync_gradients and cfg.max_grad_norm > 0:
                accelerator.clip_grad_norm_(run.module.parameters(), cfg.max_grad_norm)
            run.optimizer.step()
            run.scheduler.step()
            run.optimizer.zero_grad()
        loss_sum += loss.detach().float()
        loss_count += 1
        rows_this_step += n * accelerator.num_processes
        if not accelerator.sync_gradients:
            continue
        state.step += 1
        state.samples += rows_this_step
        log_step(run, accelerator.reduce(loss_sum / loss_count, reduction="mean").item())
        loss_sum, loss_count, rows_this_step = torch.zeros((), device=accelerator.device), 0, 0
        state.skipped = dict(run.skipped)
        if cfg.eval_bench and state.step % cfg.eval_every == 0:
            save_and_evaluate(run)
            run.last_eval_step = state.step
        if cfg.checkpointing_steps and state.step % cfg.checkpointing_steps == 0 and state.step < run.stop_at:
            save_resumable(run)
        if state.step >= run.stop_at:
            return True
    if used_in_epoch == 0 and not resumed_within_epoch:
        raise RuntimeError(f"training data {cfg.train_data!r} gave no usable micro-batch of {cfg.batch_size} "
                           f"pairs per process in epoch {state.epoch} (skipped rows: {dict(run.skipped)})")
    state.epoch += 1
    state.batches_in_epoch = 0
    return False


def finish(run: Run) -> dict:
    """Final save and evaluation, the last resumable checkpoint, and the push."""
    cfg, state, accelerator = run.cfg, run.state, run.accelerator
    state.skipped = dict(run.skipped)
    if run.last_eval_step != state.step or not cfg.eval_bench:
        save_and_evaluate(run)
    save_resumable(run)
    summary = {"step": state.step, "samples": state.samples, "best_metric": state.best_metric,
               "best_step": state.best_step, "metric": state.metric_name, "skipped_rows_rank0": dict(run.skipped)}
    logger.info("finished: %s", summary)
    if run.train_log is not None:
        run.train_log.close()
    if cfg.push_to_hub and accelerator.is_main_process and state.step >= cfg.max_steps:
        folder = run.out / "best" if (run.out / "best").is_dir() else run.out / "last"
        url, _ = ckpt.push_model_folder(folder, cfg.push_to_hub, base_model=cfg.model,
                                        datasets=None if Path(cfg.train_data).exists() else [cfg.train_data],
                                        private=cfg.hub_private)
        logger.info("pushed %s to %s", folder, url)
    return summary


def build_loader(cfg: TrainConfig, accelerator: Accelerator, processor, family):
    with accelerator.main_process_first():  # one rank fills the datasets cache, the others read it
        ds = load_pairs(cfg.train_data, split=cfg.split, streaming=cfg.streaming, image_column=cfg.image_column,
                        caption_column=cfg.caption_column)
    collate = SiglipCollator(processor, family, image_column=cfg.image_column, caption_column=cfg.caption_column)
    return make_train_loader(ds, collate, batch_size=cfg.batch_size, seed=cfg.seed, num_workers=cfg.num_workers,
                             streaming=cfg.streaming, rank=accelerator.process_index,
                             world_size=accelerator.num_processes, shuffle_buffer=cfg.shuffle_buffer)


def prepare_run(cfg: TrainConfig, accelerator: Accelerator, model, processor, family, benchmarks) -> Run:
    """Data, loss, optimizer and schedule, prepared by accelerate; restored from a checkpoint when resuming."""
    loader, set_data_epoch = build_loader(cfg, accelerator, processor, family)
    module = ContrastiveSiglip(model, SigmoidLoss(accelerator.process_index, accelerator.num_processes,
                                                  exchange=cfg.loss_exchange))
    optimizer = build_optimizer(module, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    warmup = clamp_warmup(cfg.warmup_steps, cfg.max_steps)
    # A prepared scheduler steps once per process at each optimizer step (accelerate's convention),
    # so the step counts are given in those units.
    scheduler = build_scheduler(optimizer, warmup_steps=warmup * accelerator.num_processes,
                                total_steps=cfg.max_steps * accelerator.num_processes)
    if cfg.streaming:  # already sharded by split_dataset_by_node: the loader is not prepared
        module, optimizer, scheduler = accelerator.prepare(module, optimizer, scheduler)
    else:
        module, optimizer, loader, scheduler = accelerator.prepare(module, optimizer, loader, scheduler)
    state = ckpt.TrainerState()
    accelerator.register_for_checkpointing(state)
    resume = ckpt.resolve_resume(cfg.resume_from_checkpoint, cfg.output_dir)
    if resume is not None:
        accelerator.load_state(str(resume))
        logger.info("resumed from %s at step %d (epoch %d, batch %d)", resume, state.step, state.epoch,
                    state.batches_in_epoch)
    return Run(cfg, accelerator, module, optimizer, scheduler, loader, set_data_epoch, processor, family, benchmarks,
               state, stop_at=min(cfg.max_steps, cfg.stop_at_step or cfg.max_steps), warmup_steps=warmup,
               skipped=Counter(state.skipped), last_eval_step=state.step if resume is not None else -1)


def open_train_log(run: Run) -> None:
    """``train_log.jsonl`` on the main process, without the steps after the checkpoint (they are redone)."""
    run.out.mkdir(parents=True, exist_ok=True)
    if run.accelerator.is_main_process:
        ckpt.truncate_log(run.out / "train_log.jsonl", run.state.step)
        run.train_log = (run.out / "train_log.jsonl").open("a", encoding="utf-8")


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_args(argv)
    accelerator = build_accelerator(cfg)
    set_seed(cfg.seed)
    benchmarks = None  # evaluation data first: a bad benchmark spec fails before any training
    if cfg.eval_bench and accelerator.is_main_process:
        from waon_hf.eval.zeroshot import load_benchmarks

        benchmarks = load_benchmarks(parse_eval_bench(cfg.eval_bench))
    model, processor, family = load_for_training(cfg, accelerator)
    run = prepare_run(cfg, accelerator, model, processor, family, benchmarks)
    if cfg.report_to != "none":
        accelerator.init_trackers("finetune_siglip2", config={k: (v if isinstance(v, int | float | str | bool)
                                                                  else str(v)) for k, v in asdict(cfg).items()})
    logger.info("training to step %d of %d: %d pairs per contrastive batch (%d x %d processes), "
                "%d micro-batch(es) per step", run.stop_at, cfg.max_steps, cfg.batch_size * accelerator.num_processes,
                cfg.batch_size, accelerator.num_processes, cfg.gradient_accumulation_steps)
    open_train_log(run)
    done = run.state.step >= run.stop_at
    while not done:
        done = train_one_epoch(run)
    summary = finish(run)
    accelerator.end_training()
    return summary


def _scalar(param: torch.Tensor, exp: bool = False) -> float | None:
    """A 1-element parameter as a float; None where FSDP holds only a shard of it on this rank."""
    if param.numel() != 1:
        return None
    value = param.detach().float()
    return float(value.exp() if exp else value)


def _drop(loader, n: int):
    for i, batch in enumerate(loader):
        if i >= n:
            yield batch


if __name__ == "__main__":
    main()
