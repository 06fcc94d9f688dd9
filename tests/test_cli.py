import gzip

import pytest

from tests.http_server import serve
from waon_hf.cli import build_parser, main


def test_help_explains_inputs(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["extract", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "CC-MAIN-2025-18" in out and "--num-shards" in out and "--workers" in out


def test_unknown_crawl_is_a_clear_error(tmp_path, caplog):
    with serve(tmp_path) as server:
        code = main(["extract", "CC-MAIN-2099-52", "-o", str(tmp_path / "out"), "--cc-base-url", server.url])
    assert code == 1
    assert "crawl 'CC-MAIN-2099-52' not found" in caplog.text


def test_missing_file_is_a_clear_error(tmp_path, caplog):
    assert main(["extract", str(tmp_path / "nope.warc.gz"), "-o", str(tmp_path / "out")]) == 1
    assert "nope.warc.gz" in caplog.text


def test_extract_prints_the_funnel(tmp_path, capsys):
    from waon_hf.testing.synthetic import generate_corpus

    generate_corpus(tmp_path / "a.warc.gz", n_pages=12, ja_fraction=0.5, seed=9, target_bytes=2500, n_images=6)
    listing = tmp_path / "crawl-data" / "CC-MAIN-2099-03" / "warc.paths.gz"
    listing.parent.mkdir(parents=True)
    listing.write_bytes(gzip.compress(b"a.warc.gz\n"))
    with serve(tmp_path) as server:
        code = main(["extract", "CC-MAIN-2099-03", "-o", str(tmp_path / "out"), "--cc-base-url", server.url])
    assert code == 0
    out = capsys.readouterr().out
    assert "| Japanese pages | 6 |" in out and "pairs written to" in out


def test_build_takes_device_and_siglip():
    from waon_hf.cli.crawl import apply_scoring_flags
    from waon_hf.config import BuildConfig

    args = build_parser().parse_args(["build", "x.warc.gz", "-o", "o", "--siglip", "my/siglip", "--device", "cuda:1"])
    config = BuildConfig(siglip={"device": "cpu"})
    apply_scoring_flags(args, config)
    assert config.siglip == {"model": "my/siglip", "device": "cuda:1"} and config.nsfw == {"device": "cuda:1"}


@pytest.mark.parametrize("cuda, expected", [(True, "cuda"), (False, "cpu")])
def test_build_device_defaults_to_auto(monkeypatch, caplog, cuda, expected):
    import logging

    import torch

    from waon_hf.cli.crawl import apply_scoring_flags
    from waon_hf.config import BuildConfig

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    args = build_parser().parse_args(["build", "x.warc.gz", "-o", "o"])
    config = BuildConfig(nsfw={"device": "cpu"})  # what the config sets is kept
    with caplog.at_level(logging.INFO, logger="waon_hf"):
        apply_scoring_flags(args, config)
    assert config.siglip["device"] == expected and config.nsfw["device"] == "cpu"
    assert f"--device auto: {expected}" in caplog.text
