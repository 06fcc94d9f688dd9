"""Everything a run is given is checked before any stage runs: exit 2 and one message, nothing written."""

import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from waon_hf.cli import COMMANDS, main

REPO = Path(__file__).resolve().parents[1]
SAMPLE = str(REPO / "samples" / "sample.warc.gz")


def exit_code(argv: list[str]) -> int:
    """``main``'s exit code, also when argparse exits (a usage error)."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def stage_folder(root: Path, columns: dict) -> Path:
    """A folder shaped like a finished stage's output, with one shard holding ``columns``."""
    (root / "data").mkdir(parents=True)
    pq.write_table(pa.table(columns), root / "data" / "train-00000-of-00001.parquet")
    return root


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("flags, message", [
    (["--langid", "klingon"], "invalid choice: 'klingon'"),
    (["--limit-files", "-1"], "must be >= 0"),
    (["--num-shards", "0"], "must be >= 1"),
    (["--shard-index", "3", "--num-shards", "2"], "--shard-index must be in [0, 2)"),
    (["--workers", "0"], "must be >= 1"),
    (["--workers", "two"], "expected a whole number"),
])
def test_bad_extract_flags_exit_2_before_any_work(tmp_path, capsys, caplog, flags, message):
    out = tmp_path / "out"
    assert exit_code(["extract", SAMPLE, "-o", str(out), *flags]) == 2
    assert message in capsys.readouterr().err + caplog.text
    assert not out.exists()


@pytest.mark.parametrize("config, message", [
    ("download: {image_sise: 64}\n", "image_sise"),
    ("max_payload_bytes: 5MB\n", "max_payload_bytes"),
    ("download: {image_size: '64'}\n", "image_size must be int, got str '64'"),
    ("image_quality: {min_side: '150'}\n", "min_side must be int | None"),
    ("image_quality: {min_aspect: 3.0, max_aspect: 1.5}\n", "min_aspect (3.0) is above max_aspect (1.5)"),
    ("image_dedup: {max_distance: 64}\n", "max_distance"),
    ("extract: {langid: klingon}\n", "langid 'klingon' is not a language detector"),
    ("steps:\n  caption_length: {min_chars: 3}\n", "expected a list"),
    ("steps:\n  - caption_length: {min_chars: '3'}\n", "min_chars must be int"),
    ("steps:\n  - caption_length: {min_chars: 50, max_chars: 5}\n", "min_chars (50) is above max_chars (5)"),
    ("- download\n- score\n", "a config is a mapping of sections"),
    ("download:\n\timage_size: 64\n", "not valid YAML"),
    ("relaion: {mode: klingon}\n", "relaion: mode must be one of"),
    ("relaion: {mode: ja, limit: -5}\n", "relaion: limit must be a whole number"),
])
def test_a_bad_config_exits_2_before_the_first_stage(tmp_path, caplog, config, message):
    out = tmp_path / "out"
    cfg = write(tmp_path / "c.yaml", config)
    assert exit_code(["build", SAMPLE, "-o", str(out), "--config", cfg]) == 2
    assert message in caplog.text
    assert not out.exists()


def test_max_distance_out_of_range_is_a_usage_error(tmp_path, capsys):
    folder = stage_folder(tmp_path / "filtered", {"url": ["u"], "image": [b"x"]})
    assert exit_code(["dedup-images", str(folder), "-o", str(tmp_path / "out"), "--max-distance", "64"]) == 2
    assert "must be <= 31" in capsys.readouterr().err


def test_a_missing_siglip_folder_fails_before_any_shard(tmp_path, caplog):
    folder = stage_folder(tmp_path / "dedup", {"url": ["u"], "caption": ["c"], "image": [b"x"]})
    out = tmp_path / "out"
    assert exit_code(["score", str(folder), "-o", str(out), "--siglip", str(tmp_path / "no-such-model")]) == 2
    assert "no-such-model is not a folder" in caplog.text
    assert not out.exists()


