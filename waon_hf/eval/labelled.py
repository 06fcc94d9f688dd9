"""Classification benchmarks with integer labels and Japanese class names shipped as data.

ImageNet-1k, CIFAR-10, CIFAR-100, Food-101 and Caltech-101 as llm-jp-clip evaluates them: the Hub
dataset's images and ``ClassLabel`` column, and the Japanese names of
``waon_hf/data/classnames/<name>.json`` (sources and licences in ``SOURCES.md`` there). A list keyed
by ``label_name`` is matched against the dataset's ``ClassLabel`` names (a name it lacks is an
error, so a renamed label cannot silently shift every class); one keyed by ``index`` must have one
entry per class.

Each loader reads its canonical Hub id by default, or ``NAME=SOURCE`` (a folder or data file with
the same columns: the stand-ins in ``samples/standins/`` are such copies).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from waon_hf.eval.benchmarks import ClassificationTask, ImageColumn, Task, load_table, register


@dataclass(frozen=True)
class LabelledBenchmark:
    name: str
    hub_id: str
    split: str
    classnames: str  # file stem in waon_hf/data/classnames
    description: str


LABELLED = (
    LabelledBenchmark("imagenet-1k", "ILSVRC/imagenet-1k", "validation", "imagenet1k",
                      "ImageNet-1k validation (50,000 images, gated on the Hub), Japanese names of japanese-clip"),
    LabelledBenchmark("cifar10", "uoft-cs/cifar10", "test", "cifar10",
                      "CIFAR-10 test (10,000 images), class names translated into Japanese (llm-jp/clip-eval)"),
    LabelledBenchmark("cifar100", "uoft-cs/cifar100", "test", "cifar100",
                      "CIFAR-100 test (10,000 images, fine labels), Japanese class names (llm-jp/clip-eval)"),
    LabelledBenchmark("food101", "ethz/food101", "validation", "food101",
                      "Food-101 validation (25,250 images), Japanese class names (llm-jp/clip-eval)"),
    LabelledBenchmark("caltech101", "flwrlabs/caltech101", "train", "caltech101",
                      "Caltech-101 (its only split, 8,677 images), Japanese class names (llm-jp/clip-eval)"),
)
IMAGE_COLUMNS = ("image", "img")


@cache
def class_name_list(stem: str) -> dict:
    """The parsed ``waon_hf/data/classnames/<stem>.json``."""
    text = resources.files("waon_hf.data").joinpath("classnames", f"{stem}.json").read_text(encoding="utf-8")
    return json.loads(text)


def japanese_names(stem: str, label_names: list[str] | None, n_classes: int) -> list[str]:
    """Japanese name of each class index, from the list ``stem`` and the dataset's label names."""
    doc = class_name_list(stem)
    if doc["keyed_by"] == "index":
        if len(doc["names"]) != n_classes:
            raise ValueError(f"{stem}: {len(doc['names'])} Japanese names for {n_classes} classes")
        return [n["ja"] for n in doc["names"]]
    if label_names is None:
        raise ValueError(f"{stem}: the label column must be a ClassLabel (its names select the Japanese names)")
    mapping = {n["en"]: n["ja"] for n in doc["names"]}
    unknown = [n for n in label_names if n not in mapping]
    if unknown:
        raise ValueError(f"{stem}: no Japanese name for label(s) {unknown[:5]} (list from {doc['source']['repo']})")
    return [mapping[n] for n in label_names]


def labelled_task(spec: LabelledBenchmark, source: str) -> ClassificationTask:
    import datasets

    hub_split = spec.split if source == spec.hub_id else None
    table, base, desc = load_table(source, prefer_splits=(spec.split, "test", "validation", "train"),
                                   hub_split=hub_split)
    label_col = class_name_list(spec.classnames)["label_column"]
    if label_col not in table.column_names:
        raise ValueError(f"{desc}: no label column {label_col!r} (found {table.column_names})")
    image_col = next((c for c in IMAGE_COLUMNS if c in table.column_names), None)
    if image_col is None:
        raise ValueError(f"{desc}: no image column (expected one of {list(IMAGE_COLUMNS)}, found {table.column_names})")
    if image_col != "image":
        table = table.rename_column(image_col, "image")
    feature = table.features[label_col]
    label_names = feature.names if isinstance(feature, datasets.ClassLabel) else None
    n_classes = len(label_names) if label_names else int(max(table[label_col])) + 1
    class_names = japanese_names(spec.classnames, label_names, n_classes)
    labels = np.asarray(table[label_col], dtype=np.int64)
    if len(labels) and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise ValueError(f"{desc}: labels outside 0..{len(class_names) - 1}")
    return ClassificationTask(name=spec.name, source=desc, class_names=class_names, labels=labels,
                              images=ImageColumn(table.select_columns(["image"]), base_dir=base, source=desc))


def _register(spec: LabelledBenchmark) -> None:
    @register(spec.name, spec.hub_id, spec.description)
    def load(source: str) -> list[Task]:
        return [labelled_task(spec, source)]


for _spec in LABELLED:
    _register(_spec)
