"""Options every command that writes a dataset shares, defined once: output (a folder or a URL),
work dir, overwrite, name, config, workers and executor; and the end-of-run summary."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from waon_hf.config import ConfigError
from waon_hf.funnel import funnel_markdown
from waon_hf.pipeline.executors import EXECUTORS, RayExecutor, make_executor
from waon_hf.pipeline.layout import ShardLayout, read_pipeline
from waon_hf.publish.remote_output import hub_repo, local_folder_for, upload_dataset
from waon_hf.stats import Stats

logger = logging.getLogger(__name__)


def int_at_least(low: int):
    """An argparse ``type``: a whole number >= ``low`` (a bad value is a usage error, exit 2)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value
    parse.__name__ = f"int >= {low}"
    return parse


def int_in(low: int, high: int):
    """An argparse ``type``: a whole number in ``[low, high]``."""
    at_least = int_at_least(low)

    def parse(text: str) -> int:
        value = at_least(text)
        if value > high:
            raise argparse.ArgumentTypeError(f"must be <= {high}, got {value}")
        return value
    parse.__name__ = f"int in [{low}, {high}]"
    return parse


def float_in(low: float, high: float | None = None):
    """An argparse ``type``: a number in ``[low, high]`` (``high`` None: no upper bound)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (value >= low and (high is None or value <= high)):  # also refuses nan
            raise argparse.ArgumentTypeError(f"must be in [{low}, {high if high is not None else 'inf'}], got {text}")
        return value
    parse.__name__ = "number"
    return parse


def add_output_options(p: argparse.ArgumentParser) -> None:
    """``-o`` (a folder, or an fsspec URL the finished dataset is uploaded to), ``--work-dir``,
    ``--overwrite``, ``--name``."""
    p.add_argument("-o", "--output", required=True, help="output folder (Hub-ready: data/*.parquet + README.md), or "
                   "an fsspec URL (s3://bucket/waon/, hf://datasets/org/name) the finished dataset is uploaded to")
    p.add_argument("--work-dir", help="with a URL -o: local folder to build in (default under ~/.cache/waon/)")
    p.add_argument("--overwrite", action="store_true", help="discard a previous run in the output folder")
    p.add_argument("--name", help="dataset name shown in the card")


def add_config_option(p: argparse.ArgumentParser, what: str = "steps and thresholds") -> None:
    p.add_argument("--config", help=f"YAML build config ({what}); defaults are WAON's")


def add_executor_options(p: argparse.ArgumentParser) -> None:
    """``--workers``, ``--executor``, ``--ray-address``, ``--ray-gpus-per-task``."""
    p.add_argument("--workers", type=int_at_least(1), default=1,
                   help="processes, one shard (input file) each at a time")
    p.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local: --workers processes on this machine; ray: one Ray task per shard")
    p.add_argument("--ray-address", default=None,
                   help="Ray cluster to join (auto, or ray://head:10001); default: start a local instance. "
                        "Workers write to the output (or --work-dir) folder: it must be shared storage")
    p.add_argument("--ray-gpus-per-task", type=float_in(0), default=0,
                   help="GPUs one shard task reserves (e.g. 1 for `score --device cuda` on a GPU cluster)")


def auto_device() -> str:
    """``--device auto``: cuda when torch sees a CUDA device here, else cpu (logged)."""
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    device = "cuda" if cuda else "cpu"
    logger.info("--device auto: %s (CUDA %s)", device, "available" if cuda else "not available")
    return device


def executor_from_args(args: argparse.Namespace):
    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    if args.ray_address and args.executor != "ray":
        raise ConfigError("--ray-address needs --executor ray")
    executor = make_executor(args.executor, workers=args.workers, ray_address=args.ray_address)
    gpus = getattr(args, "ray_gpus_per_task", 0)
    if gpus:
        if not isinstance(executor, RayExecutor):
            raise ConfigError("--ray-gpus-per-task needs --executor ray")
        executor.num_gpus = gpus
    return executor


def output_folder(args: argparse.Namespace) -> tuple[Path, str | None]:
    """``(local folder the run writes, URL to upload it to or None)``, checked before any work: for
    ``hf://`` the repo id and that a token is available (a run must not end in a refused upload)."""
    try:
        folder, url = local_folder_for(args.output, args.work_dir)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if url is not None and url.startswith("hf://"):
        check_hub_output(url)
    return folder, url


def check_hub_output(url: str) -> None:
    """A well-formed ``hf://datasets/org/name`` and a token to upload with (never shown)."""
    from huggingface_hub import get_token
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    repo = hub_repo(url)
    try:
        validate_repo_id(repo)
    except HFValidationError as e:
        raise ConfigError(f"-o {url}: {repo!r} is not a Hub repo id ({e})") from None
    if not get_token():
        raise ConfigError(f"-o {url}: uploading needs a Hugging Face token: run `hf auth login` or set HF_TOKEN "
                          "(or write to a local folder and `waon publish dataset` it later)")


def finish_output(folder: Path, url: str | None) -> None:
    """Upload the finished dataset when ``-o`` was a URL, and say what happened."""
    if url is None:
        return
    report = upload_dataset(folder, url)
    print(f"\n{url}: {report} (built in {folder})")


def input_name(folder: str | Path) -> str:
    """The dataset name recorded by the stage that wrote ``folder`` (``waon`` if none)."""
    return (read_pipeline(folder) or {}).get("name") or "waon"


def input_note(folder: str | Path) -> str:
    """The note (e.g. "built from the synthetic sample") carried by the stage that wrote ``folder``."""
    return (read_pipeline(folder) or {}).get("note") or ""


def print_summary(stats: Stats, folder: Path, args: argparse.Namespace, url: str | None, next_hint: str = "",
                  what: str = "rows") -> None:
    """The end of every dataset-writing command: the funnel, the upload, the rows written."""
    print(funnel_markdown(stats))
    finish_output(folder, url)
    rows = ShardLayout(folder).final_rows()
    where = args.output.rstrip("/")
    if rows:
        print(f"\n{rows:,} {what} written to {where}/data (load with datasets.load_dataset({args.output!r}))"
              + (f"; next: {next_hint}" if next_hint else ""))
    else:
        one = what[:-1] if what.endswith("s") else what
        print(f"\nNo {one} survived: {where}/data holds an empty table with the schema "
              "(datasets cannot load an empty split; see the funnel above for where rows went).")


def read_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))
