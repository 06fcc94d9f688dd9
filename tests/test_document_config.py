"""configs/documents.yaml spells out every default of the recipe, and the CLI reads it."""

import dataclasses
from pathlib import Path

import yaml

from waon_hf.jobs.documents import DocumentRecipe, recipe_from_dict

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "documents.yaml"


def test_documents_yaml_equals_the_recipe_defaults():
    section = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["documents"]
    recipe = recipe_from_dict(section)
    assert recipe == DocumentRecipe()
    listed = set(section) | {"download", "nsfw"}
    assert listed == {f.name for f in dataclasses.fields(DocumentRecipe)}
    assert set(section["document"]) == {f.name for f in dataclasses.fields(DocumentRecipe().document)}
