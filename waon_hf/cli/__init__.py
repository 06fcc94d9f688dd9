"""The ``waon`` command line: one module per command group, registered in :mod:`waon_hf.cli.registry`.

No library module imports this package; it only wires flags to the library.
"""

from waon_hf.cli import compare, crawl, documents, eval, images, publish, relaion  # noqa: F401  (register the commands)
from waon_hf.cli.registry import COMMANDS, build_parser, main

__all__ = ["COMMANDS", "build_parser", "main"]
