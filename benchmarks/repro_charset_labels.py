"""One WARC file of normal pages plus pages declaring non-web charsets: does the file still extract?

Writes 20 normal synthetic Japanese pages and, for each label (``punycode``, ``idna``, ``zlib``,
...), one page declaring it in ``<meta>`` and one in the HTTP header (half of them with one invalid
UTF-8 byte), then runs ``run_extract`` over the file and prints the outcome: shard done or failed,
pairs written, and the page counters. Usage: ``python benchmarks/repro_charset_labels.py``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

LABELS = ("punycode", "idna", "undefined", "base64", "hex", "zlib", "bz2", "quopri", "rot_13", "uu", "utf-7",
          "unicode_escape")
PAGE = ("<html><head>{head}<title>京都</title></head><body><p>昨年の秋に家族で京都を訪れました。紅葉がとても"
        "きれいで、写真をたくさん撮りました。</p><img src='{name}.jpg' alt='{name}の写真'></body></html>")


def main() -> None:
    from waon_hf.jobs.extract import ExtractJob, run_extract
    from waon_hf.pipeline.runner import ShardsFailedError
    from waon_hf.sources.commoncrawl import SourceFile
    from waon_hf.testing import synthetic as S

    records = []
    for i in range(20):
        page = S.make_page(S.page_rng(5, i), i, "ja", "utf-8", n_images=4, target_bytes=1500)
        records.append(S.warc_response(page.url, [("Content-Type", page.content_type())], page.html))
    for i, label in enumerate(LABELS):
        for where in ("meta", "header"):
            body = PAGE.format(head=f"<meta charset='{label}'>" if where == "meta" else "",
                               name=f"{where}-{label}").encode()
            if i % 2:
                body = body.replace("秋".encode(), b"\xff")
            header = "text/html" if where == "meta" else f"text/html; charset={label}"
            records.append(S.warc_response(f"https://labels.example.jp/{where}-{label}.html",
                                           [("Content-Type", header)], body))
    with tempfile.TemporaryDirectory() as tmp:
        warc = Path(tmp) / "in" / "labels.warc.gz"
        warc.parent.mkdir()
        S.write_warc(warc, records)
        try:
            stats = run_extract([SourceFile(str(warc), "")], Path(tmp) / "out", ExtractJob(steps=[]))
        except ShardsFailedError as e:
            print(f"shard FAILED: {e}")
            return
        errors = {k: v for k, v in stats.stage("extract").items() if k.startswith("page_")}
        print(f"shard done: {stats['extract.pairs']} pairs from {stats['warc.html_responses']} pages; "
              f"page skips {errors or 'none'}")


if __name__ == "__main__":
    main()
