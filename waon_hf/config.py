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
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from waon_hf.jobs.extract import ExtractJob
from waon_hf.steps import recipe_text, text_filters  # noqa: F401  (registers the caption steps)
from waon_hf.steps.base import STEP_REGISTRY, build_step
from waon_hf.steps.dedup import ExactDedup
from waon_hf.steps.extract import ExtractConfig
from waon_hf.steps.global_steps import build_global_step
from waon_hf.text.langid import DETECTORS

RELAION_MODES = ("ja", "translate")
# relaion: keys besides TranslationConfig's fields (those configure the translation itself)
RELAION_KEYS = ("mode", "language", "limit", "chunk_rows", "quality", "prompt_file", "strict_prompt_file")
EXTRACT_KEYS = ("extract", "max_payload_bytes", "steps", "dedup", "global_steps", "dataset_name", "card_note",
                "recipe")
STAGE_SECTIONS = ("download", "image_quality", "image_dedup", "nsfw", "siglip", "relaion")


class ConfigError(ValueError):
    """A config that cannot run: the message names the key and what is allowed."""


def _accepts(annotation: Any, value: Any) -> bool:
    """Whether ``value`` (as YAML gives it, lists already tuples) fits a dataclass field's annotation.
    Annotations this does not understand accept anything (the class checks those itself)."""
    origin = typing.get_origin(annotation)
    if annotation is Any or isinstance(annotation, typing.TypeVar):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(arm, value) for arm in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if annotation is Path:
        return isinstance(value, (str, Path))
    if origin is tuple or annotation is tuple:
        if not isinstance(value, tuple):
            return False
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_accepts(args[0], v) for v in value)
        return not args or (len(args) == len(value) and all(_accepts(a, v) for a, v in zip(args, value, strict=True)))
    if origin is dict or annotation is dict:
        return isinstance(value, dict)
    return True


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if typing.get_origin(annotation) is None else None
    return text or str(annotation).replace("typing.", "")


def check_options(cls, values: dict[str, Any], where: str) -> None:
    """Refuse values of the wrong type (``"5MB"`` for a number, ``"150"`` for an int) and a ``min_X``
    above its ``max_X``, naming the option: the classes' own checks would fail later or not at all."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation that does not resolve here: leave the checks to the class
        hints = {}
    for key, value in values.items():
        annotation = hints.get(key)
        if annotation is not None and not _accepts(annotation, value):
            numeric = isinstance(value, str) and (_accepts(annotation, 0) or _accepts(annotation, 0.5))
            raise ConfigError(f"{where}: {key} must be {_type_name(annotation)}, got {type(value).__name__} "
                              f"{value!r}" + (" (write numbers without quotes or units)" if numeric else ""))
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in fields:
        if not name.startswith("min_") or "max_" + name[4:] not in fields:
            continue
        low = values.get(name, _default(fields[name]))
        high = values.get("max_" + name[4:], _default(fields["max_" + name[4:]]))
        if _is_number(low) and _is_number(high) and low > high:
            raise ConfigError(f"{where}: {name} ({low}) is above max_{name[4:]} ({high}): the range keeps nothing")


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def dataclass_from(cls, values: dict[str, Any] | None, where: str):
    """``cls(**values)`` with unknown keys and wrong types refused, YAML lists turned into the tuples
    steps hold."""
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
    check_options(cls, values, where)
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
        if name in STEP_REGISTRY:
            check_options(STEP_REGISTRY[name], options, f"steps: {name}")
        try:
            steps.append(build(name, **options))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{where}: {e}") from e
    return steps


def check_extract(extract: ExtractConfig) -> None:
    """The page settings' choices and ranges (the extractor would fail on them in every shard)."""
    if extract.langid not in DETECTORS:
        raise ConfigError(f"extract: langid {extract.langid!r} is not a language detector; "
                          f"choose from {', '.join(sorted(DETECTORS))}")
    if extract.langid_chars < 1:
        raise ConfigError(f"extract: langid_chars must be >= 1, got {extract.langid_chars}")
    if extract.min_img_side < 0:
        raise ConfigError(f"extract: min_img_side must be >= 0, got {extract.min_img_side}")


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
        check_extract(job.extract)
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
        config.check_relaion()
        return config

    @classmethod
    def from_file(cls, path: str | Path | None) -> BuildConfig:
        return cls.from_dict(read_yaml(path) if path else {})

    def check_relaion(self) -> None:
        """The ``relaion:`` section's keys, mode, numbers and translation settings (the model is resolved
        by the caller, which knows whether the run may touch the network)."""
        if not self.relaion:
            return
        from waon_hf.steps.translation_filters import TranslationQuality
        from waon_hf.translate import TranslationConfig

        section = dict(self.relaion)
        fields = {f.name for f in dataclasses.fields(TranslationConfig)}
        unknown = set(section) - set(RELAION_KEYS) - fields
        if unknown:
            raise ConfigError(f"relaion: unknown option(s) {sorted(unknown)}; "
                              f"options: {sorted(set(RELAION_KEYS) | fields)}")
        mode = section.pop("mode", "ja")
        if mode not in RELAION_MODES:
            raise ConfigError(f"relaion: mode must be one of {', '.join(RELAION_MODES)}, got {mode!r}")
        for key in ("limit", "chunk_rows"):
            value = section.pop(key, None)
            if value is not None and (not _is_number(value) or not isinstance(value, int) or value < 0
                                      or (key == "chunk_rows" and value < 1)):
                raise ConfigError(f"relaion: {key} must be a whole number >= {int(key == 'chunk_rows')}, got {value!r}")
        if not isinstance(section.pop("language", "ja"), str):
            raise ConfigError("relaion: language must be text (a LANGUAGE value such as ja)")
        quality = section.pop("quality", None)
        for key in ("prompt_file", "strict_prompt_file"):
            path = section.pop(key, None)
            if path is not None and not Path(str(path)).is_file():
                raise ConfigError(f"relaion: {key} {path!r} is not a file")
        if mode == "ja":
            if section:
                raise ConfigError(f"relaion: option(s) {sorted(section)} only apply to mode: translate")
            return
        if "model" not in section:
            raise ConfigError("relaion: mode translate needs a model (relaion: {model: <Hub id or folder>})")
        dataclass_from(TranslationQuality, quality, "relaion: quality")
        dataclass_from(TranslationConfig, section, "relaion")


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
