"""``waon download --retry-failed``: re-fetch only the rows whose download status is retryable."""

from __future__ import annotations

import dataclasses

from waon_hf.steps.base import MapStep
from waon_hf.steps.download import DownloadImages


@dataclasses.dataclass
class RetryFailedDownloads(MapStep):
    """Re-fetch the rows whose download status is retryable; every other row is kept as it is."""

    name = "download_retry"
    download: DownloadImages = dataclasses.field(default_factory=DownloadImages)

    def apply(self, ds, stats=None, *, num_proc=None, batch_size=1_000):
        return self.download.apply_retry_failed(ds, stats, num_proc=num_proc, batch_size=batch_size)
