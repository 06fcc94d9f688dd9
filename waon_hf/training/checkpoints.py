"""Checkpoints of a training run under ``OUTPUT_DIR``::

    checkpoints/step_00001000/   accelerate save_state: model, optimizer, scheduler, RNG, TrainerState
    last/                        save_pretrained (safetensors) + processor + eval_results.json
                                 + training_args.json (base model, its family, training data, arguments)
    best/                        a copy of last/ when its eval metric was the best so far
    train_log.jsonl              one line of metrics per optimizer step (main process)

``last`` and ``best`` reload with ``AutoModel.from_pretrained(dir)``; the ``checkpoints/`` folders are
for ``--resume-from-checkpoint`` only.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

CHECKPOINTS_DIR = "checkpoints"
STEP_DIR = re.compile(r"^step_(\d+)$")
RESULTS_FILE = "eval_results.json"
TRAINING_FILE = "training_args.json"  # how the folder's model was trained (base model, family, data)


@dataclass
class TrainerState:
    """What save_state does not know: progress through the data, the best metric, skip counts.

    Registered with ``accelerator.register_for_checkpointing``, so it is saved and restored with the
    model, optimizer, scheduler and RNG states."""

    step: int = 0  # optimizer steps done
    epoch: int = 0
    batches_in_epoch: int = 0  # micro-batches of ``epoch`` already consumed (skipped on resume)
    samples: int = 0  # training pairs seen, all ranks
    best_metric: float | None = None
    best_step: int | None = None
    metric_name: str | None = None
    skipped: dict = field(default_factory=dict)  # reason -> rows skipped on this rank

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def step_dir(output_dir: str | Path, step: int) -> Path:
    return Path(output_dir) / CHECKPOINTS_DIR / f"step_{step:08d}"


def list_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    root = Path(output_dir) / CHECKPOINTS_DIR
    found = [(int(m.group(1)), p) for p in root.glob("step_*") if p.is_dir() and (m := STEP_DIR.match(p.name))]
    return sorted(found)


def resolve_resume(value: str | None, output_dir: str | Path) -> Path | None:
    """``latest`` -> the highest step under ``output_dir/checkpoints`` (None when there is none yet,
    so a preemptible job can always pass ``latest``); a path -> that folder, which must exist."""
    if not value:
        return None
    if value == "latest":
        found = list_checkpoints(output_dir)
        if not found:
            logger.info("--resume-from-checkpoint latest: no checkpoint in %s yet; starting from scratch", output_dir)
            return None
        return found[-1][1]
    path = Path(value)
    if not path.is_dir():
        raise FileNotFoundError(f"--resume-from-checkpoint {value}: no such folder")
    return path


def prune_checkpoints(output_dir: str | Path, keep: int | None) -> list[Path]:
    """Delete all but the ``keep`` newest step checkpoints; returns the deleted folders."""
    if not keep:
        return []
    old = [p for _, p in list_checkpoints(output_dir)[:-keep]]
    for p in old:
        shutil.rmtree(p)
        logger.info("removed old checkpoint %s", p)
    return old


def save_model_folder(model, processor, folder: str | Path, state_dict: dict | None = None,
                      training: dict | None = None) -> Path:
    """``save_pretrained`` in safetensors + the processor (+ ``training_args.json`` from ``training``: the
    base model, its family and the training data, for the model card), written to a temporary folder
    then renamed, so a crash never leaves a half-written ``last``/``best``."""
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp, state_dict=state_dict, safe_serialization=True)
    processor.save_pretrained(tmp)
    if training is not None:
        (tmp / TRAINING_FILE).write_text(json.dumps(training, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    replace_folder(tmp, folder)
    return folder


def replace_folder(src: Path, dst: Path) -> None:
    old = dst.with_name(dst.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if dst.exists():
        dst.rename(old)
    src.rename(dst)
    if old.exists():
        shutil.rmtree(old)


def write_results(folder: str | Path, results: dict) -> Path:
    path = Path(folder) / RESULTS_FILE
    path.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def update_best(output_dir: str | Path, state: TrainerState, metric_name: str, value: float) -> bool:
    """Copy ``last`` to ``best`` when ``value`` beats the best so far (higher is better)."""
    if state.best_metric is not None and value <= state.best_metric:
        return False
    out = Path(output_dir)
    tmp = out / "best.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(out / "last", tmp)
    replace_folder(tmp, out / "best")
    state.best_metric, state.best_step, state.metric_name = value, state.step, metric_name
    return True


def truncate_log(path: str | Path, step: int) -> int:
    """Keep the lines of a ``train_log.jsonl`` up to ``step`` (a run that died after its last checkpoint
    logged steps that the resumed run does again); returns the number of lines dropped."""
    path = Path(path)
    if not path.is_file():
        return 0
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= step]
    if len(kept) != len(lines):
        path.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
    return len(lines) - len(kept)


def strip_prefix(state_dict: dict, prefix: str) -> dict:
    """The inner model's keys from the training wrapper's state dict (``model.`` prefix removed)."""
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


def push_model_folder(folder: str | Path, repo_id: str, *, base_model: str | None, datasets: list[str] | None,
                      private: bool = False, api=None):
    """Model card from the folder's real ``eval_results.json`` (none: a card without numbers), then upload."""
    from waon_hf.publish.model_card import render_model_card
    from waon_hf.publish.upload import upload_folder_to_hub

    folder = Path(folder)
    results = [folder / RESULTS_FILE] if (folder / RESULTS_FILE).is_file() else []
    if not results:
        logger.warning("%s has no %s: the model card will carry no evaluation results", folder, RESULTS_FILE)
    card = render_model_card(folder, results, repo_id, base_model, datasets=datasets)
    (folder / "README.md").write_text(str(card), encoding="utf-8")
    return upload_folder_to_hub(folder, repo_id, "model", private=private, api=api)
