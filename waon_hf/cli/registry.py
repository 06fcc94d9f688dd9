"""The ``waon`` command registry: each command module registers ``name -> (add_arguments, run)``.

:func:`main` owns what every command shares: ``--version``, ``-q``/``-v``/``-vv`` (the ``waon_hf``
logger only; other libraries' loggers are left as they are), and the exit codes: 0 done, 1 the run
failed (one line saying why), 2 a usage or config error (nothing was started), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

logger = logging.getLogger("waon_hf")

AddArguments = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[AddArguments, Run]] = {}

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
# Errors a run reports in one line: bad inputs, unreachable files, failed shards.
EXPECTED_ERRORS = (ValueError, FileNotFoundError, OSError, RuntimeError)


def command(name: str, add_arguments: AddArguments):
    """Decorator: register ``run(args) -> exit code`` as ``waon NAME``; its docstring is the help."""
    def wrap(run: Run) -> Run:
        if name in COMMANDS:
            raise ValueError(f"command {name!r} registered twice")
        COMMANDS[name] = (add_arguments, run)
        return run
    return wrap


class HelpFormatter(argparse.HelpFormatter):
    """Each option's help ends with its default, unless the help states it or there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        default = action.default
        if (default is None or default is False or default == [] or default == argparse.SUPPRESS
                or "default" in help_text.lower()
                or not action.option_strings):
            return help_text
        return f"{help_text} (default: %(default)s)"


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("waon_hf")
    except PackageNotFoundError:  # run from a checkout that is not installed
        import waon_hf

        return waon_hf.__version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="waon", formatter_class=HelpFormatter,
        description="Build Japanese image-text datasets from Common Crawl, Hugging Face-native.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more logging: -v progress messages (INFO), -vv debug and tracebacks (DEBUG)")
    parser.add_argument("-q", "--quiet", action="store_true", help="errors only: no warnings, no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add_arguments, run) in COMMANDS.items():
        doc = (run.__doc__ or "").strip()
        add_arguments(sub.add_parser(name, help=doc or None, description=doc or None, formatter_class=HelpFormatter))
    return parser


def log_level(verbose: int, quiet: bool) -> int:
    if quiet:
        return logging.ERROR
    return {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)


class _CliHandler(logging.StreamHandler):
    """The one handler :func:`configure_logging` installs (replaced, not stacked, on a second call)."""


def configure_logging(level: int) -> None:
    """Log records of ``waon_hf`` (and only those) to stderr at ``level``; the root logger is untouched,
    so a library warning is printed once, by whoever configured it (or Python's last-resort handler)."""
    package = logging.getLogger("waon_hf")
    for handler in [h for h in package.handlers if isinstance(h, _CliHandler)]:
        package.removeHandler(handler)
    handler = _CliHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    package.addHandler(handler)
    package.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(log_level(args.verbose, args.quiet))
    if not args.quiet:
        return _run(args)
    previous = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # read by every tqdm bar created during the run
    try:
        return _run(args)
    finally:  # main() called in-process (tests, notebooks) leaves the environment as it found it
        if previous is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = previous


def _run(args: argparse.Namespace) -> int:
    import datasets

    from waon_hf.config import ConfigError

    datasets.disable_progress_bars()  # our own bars show shard progress; per-step bars are noise
    datasets.logging.set_verbosity_error()
    _, run = COMMANDS[args.command]
    try:
        return run(args)
    except KeyboardInterrupt:
        print("waon: interrupted (finished shards are kept: run the same command again to resume)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ConfigError as e:
        logger.error("%s", e)
        return EXIT_USAGE
    except EXPECTED_ERRORS as e:
        logger.debug("traceback:", exc_info=True)
        logger.error("%s", e)
        return EXIT_FAILED
    except Exception as e:  # a bug, or an error nobody anticipated: one line, the traceback with -vv
        logger.debug("traceback:", exc_info=True)
        hint = "" if args.verbose >= 2 else " (run with -vv for the traceback)"
        logger.error("unexpected %s: %s%s", type(e).__name__, e, hint)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
