"""Cost of hostile pages in ``waon extract``: single pages, then a WARC with such pages among normal ones.

Pages (each Japanese, so that the extractor does its full work on them):

* ``div_100k``: 100,000 nested ``<div>`` (about 500 KB): the HTML tree builder's scope checks walk
  the stack of open elements at every start tag, so parsing is quadratic in the depth;
* ``figure_8k``: 8,000 nested ``<figure>``, each with a caption and an ``<img>``: the caption lookup
  must not search every figure's subtree;
* ``div_gzip``: the nested ``<div>`` page served with ``Content-Encoding: gzip`` (a few KB in the WARC
  that decompress to the payload cap);
* ``flat_200k``: 200,000 sibling elements (wide, not deep).

Each page is timed in a fresh subprocess with a time limit (``--page-timeout``), so a quadratic
case reports "> limit" instead of hanging the benchmark. Then ``run_extract`` is timed on a WARC of
``--pages`` normal synthetic pages, and on the same WARC with the hostile pages appended; the
ratio is the cost of the hostile pages.

Usage: ``python benchmarks/bench_pathological.py [--pages 2000] [--page-timeout 120]``;
``--only figure_8k --max-nesting-work 1000000000000000 --skip-warcs`` times one page past the
nesting budget (what the figure-caption lookup costs once the page is parsed).
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAD = "<html><head><meta charset='utf-8'><title>テスト</title></head><body>"
JA = "<p>これは日本語のページです。写真をたくさん撮りました。京都の紅葉はとてもきれいでした。</p>"


def hostile_pages() -> dict[str, tuple[bytes, list[tuple[str, str]]]]:
    """name -> (payload, extra HTTP headers)."""
    div = (HEAD + JA + "<div>" * 100_000 + "<img src='a.jpg' alt='深い画像'>" + "</body></html>").encode()
    figure = (HEAD + JA + "<figure><figcaption>説明</figcaption><img src='f.jpg' alt='図'>" * 8_000
              + "</body></html>").encode()
    flat = (HEAD + JA + "<span>テキスト</span>" * 200_000 + "</body></html>").encode()
    big_div = (HEAD + JA + "<div>" * 1_000_000 + "</body></html>").encode()
    return {
        "div_100k": (div, []),
        "figure_8k": (figure, []),
        "div_gzip": (gzip.compress(big_div, 9), [("Content-Encoding", "gzip")]),
        "flat_200k": (flat, []),
    }


def _time_one_page(name: str, max_nesting_work: int | None) -> None:
    from waon_hf.steps.extract import ExtractConfig, PageExtractor

    body, headers = hostile_pages()[name]
    if headers:
        body = gzip.decompress(body)[: 5 * 1024 * 1024]  # what FastWARC hands over (payload cap)
    try:
        config = ExtractConfig(max_nesting_work=max_nesting_work) if max_nesting_work else ExtractConfig()
    except TypeError:  # a version without the nesting budget
        config = ExtractConfig()
    start = time.perf_counter()
    result = PageExtractor(config).extract(body, "https://example.jp/x.html", "text/html; charset=utf-8")
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "counts": dict(result.counts), "bytes": len(body)}))


def time_pages(limit: float, only: list[str] | None, max_nesting_work: int | None) -> None:
    print(f"{'page':<12} {'payload':>10} {'seconds':>10}  counts")
    extra = ["--max-nesting-work", str(max_nesting_work)] if max_nesting_work else []
    for name, (body, _headers) in hostile_pages().items():
        if only and name not in only:
            continue
        try:
            proc = subprocess.run([sys.executable, __file__, "--_page", name, *extra], capture_output=True,
                                  text=True, timeout=limit, check=True)
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"{name:<12} {len(body):>10,} {res['seconds']:>10.3f}  {res['counts']}")
        except subprocess.TimeoutExpired:
            print(f"{name:<12} {len(body):>10,} {'> ' + str(int(limit)):>10}  (killed at the limit)")


def time_warcs(n_pages: int, limit: float) -> None:
    from waon_hf.testing import synthetic as S

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        normal = tmp / "normal" / "a.warc.gz"
        normal.parent.mkdir()
        S.generate_corpus(normal, n_pages=n_pages, ja_fraction=0.9, seed=0, target_bytes=20_000, legacy_every=10)
        hostile = tmp / "hostile" / "a.warc.gz"
        hostile.parent.mkdir()
        extra = [S.warc_response(f"https://hostile.example.jp/{name}.html",
                                 [("Content-Type", "text/html; charset=utf-8"), *headers], body)
                 for name, (body, headers) in hostile_pages().items()]
        with open(hostile, "wb") as fh:
            fh.write(normal.read_bytes())
            fh.write(b"".join(gzip.compress(rec, 1, mtime=0) for rec in extra))
        print(f"\nrun_extract, one worker, {n_pages} normal pages (+ {len(extra)} hostile ones):")
        results = {}
        for label, path in (("normal", normal), ("normal + hostile", hostile)):
            code = ("import sys, time; from waon_hf.jobs.extract import run_extract; "
                    "from waon_hf.sources.commoncrawl import SourceFile; t = time.perf_counter(); "
                    "s = run_extract([SourceFile(sys.argv[1], '')], sys.argv[2]); "
                    "print(time.perf_counter() - t, s.get('extract.pairs', 0))")
            try:
                proc = subprocess.run([sys.executable, "-c", code, str(path), str(path.parent / "out")],
                                      capture_output=True, text=True, timeout=limit, check=True)
                seconds, pairs = proc.stdout.split()[-2:]
                results[label] = float(seconds)
                print(f"  {label:<18} {float(seconds):8.2f} s  {int(pairs):,} pairs")
            except subprocess.TimeoutExpired:
                print(f"  {label:<18} > {int(limit)} s (killed at the limit)")
        if len(results) == 2:
            print(f"  ratio: {results['normal + hostile'] / results['normal']:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=2000)
    ap.add_argument("--page-timeout", type=float, default=120.0)
    ap.add_argument("--warc-timeout", type=float, default=600.0)
    ap.add_argument("--skip-pages", action="store_true")
    ap.add_argument("--skip-warcs", action="store_true")
    ap.add_argument("--only", nargs="+", help="time only these pages")
    ap.add_argument("--max-nesting-work", type=int, help="ExtractConfig.max_nesting_work for the page timings "
                    "(a huge value times the work after the budget check, e.g. the figure-caption lookup)")
    ap.add_argument("--_page", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._page:
        _time_one_page(args._page, args.max_nesting_work)
        return
    if not args.skip_pages:
        time_pages(args.page_timeout, args.only, args.max_nesting_work)
    if not args.skip_warcs:
        time_warcs(args.pages, args.warc_timeout)


if __name__ == "__main__":
    main()
