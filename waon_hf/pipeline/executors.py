"""Executors: where the shards of a run are processed (this machine's processes, or a Ray cluster).

Every executor calls the same function, ``job.run_shard(index, source, layout)``, which writes the
shard's parquet and then its stats file (the completion marker) itself. An executor only decides
where that call runs and reports, per shard, its stats or its error: a shard that raises is a
failed shard (the others go on), exactly the same whichever executor ran it, so the runner's
resume and ``ShardsFailedError`` do not depend on the executor.

Ray: each pending shard is one task (``max_retries`` re-runs a task whose worker process died, e.g.
killed by the OOM killer or a lost node; an exception raised by the shard itself is not retried).
At most ``max_in_flight`` tasks are submitted at a time, so a 100,000-file crawl does not put
100,000 tasks in the scheduler. Workers write directly to the output folder, so on a cluster it
must be on storage every node mounts at the same path (NFS, Lustre, ...); see
:mod:`waon_hf.publish.remote_output` for object-store outputs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from tqdm.auto import tqdm

from waon_hf.sources.commoncrawl import SourceFile
from waon_hf.sources.remote import redact_text
from waon_hf.stats import Stats

logger = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")


def shard_failure(index: int, source: SourceFile, error: BaseException) -> str:
    """The message recorded in ``failed.json`` for a shard that raised."""
    message = redact_text(f"{type(error).__name__}: {error}")  # an input URL's credentials stay out of it
    logger.error("shard %d (%s) failed: %s", index, source.public_location, message)
    return message


def report_shard(progress: tqdm, index: int, stats: Stats) -> None:
    """Advance the shard bar; its counts are the run's totals so far, not the last shard's."""
    progress.update(1)
    totals = getattr(progress, "waon_totals", None)
    if totals is None:
        totals = progress.waon_totals = Stats()
    totals.merge(stats)
    if "extract.pairs" in totals:
        progress.set_postfix(pages=totals.get("extract.japanese_pages", 0), pairs=totals["extract.pairs"])
    logger.debug("shard %d done: %s", index, dict(stats))


class LocalExecutor:
    """Shards in this process (``workers <= 1``, with a per-page bar) or in a process pool."""

    name = "local"

    def __init__(self, workers: int = 1):
        self.workers = workers

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def run(self, pending: Iterable[tuple[int, SourceFile]], job, layout, progress: tqdm) -> dict[int, str]:
        """Run the shards; returns ``{shard index: error}`` for the ones that failed."""
        failures: dict[int, str] = {}
        if self.workers <= 1:
            for index, source in pending:
                try:
                    report_shard(progress, index, job.run_shard(index, source, layout, show_progress=True))
                except Exception as e:  # one bad input must not stop the others
                    failures[index] = shard_failure(index, source, e)
            return failures
        with ProcessPoolExecutor(max_workers=self.workers) as pool:
            futures = {pool.submit(job.run_shard, index, source, layout): (index, source)
                       for index, source in pending}
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    index, source = futures.pop(future)
                    try:
                        report_shard(progress, index, future.result())
                    except Exception as e:
                        failures[index] = shard_failure(index, source, e)
        return failures


def _run_shard_task(job, index: int, source: SourceFile, layout, driver_cwd: str) -> Stats:
    """Body of a Ray task: relative input paths mean what they meant for the driver, when that folder
    exists on this node (always on a local instance; on a cluster with shared storage)."""
    import datasets

    datasets.disable_progress_bars()  # the driver's shard bar is the progress; workers' step bars are noise
    if os.path.isdir(driver_cwd) and os.getcwd() != driver_cwd:
        os.chdir(driver_cwd)
    return job.run_shard(index, source, layout)


def _import_ray():
    try:
        import ray
    except ImportError as e:
        raise RuntimeError("--executor ray needs Ray: pip install 'waon_hf[ray]'") from e
    return ray


class RayExecutor:
    """Shards as Ray tasks on a cluster (``address="auto"`` or ``ray://host:10001``) or a local instance.

    ``ray.init`` is called only when Ray is not initialised yet, and only what was started here is
    shut down. ``num_cpus``/``num_gpus`` are the resources one shard task asks for (a GPU stage such
    as ``score`` wants ``num_gpus=1``). ``workers`` sizes a local instance (default: every core).
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, workers: int = 0, max_retries: int = 3,
                 max_in_flight: int | None = None, num_cpus: float = 1, num_gpus: float = 0):
        self.address = address
        self.workers = workers
        self.max_retries = max_retries
        self.max_in_flight = max_in_flight
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self._started = False

    def __enter__(self) -> RayExecutor:
        """Keep one Ray connection for several runs (the stages of `waon build`), not one per run."""
        self._started = self._connect(_import_ray())
        return self

    def __exit__(self, *exc) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    def _connect(self, ray) -> bool:
        """Initialise Ray unless it already is; returns whether this call started it."""
        if ray.is_initialized():
            return False
        options: dict = {"include_dashboard": False, "logging_level": logging.WARNING}
        if self.address:
            options["address"] = self.address
        elif self.workers > 1:
            options["num_cpus"] = self.workers
        ray.init(**options)
        logger.info("ray: %s", ray.cluster_resources())
        return True

    def run(self, pending: Iterable[tuple[int, SourceFile]], job, layout, progress: tqdm) -> dict[int, str]:
        ray = _import_ray()
        from ray.exceptions import RayError, RayTaskError

        pending = list(pending)
        failures: dict[int, str] = {}
        if not pending:
            return failures
        started = self._connect(ray)
        in_flight: dict = {}
        try:
            task = ray.remote(_run_shard_task).options(
                max_retries=self.max_retries, retry_exceptions=False, num_cpus=self.num_cpus, num_gpus=self.num_gpus,
            )
            job_ref = ray.put(job)  # sent to the object store once, not once per task
            limit = self.max_in_flight or max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
            cwd = os.getcwd()
            queue = iter(pending)
            while True:
                for index, source in queue:
                    in_flight[task.remote(job_ref, index, source, layout, cwd)] = (index, source)
                    if len(in_flight) >= limit:
                        break
                if not in_flight:
                    break
                ready, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in ready:
                    index, source = in_flight.pop(ref)
                    try:
                        report_shard(progress, index, ray.get(ref))
                    except RayTaskError as e:  # the shard raised: the original error, as the local executor
                        failures[index] = shard_failure(index, source, e.cause or e)
                    except RayError as e:  # worker died max_retries + 1 times, node lost, ...
                        failures[index] = shard_failure(index, source, e)
        finally:
            for ref in in_flight:  # only when interrupted: stop what would otherwise run on without us
                ray.cancel(ref, force=True)
            if started:
                ray.shutdown()
        return failures


def make_executor(executor: str | LocalExecutor | RayExecutor | None = None, *, workers: int = 1,
                  ray_address: str | None = None):
    """An executor from its name (``local`` or ``ray``), or the one given."""
    if executor is None or executor == "local":
        if ray_address:
            raise ValueError("--ray-address needs --executor ray")
        return LocalExecutor(workers)
    if executor == "ray":
        return RayExecutor(ray_address, workers=workers)
    if isinstance(executor, str):
        raise ValueError(f"unknown executor {executor!r}; choose from {', '.join(EXECUTORS)}")
    return executor
