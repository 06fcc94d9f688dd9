"""`waon publish benchmark`: the benchmark card is rendered from the folder and uploaded to a dataset repo."""

import shutil
from pathlib import Path

from huggingface_hub import DatasetCard

from tests.fake_hub import FakeHfApi
from waon_hf.cli import build_parser, main
from waon_hf.cli.publish import run_publish

REPO = Path(__file__).resolve().parent.parent
TINY_BENCH = REPO / "samples" / "tiny_bench"



def test_dry_run_lists_the_parquet_and_prints_the_rendered_card(capsys):
    assert main(["publish", "benchmark", str(TINY_BENCH), "--repo", "org/tiny-bench", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "tiny_bench.parquet" in out and "README.md" in out
    card = DatasetCard(out.split("--- README.md ---\n", 1)[1])
    assert card.data.task_categories == ["zero-shot-image-classification"]
    assert card.data.configs[0]["data_files"][0]["path"] == ["tiny_bench.parquet"]
    assert "org/tiny-bench" in card.text


def test_upload_goes_to_a_dataset_repo_with_the_card_written(tmp_path):
    folder = tmp_path / "bench"
    shutil.copytree(TINY_BENCH, folder)
    (folder / "README.md").unlink()
    args = build_parser().parse_args(["publish", "benchmark", str(folder), "--repo", "org/tiny-bench",
                                      "--license", "cc-by-4.0"])
    api = FakeHfApi()
    assert run_publish(args, api=api) == 0
    (_, repo_id, create), (_, upload) = api.calls
    assert repo_id == "org/tiny-bench" and create["repo_type"] == "dataset"
    assert upload["repo_type"] == "dataset" and upload["folder_path"] == str(folder)
    card = DatasetCard.load(folder / "README.md")
    assert card.data.license == "cc-by-4.0"
