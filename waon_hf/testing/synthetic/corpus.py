"""Whole synthetic corpora: a WARC file of pages in a planned language mix, and its manifest.

:func:`generate_corpus` derives one random generator per page from ``(seed, index)`` (see
:func:`page_rng`), so the file is byte-identical whatever the number of worker processes.

Broken corpora
--------------
``generate_corpus(broken=True)`` inserts, at deterministic positions, records that a robust
reader must survive: request and metadata records, responses with a garbled HTTP header block
(no status line / no blank line), binary bytes served as text/html, an oversized HTML page, an
image/jpeg response, 404 and 301 responses, raw garbage bytes between two gzip members, and, as
the very last member, a truncated gzip member. The manifest says which is which and keeps the
would-be pairs of the oversized, 404 and truncated pages.
"""

from __future__ import annotations

import itertools
import os
import random
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from waon_hf.testing.synthetic.pages import CHARSET_MODES, JA_ENCODINGS, SyntheticPage, make_page
from waon_hf.testing.synthetic.warc import (
    Garbage,
    Truncated,
    WarcItem,
    encode_item,
    record_date,
    warc_metadata,
    warc_record,
    warc_request,
    warc_response,
    warcinfo,
)

BROKEN_KINDS = ("request", "metadata", "http_no_status_line", "http_no_blank_line", "binary_as_html",
                "oversized", "non_html", "http_404", "http_301", "garbage_between_members")

# zh: utf-8 pages alternate simplified/traditional (by page index), gb18030 is simplified, big5 traditional.
_OTHER_ENCODINGS = {
    "zh": ("utf-8", "gb18030", "big5", "utf-8"),
    "ko": ("utf-8", "euc-kr"),
    "en": ("utf-8", "cp1252"),
}
_UTF8_MODES = ("header", "meta", "http-equiv", "none", "bom")
_LEGACY_MODES = ("header", "meta", "http-equiv")


