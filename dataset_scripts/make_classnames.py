"""Write the Japanese class-name lists in ``waon_hf/data/classnames/`` from their public sources.

    python dataset_scripts/make_classnames.py --japanese-clip PATH/TO/japanese-clip \
        --clip-eval PATH/TO/clip-eval -o waon_hf/data/classnames

* ImageNet-1k: ``src/japanese_clip/utils/imagenet_zeroshot_data.py`` of rinnakk/japanese-clip
  (Apache-2.0): ``imagenet_classnames``, a list of ``{"en", "ja"}`` in class-index order.
* CIFAR-10, CIFAR-100, Food-101, Caltech-101: ``src/clip_eval/dataset/<name>.py`` of
  llm-jp/clip-eval (Apache-2.0, the evaluation code of llm-jp-clip): ``LABEL_MAPPING``, the Hub
  dataset's English label name -> Japanese.

The source files are read with ``ast.literal_eval`` (nothing is executed). The lists are copied as
published, mistakes included (see SOURCES.md); the commit of each source is recorded in the JSON.
"""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

JAPANESE_CLIP = ("rinnakk/japanese-clip", "src/japanese_clip/utils/imagenet_zeroshot_data.py")
CLIP_EVAL = {
    "cifar10": ("uoft-cs/cifar10", "label"),
    "cifar100": ("uoft-cs/cifar100", "fine_label"),
    "food101": ("ethz/food101", "label"),
    "caltech101": ("flwrlabs/caltech101", "label"),
}


def assignment(path: Path, name: str):
    """The literal value assigned to ``name`` at the top level of a Python file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise ValueError(f"{path}: no top-level {name} = ...")


def write(out: Path, name: str, doc: dict) -> None:
    (out / f"{name}.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--japanese-clip", type=Path, required=True, help="a checkout of rinnakk/japanese-clip")
    p.add_argument("--japanese-clip-commit", required=True)
    p.add_argument("--clip-eval", type=Path, required=True, help="a checkout of llm-jp/clip-eval")
    p.add_argument("--clip-eval-commit", required=True)
    p.add_argument("-o", "--output", type=Path, default=Path("waon_hf/data/classnames"))
    args = p.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    repo, path = JAPANESE_CLIP
    names = assignment(args.japanese_clip / path, "imagenet_classnames")
    write(args.output, "imagenet1k", {
        "benchmark": "imagenet-1k", "dataset": "ILSVRC/imagenet-1k", "label_column": "label", "keyed_by": "index",
        "source": {"repo": repo, "path": path, "commit": args.japanese_clip_commit, "license": "Apache-2.0"},
        "names": [{"en": n["en"], "ja": n["ja"]} for n in names],
    })
    for name, (dataset, column) in CLIP_EVAL.items():
        path = f"src/clip_eval/dataset/{name}.py"
        mapping = assignment(args.clip_eval / path, "LABEL_MAPPING")
        write(args.output, name, {
            "benchmark": name, "dataset": dataset, "label_column": column, "keyed_by": "label_name",
            "source": {"repo": "llm-jp/clip-eval", "path": path, "commit": args.clip_eval_commit,
                       "license": "Apache-2.0"},
            "names": [{"en": en, "ja": ja} for en, ja in mapping.items()],
        })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
