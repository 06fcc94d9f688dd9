"""The build config (one YAML file): parsed and validated once, before any stage runs.

```yaml
extract: {langid: pycld2, kana_precheck: true, min_img_side: 10}
max_payload_bytes: 5242880
steps:                      # replaces the whole caption pipeline, in this order
  - normalize_caption: {}
  - caption_length: {min_chars: 5, max_chars: 512}
dedup: {columns: [url, caption], memory_limit: 2GB}
download: {image_size: 256}            # any DownloadImages option
image_quality: {min_side: 150}         # any ImageQuality option
image_dedup: {max_distance: 4, against: []}
nsfw: {backend: opennsfw, max_punsafe: 0.1}
siglip: {model: google/siglip2-base-patch16-256, min_similarity: 0.1}
relaion: {mode: ja}                    # set: the pairs come from ReLAION, not WARC files
```

Every section is optional; a default lives in the step class it configures (``configs/waon.yaml``
spells them out and a test checks the two agree). :func:`load_config` reads the file and
:meth:`BuildConfig.validate` builds every stage's job from it, so an unknown key, a wrong type or
an impossible range is one clear error before any work starts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from waon_hf.jobs.extract import ExtractJob
from waon_hf.steps import text_filters  # noqa: F401  (registers the caption steps)
from waon_hf.steps.base import build_step
from waon_hf.steps.dedup import ExactDedup
from waon_hf.steps.extract import ExtractConfig

EXTRACT_KEYS = ("extract", "max_payload_bytes", "steps", "dedup", "dataset_name", "card_note")
STAGE_SECTIONS = ("download", "image_quality", "image_dedup", "nsfw", "siglip", "relaion")


class ConfigError(ValueError):
    """A config that cannot run: the message names the key and what is allowed."""


def dataclass_from(cls, values: dict[str, Any] | None, where: str):
    """``cls(**values)`` with unknown keys refused and YAML lists turned into the tuples steps hold."""
    if values is not None and not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping of options, got {type(values).__name__} {values!r}")
    values = dict(values or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {sorted(unknown)}; options: {sorted(names)}")
    for key, value in values.items():
        if isinstance(value, list):
            values[key] = tuple(value)
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from e


def parse_steps(entries: Any) -> list:
    """``steps:`` (a list of ``name`` or ``{name: {options}}``) -> per-shard steps, in order."""
    if not isinstance(entries, list):
        raise ConfigError(f"steps: expected a list of steps (each `- name: {{options}}`), got {type(entries).__name__}")
    steps = []
    for entry in entries:
        if isinstance(entry, str):
            entry = {entry: {}}
        if not isinstance(entry, dict) or len(entry) != 1:
            raise ConfigError(f"steps: each entry is 'name' or {{name: {{options}}}}, got {entry!r}")
        (name, options), = entry.items()
        if options is not None and not isinstance(options, dict):
            raise ConfigError(f"steps: options of {name!r} must be a mapping, got {options!r}")
        options = {k: tuple(v) if isinstance(v, list) else v for k, v in (options or {}).items()}
        try:
            steps.append(build_step(name, **options))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"steps: {e}") from e
    return steps


def job_from_dict(config: dict[str, Any]) -> ExtractJob:
    """The extraction job of a whole config (every section is validated; the others are not used here)."""
    return BuildConfig.from_dict(config).extract_job()


def _extract_job(config: dict[str, Any]) -> ExtractJob:
    job = ExtractJob()
    if "extract" in config:
        job.extract = dataclass_from(ExtractConfig, config["extract"], "extract")
    if "steps" in config:
        job.steps = parse_steps(config["steps"])
    if "dedup" in config:
        job.dedup = dataclass_from(ExactDedup, config["dedup"], "dedup")
        job.global_steps = [job.dedup]
    if "max_payload_bytes" in config:
        value = config["max_payload_bytes"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"max_payload_bytes: a positive number of bytes, got {value!r}")
        job.max_payload_bytes = value
    for key in ("dataset_name", "card_note"):
        if key in config:
            if not isinstance(config[key], str):
                raise ConfigError(f"{key}: expected text, got {config[key]!r}")
            setattr(job, key, config[key])
    return job


@dataclasses.dataclass
class BuildConfig:
    """The whole pipeline's settings: the extraction part plus one dict of options per later stage."""

    extract: dict[str, Any] = dataclasses.field(default_factory=dict)
    download: dict[str, Any] = dataclasses.field(default_factory=dict)
    image_quality: dict[str, Any] = dataclasses.field(default_factory=dict)
    image_dedup: dict[str, Any] = dataclasses.field(default_factory=dict)
    nsfw: dict[str, Any] = dataclasses.field(default_factory=dict)
    siglip: dict[str, Any] = dataclasses.field(default_factory=dict)
    relaion: dict[str, Any] = dataclasses.field(default_factory=dict)  # set: the pairs come from ReLAION

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> BuildConfig:
        raw = dict(raw or {})
        unknown = set(raw) - set(EXTRACT_KEYS) - set(STAGE_SECTIONS)
        if unknown:
            keys = sorted(EXTRACT_KEYS + STAGE_SECTIONS)
            raise ConfigError(f"config: unknown key(s) {sorted(unknown)}; keys: {keys}")
        sections = {}
        for name in STAGE_SECTIONS:
            value = raw.pop(name, None)
            if value is not None and not isinstance(value, dict):
                raise ConfigError(f"{name}: expected a mapping of options, got {type(value).__name__} {value!r}")
            sections[name] = dict(value or {})
        config = cls(extract=raw, **sections)
        config.extract_job()  # the extraction part is checked now, not after an hour of work
        return config

    @classmethod
    def from_file(cls, path: str | Path | None) -> BuildConfig:
        return cls.from_dict(read_yaml(path) if path else {})

    def extract_job(self) -> ExtractJob:
        return _extract_job(self.extract)

    @property
    def dataset_name(self) -> str:
        return self.extract_job().dataset_name

    @property
    def note(self) -> str:
        return self.extract_job().card_note


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from a file, with a clear error for anything else (a list, tabs, bad syntax)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config is a mapping of sections, got a {type(data).__name__}")
    return data


def load_job(path: str | None) -> ExtractJob:
    """The extraction job of a config file (``None``: WAON's defaults)."""
    return BuildConfig.from_file(path).extract_job()
