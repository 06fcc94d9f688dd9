"""The shipped recipes (configs/recipes/): each validates, runs on the embedded sample by name, names
every step in its funnel and card; `waon compare` prints the three side by side."""

from pathlib import Path

import pytest
import yaml

from tests.sample_build import SAMPLE_WARC, write_sample_config
from waon_hf import catalogue
from waon_hf.config import BuildConfig, ConfigError, merge_configs, recipe_names

RECIPES = ("waon", "vila-jp", "danqing")
# every step each recipe adds to WAON's pipeline, by its funnel name
ADDED_STEPS = {
    "waon": [],
    "vila-jp": ["adult_text_ja", "caption_frequency", "phash_caption_dedup", "score_quantile"],
    "danqing": ["adult_text_ja", "contains_noun", "unknown_tokens", "char_entropy", "semantic_dedup"],
}


def test_the_three_recipes_are_shipped_and_valid():
    assert set(RECIPES) <= set(recipe_names())
    for name in RECIPES:
        config = BuildConfig.from_recipe(name)
        catalogue.validate(config)
        assert config.recipe == name and f"Recipe: **{name}**" in config.note
        text = (Path(catalogue.__file__).parents[1] / "configs" / "recipes" / f"{name}.yaml").read_text()
        for step in ADDED_STEPS[name]:
            line = next(line for line in text.splitlines() if f"{step}:" in line or f"- {step}" in line)
            assert "#" in line, f"{name}: {step} cites no source"
    score = catalogue.score_job(BuildConfig.from_recipe("danqing"), name="x")
    assert [g.name for g in score.global_steps] == ["semantic_dedup"]
    embed = next(s for s in score.steps if s.name == "image_embedding")
    assert embed.model == "google/siglip2-base-patch16-256"  # model: null is the siglip model
    unknown = next(s for s in BuildConfig.from_recipe("danqing").extract_job().steps if s.name == "unknown_tokens")
    assert unknown.tokenizer == "google/siglip2-base-patch16-256"


def test_config_overrides_a_recipe_key_by_key(tmp_path):
    override = tmp_path / "o.yaml"
    override.write_text("siglip: {min_similarity: 0.2}\nimage_quality: {min_side: 64}\n")
    config = BuildConfig.from_recipe("danqing", override)
    assert config.siglip["min_similarity"] == 0.2 and config.siglip["max_similarity"] == 0.35
    assert config.image_quality["min_side"] == 64 and config.image_quality["min_pixel_std"] == 2.0
    assert merge_configs({"steps": [1, 2]}, {"steps": [3]}) == {"steps": [3]}
    with pytest.raises(ConfigError, match="unknown recipe"):
        BuildConfig.from_recipe("coyo")
    with pytest.raises(ConfigError, match="image_dedup.global_steps"):
        catalogue.validate(BuildConfig.from_dict({"image_dedup": {"global_steps": [{"phash_dedupe": {}}]}}))
    with pytest.raises(ConfigError, match="per-shard step"):
        catalogue.validate(BuildConfig.from_dict({"siglip": {"global_steps": ["contains_noun"]}}))


def sample_overrides(root: Path, model: Path, second_model: Path) -> Path:
    """configs/sample.yaml's offline settings, plus what a random tiny model needs."""
    config = yaml.safe_load(write_sample_config(root, model).read_text())
    config.pop("dataset_name")
    config["siglip"]["max_similarity"] = 1.0
    config["siglip_vila"] = {
        # a random model's cosines are signed: no median normalisation (tested on its own elsewhere)
        "steps": [{"extra_siglip_score": {"model": str(second_model), "output_column": "similarity_2"}}],
        "global_steps": [{"score_quantile": {"columns": ["similarity", "similarity_2"], "normalize": "none",
                                             "drop_fraction": 0.3}}],
    }
    return config


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from waon_hf.cli import main
    from waon_hf.testing.tiny_models import build_tiny_siglip2

    root = tmp_path_factory.mktemp("recipes")
    model = build_tiny_siglip2(root / "tiny-siglip2")
    second = build_tiny_siglip2(root / "tiny-siglip2-b", seed=1)
    base = sample_overrides(root, Path(model), Path(second))
    vila = base.pop("siglip_vila")
    outs = {}
    for name in RECIPES:
        config = dict(base)
        if name == "vila-jp":
            config["siglip"] = {**base["siglip"], **vila}
        path = root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config, allow_unicode=True))
        out = root / name
        assert main(["build", str(SAMPLE_WARC), "-o", str(out), "--recipe", name, "--config", str(path)]) == 0
        outs[name] = out
    return outs


@pytest.mark.slow
@pytest.mark.parametrize("name", RECIPES)
def test_each_recipe_runs_on_the_sample_and_its_funnel_names_each_step(built, name):
    import json

    stats = json.loads((built[name] / "stats.json").read_text())
    card = (built[name] / "README.md").read_text()
    assert f"Recipe: **{name}**" in card
    for step in [*ADDED_STEPS[name], "exact_dedup", "image_quality", "similarity_band"]:
        assert f"{step}.kept" in stats, (name, step)
        assert f"| after {step} |" in card, (name, step)


@pytest.mark.slow
def test_compare_prints_the_three_funnels_side_by_side(built, capsys):
    from waon_hf.cli import main

    assert main(["compare", *(str(built[n]) for n in RECIPES)]) == 0
    out = capsys.readouterr().out
    assert "| step | waon | vila-jp-pairs | danqing-ja |" in out
    assert "| after semantic_dedup | - | - |" in out  # only DanQing has the step
    assert "| waon & vila-jp-pairs |" in out and "caption length" in out
