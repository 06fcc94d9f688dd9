"""Interleaved Japanese documents (the MMC4 / VILA-jp recipe) in three stages of the shared runner.

::

    documents         DocumentsJob       WARC -> one row per Japanese page: sentences, image URLs + positions;
                                         document_ng_words, document_shape (sentences, >= 2 candidate images)
    document-images   DocumentImagesJob  one row per image: download, downloaded, phash, nsfw_score,
                                         nsfw_filter, within_document_dedup | cross_document_dedup (global)
    OUTPUT            InterleavedJob     images back into their documents: assign_images (dual encoder,
                                         linear assignment), document_shape (2-5 images, 10-100
                                         sentences, every pair >= 0.20), OBELICS layout

Each stage is a :class:`~waon_hf.pipeline.contract.ShardJob` run by
:func:`~waon_hf.pipeline.runner.run_sharded` / ``run_stage``: resume, executors, funnel, card and
``pipeline.json`` are the runner's. The per-host image cap is applied when image rows are made
(per shard, in document order), before anything is downloaded.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from waon_hf.jobs.obelics import obelics_dataset
from waon_hf.pipeline.contract import ShardContext, ShardJob, step_summary
from waon_hf.sources.warc import DEFAULT_MAX_PAYLOAD_BYTES, iter_html_responses
from waon_hf.stats import Stats
from waon_hf.steps.base import apply_steps
from waon_hf.steps.document_dedup import FrequentImages, WithinDocumentDedup
from waon_hf.steps.document_pages import DocumentConfig, DocumentExtractor
from waon_hf.steps.document_similarity import AssignImages
from waon_hf.steps.documents import DocumentNGWords, DocumentShape
from waon_hf.steps.download import DownloadImages
from waon_hf.steps.image_dedup import PHashStep
from waon_hf.steps.image_filters import KeepDownloaded
from waon_hf.steps.nsfw import NsfwFilter, NsfwScore
from waon_hf.steps.scoring import DEFAULT_MODEL
from waon_hf.steps.text_filters import url_host

STAGES = ("documents", "document-images")  # under <output>/.waon-stages/; the output folder is the last stage

DOCUMENT_SCHEMA = pa.schema([
    ("doc_id", pa.string()), ("url", pa.string()), ("page_title", pa.string()), ("crawl", pa.string()),
    ("warc_file", pa.string()), ("sentences", pa.list_(pa.string())), ("image_urls", pa.list_(pa.string())),
    ("image_positions", pa.list_(pa.int32())), ("image_alts", pa.list_(pa.string())),
])
IMAGE_ROW_SCHEMA = pa.schema([
    ("doc_id", pa.string()), ("doc_file", pa.string()), ("image_index", pa.int32()), ("url", pa.string()),
    ("position", pa.int32()), ("alt", pa.string()),
])


@dataclasses.dataclass
class DocumentRecipe:
    """Every threshold of the recipe (VILA-jp's values by default)."""

    document: DocumentConfig = dataclasses.field(default_factory=DocumentConfig)
    min_sentences: int = 10
    max_sentences: int = 100
    min_images: int = 2
    max_images: int = 5
    max_images_per_host: int = 1_000  # per shard: spares high-frequency hosts (CDNs of ad and icon images)
    within_document_distance: int = 5  # pHash Hamming distance: one image within a document
    max_documents_per_image: int = 10  # an image in this many documents or more is dropped
    min_similarity: float = 0.20
    max_punsafe: float = 0.1
    ng_words: str | None = None  # NG-word file (default: the shipped list)
    model: str = DEFAULT_MODEL
    device: str = "cpu"
    dtype: str = "auto"
    embed_images: bool = True  # False: image URLs only in the output (--no-embed)
    nsfw: dict = dataclasses.field(default_factory=dict)  # NsfwScore options
    download: dict = dataclasses.field(default_factory=dict)  # DownloadImages options


@dataclasses.dataclass
class DocumentsJob(ShardJob):
    """Stage 1: one WARC file -> document rows (Japanese pages' main-text sentences and images)."""

    stage = "documents"
    document: DocumentConfig = dataclasses.field(default_factory=DocumentConfig)
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    dataset_name: str = "waon-documents"

    def describe(self) -> dict:
        return {**super().describe(), "document": dataclasses.asdict(self.document)}

    def read(self, ctx: ShardContext, stats: Stats) -> pa.Table:
        warc_counts: Counter = Counter()
        page_counts: Counter = Counter()
        extractor = DocumentExtractor(self.document)
        rows: dict[str, list] = {name: [] for name in DOCUMENT_SCHEMA.names}
        pages = iter_html_responses(ctx.source.location, warc_counts, self.max_payload_bytes)
        if ctx.show_progress:
            pages = tqdm(pages, desc=f"shard {ctx.index}", unit="page", leave=False, mininterval=1.0)
        for page in pages:
            page_counts["pages"] += 1
            doc = extractor.extract(page.body, page.url, page.content_type, page_counts)
            if doc is None:
                continue
            for name, value in (("doc_id", page.record_id), ("url", page.url), ("page_title", doc.title),
                                ("crawl", ctx.source.crawl), ("warc_file", ctx.source.location),
                                ("sentences", doc.sentences), ("image_urls", doc.image_urls),
                                ("image_positions", doc.image_positions), ("image_alts", doc.image_alts)):
                rows[name].append(value)
        stats.add_stage("warc", warc_counts)
        stats.add_stage("document_pages", page_counts)
        return pa.table(rows, schema=DOCUMENT_SCHEMA)


def image_rows(docs: pa.Table, doc_file: str, max_per_host: int, counts: Counter) -> pa.Table:
    """One row per candidate image of each document, at most ``max_per_host`` per image host."""
    per_host: Counter = Counter()
    rows: dict[str, list] = {name: [] for name in IMAGE_ROW_SCHEMA.names}
    columns = docs.select(["doc_id", "image_urls", "image_positions", "image_alts"]).to_pylist()
    for doc in columns:
        for k, (url, pos, alt) in enumerate(zip(doc["image_urls"], doc["image_positions"], doc["image_alts"],
                                                strict=True)):
            host = url_host(url)
            per_host[host] += 1
            if per_host[host] > max_per_host:
                counts["dropped_host_cap"] += 1
                continue
            for name, value in (("doc_id", doc["doc_id"]), ("doc_file", doc_file), ("image_index", k),
                                ("url", url), ("position", pos), ("alt", alt)):
                rows[name].append(value)
    counts["in"] += sum(len(u) for u in docs.column("image_urls").to_pylist())
    counts["kept"] += len(rows["url"])
    return pa.table(rows, schema=IMAGE_ROW_SCHEMA)


@dataclasses.dataclass
class DocumentImagesJob(ShardJob):
    """Stage 2: the documents' images as rows: download, pHash, NSFW, within- and cross-document dedup."""

    stage = "document_images"
    max_images_per_host: int = 1_000
    within: WithinDocumentDedup = dataclasses.field(default_factory=WithinDocumentDedup)
    batch_size: int = 1_000

    def describe(self) -> dict:
        return {**super().describe(), "max_images_per_host": self.max_images_per_host,
                "within_document": step_summary(self.within)}

    def read(self, ctx: ShardContext, stats: Stats) -> pa.Table:
        counts: Counter = Counter()
        docs = pq.read_table(ctx.source.location)
        table = image_rows(docs, Path(ctx.source.location).name, self.max_images_per_host, counts)
        stats.add_stage("host_cap", counts)
        return table

    def transform(self, rows: datasets.Dataset, ctx: ShardContext, stats: Stats) -> datasets.Dataset:
        rows = super().transform(rows, ctx, stats)
        # A document's images are all in this shard: one batch holds them all.
        return apply_steps([self.within], rows, stats, batch_size=max(1, len(rows)))


@dataclasses.dataclass
class InterleavedJob(ShardJob):
    """Stage 3: images back into their documents, assignment, the size rule, the OBELICS layout."""

    stage = "interleaved"
    documents_dir: str = ""  # the documents stage's folder (its data/ holds the sentences)
    embed_images: bool = True
    batch_size: int = 64
    dataset_name: str = "waon-interleaved"

    def describe(self) -> dict:
        return {**super().describe(), "embed_images": self.embed_images, "layout": "obelics"}

    def read(self, ctx: ShardContext, stats: Stats) -> pa.Table:
        # Image columns are regrouped with Arrow takes (no Python copy of the image bytes).
        images = pq.read_table(ctx.source.location)
        by_doc: dict[str, list[tuple[int, int]]] = {}
        for i, (doc_id, k) in enumerate(zip(images.column("doc_id").to_pylist(),
                                            images.column("image_index").to_pylist(), strict=True)):
            by_doc.setdefault(doc_id, []).append((k, i))
        out: dict[str, list] = {name: [] for name in ("doc_id", "url", "page_title", "sentences")}
        order: list[int] = []
        offsets = [0]
        for doc_file in sorted(set(images.column("doc_file").to_pylist())):
            docs = pq.read_table(Path(self.documents_dir) / "data" / doc_file,
                                 columns=["doc_id", "url", "page_title", "sentences"])
            for doc in docs.to_pylist():
                rows = by_doc.get(doc["doc_id"])
                if not rows:
                    continue
                order.extend(i for _, i in sorted(rows))
                offsets.append(len(order))
                for name in out:
                    out[name].append(doc[name])
        table = pa.table({"doc_id": pa.array(out["doc_id"], pa.string()), "url": pa.array(out["url"], pa.string()),
                          "page_title": pa.array(out["page_title"], pa.string()),
                          "sentences": pa.array(out["sentences"], pa.list_(pa.string()))})
        take, starts = pa.array(order, pa.int64()), pa.array(offsets, pa.int32())
        for col, key in (("image", "image"), ("image_url", "url"), ("image_sha256", "sha256"),
                         ("image_phash", "phash"), ("image_width", "original_width"),
                         ("image_height", "original_height"), ("image_position", "position"),
                         ("image_punsafe", "punsafe"), ("image_alt", "alt")):
            values = images.column(key).combine_chunks().take(take)
            table = table.append_column(col, pa.ListArray.from_arrays(starts, values))
        stats.add_stage("regroup", {"image_rows": images.num_rows, "documents": table.num_rows})
        return table

    def transform(self, rows: datasets.Dataset, ctx: ShardContext, stats: Stats) -> datasets.Dataset:
        def total(ds: datasets.Dataset, column: str) -> int:
            return sum(len(v) for v in ds[column]) if len(ds) and column in ds.column_names else 0

        # Image and sentence counts inside the documents, next to the steps' document counts (the funnel).
        images_in = total(rows, "image_url")
        for step in self.steps:
            rows = apply_steps([step], rows, stats, batch_size=self.batch_size)
            if isinstance(step, AssignImages):
                stats.add_stage("images_above_similarity", {"in": images_in, "kept": total(rows, "image_url")})
        stats.add_stage("images_in_kept_documents", {"kept": total(rows, "image_url")})
        stats.add_stage("sentences_in_kept_documents", {"kept": total(rows, "sentences")})
        return obelics_dataset(rows, embed=self.embed_images)


def recipe_note(recipe: DocumentRecipe) -> str:
    """The card's opening note: what the rows are and the recipe's thresholds."""
    return (
        "**Interleaved Japanese documents** in the OBELICS layout (`texts` / `images` lists of one length, "
        "`None` where the other modality sits; `metadata` per image), built with the VILA-jp / MMC4 recipe: "
        f"main text split into sentences; {recipe.min_sentences}-{recipe.max_sentences} sentences and "
        f"{recipe.min_images}-{recipe.max_images} images a document; at most {recipe.max_images_per_host} "
        f"images per host per file; pHash within Hamming {recipe.within_document_distance} is one image in "
        f"a document (largest kept); an image in >= {recipe.max_documents_per_image} documents dropped; "
        f"NSFW punsafe < {recipe.max_punsafe}; images below {recipe.min_similarity} against every sentence "
        f"removed ({recipe.model}), the rest assigned to sentences by linear assignment, every assigned "
        f"pair >= {recipe.min_similarity}. Funnel rows count pages and documents, except `host_cap` to "
        "`cross_document_dedup` (image rows) and the `images_*` / `sentences_*` rows (inside documents)."
    )


def recipe_jobs(recipe: DocumentRecipe, documents_dir: str | os.PathLike, dataset_name: str = "waon-interleaved",
                card_note: str = "") -> tuple[DocumentsJob, DocumentImagesJob, InterleavedJob]:
    """The three stages' jobs for a recipe (bad options fail here, before any work)."""
    card_note = card_note or recipe_note(recipe)
    ng = {"path": recipe.ng_words} if recipe.ng_words else {}
    early = DocumentShape(images_column="image_urls", min_sentences=recipe.min_sentences,
                          max_sentences=recipe.max_sentences, min_images=recipe.min_images, max_images=None)
    documents = DocumentsJob(steps=[DocumentNGWords(**ng), early], document=recipe.document,
                             dataset_name=dataset_name, card_note=card_note)
    images = DocumentImagesJob(
        steps=[DownloadImages(**recipe.download), KeepDownloaded(), PHashStep(), NsfwScore(**recipe.nsfw),
               NsfwFilter(max_punsafe=recipe.max_punsafe)],
        global_steps=[FrequentImages(max_documents=recipe.max_documents_per_image)],
        max_images_per_host=recipe.max_images_per_host,
        within=WithinDocumentDedup(max_distance=recipe.within_document_distance),
        dataset_name=dataset_name, card_note=card_note)
    final = DocumentShape(images_column="image_url", min_sentences=recipe.min_sentences,
                          max_sentences=recipe.max_sentences, min_images=recipe.min_images,
                          max_images=recipe.max_images, similarity_column="image_similarity",
                          sentence_column="image_sentence", min_similarity=recipe.min_similarity)
    interleaved = InterleavedJob(
        steps=[AssignImages(model=recipe.model, device=recipe.device, dtype=recipe.dtype,
                            min_similarity=recipe.min_similarity), final],
        documents_dir=str(documents_dir), embed_images=recipe.embed_images,
        dataset_name=dataset_name, card_note=card_note)
    return documents, images, interleaved


def run_documents(sources, output_dir: str | os.PathLike, recipe: DocumentRecipe | None = None, *,
                  workers: int = 1, overwrite: bool = False, executor=None, dataset_name: str = "waon-interleaved",
                  card_note: str = "", pairs_output: str | os.PathLike | None = None, pairs_job=None) -> Stats:
    """WARC files -> an OBELICS-style interleaved dataset in ``output_dir`` (each stage resumable).

    ``pairs_output``: also write the pairs stage (``pairs_job``, default ``ExtractJob()``: what `waon extract`
    writes) there, from the same read of each WARC file (:mod:`waon_hf.jobs.documents_pass`).
    """
    import shutil

    from waon_hf.pipeline.runner import check_manifest, run_sharded, run_stage

    out = Path(output_dir)
    stages = out / ".waon-stages"
    if overwrite:
        shutil.rmtree(stages, ignore_errors=True)
    docs_dir, images_dir = stages / STAGES[0], stages / STAGES[1]
    documents, images, interleaved = recipe_jobs(recipe or DocumentRecipe(), docs_dir, dataset_name, card_note)
    if pairs_output is not None:
        from waon_hf.jobs.documents_pass import PairsAndDocumentsJob
        from waon_hf.jobs.extract import ExtractJob
        from waon_hf.pipeline.layout import ShardLayout

        docs_layout = ShardLayout(docs_dir)
        if overwrite and docs_layout.root.exists():
            docs_layout.wipe()
        check_manifest(docs_layout, list(sources), documents)  # the documents shards come from the pairs pass
        both = PairsAndDocumentsJob.from_extract_job(pairs_job or ExtractJob(), documents, str(docs_dir))
        run_sharded(sources, pairs_output, both, workers=workers, overwrite=overwrite, executor=executor)
        overwrite_docs = False  # just written: the documents stage only finalizes
    else:
        overwrite_docs = overwrite
    run_sharded(sources, docs_dir, documents, workers=workers, overwrite=overwrite_docs, executor=executor)
    run_stage(docs_dir, images_dir, images, workers=workers, overwrite=overwrite, executor=executor)
    return run_stage(images_dir, out, interleaved, workers=workers, overwrite=overwrite, executor=executor)


def recipe_from_dict(section: dict | None) -> DocumentRecipe:
    """A recipe from a config's ``documents:`` section (unknown keys are an error naming them)."""
    section = dict(section or {})
    names = {f.name for f in dataclasses.fields(DocumentRecipe)}
    unknown = sorted(set(section) - names)
    if unknown:
        raise ValueError(f"documents: unknown option(s) {unknown}; options: {sorted(names)}")
    document = section.pop("document", None) or {}
    doc_names = {f.name for f in dataclasses.fields(DocumentConfig)}
    if set(document) - doc_names:
        raise ValueError(f"documents.document: unknown option(s) {sorted(set(document) - doc_names)}")
    return DocumentRecipe(document=DocumentConfig(**document), **section)
