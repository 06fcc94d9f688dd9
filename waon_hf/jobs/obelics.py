"""Assigned documents -> the OBELICS layout the Hugging Face ecosystem uses for interleaved data.

Each row has ``texts`` and ``images``, lists of the same length where exactly one of the two is set
at each index (``None`` where the other modality sits), and ``metadata``, one entry per index: None
for a sentence, the image's record for an image (source URL, sha256, pHash, similarity, the sentence
it is assigned to, its original position, size, NSFW score, alt text). An image is placed right
before the sentence it is assigned to (images assigned to one sentence in page order).
``images`` holds ``datasets.Image`` values, or the source URLs with ``embed=False``.
"""

from __future__ import annotations

from typing import Any

import datasets

METADATA_FEATURES = datasets.Features({
    "source_url": datasets.Value("string"), "sha256": datasets.Value("string"), "phash": datasets.Value("string"),
    "similarity": datasets.Value("float32"), "sentence_index": datasets.Value("int32"),
    "original_position": datasets.Value("int32"), "width": datasets.Value("int32"),
    "height": datasets.Value("int32"), "punsafe": datasets.Value("float32"), "alt": datasets.Value("string"),
})


def obelics_features(embed: bool) -> datasets.Features:
    return datasets.Features({
        "doc_id": datasets.Value("string"), "url": datasets.Value("string"), "page_title": datasets.Value("string"),
        "texts": datasets.List(datasets.Value("string")),
        "images": datasets.List(datasets.Image() if embed else datasets.Value("string")),
        "metadata": datasets.List(dict(METADATA_FEATURES)),
        "num_images": datasets.Value("int32"), "num_sentences": datasets.Value("int32"),
    })


def interleave(doc: dict[str, Any], embed: bool) -> dict[str, Any]:
    """One assigned document row -> its OBELICS row."""
    before: dict[int, list[int]] = {}
    order = sorted(range(len(doc["image_url"])), key=lambda k: (doc["image_sentence"][k], doc["image_position"][k]))
    for k in order:
        before.setdefault(doc["image_sentence"][k], []).append(k)
    texts: list[str | None] = []
    images: list[Any] = []
    metadata: list[dict | None] = []
    for j, sentence in enumerate(doc["sentences"]):
        for k in before.get(j, []):
            texts.append(None)
            images.append(doc["image"][k] if embed else doc["image_url"][k])
            metadata.append({"source_url": doc["image_url"][k], "sha256": doc["image_sha256"][k],
                             "phash": doc["image_phash"][k], "similarity": doc["image_similarity"][k],
                             "sentence_index": j, "original_position": doc["image_position"][k],
                             "width": doc["image_width"][k], "height": doc["image_height"][k],
                             "punsafe": doc["image_punsafe"][k], "alt": doc["image_alt"][k]})
        texts.append(sentence)
        images.append(None)
        metadata.append(None)
    return {"doc_id": doc["doc_id"], "url": doc["url"], "page_title": doc["page_title"], "texts": texts,
            "images": images, "metadata": metadata, "num_images": len(doc["image_url"]),
            "num_sentences": len(doc["sentences"])}


def obelics_dataset(rows: datasets.Dataset, embed: bool = True) -> datasets.Dataset:
    """The OBELICS-layout dataset of assigned documents (an empty one keeps the columns)."""
    features = obelics_features(embed)
    out: dict[str, list] = {name: [] for name in features}
    if len(rows):
        for doc in rows.with_format(None):
            for name, value in interleave(doc, embed).items():
                out[name].append(value)
    return datasets.Dataset.from_dict(out, features=features)
