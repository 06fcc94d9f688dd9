"""An import-linter contract type: no module imports a private name (``_x``) of another module.

``from waon_hf.runner import _write_shard`` couples two modules through a name that one of them
declared internal; the fix is to make the name public (and document it) or keep the code together.
Dunder names (``__version__``) are public by convention and allowed.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from importlinter import Contract, ContractCheck, fields, output


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_files(package: str) -> list[tuple[str, Path]]:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"{package}: not an importable package")
    root = Path(next(iter(spec.submodule_search_locations)))
    out = []
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append((".".join(parts), path))
    return out


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


class PrivateNamesContract(Contract):
    """Configuration: ``containers``, the packages whose modules are checked (and whose names count)."""

    type_name = "private_names"
    containers = fields.ListField(subfield=fields.StringField())

    def check(self, graph, verbose: bool) -> ContractCheck:
        violations = []
        for container in self.containers:
            for module, path in _module_files(container):
                tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
                for node in ast.walk(tree):
                    if not isinstance(node, ast.ImportFrom):
                        continue
                    source = _resolve(module, node, path.name == "__init__.py")
                    if not source.startswith(tuple(self.containers)) or source == module:
                        continue
                    for alias in node.names:
                        if _private(alias.name):
                            violations.append(f"{module} (line {node.lineno}) imports {alias.name} from {source}")
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for line in check.metadata["violations"]:
            output.print_error(f"- {line}", bold=False)
        output.new_line()
        output.print("Make the name public (no leading underscore) or keep the code in one module.")
