"""The funnel table and its plot (``funnel.svg``), which the card embeds."""

import xml.etree.ElementTree as ET
from pathlib import Path

from waon_hf.funnel import funnel_rows, funnel_svg
from waon_hf.jobs.extract import run_extract
from waon_hf.sources.commoncrawl import SourceFile
from waon_hf.stats import Stats

REPO = Path(__file__).resolve().parent.parent
SVG = "{http://www.w3.org/2000/svg}"


def _bars(svg: str) -> list[tuple[int, float]]:
    root = ET.fromstring(svg)
    return [(int(r.get("data-count")), float(r.get("width")))
            for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]


def test_svg_has_one_bar_per_row_ordered_by_count():
    stats = Stats({"warc.records": 1_000_000, "warc.html_responses": 600_000, "extract.japanese_pages": 30_000,
                   "extract.img_tags": 500_000, "extract.pairs": 90_000, "caption_length.kept": 40_000,
                   "caption_length.dropped_short": 50_000, "exact_dedup.kept": 0})
    bars = _bars(funnel_svg(stats))
    assert [count for count, _ in bars] == [r.count for r in funnel_rows(stats)]
    widths = dict(bars)
    # log scale: ordered like the counts, the largest fills the plot, zero has no bar
    assert widths[1_000_000] > widths[600_000] > widths[90_000] > widths[40_000] > widths[30_000] > 0
    assert widths[0] == 0
    assert widths[40_000] > 0.5 * widths[1_000_000]  # visible next to the first row, unlike a linear scale


def test_labels_are_escaped():
    stats = Stats({"relaion.in": 3, "a<b&c.kept": 2})
    root = ET.fromstring(funnel_svg(stats))  # parses: "<" and "&" in a stage name are escaped
    assert "after a<b&c" in [t.text for t in root.iter(f"{SVG}text")]


def test_the_build_writes_the_plot_and_the_card_shows_it(tmp_path):
    out = tmp_path / "out"
    stats = run_extract([SourceFile(str(REPO / "samples" / "sample.warc.gz"), "")], out)
    assert _bars((out / "funnel.svg").read_text())[-1] == (stats["exact_dedup.kept"], _bars(funnel_svg(stats))[-1][1])
    assert "![Funnel: rows after each stage](funnel.svg)" in (out / "README.md").read_text()