def _ja_modes(j: int, legacy_every: int = 1) -> tuple[str, str]:
    """(encoding, charset_in) of the j-th Japanese page: all encodings x declaration modes.

    ``legacy_every=1`` rotates evenly through all Japanese encodings; ``legacy_every=k`` makes one
    page in k a legacy encoding (Shift_JIS, CP932, EUC-JP, ISO-2022-JP in turn) and the rest UTF-8.
    """
    if legacy_every > 1:
        legacy = JA_ENCODINGS[1:]
        enc = legacy[(j // legacy_every) % len(legacy)] if j % legacy_every == legacy_every - 1 else "utf-8"
    else:
        enc = JA_ENCODINGS[j % len(JA_ENCODINGS)]
    mode = CHARSET_MODES[(j // len(JA_ENCODINGS)) % len(CHARSET_MODES)]
    if mode == "bom" and enc != "utf-8":
        mode = "header"
    if mode == "none" and enc not in ("utf-8", "shift_jis", "euc-jp"):
        mode = "meta"
    return enc, mode


def _other_modes(j: int, lang: str) -> tuple[str, str]:
    encs = _OTHER_ENCODINGS[lang]
    enc = encs[j % len(encs)]
    modes = _UTF8_MODES if enc == "utf-8" else _LEGACY_MODES
    return enc, modes[(j // 2) % len(modes)]


def corpus_plan(n_pages: int, ja_fraction: float, legacy_every: int = 1) -> list[tuple[str, str, str]]:
    """(lang, encoding, charset_in) per page: exact, evenly spread language mix, no randomness."""
    plan, counters = [], Counter[str]()
    others = itertools.cycle(("zh", "ko", "en"))
    for i in range(n_pages):
        is_ja = int((i + 1) * ja_fraction) > int(i * ja_fraction)
        lang = "ja" if is_ja else next(others)
        j = counters[lang]
        counters[lang] += 1
        plan.append((lang, *(_ja_modes(j, legacy_every) if lang == "ja" else _other_modes(j, lang))))
    return plan


def page_rng(seed: int, index: int) -> random.Random:
    """Per-page generator: pages do not depend on each other, so corpora can be built in parallel."""
    return random.Random(f"waon-synthetic:{seed}:{index}")


def _response_for(page: SyntheticPage, offset: int, status: int = 200) -> bytes:
    headers = [("Date", "Tue, 20 Feb 2024 12:00:00 GMT"), ("Server", "nginx"),
               ("Content-Type", page.content_type()), ("Content-Length", str(len(page.html))),
               ("Connection", "close")]
    return warc_response(page.url, headers, page.html, date=record_date(offset), status=status)


@dataclass(frozen=True)
class _ChunkJob:
    seed: int
    start: int
    plan: list[tuple[str, str, str]]
    n_images: int
    target_bytes: int
    gz: bool
    compresslevel: int
    include_pages: bool


def _build_chunk(job: _ChunkJob) -> list[tuple[bytes, dict]]:
    """Encoded response records and page descriptions for consecutive pages (runs in workers)."""
    out = []
    for k, (lang, enc, mode) in enumerate(job.plan):
        i = job.start + k
        page = make_page(page_rng(job.seed, i), i, lang, enc, n_images=job.n_images,
                         target_bytes=job.target_bytes, charset_in=mode)
        info = page.meta() if job.include_pages else {"url": page.url, "lang": lang, "encoding": enc,
                                                      "n_pairs": len(page.expected_pairs)}
        out.append((encode_item(_response_for(page, i), job.gz, job.compresslevel), info))
    return out


def _broken_record(kind: str, rng: random.Random, n: int, oversized_bytes: int,
                   prev_url: str) -> tuple[WarcItem, str | None, list[tuple[str, str]]]:
    """(item, url, would-be pairs) for one broken kind; n makes urls unique."""
    url = f"https://broken.example.jp/{kind}/{n}.html"
    date = record_date(10_000_000 + n)
    small = make_page(rng, 900_000 + n, "ja", "utf-8", n_images=4, target_bytes=3000)
    html = small.html.replace(b"\r", b"").replace(b"\n\n", b"\n")
    if kind == "request":
        return warc_request(prev_url, date=date), prev_url, []
    if kind == "metadata":
        fields = [("fetchTimeMs", "152"), ("charset-detected", "UTF-8"), ("languages-cld2", '{"ja": 98}')]
        return warc_metadata(prev_url, fields, date=date), prev_url, []
    if kind == "http_no_status_line":
        block = b"Content-Type: text/html; charset=UTF-8\r\nContent-Length: %d\r\n\r\n" % len(html) + html
        return warc_record("response", block, "application/http; msgtype=response", url, date=date), url, []
    if kind == "http_no_blank_line":
        block = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=UTF-8\r\n" + html
        return warc_record("response", block, "application/http; msgtype=response", url, date=date), url, []
    if kind == "binary_as_html":
        body = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rng.randbytes(1500)
        return warc_response(url, [("Content-Type", "text/html")], body, date=date), url, []
    if kind == "non_html":
        jfif = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00H\x00H\x00\x00"
        body = jfif + rng.randbytes(2500) + b"\xff\xd9"
        url = url.replace(".html", ".jpg")
        return warc_response(url, [("Content-Type", "image/jpeg")], body, date=date), url, []
    if kind == "http_404":
        headers = [("Content-Type", "text/html; charset=UTF-8")]
        return warc_response(url, headers, small.html, date=date, status=404), url, small.expected_pairs
    if kind == "http_301":
        body = b'<html><body><a href="https://www.example.jp/">moved</a></body></html>'
        headers = [("Location", "https://www.example.jp/"), ("Content-Type", "text/html")]
        return warc_response(url, headers, body, date=date, status=301), url, []
    if kind == "oversized":
        page = make_page(rng, 900_500 + n, "ja", "utf-8", n_images=8, target_bytes=8000)
        # A giant, very compressible table keeps the compressed file small.
        row = "<tr><td>商品番号</td><td>在庫あり</td><td>1,980円</td></tr>\n".encode()
        filler = row * max(1, (oversized_bytes - len(page.html)) // len(row) + 1)
        body = page.html.replace(b"</article>", b"<table>\n" + filler + b"</table>\n</article>", 1)
        return (warc_response(page.url, [("Content-Type", "text/html; charset=utf-8")], body, date=date),
                page.url, page.expected_pairs)
    if kind == "garbage_between_members":
        junk = b"GARBAGE\x00\x01\x02\xff\xfe not a gzip member \r\n\r\n" + rng.randbytes(64)
        return Garbage(junk), None, []
    raise ValueError(kind)


def _chunks(plan: list[tuple[str, str, str]], size: int) -> Iterable[tuple[int, list[tuple[str, str, str]]]]:
    for start in range(0, len(plan), size):
        yield start, plan[start:start + size]


def generate_corpus(
    path: str | Path,
    n_pages: int,
    ja_fraction: float,
    seed: int = 0,
    broken: bool = False,
    target_bytes: int = 20_000,
    n_images: int = 18,
    oversized_bytes: int = 3_000_000,
    compresslevel: int = 1,
    include_pages: bool = True,
    workers: int | None = None,
    legacy_every: int = 1,
) -> dict:
    """Write a WARC (gzip members if ``path`` ends in .gz) of ``n_pages`` pages and return a manifest.

    ``legacy_every``: 1 spreads Japanese pages evenly over UTF-8 and the four legacy encodings (the
    tests' default: every decoder path is exercised); 10 makes 9 in 10 Japanese pages UTF-8, close
    to the Japanese web today (the benchmarks' realistic mix).

    The output only depends on the arguments, not on ``workers`` (processes; default: one for small
    corpora, up to 4 from 2,000 pages). ``compresslevel`` defaults to 1 because gzip dominates the
    generation time; the members are still ordinary Common Crawl-style gzip members.

    Manifest keys: seed, n_pages, ja_fraction, broken, target_bytes, n_images, oversized_bytes,
    n_records (complete records incl. warcinfo), n_response_records (complete responses, broken
    ones included), counts_by_lang, counts_by_encoding ("lang/encoding"), n_japanese_html
    (well-formed 200 text/html ja pages), n_expected_pairs_ja, broken_records (kind, url,
    record_index or after_record_index, would-be expected_pairs) and, if ``include_pages``, pages
    (``SyntheticPage.meta()`` plus index and record_index).
    """
    path = Path(path)
    gz = path.name.endswith(".gz")
    plan = corpus_plan(n_pages, ja_fraction, legacy_every)
    if workers is None:
        workers = 1 if n_pages < 2000 else max(1, min(4, os.cpu_count() or 1))
    chunk = max(1, min(500, -(-n_pages // (workers * 4))))
    jobs = [_ChunkJob(seed, start, part, n_images, target_bytes, gz, compresslevel, include_pages)
            for start, part in _chunks(plan, chunk)]
    positions: dict[int, list[int]] = {}
    if broken:  # evenly spread, after these page indices
        for k in range(len(BROKEN_KINDS)):
            positions.setdefault((k + 1) * n_pages // (len(BROKEN_KINDS) + 1), []).append(k)
    broken_rng = random.Random(f"waon-synthetic-broken:{seed}")

    pages_meta: list[dict] = []
    broken_meta: list[dict] = []
    by_lang: Counter[str] = Counter()
    by_enc: Counter[str] = Counter()
    n_pairs_ja = n_responses = 0
    n_records = 1  # the warcinfo
    with open(path, "wb") as fh:
        info_record = warcinfo(path.name, {"description": f"synthetic corpus seed={seed}"})
        fh.write(encode_item(info_record, gz, compresslevel))
        if workers > 1 and len(jobs) > 1:
            pool = ProcessPoolExecutor(workers)
            results: Iterable[list[tuple[bytes, dict]]] = pool.map(_build_chunk, jobs)
        else:
            pool, results = None, map(_build_chunk, jobs)
        try:
            i = 0
            for part in results:
                for data, info in part:
                    fh.write(data)
                    lang = info["lang"]
                    by_lang[lang] += 1
                    by_enc[f"{lang}/{info['encoding']}"] += 1
                    if lang == "ja":
                        n_pairs_ja += len(info["expected_pairs"]) if include_pages else info["n_pairs"]
                    if include_pages:
                        pages_meta.append({"index": i, "record_index": n_records, **info})
                    n_records += 1
                    n_responses += 1
                    for k in positions.get(i, ()):
                        kind = BROKEN_KINDS[k]
                        item, url, pairs = _broken_record(kind, broken_rng, k, oversized_bytes, info["url"])
                        entry: dict = {"kind": kind, "url": url, "expected_pairs": [list(p) for p in pairs]}
                        if isinstance(item, Garbage):
                            entry["after_record_index"] = n_records - 1
                        else:
                            entry["record_index"] = n_records
                            n_records += 1
                            n_responses += kind not in ("request", "metadata")
                        fh.write(encode_item(item, gz, compresslevel))
                        broken_meta.append(entry)
                    i += 1
        finally:
            if pool is not None:
                pool.shutdown()
        if broken:
            tail = make_page(broken_rng, n_pages, "ja", "utf-8", n_images=n_images, target_bytes=target_bytes)
            fh.write(encode_item(Truncated(_response_for(tail, n_pages)), gz, compresslevel))
            broken_meta.append({"kind": "truncated_last_member", "url": tail.url,
                                "expected_pairs": [list(p) for p in tail.expected_pairs]})

    manifest = {
        "seed": seed, "n_pages": n_pages, "ja_fraction": ja_fraction, "broken": broken,
        "target_bytes": target_bytes, "n_images": n_images,
        "oversized_bytes": oversized_bytes if broken else None,
        "n_records": n_records,
        "n_response_records": n_responses,
        "counts_by_lang": dict(sorted(by_lang.items())),
        "counts_by_encoding": dict(sorted(by_enc.items())),
        "n_japanese_html": by_lang["ja"],
        "n_expected_pairs_ja": n_pairs_ja,
        "broken_records": broken_meta,
    }
    if include_pages:
        manifest["pages"] = pages_meta
    return manifest
