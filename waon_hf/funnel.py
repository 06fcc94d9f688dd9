"""Turn merged counters into the funnel: one row per step, with drops by reason, the download outcomes by
status (``download.status_<s>``), and each step's share of the shards' wall time (``<step>.milliseconds``
over every stage's ``shard.milliseconds``; the rest is reading the input, page extraction and writing)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from waon_hf.stats import Stats

_WARC_DROPS = ("not_warc", "non_response", "no_http_headers", "http_status_other", "non_html", "no_target_uri",
               "oversized", "truncated")
_PAGE_DROPS_PREFIX = ("binary_payload", "zh_ko_charset", "no_kana", "lang_", "page_error_", "page_too_")
_IMG_DROPS_PREFIX = "img_"
_SKIP_STAGES = {"warc", "extract", "shard"}


@dataclass
class FunnelRow:
    stage: str
    label: str
    count: int
    drops: list[tuple[str, int]] = field(default_factory=list)
    statuses: list[tuple[str, int]] = field(default_factory=list)  # outcomes of a step that keeps every row
    milliseconds: int | None = None  # the step's wall time summed over shards (None: not timed)

    @property
    def drops_text(self) -> str:
        parts = [", ".join(f"{reason}: {n:,}" for reason, n in self.drops if n)]
        if self.statuses:
            parts.append("status " + ", ".join(f"{status}: {n:,}" for status, n in self.statuses))
        return "; ".join(p for p in parts if p) or "-"


def funnel_rows(stats: Stats) -> list[FunnelRow]:
    rows = _source_rows(stats)
    for stage in stats.stages():
        if stage in _SKIP_STAGES:
            continue
        counts = stats.stage(stage)
        if "kept" not in counts:
            continue
        drops = [(k.removeprefix("dropped_"), n) for k, n in counts.items() if k.startswith("dropped_")]
        statuses = sorted(((k.removeprefix("status_"), n) for k, n in counts.items() if k.startswith("status_")),
                          key=lambda item: (-item[1], item[0]))
        rows.append(FunnelRow(stage, f"after {stage}", counts["kept"], drops, statuses, counts.get("milliseconds")))
    return rows


def shard_milliseconds(stats: Stats) -> int:
    """Wall time of every shard of every stage (``shard.milliseconds``, ``shard@<stage>.milliseconds``)."""
    return sum(n for key, n in stats.items()
               if key.endswith(".milliseconds") and key.partition(".")[0].partition("@")[0] == "shard")


def time_share(row: FunnelRow, total_ms: int) -> str:
    if row.milliseconds is None or total_ms <= 0:
        return "-"
    return f"{100 * row.milliseconds / total_ms:.1f}%"


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
    rows, total_ms = funnel_rows(stats), shard_milliseconds(stats)
    lines = ["| stage | rows | dropped (reason: count) | time |", "|---|---:|---|---:|"]
    lines += [f"| {r.label} | {r.count:,} | {r.drops_text} | {time_share(r, total_ms)} |" for r in rows]
    timed = sum(r.milliseconds or 0 for r in rows)
    if total_ms > 0:
        rest = max(0.0, 100 * (total_ms - timed) / total_ms)
        lines.append(f"\ntime: share of {total_ms / 1000:,.1f} s of shard work (summed over shards); the other "
                     f"{rest:.1f}% is reading the input (page extraction included) and writing the shards")
    return "\n".join(lines)


def read_errors(stats: Stats) -> int:
    return stats.get("warc.read_errors", 0)


def funnel_svg(stats: Stats, *, width: int = 760) -> str:
    """The funnel as a horizontal bar chart (SVG, no plotting library): one bar per funnel row.

    Bar lengths are on a log scale: a crawl's funnel spans from millions of records to thousands of
    pairs, and on a linear scale every stage after the first pages would be an invisible sliver.
    """
    from xml.sax.saxutils import escape

    rows = funnel_rows(stats)
    label_w, count_w, bar_h, gap, top = 250, 90, 18, 6, 34
    bar_w = width - label_w - count_w - 20
    top_count = max((r.count for r in rows), default=0)
    scale = math.log10(top_count + 1) or 1.0
    height = top + len(rows) * (bar_h + gap) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        '<text x="10" y="20" font-size="14" font-weight="bold">Funnel (rows after each stage, log scale)</text>',
    ]
    for i, row in enumerate(rows):
        y = top + i * (bar_h + gap)
        length = bar_w * math.log10(row.count + 1) / scale
        parts.append(f'<text x="{label_w - 8}" y="{y + 13}" text-anchor="end">{escape(row.label)}</text>')
        parts.append(f'<rect class="bar" x="{label_w}" y="{y}" width="{length:.1f}" height="{bar_h}" '
                     f'fill="#4c72b0" data-count="{row.count}"/>')
        parts.append(f'<text x="{label_w + length + 6:.1f}" y="{y + 13}">{row.count:,}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
