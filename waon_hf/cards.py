"""What every card renderer shares: the templates under ``model_cards/`` and the Hub's size categories."""

from __future__ import annotations

from importlib import resources


def template_path(name: str) -> str:
    return str(resources.files("waon_hf.model_cards").joinpath(name))


def size_category(n: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
    for bound, label in bounds:
        if n < bound:
            return label
    return "1B<n<10B"


# `license: other` must come with `license_name` and `license_link` (the Hub's card metadata); the link
# may be a file of the repository. Our cards state their terms in their own licence section.
OTHER_LICENSE_LINK = "README.md"


def license_fields(license: str, name: str | None = None, link: str | None = None,
                   default_name: str = "see-licence-section") -> dict[str, str]:
    """The card metadata for a licence: ``{"license": id}``, plus ``license_name``/``license_link`` for
    ``other`` (the given ones, else a name saying where the terms are and this card as the link)."""
    if license != "other":
        if name or link:
            raise ValueError(f"--license-name/--license-link go with --license other, not {license!r}")
        return {"license": license}
    return {"license": "other", "license_name": name or default_name, "license_link": link or OTHER_LICENSE_LINK}
