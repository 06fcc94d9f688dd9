"""Japanese prompt templates for zero-shot classification.

A class's text embedding is the mean of its L2-normalised template embeddings, renormalised
(the CLIP-paper prompt ensemble). The templates were written for this project: short, natural
Japanese captions of a photograph, with no English and no category hint, so that one set fits
WAON-Bench's eight categories (animal, building, event, everyday, food, nature, scenery,
tradition) and the Recruit sets. ``{}`` is replaced by the Japanese class name.

The set used is written into every results file, so a number can always be traced to its prompts.
"""

from __future__ import annotations

from pathlib import Path

TEMPLATE_SETS: dict[str, tuple[str, ...]] = {
    "default": (
        "{}の写真",
        "{}の画像",
        "{}が写っている写真",
        "これは{}の写真です",
        "{}を撮影した写真",
        "{}のクローズアップ写真",
        "{}の鮮明な写真",
        "日本の{}の写真",
    ),
    # One plain prompt: the cheapest setting, and the one most comparable across papers.
    "single": ("{}の写真",),
}


def get_templates(name_or_path: str) -> tuple[str, ...]:
    """A named set (``default``, ``single``) or a UTF-8 text file with one template per line.

    Every template must contain ``{}`` exactly once. Blank lines and lines starting with ``#`` in
    a file are ignored.
    """
    if name_or_path in TEMPLATE_SETS:
        templates = TEMPLATE_SETS[name_or_path]
    elif Path(name_or_path).is_file():
        lines = Path(name_or_path).read_text(encoding="utf-8").splitlines()
        templates = tuple(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))
    else:
        raise ValueError(f"unknown template set {name_or_path!r}: use one of {sorted(TEMPLATE_SETS)} or a file "
                         "with one template per line")
    if not templates:
        raise ValueError(f"template set {name_or_path!r} is empty")
    for t in templates:
        if t.count("{}") != 1:
            raise ValueError(f"template {t!r} must contain '{{}}' exactly once")
    return templates
