"""Deterministic synthetic web pages, WARC files and pictures for tests, demos and benchmarks.

All randomness comes from ``random.Random`` objects: ``make_page`` takes one, and
``generate_corpus`` derives one per page from ``(seed, index)`` (see :func:`page_rng`), so the
same seed gives byte-identical files whatever the number of worker processes (WARC dates, record
ids and gzip headers are fixed too). The shipped samples in ``samples/`` are written with it
(``dataset_scripts/make_sample_*.py``).

Modules, from the leaves up:

* ``text_ja``, ``text``: the hand-written text pools per language and the paragraph writer;
* ``rules``: the reference implementation of the ``<img>`` extraction rules (``expected_pair``);
* ``snippets``: the ``<img>`` snippet kinds (``IMAGE_KINDS``) pages are made of;
* ``pages``: one page (``make_page`` -> ``SyntheticPage``), its encodings and charset declarations;
* ``warc``: WARC records and the gzip-member writer (``warc_response``, ``write_warc``, ...);
* ``corpus``: whole corpora with a manifest, optionally with broken records (``generate_corpus``);
* ``images``: synthetic pictures (``synthetic_image``, ``synthetic_jpegs``; Pillow and numpy).
"""

from waon_hf.testing.synthetic.corpus import BROKEN_KINDS, corpus_plan, generate_corpus, page_rng
from waon_hf.testing.synthetic.images import synthetic_image, synthetic_jpegs
from waon_hf.testing.synthetic.pages import CHARSET_MODES, JA_ENCODINGS, SyntheticPage, make_page
from waon_hf.testing.synthetic.rules import expected_pair, srcset_best
from waon_hf.testing.synthetic.snippets import IMAGE_KINDS
from waon_hf.testing.synthetic.warc import (
    DEFAULT_DATE,
    Garbage,
    Truncated,
    encode_item,
    http_response_block,
    warc_image_response,
    warc_metadata,
    warc_record,
    warc_request,
    warc_response,
    warcinfo,
    write_warc,
)

__all__ = [
    "SyntheticPage",
    "Garbage",
    "Truncated",
    "IMAGE_KINDS",
    "JA_ENCODINGS",
    "CHARSET_MODES",
    "BROKEN_KINDS",
    "DEFAULT_DATE",
    "make_page",
    "expected_pair",
    "srcset_best",
    "warc_record",
    "warc_response",
    "warc_request",
    "warc_metadata",
    "warcinfo",
    "http_response_block",
    "warc_image_response",
    "encode_item",
    "write_warc",
    "corpus_plan",
    "page_rng",
    "generate_corpus",
    "synthetic_image",
    "synthetic_jpegs",
]