def test_a_hub_model_not_in_the_cache_fails_offline_before_any_shard(tmp_path, caplog, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    folder = stage_folder(tmp_path / "dedup", {"url": ["u"], "caption": ["c"], "image": [b"x"]})
    out = tmp_path / "out"
    assert exit_code(["score", str(folder), "-o", str(out), "--siglip", "example-org/no-such-siglip"]) == 2
    assert "example-org/no-such-siglip" in caplog.text and "HF_HUB_OFFLINE" in caplog.text
    assert not out.exists()


def test_a_hub_model_fails_fast_when_the_hub_does_not_resolve(tmp_path, caplog, monkeypatch):
    import socket
    import time

    import huggingface_hub.constants

    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    folder = stage_folder(tmp_path / "dedup", {"url": ["u"], "caption": ["c"], "image": [b"x"]})
    started = time.monotonic()
    assert exit_code(["score", str(folder), "-o", str(tmp_path / "out"), "--siglip", "example-org/siglip"]) == 2
    assert time.monotonic() - started < 10  # no retries over half a minute
    assert "does not resolve" in caplog.text and "HF_HUB_OFFLINE=1" in caplog.text


def test_hf_output_without_a_token_is_refused_before_the_extraction(tmp_path, caplog, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    work = tmp_path / "work"
    assert exit_code(["extract", SAMPLE, "-o", "hf://datasets/example-org/waon-ja", "--work-dir", str(work)]) == 2
    assert "needs a Hugging Face token" in caplog.text
    assert not work.exists()


def test_hf_output_with_a_bad_repo_id_is_refused(tmp_path, caplog, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_secret_value")
    work = tmp_path / "work"
    assert exit_code(["extract", SAMPLE, "-o", "hf://datasets/example org/x--", "--work-dir", str(work)]) == 2
    assert "not a Hub repo id" in caplog.text and "hf_secret_value" not in caplog.text
    assert not work.exists()


def test_a_pairs_folder_given_to_filter_images_names_the_expected_input(tmp_path, caplog):
    pairs = stage_folder(tmp_path / "pairs", {"url": ["https://x/1.jpg"], "caption": ["写真"]})
    out = tmp_path / "out"
    assert exit_code(["filter-images", str(pairs), "-o", str(out)]) == 2
    assert "no column(s) ['status', 'image']" in caplog.text
    assert "expected the output of `waon download`" in caplog.text
    assert "run the same command again" not in caplog.text
    assert not out.exists()


def test_a_folder_without_url_given_to_download_names_the_expected_input(tmp_path, caplog):
    folder = stage_folder(tmp_path / "captions", {"caption": ["写真"]})
    assert exit_code(["download", str(folder), "-o", str(tmp_path / "out"), "--offline"]) == 2
    assert "no column(s) ['url']" in caplog.text and "a pairs dataset" in caplog.text


def test_a_download_folder_given_to_score_names_what_is_missing(tmp_path, caplog):
    folder = stage_folder(tmp_path / "images", {"url": ["u"], "status": ["ok"]})
    assert exit_code(["score", str(folder), "-o", str(tmp_path / "out")]) == 2
    assert "no column(s) ['image', 'caption']" in caplog.text


# --- the CLI itself ------------------------------------------------------------------------------------

def test_version(capsys):
    import waon_hf

    assert exit_code(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"waon {waon_hf.__version__}"


def test_help_shows_defaults(capsys):
    assert exit_code(["extract", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: 1)" in out and "(default: local)" in out and "(default: 0)" in out


def _replace_command(monkeypatch, name: str, run) -> None:
    add_arguments, _ = COMMANDS[name]
    monkeypatch.setitem(COMMANDS, name, (add_arguments, run))


def test_ctrl_c_exits_130_with_one_line(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    _replace_command(monkeypatch, "extract", interrupted)
    assert main(["extract", SAMPLE, "-o", "unused"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted" in err and "Traceback" not in err


def test_an_unexpected_error_is_one_line_with_a_hint(monkeypatch, capsys):
    def broken(args):
        logging.getLogger("waon_hf.test").info("working")
        raise KeyError("boom")

    _replace_command(monkeypatch, "extract", broken)
    assert main(["extract", SAMPLE, "-o", "unused"]) == 1
    err = capsys.readouterr().err
    assert "unexpected KeyError: 'boom' (run with -vv for the traceback)" in err
    assert "Traceback" not in err and "working" not in err  # -v not given: no INFO
    assert main(["-vv", "extract", SAMPLE, "-o", "unused"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "working" in err and "run with -vv" not in err


def test_verbosity_levels_apply_to_the_package_logger_only(monkeypatch, capsys):
    def chatty(args):
        logging.getLogger("waon_hf.test").info("an info line")
        logging.getLogger("waon_hf.test").warning("a warning line")
        return 0

    _replace_command(monkeypatch, "extract", chatty)
    root_handlers = list(logging.getLogger().handlers)
    assert main(["extract", SAMPLE, "-o", "unused"]) == 0
    err = capsys.readouterr().err
    assert "a warning line" in err and "an info line" not in err
    assert main(["-v", "extract", SAMPLE, "-o", "unused"]) == 0
    assert "an info line" in capsys.readouterr().err
    assert main(["-q", "extract", SAMPLE, "-o", "unused"]) == 0
    assert "a warning line" not in capsys.readouterr().err
    assert logging.getLogger().handlers == root_handlers  # no basicConfig: other libraries' logs untouched
    handlers = [h for h in logging.getLogger("waon_hf").handlers if type(h).__name__ == "_CliHandler"]
    assert len(handlers) == 1  # replaced on each call, not stacked


def test_a_missing_translation_model_fails_before_any_shard(tmp_path, caplog):
    src = tmp_path / "en.parquet"
    pq.write_table(pa.table({"url": ["https://x.example/1.jpg"], "caption": ["a photo"]}), src)
    out = tmp_path / "out"
    assert exit_code(["translate", str(src), "-o", str(out), "--model", str(tmp_path / "no-llm"),
                      "--backend", "transformers"]) == 2
    assert "no-llm is not a folder" in caplog.text
    assert not out.exists()


def test_build_from_relaion_resolves_the_translation_model_first(tmp_path, caplog):
    src = tmp_path / "en.parquet"
    pq.write_table(pa.table({"url": ["https://x.example/1.jpg"], "caption": ["a photo"]}), src)
    cfg = write(tmp_path / "c.yaml", f"siglip: {{model: {tmp_path}}}\n")  # any folder: checked after relaion:
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    out = tmp_path / "out"
    assert exit_code(["build", str(src), "-o", str(out), "--config", cfg, "--source", "relaion",
                      "--relaion-mode", "translate", "--model", str(tmp_path / "no-llm"),
                      "--backend", "transformers"]) == 2
    assert "relaion: model" in caplog.text and "no-llm is not a folder" in caplog.text
    assert not out.exists()
