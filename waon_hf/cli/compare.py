"""`waon compare`: finished datasets side by side (funnels, URL overlap, caption-length and score distributions)."""

from __future__ import annotations

import argparse
from pathlib import Path

from waon_hf.cli.registry import command


def _compare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("folders", nargs="+", metavar="DIR", help="finished dataset folders (e.g. one per recipe)")
    p.add_argument("--output", "-o", metavar="FILE", help="also write the tables to this Markdown file")


@command("compare", _compare_args)
def run_compare(args: argparse.Namespace) -> int:
    """Print the funnels of two or more datasets side by side, their kept-URL overlap and distributions."""
    from waon_hf.compare import compare_markdown

    text = compare_markdown(args.folders)
    print(text)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    return 0
