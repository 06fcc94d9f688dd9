"""Turn merged counters into the funnel: one row per stage, with drops by reason."""

from __future__ import annotations

from dataclasses import dataclass, field

from waon_hf.stats import Stats

_WARC_DROPS = ("non_response", "no_http_headers", "http_status_other", "non_html", "no_target_uri", "oversized",
               "truncated")
_PAGE_DROPS_PREFIX = ("binary_payload", "zh_ko_charset", "no_kana", "lang_")
_IMG_DROPS_PREFIX = "img_"
_SKIP_STAGES = {"warc", "extract", "shard"}


@dataclass
class FunnelRow:
    stage: str
    label: str
    count: int
    drops: list[tuple[str, int]] = field(default_factory=list)

    @property
    def drops_text(self) -> str:
        return ", ".join(f"{reason}: {n:,}" for reason, n in self.drops if n) or "-"


def funnel_rows(stats: Stats) -> list[FunnelRow]:
    rows = _source_rows(stats)
    for stage in stats.stages():
        if stage in _SKIP_STAGES:
            continue
        counts = stats.stage(stage)
        if "kept" not in counts:
            continue
        drops = [(k.removeprefix("dropped_"), n) for k, n in counts.items() if k.startswith("dropped_")]
        rows.append(FunnelRow(stage, f"after {stage}", counts["kept"], drops))
    return rows


def _source_rows(stats: Stats) -> list[FunnelRow]:
    """The rows before the first filter: WARC records to pairs for Common Crawl, rows read otherwise."""
    if "warc" not in stats.stages() and "extract" not in stats.stages():
        if "relaion" in stats.stages():
            return [FunnelRow("relaion", "ReLAION rows read", stats.stage("relaion").get("in", 0))]
        return []
    warc, page = stats.stage("warc"), stats.stage("extract")
    return [
        FunnelRow("warc", "WARC records read", warc.get("records", 0),
                  [(k, warc[k]) for k in _WARC_DROPS if warc.get(k)]),
        FunnelRow("warc", "HTML responses (HTTP 200)", warc.get("html_responses", 0),
                  [(k, n) for k, n in page.items() if k.startswith(_PAGE_DROPS_PREFIX)]),
        FunnelRow("extract", "Japanese pages", page.get("japanese_pages", 0)),
        FunnelRow("extract", "<img> tags on Japanese pages", page.get("img_tags", 0),
                  [(k, n) for k, n in page.items() if k.startswith(_IMG_DROPS_PREFIX) and k != "img_tags"]),
        FunnelRow("extract", "pairs extracted", page.get("pairs", 0)),
    ]


def funnel_markdown(stats: Stats) -> str:
    lines = ["| stage | rows | dropped (reason: count) |", "|---|---:|---|"]
    lines += [f"| {r.label} | {r.count:,} | {r.drops_text} |" for r in funnel_rows(stats)]
    return "\n".join(lines)


def read_errors(stats: Stats) -> int:
    return stats.get("warc.read_errors", 0)
