"""configs/waon.yaml spells out the defaults; the defaults themselves live in the step classes."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from waon_hf import catalogue
from waon_hf.config import BuildConfig, ConfigError, job_from_dict
from waon_hf.jobs.extract import ExtractJob

REPO = Path(__file__).resolve().parents[1]


def defaults_of(obj) -> dict:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def plain(value):
    return list(value) if isinstance(value, tuple) else value


def test_waon_yaml_states_the_built_in_defaults():
    raw = yaml.safe_load((REPO / "configs" / "waon.yaml").read_text(encoding="utf-8"))
    config = BuildConfig.from_dict(raw)
    built_in = BuildConfig()
    # extraction: the file's job equals the default job, step by step
    assert config.extract_job().describe() == ExtractJob().describe()
    # every later stage: each option the file sets equals the default of the step that holds it
    jobs = {"download": catalogue.download_job, "image_quality": catalogue.filter_images_job,
            "nsfw": catalogue.score_job, "siglip": catalogue.score_job}
    for section, make in jobs.items():
        ours = {s.name: defaults_of(s) for s in make(config, name="x").steps}
        theirs = {s.name: defaults_of(s) for s in make(built_in, name="x").steps}
        assert ours == theirs, section
        assert raw[section], section
    ours = catalogue.dedup_images_job(config, name="x", report_dir=".").global_steps
    theirs = catalogue.dedup_images_job(built_in, name="x", report_dir=".").global_steps
    assert [defaults_of(g) for g in ours] == [defaults_of(g) for g in theirs]


@pytest.mark.parametrize("raw, message", [
    ({"download": {"image_sise": 64}}, "image_sise"),
    ({"steps": {"caption_length": {"min_chars": 3}}}, "expected a list"),
    ({"steps": [{"sha256_dedup": {}}]}, "global step"),
    ({"max_payload_bytes": "5MB"}, "max_payload_bytes"),
    ({"image_dedup": {"max_distance": 64}}, "max_distance"),
    ({"siglip": {"min_similarity": 0.5, "max_similarity": 0.1}}, "keeps nothing"),
    ({"nsfw": ["opennsfw"]}, "mapping"),
    ({"imagequality": {}}, "unknown key"),
    ({"download": {"per_host_start": 80}}, "per_host_start"),
    ({"download": {"per_host": 0}}, "per_host"),
])
def test_a_bad_config_is_refused_before_any_stage_runs(raw, message):
    with pytest.raises(ConfigError, match=message):
        catalogue.validate(BuildConfig.from_dict(raw))


def test_yaml_that_is_not_a_mapping_is_a_clear_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("- download\n- score\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mapping of sections"):
        BuildConfig.from_file(path)
    path.write_text("download:\n\timage_size: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        BuildConfig.from_file(path)


def test_job_from_dict_checks_every_section():
    with pytest.raises(ConfigError, match="unknown key"):
        job_from_dict({"dowload": {}})
    assert job_from_dict({"dataset_name": "x"}).dataset_name == "x"


def test_the_waon_recipe_hashes_and_compares_with_waons_phash():
    from waon_hf.config import BuildConfig as Config

    config = Config.from_recipe("waon")
    phash = [s for s in catalogue.filter_images_job(config, name="x").steps if s.name == "phash"][0]
    near, *_ = [g for g in catalogue.dedup_images_job(config, name="x", report_dir=".").global_steps
                if g.name == "phash_dedup"]
    assert phash.algorithm == near.algorithm == "imagehash" and near.max_distance == 0
    default = [s for s in catalogue.filter_images_job(BuildConfig(), name="x").steps if s.name == "phash"][0]
    assert default.algorithm == "imagededup"
    with pytest.raises(ConfigError, match="phash_algorithm"):
        catalogue.validate(BuildConfig.from_dict({"image_dedup": {"phash_algorithm": "md5"}}))
