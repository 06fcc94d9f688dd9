"""``waon download --retry-failed``: re-fetch only the rows whose download status is retryable."""

from __future__ import annotations

import dataclasses
from typing import Any

import datasets

from waon_hf.stats import Stats
from waon_hf.steps.base import Batch, MapStep
from waon_hf.steps.download.statuses import OUTPUT_COLUMNS, RETRYABLE_STATUSES, status_counts
from waon_hf.steps.download.step import DownloadImages


@dataclasses.dataclass
class RetryFailedDownloads(MapStep):
    """Re-fetch the rows whose status is retryable; every other row (its stored image bytes included) is
    kept as it is. Counters: ``in``, ``kept`` and ``retried`` (rows sent again)."""

    name = "download_retry"
    spill_to_disk = True
    download: DownloadImages = dataclasses.field(default_factory=DownloadImages)

    def input_columns(self) -> list[str]:
        return [self.download.column, *OUTPUT_COLUMNS]

    def image_columns(self) -> list[str]:
        return ["image"]

    def output_features(self) -> dict[str, Any]:
        return {**self.download.output_features(), "image": datasets.Image(decode=False)}

    def process_batch(self, batch: Batch) -> Batch:
        return self.download.retry_failed(batch)

    def finish(self, stats: Stats | None) -> None:
        self.download.report_hosts(stats, self.name)

    def apply(self, ds, stats=None, *, num_proc=None, batch_size=1_000):
        missing = [c for c in self.input_columns() if c not in ds.column_names]
        if missing:
            raise ValueError(f"not a downloaded dataset: columns {missing} missing (expected the output of "
                             "`waon download`)")
        retried = sum(status_counts(ds).get(s, 0) for s in RETRYABLE_STATUSES)
        if retried == 0:
            if stats is not None:
                stats.add_stage(self.name, {"in": len(ds), "kept": len(ds), "retried": 0})
            return ds
        out = super().apply(ds, stats, num_proc=num_proc, batch_size=batch_size)
        if stats is not None:
            stats.add(f"{self.name}.retried", retried)
        return out
