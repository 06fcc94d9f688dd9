"""A small synthetic crawl for the interleaved-documents recipe, with planted cases and their outcomes.

:func:`write_documents_sample` writes a pages WARC and an images WARC (the images as a crawl stores
them, served offline by the downloader) and returns the plan: which documents must survive with
which images. Planted: an ad picture on 11 documents (dropped by the cross-document rule), a
smaller copy of a photo in the same document (the larger one stays), documents with 1 and 6
images and with 9 and 101 sentences (the size rule), an English page (no Japanese main text), navigation and footer text
(not main text).
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

from waon_hf.testing.synthetic.images import synthetic_image
from waon_hf.testing.synthetic.text import lines
from waon_hf.testing.synthetic.text_ja import JA_SENTENCES
from waon_hf.testing.synthetic.warc import warc_image_response, warc_response, write_warc
from waon_hf.text.sentences import split_sentences

SITE = "http://docs.example.jp"
AD_URL = "http://ads.example.net/banner-{doc}.jpg"


@dataclasses.dataclass
class PlannedDocument:
    url: str
    sentences: list[str]
    image_urls: list[str]  # in page order, as written
    expected_images: list[str] | None  # the images that must survive, or None: the document is dropped
    reason: str = ""  # why it is dropped


def _jpeg(seed: int, width: int, height: int) -> bytes:
    return synthetic_image(seed, width, height)


def _half_size(data: bytes) -> bytes:
    from PIL import Image

    img = Image.open(io.BytesIO(data))
    out = io.BytesIO()
    img.resize((img.width // 2, img.height // 2), Image.Resampling.LANCZOS).save(out, "JPEG", quality=90)
    return out.getvalue()


def _page(title: str, body: list[str], lang: str = "ja") -> bytes:
    nav = "<nav><a href='/'>ホーム</a> <a href='/news'>ニュース一覧へ移動します。</a></nav>"
    footer = "<footer>このサイトの著作権は運営会社に帰属します。</footer>"
    html = (f"<!DOCTYPE html><html lang='{lang}'><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body>{nav}<div class='article'>{''.join(body)}</div>{footer}</body></html>")
    return html.encode("utf-8")


def write_documents_sample(folder: str | Path, n_good: int = 12,
                           n_files: int = 1) -> tuple[list[Path], Path, list[PlannedDocument]]:
    """``(pages WARCs, images WARC, plan)`` under ``folder``; page ``k`` goes to file ``k % n_files``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pool = [s for s in lines(JA_SENTENCES) if len(split_sentences(s)) == 1]  # one sentence a line
    images: dict[str, bytes] = {}
    ad = _jpeg(10_000, 320, 100)
    plan: list[PlannedDocument] = []

    def sentences(k: int, n: int) -> list[str]:
        return [pool[(k * 7 + j) % len(pool)] for j in range(n)]

    def document(k: int, n_sentences: int, n_images: int, *, ad_on: bool, near_dup: bool = False,
                 expected: bool = True, reason: str = "") -> PlannedDocument:
        url = f"{SITE}/articles/{k:03d}.html"
        text = sentences(k, n_sentences)
        own = []
        for j in range(n_images):
            img_url = f"{SITE}/img/{k:03d}-{j}.jpg"
            images[img_url] = _jpeg(k * 100 + j, 480 + 16 * j, 360)
            own.append(img_url)
        page_images = list(own)
        if near_dup:  # a half-size copy of the first photo, later on the page: the full-size one stays
            small = f"{SITE}/img/{k:03d}-0-small.jpg"
            images[small] = _half_size(images[own[0]])
            page_images.append(small)
        if ad_on:
            ad_url = AD_URL.format(doc=k)
            images[ad_url] = ad
            page_images.append(ad_url)
        body, step = [], max(1, n_sentences // (len(page_images) + 1))
        for j, s in enumerate(text):
            body.append(f"<p>{s}</p>")
            if (j + 1) % step == 0 and (j + 1) // step <= len(page_images):
                body.append(f"<img src='{page_images[(j + 1) // step - 1]}' alt='写真'>")
        placed = sum(1 for b in body if b.startswith("<img"))
        body += [f"<img src='{u}' alt='写真'>" for u in page_images[placed:]]
        doc = PlannedDocument(url, text, page_images, own if expected else None, reason)
        doc.html = _page(f"記事 {k}", body)
        return doc

    for k in range(n_good):
        plan.append(document(k, 12 + k, 2 + k % 3, ad_on=k < 11, near_dup=k == 1))
    k = n_good
    plan.append(document(k, 15, 1, ad_on=False, expected=False, reason="too_few_images"))
    plan.append(document(k + 1, 9, 3, ad_on=False, expected=False, reason="too_few_sentences"))
    plan.append(document(k + 2, 101, 3, ad_on=False, expected=False, reason="too_many_sentences"))
    plan.append(document(k + 3, 20, 6, ad_on=False, expected=False, reason="too_many_images"))
    english = PlannedDocument(f"{SITE}/en.html", [], [], None, "no_main_text")  # no Japanese text to score
    english.html = _page("English", ["<p>This page is written in English only, with no Japanese.</p>"] * 12, "en")
    plan.append(english)

    pages = [folder / f"documents-{i:02d}.warc.gz" for i in range(n_files)]
    for i, path in enumerate(pages):
        write_warc(path, [warc_response(d.url, [("Content-Type", "text/html; charset=utf-8")], d.html)
                          for d in plan[i::n_files]])
    image_warc = folder / "document-images.warc.gz"
    write_warc(image_warc, [warc_image_response(u, data) for u, data in sorted(images.items())])
    return pages, image_warc, plan
