"""One read of each WARC: the pairs equal a pairs-only run's, the documents a documents-only run's."""

from pathlib import Path

from waon_hf.jobs.documents import DocumentRecipe, DocumentsJob, recipe_jobs
from waon_hf.jobs.documents_pass import PairsAndDocumentsJob
from waon_hf.jobs.extract import ExtractJob, run_extract
from waon_hf.pipeline.layout import ShardLayout
from waon_hf.pipeline.runner import check_manifest, run_sharded
from waon_hf.sources.commoncrawl import SourceFile
from waon_hf.testing.synthetic.documents import write_documents_sample

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "sample.warc.gz"


def test_one_pass_gives_the_pairs_only_pairs_and_the_documents_only_documents(tmp_path, read_rows):
    docs_pages, _, _ = write_documents_sample(tmp_path / "in")
    sources = [SourceFile(str(SAMPLE), ""), SourceFile(str(docs_pages[0]), "")]
    documents = recipe_jobs(DocumentRecipe(), tmp_path / "unused")[0]

    run_extract(sources, tmp_path / "pairs-only", ExtractJob())
    run_sharded(sources, tmp_path / "docs-only", documents)

    docs_dir = tmp_path / "docs"
    check_manifest(ShardLayout(docs_dir), sources, documents)
    job = PairsAndDocumentsJob.from_extract_job(ExtractJob(), documents, str(docs_dir))
    run_sharded(sources, tmp_path / "pairs", job)
    assert all(ShardLayout(docs_dir).is_done(i) for i in range(len(sources)))
    run_sharded(sources, docs_dir, documents)  # only finalizes

    pairs = read_rows(tmp_path / "pairs")
    assert pairs == read_rows(tmp_path / "pairs-only") and len(pairs) > 50
    docs = read_rows(docs_dir)
    assert docs == read_rows(tmp_path / "docs-only") and len(docs) > 10
    assert isinstance(documents, DocumentsJob)
