"""The ``waon`` command registry: each command module registers ``name -> (add_arguments, run)``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

logger = logging.getLogger("waon_hf")

AddArguments = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[AddArguments, Run]] = {}


def command(name: str, add_arguments: AddArguments):
    """Decorator: register ``run(args) -> exit code`` as ``waon NAME``; its docstring is the help."""
    def wrap(run: Run) -> Run:
        if name in COMMANDS:
            raise ValueError(f"command {name!r} registered twice")
        COMMANDS[name] = (add_arguments, run)
        return run
    return wrap


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="waon",
        description="Build Japanese image-text datasets from Common Crawl, Hugging Face-native.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add_arguments, run) in COMMANDS.items():
        doc = (run.__doc__ or "").strip()
        add_arguments(sub.add_parser(name, help=doc or None, description=doc or None))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose + 1, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    import datasets

    datasets.disable_progress_bars()  # our own bars show shard progress; per-step bars are noise
    datasets.logging.set_verbosity_error()
    _, run = COMMANDS[args.command]
    try:
        return run(args)
    except (ValueError, FileNotFoundError, OSError, RuntimeError) as e:
        logger.error("%s", e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
