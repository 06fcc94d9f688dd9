"""Job configuration from YAML: the defaults are WAON's thresholds, a file overrides them.

```yaml
extract: {langid: pycld2, kana_precheck: true, min_img_side: 10}
max_payload_bytes: 5242880
steps:                      # replaces the whole caption pipeline, in this order
  - normalize_caption: {}
  - caption_length: {min_chars: 5, max_chars: 512}
  - japanese_caption: {allow_kanji_only: false}
dedup: {columns: [url, caption], memory_limit: 2GB}
```
"""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml

from waon_hf.runner import ExtractJob
from waon_hf.steps import text_filters  # noqa: F401  (registers the caption steps)
from waon_hf.steps.base import build_step
from waon_hf.steps.dedup import ExactDedup
from waon_hf.steps.extract import ExtractConfig

_TOP_LEVEL = {"extract", "max_payload_bytes", "steps", "dedup", "dataset_name", "card_note"}
# Sections for the later stages of `waon build` (see waon_hf.build); `waon extract` ignores them.
_LATER_STAGES = {"download", "image_quality", "image_dedup", "nsfw", "siglip"}


def _dataclass_from(cls, values: dict[str, Any] | None, where: str):
    values = dict(values or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"{where}: unknown option(s) {sorted(unknown)}; options: {sorted(names)}")
    if "columns" in values:
        values["columns"] = tuple(values["columns"])
    return cls(**values)


def job_from_dict(config: dict[str, Any]) -> ExtractJob:
    config = {k: v for k, v in config.items() if k not in _LATER_STAGES}
    unknown = set(config) - _TOP_LEVEL
    if unknown:
        raise ValueError(f"config: unknown key(s) {sorted(unknown)}; keys: {sorted(_TOP_LEVEL | _LATER_STAGES)}")
    job = ExtractJob()
    if "extract" in config:
        job.extract = _dataclass_from(ExtractConfig, config["extract"], "extract")
    if "steps" in config:
        steps = []
        for entry in config["steps"]:
            if isinstance(entry, str):
                entry = {entry: {}}
            if not isinstance(entry, dict) or len(entry) != 1:
                raise ValueError(f"steps: each entry is 'name' or {{name: {{options}}}}, got {entry!r}")
            (name, options), = entry.items()
            options = dict(options or {})
            if "columns" in options:
                options["columns"] = tuple(options["columns"])
            steps.append(build_step(name, **options))
        job.steps = steps
    if "dedup" in config:
        job.dedup = _dataclass_from(ExactDedup, config["dedup"], "dedup")
    for key in ("max_payload_bytes", "dataset_name", "card_note"):
        if key in config:
            setattr(job, key, config[key])
    return job


def load_job(path: str | None) -> ExtractJob:
    if not path:
        return ExtractJob()
    with open(path, encoding="utf-8") as f:
        return job_from_dict(yaml.safe_load(f) or {})
