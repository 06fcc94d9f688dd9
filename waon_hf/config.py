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
from waon_hf.steps import recipe_text, text_filters  # noqa: F401  (registers the caption steps)
from waon_hf.steps.base import build_step
from waon_hf.steps.dedup import ExactDedup
from waon_hf.steps.extract import ExtractConfig
from waon_hf.steps.global_steps import build_global_step

EXTRACT_KEYS = ("extract", "max_payload_bytes", "steps", "dedup", "global_steps", "dataset_name", "card_note",
                "recipe")
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


def parse_steps(entries: Any, where: str = "steps", build=build_step) -> list:
    """``steps:`` (a list of ``name`` or ``{name: {options}}``) -> per-shard steps, in order."""
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: expected a list of steps (each `- name: {{options}}`), "
                          f"got {type(entries).__name__}")
    steps = []
    for entry in entries:
        if isinstance(entry, str):
            entry = {entry: {}}
        if not isinstance(entry, dict) or len(entry) != 1:
            raise ConfigError(f"{where}: each entry is 'name' or {{name: {{options}}}}, got {entry!r}")
        (name, options), = entry.items()
        if options is not None and not isinstance(options, dict):
            raise ConfigError(f"{where}: options of {name!r} must be a mapping, got {options!r}")
        options = {k: tuple(v) if isinstance(v, list) else v for k, v in (options or {}).items()}
        try:
            steps.append(build(name, **options))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{where}: {e}") from e
    return steps


def parse_global_steps(entries: Any, where: str = "global_steps") -> list:
    """``global_steps:`` (same shape as ``steps:``) -> global steps, in order."""
    from waon_hf.steps import global_filters, semantic_dedup  # noqa: F401  (registers the recipes' global steps)

    return parse_steps(entries, where, build_global_step)


def stage_extra_steps(section: dict[str, Any], where: str) -> tuple[dict[str, Any], list, list]:
    """A stage section's own options, and its ``steps:`` / ``global_steps:`` lists parsed (run after the
    stage's built-in steps)."""
    from waon_hf.steps import embedding, image_dedup, image_filters  # noqa: F401  (register the image steps)

    options = {k: v for k, v in section.items() if k not in ("steps", "global_steps")}
    steps = parse_steps(section["steps"], f"{where}.steps") if "steps" in section else []
    global_steps = (parse_global_steps(section["global_steps"], f"{where}.global_steps")
                    if "global_steps" in section else [])
    return options, steps, global_steps


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
    if "global_steps" in config:  # after the exact dedup (e.g. caption_frequency over the whole crawl)
        job.global_steps = [job.dedup, *parse_global_steps(config["global_steps"])]
    if "max_payload_bytes" in config:
        value = config["max_payload_bytes"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"max_payload_bytes: a positive number of bytes, got {value!r}")
        job.max_payload_bytes = value
    for key in ("dataset_name", "card_note", "recipe"):
        if key in config:
            if not isinstance(config[key], str):
                raise ConfigError(f"{key}: expected text, got {config[key]!r}")
            if key != "recipe":  # the recipe's name is read by the card (BuildConfig.recipe)
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

    @classmethod
    def from_recipe(cls, recipe: str, overrides: str | Path | None = None) -> BuildConfig:
        """A shipped recipe (``configs/recipes/NAME.yaml``, or a path), with a config file's keys on top."""
        return cls.from_dict(merge_configs(read_yaml(recipe_path(recipe)), read_yaml(overrides) if overrides else {}))

    def extract_job(self) -> ExtractJob:
        job = _extract_job(self.extract)
        for step in job.steps:  # unknown_tokens with tokenizer: null counts under the scoring model's tokenizer
            if isinstance(step, recipe_text.UnknownTokens) and step.tokenizer is None:
                from waon_hf.steps.scoring import DEFAULT_MODEL

                step.tokenizer = self.siglip.get("model") or DEFAULT_MODEL
        if self.recipe:  # every stage's card names the recipe
            job.card_note = f"Recipe: **{self.recipe}** (configs/recipes/{self.recipe}.yaml). {job.card_note}".strip()
        return job

    @property
    def dataset_name(self) -> str:
        return self.extract_job().dataset_name

    @property
    def note(self) -> str:
        """The card's note; names the recipe the config came from (``recipe:``), if any."""
        return self.extract_job().card_note

    @property
    def recipe(self) -> str | None:
        """The recipe's name (``recipe:``, set by the shipped recipe files), or None."""
        return self.extract.get("recipe")


RECIPES_DIR = Path(__file__).resolve().parents[1] / "configs" / "recipes"


def recipe_names() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def recipe_path(recipe: str) -> Path:
    """``waon`` / ``vila-jp`` / ``danqing`` -> its file in ``configs/recipes/``; a path is taken as is."""
    path = Path(recipe)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    path = RECIPES_DIR / f"{recipe}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown recipe {recipe!r}; recipes: {', '.join(recipe_names()) or 'none found'} "
                          f"(in {RECIPES_DIR})")
    return path


def merge_configs(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``: a stage section is merged option by option, anything else replaced
    (a ``steps:`` list is replaced whole, never spliced)."""
    out = dict(base)
    for key, value in override.items():
        if key in STAGE_SECTIONS and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


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
