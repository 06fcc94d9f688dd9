"""Download, validate, resize and re-encode images: the ``download`` step, split as img2dataset splits
its downloader.

* :mod:`.statuses`: the closed set of outcomes (:data:`STATUSES`), retryability, failure rows;
* :mod:`.guard`: the SSRF guard (:func:`address_allowed`, :class:`GuardedResolver`);
* :mod:`.robots`: robots.txt rules, ``X-Robots-Tag``, the user-agent token;
* :mod:`.resize`: decode, resize, re-encode (:func:`transcode`, :class:`ImageOptions`);
* :mod:`.hosts`: per-host slots (fixed or adaptive), request rate, ``Crawl-delay``, ``Retry-After``;
* :mod:`.dns`: the per-process DNS cache under the guard;
* :mod:`.fetcher`: the aiohttp side (retries, redirects, robots.txt fetching);
* :mod:`.step`: :class:`DownloadImages`, the step itself.

The policy in prose (statuses, request policy, consent, SSRF guard, images): ``docs/download.md``.
"""

from waon_hf.steps.download.dns import CachingResolver
from waon_hf.steps.download.guard import (
    BlockedAddressError,
    GuardedResolver,
    address_allowed,
    embedded_ipv4,
    ip_literal,
)
from waon_hf.steps.download.hosts import HostSlots, HostState
from waon_hf.steps.download.resize import (
    DECODE_FORMATS,
    ENCODERS,
    INTERPOLATIONS,
    RESIZE_MODES,
    ImageOptions,
    transcode,
)
from waon_hf.steps.download.robots import (
    DEFAULT_USER_AGENT,
    X_ROBOTS_DIRECTIVES,
    RobotsRules,
    user_agent_token,
    x_robots_refuses,
)
from waon_hf.steps.download.statuses import (
    OUTPUT_COLUMNS,
    RETRYABLE_STATUSES,
    STATUSES,
    Failure,
    failure_row,
    retryable,
    status_counts,
)
from waon_hf.steps.download.step import DownloadImages

__all__ = [
    "DECODE_FORMATS", "DEFAULT_USER_AGENT", "ENCODERS", "INTERPOLATIONS", "OUTPUT_COLUMNS", "RESIZE_MODES",
    "RETRYABLE_STATUSES", "STATUSES", "X_ROBOTS_DIRECTIVES", "BlockedAddressError", "CachingResolver",
    "DownloadImages", "Failure", "GuardedResolver", "HostSlots", "HostState", "ImageOptions", "RobotsRules",
    "address_allowed", "embedded_ipv4", "failure_row", "ip_literal", "retryable", "status_counts", "transcode",
    "user_agent_token", "x_robots_refuses",
]
