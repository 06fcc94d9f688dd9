"""`waon publish`: a dataset, model or benchmark folder to the Hub, with its card."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from waon_hf.cli.registry import command
from waon_hf.config import ConfigError
from waon_hf.publish.model_card import render_benchmark_card, render_model_card
from waon_hf.publish.upload import (
    allow_patterns_for,
    files_to_upload,
    human_size,
    ignore_patterns_for,
    upload_folder_to_hub,
)


def add_publish_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", choices=("dataset", "model", "benchmark"), help="what the folder holds")
    p.add_argument("folder", metavar="DIR", help="dataset folder (data/ + README.md), model folder (config.json...) "
                   "or benchmark folder (parquet with class/category; its card is rendered)")
    p.add_argument("--repo", required=True, help="Hub repo id, org/name")
    p.add_argument("--results", action="append", default=[], metavar="JSON",
                   help="model: `waon eval` results file for the card's model-index (repeatable; none: no numbers)")
    p.add_argument("--base-model", help="model: the Hub id it was fine-tuned from")
    p.add_argument("--dataset", action="append", default=[], dest="datasets", metavar="REPO_ID",
                   help="model: Hub id of a training dataset (repeatable)")
    p.add_argument("--license", default="other", help="model, benchmark: licence id for the card (default other)")
    p.add_argument("--license-name", help="with --license other: a short name of the terms (card metadata "
                   "license_name; default: see-licence-section)")
    p.add_argument("--license-link", help="with --license other: a URL or a file of the repo with the terms "
                   "(card metadata license_link; default: README.md, whose licence section states them)")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--dry-run", action="store_true", help="print the files that would be uploaded and the card; "
                   "write and upload nothing")


@command("publish", add_publish_arguments)
def run_publish(args: argparse.Namespace, api=None) -> int:
    """Publish a dataset or model folder to the Hub (repo creation, card, resumable upload)."""
    folder = Path(args.folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    if args.repo.count("/") != 1:
        raise ValueError(f"--repo must be org/name, got {args.repo!r}")
    _refuse_flags_of_other_kinds(args)
    readme = folder / "README.md"
    if args.kind == "model":
        results = args.results or _recorded_results(folder)
        card_text = str(render_model_card(folder, results, args.repo, args.base_model, datasets=args.datasets,
                                          license=args.license, license_name=args.license_name,
                                          license_link=args.license_link))
    elif args.kind == "benchmark":
        card_text = str(render_benchmark_card(folder, args.repo, license=args.license, license_name=args.license_name,
                                              license_link=args.license_link))
    else:
        if not readme.is_file():
            raise FileNotFoundError(f"{readme}: no dataset card (run `waon extract`/`waon build` to make one)")
        card_text = readme.read_text(encoding="utf-8")
        card_text = re.sub(r'load_dataset\("<org>/[^"]*"', f'load_dataset("{args.repo}"', card_text)
    patterns, allowed = ignore_patterns_for(args.kind), allow_patterns_for(args.kind)
    files = [(f, s) for f, s in files_to_upload(folder, patterns, allowed) if f != "README.md"]
    files = sorted([*files, ("README.md", len(card_text.encode("utf-8")))])  # the card as it will be written
    total = sum(s for _, s in files)
    if args.dry_run:
        print(f"dry run: would upload {len(files)} file(s), {human_size(total)}, to {args.kind} repo {args.repo}"
              f"{' (private)' if args.private else ''}; "
              + (f"only: {', '.join(allowed)}" if allowed else f"ignored: {', '.join(patterns)}"))
        for path, size in files:
            print(f"{size:>12,}  {path}")
        print("\n--- README.md ---")
        print(card_text)
        return 0
    readme.write_text(card_text, encoding="utf-8")
    repo_type = "model" if args.kind == "model" else "dataset"  # a benchmark is a dataset repo
    url, commit = upload_folder_to_hub(folder, args.repo, repo_type, private=args.private, api=api, kind=args.kind)
    print(f"uploaded {len(files)} file(s), {human_size(total)}, to {url}")
    return 0


MODEL_ONLY_FLAGS = {"results": "--results", "base_model": "--base-model", "datasets": "--dataset"}


def _refuse_flags_of_other_kinds(args: argparse.Namespace) -> None:
    """Model-only flags (and licence flags, which a dataset's card fixes itself) given for another kind."""
    given = [flag for name, flag in MODEL_ONLY_FLAGS.items() if getattr(args, name)] if args.kind != "model" else []
    if args.kind == "dataset":
        licence = (("--license", args.license != "other"), ("--license-name", args.license_name),
                   ("--license-link", args.license_link))
        given += [flag for flag, value in licence if value]
    if given:
        raise ConfigError(f"{', '.join(given)} do not apply to publish {args.kind}")


def _recorded_results(folder: Path) -> list[str]:
    """The ``eval_results.json`` training wrote into the model folder (``last/``, ``best/``), if any."""
    recorded = folder / "eval_results.json"
    return [str(recorded)] if recorded.is_file() else []
