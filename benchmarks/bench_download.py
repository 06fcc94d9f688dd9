"""Image download throughput: ``DownloadImages`` against img2dataset, same URLs, same local server.

Setup (all on this machine, nothing leaves 127.0.0.1):

* ``--unique`` synthetic pictures (``waon_hf.testing.synthetic.synthetic_image``: 320-1600 px wide, aspect
  0.5-2, 85% JPEG / 10% PNG / 5% WebP), generated once and cached under
  ``benchmarks/data/download/`` (git-ignored);
* a server process (aiohttp) listening on ``--hosts`` ports of 127.0.0.1, each port standing for one
  web host; every answer waits a per-URL latency drawn uniformly in ``--latency`` (default 50-200
  ms) before its first byte; robots.txt is 404; it refuses to serve more than ``3 * --n`` requests;
* ``--n`` URLs spread over the hosts: 96% images, 3% 404, 1% 500 (so both sides also handle
  failures).

Each downloader runs in its own subprocess, one process each (``--workers`` for ours is 1:
``datasets.map`` in the calling process; img2dataset ``processes_count=1``), with matching
settings: 256 px ``keep_ratio`` resize, JPEG quality 95, 64 requests in flight (ours: ``concurrency
64``, ``per_host`` 4 over 16 hosts; img2dataset: ``thread_count 64``), timeout 10 s, no retries,
SHA-256 computed, EXIF extraction off, output written as Parquet with the image bytes embedded.
Ours runs with ``allow_private=True`` (the server is loopback) and robots.txt on (one extra request
per host); img2dataset reaches 127.0.0.1 by default.

Reported per downloader: wall time, ok images, images/s (wall), images per CPU-second (user + system
time of the subprocess and its children: the per-core rate, which is what matters when a machine
runs one downloader per core), CPU cores used on average, peak resident memory of the process tree
(sampled every 20 ms with psutil), and the status counts.

img2dataset is not a dependency of this project: it pins packages (pandas < 3, albumentations,
opencv, wandb) that would change the project's environment, so it lives in its own virtualenv.
``--install-img2dataset`` creates it at ``benchmarks/data/img2dataset-venv`` (``pip install
img2dataset==1.47.0``); ``--img2dataset-python`` points at another interpreter that has it.

``--mix zipf`` is the crawl-like host mix instead: the hosts of the URLs follow a Zipf law
(exponent ``--zipf``, default 1.0: the first host holds about 1/H(hosts) of the URLs), each host has
its own latency drawn in ``--latency``, the hosts of ``--throttled-ranks`` (1 = the biggest) answer
429 at once to any request beyond 2 in flight, and one host (``--crawl-delay-rank``, default 20)
sends ``Crawl-delay: 1`` in its robots.txt. The server reports, per run, the peak concurrency and 429
count of each throttled host and the smallest gap between two requests to the Crawl-delay host; the
driver prints the URL plan's *polite floor* (the longest any one host keeps a downloader busy that
keeps these rules: no such run can be shorter) and, for adaptive runs, how the busiest hosts' limits
moved (``--plot``: as a PNG). ``--ours`` lists the settings of ours to run, as
``name:per_host[:per_host_max][@concurrency]``: ``name:4`` a fixed cap of 4 per host, ``name:4:64``
adaptive from 4 up to 64, ``name:default`` the step's own defaults (its concurrency too, unless
``@N`` is given); the others run at ``--concurrency``.

Usage::

    python benchmarks/bench_download.py --install-img2dataset   # once
    python benchmarks/bench_download.py [--n 2000] [--rounds 2] [--json out.json]
    python benchmarks/bench_download.py --mix zipf --n 20000 --hosts 2000 --latency 0.02 0.3 \
        --throttled-ranks 10 30 100 --crawl-delay-rank 100 --ours default:default fixed4:4 fixed64:64
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA_DIR = HERE / "data" / "download"
I2D_VENV = HERE / "data" / "img2dataset-venv"
I2D_PIN = "img2dataset==1.47.0"
RESULT_PREFIX = "BENCH_RESULT "
MIB = 1024 * 1024


# --------------------------------------------------------------------------------------------
# Inputs: images and URLs
# --------------------------------------------------------------------------------------------

def make_images(n_unique: int, seed: int = 0) -> Path:
    """Write ``n_unique`` pictures to ``DATA_DIR/images-<n>-<seed>/`` once; return the folder."""
    sys.path.insert(0, str(REPO))
    from waon_hf.testing.synthetic import synthetic_image

    folder = DATA_DIR / f"images-{n_unique}-{seed}"
    done = folder / "DONE"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for i in range(n_unique):
        width = rng.randint(320, 1600)
        height = max(64, int(width / rng.uniform(0.5, 2.0)))
        r = rng.random()
        fmt, ext = ("JPEG", "jpg") if r < 0.85 else ("PNG", "png") if r < 0.95 else ("WEBP", "webp")
        (folder / f"{i}.{ext}").write_bytes(synthetic_image(seed * 100_000 + i, width, height, fmt, quality=88))
    done.write_text("ok")
    return folder


def url_plan(n: int, hosts: int, n_unique: int, seed: int = 0) -> list[tuple[int, str]]:
    """(host index, path) per URL: 96% images, 3% 404, 1% 500, spread evenly over hosts."""
    rng = random.Random(seed + 1)
    plan = []
    for i in range(n):
        r = rng.random()
        path = f"/img/{i}-{i % n_unique}" if r < 0.96 else f"/missing/{i}" if r < 0.99 else f"/error/{i}"
        plan.append((i % hosts, path))
    return plan


def zipf_plan(n: int, hosts: int, n_unique: int, exponent: float, seed: int = 0) -> list[tuple[int, str]]:
    """(host index, path) per URL, hosts drawn from a Zipf law (index 0 the biggest), same status mix."""
    rng = random.Random(seed + 2)
    weights = [1 / (rank ** exponent) for rank in range(1, hosts + 1)]
    chosen = rng.choices(range(hosts), weights=weights, k=n)
    plan = []
    for i, host in enumerate(chosen):
        r = rng.random()
        path = f"/img/{i}-{i % n_unique}" if r < 0.96 else f"/missing/{i}" if r < 0.99 else f"/error/{i}"
        plan.append((host, path))
    return plan


THROTTLE_ABOVE = 2  # a throttled host serves this many requests at a time


def host_latency(host: int, lat_min: float, lat_max: float) -> float:
    """The zipf mix's latency of ``host`` (each URL: this x 0.9-1.1)."""
    return lat_min + (zlib.crc32(str(host).encode()) / 2**32) * (lat_max - lat_min)


def polite_floor(plan: list[tuple[int, str]], lat: tuple[float, float], throttled: set[int], crawl_delay_host: int,
                 cap: int | None) -> tuple[float, int]:
    """(seconds, host rank): the longest any one host keeps a downloader busy that respects its rules
    (``cap`` in flight per host, or only what the host tolerates when None; 1 at a time with a 1 s gap
    for the Crawl-delay host), with unlimited global slots and CPU: no run can be shorter."""
    counts: dict[int, int] = {}
    for host, _ in plan:
        counts[host] = counts.get(host, 0) + 1
    worst = (0.0, 0)
    for host, n in counts.items():
        latency = host_latency(host, *lat)
        if host == crawl_delay_host:
            seconds = n * (1.0 + latency)
        else:
            allowed = THROTTLE_ABOVE if host in throttled else float("inf")
            if cap is not None:
                allowed = min(allowed, cap)
            seconds = 0.0 if allowed == float("inf") else n * latency / allowed
        worst = max(worst, (seconds, host + 1))
    return worst


# --------------------------------------------------------------------------------------------
# The server (a subprocess)
# --------------------------------------------------------------------------------------------

def serve(folder: str, ports_file: str, hosts: int, lat_min: float, lat_max: float, max_requests: int,
          mix: str = "even", throttled_ranks: tuple[int, ...] = (), crawl_delay_rank: int = 0) -> None:
    import asyncio

    from aiohttp import web

    throttled = {rank - 1 for rank in throttled_ranks} if mix == "zipf" else set()
    crawl_delay_host = crawl_delay_rank - 1  # -1: none
    port_host: dict[int, int] = {}
    inflight: dict[int, int] = {}
    report: dict = {}

    def reset() -> None:
        report.clear()
        report.update({"peak": {}, "http_429": {}, "crawl_delay_arrivals": []})

    reset()

    images = {}
    for p in Path(folder).iterdir():
        if p.suffix in (".jpg", ".png", ".webp"):
            ctype = {".jpg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}[p.suffix]
            images[p.stem] = (p.read_bytes(), ctype)
    served = {"n": 0}

    async def handler(request: web.Request) -> web.Response:
        path = request.path
        if path == "/__report":  # the driver's question, not a request of a downloader
            body = json.dumps(report)
            reset()
            return web.Response(text=body, content_type="application/json")
        served["n"] += 1
        if served["n"] > max_requests:
            return web.Response(status=503, text="request budget exhausted")
        if mix != "zipf":
            latency = lat_min + (zlib.crc32(path.encode()) / 2**32) * (lat_max - lat_min)
            await asyncio.sleep(latency)
            return respond(path)
        host = port_host[request.transport.get_extra_info("sockname")[1]]
        if host == crawl_delay_host:
            report["crawl_delay_arrivals"].append(time.monotonic())
        if path == "/robots.txt" and host == crawl_delay_host:
            return web.Response(text="User-agent: *\nCrawl-delay: 1\n")
        inflight[host] = inflight.get(host, 0) + 1
        try:
            key = str(host)
            report["peak"][key] = max(report["peak"].get(key, 0), inflight[host])
            if host in throttled and inflight[host] > THROTTLE_ABOVE:
                report["http_429"][key] = report["http_429"].get(key, 0) + 1
                return web.Response(status=429, text="slow down")
            jitter = 0.9 + 0.2 * (zlib.crc32(path.encode()) / 2**32)
            await asyncio.sleep(host_latency(host, lat_min, lat_max) * jitter)
            return respond(path)
        finally:
            inflight[host] -= 1

    def respond(path: str) -> web.Response:
        if path.startswith("/img/"):
            body, ctype = images[path.rsplit("-", 1)[1]]
            return web.Response(body=body, content_type=ctype)
        if path.startswith("/error/"):
            return web.Response(status=500, text="server error")
        return web.Response(status=404, text="not found")

    async def main() -> None:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        ports = []
        for _ in range(hosts):
            site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
            await site.start()
            ports.append(site._server.sockets[0].getsockname()[1])
            port_host[ports[-1]] = len(ports) - 1
        Path(ports_file).write_text(json.dumps(ports))
        await asyncio.Event().wait()

    asyncio.run(main())


# --------------------------------------------------------------------------------------------
# The two downloaders (each in its own subprocess)
# --------------------------------------------------------------------------------------------

def run_ours(urls_file: str, out_dir: str, concurrency: int, per_host: str, image_size: int,
             per_host_max: str = "") -> dict:
    """``per_host`` "default": the step's own per-host settings; else ``per_host`` (and ``per_host_max``:
    adaptive from ``per_host`` up to it; empty: a fixed cap)."""
    sys.path.insert(0, str(REPO))
    import datasets

    from waon_hf.stats import Stats
    from waon_hf.steps.download import DownloadImages, status_counts
    from waon_hf.steps.download.hosts import HostState

    datasets.disable_progress_bars()
    urls = Path(urls_file).read_text().split()
    limits = ({} if per_host == "default" else {"per_host": int(per_host)} if not per_host_max
              else {"per_host": None, "per_host_start": int(per_host), "per_host_max": int(per_host_max)})
    if concurrency:  # 0: the step's default
        limits["concurrency"] = concurrency
    step = DownloadImages(allow_private=True, image_size=image_size,
                          resize_mode="keep_ratio", encode_quality=95, timeout_total=10, timeout_read=10, retries=0,
                          **limits)
    # The limits' history: (seconds since start, state id, limit) whenever a host's whole limit changes.
    trace: list[tuple[float, int, int]] = []
    observe = HostState.observe

    def traced(self, *args, **kwargs):
        before = int(self.limit)
        observe(self, *args, **kwargs)
        if int(self.limit) != before or not self.requests - 1:
            trace.append((time.perf_counter() - t0, id(self), int(self.limit)))

    HostState.observe = traced
    stats = Stats()
    t0 = time.perf_counter()
    ds = step.apply(datasets.Dataset.from_dict({"url": urls}), stats)
    ds.to_parquet(os.path.join(out_dir, "ours.parquet"))
    wall = time.perf_counter() - t0
    hosts: dict[str, dict] = {}
    for key, n in stats.stage("download_hosts").items():
        origin, counter = key.rsplit(".", 1)
        hosts.setdefault(origin.rsplit(":", 1)[1], {})[counter] = n  # by port
    port_of = {id(state): origin.rsplit(":", 1)[1] for origin, state in step.host_states().items()}
    history: dict[str, list] = {}
    for t, sid, limit in trace:
        if sid in port_of and port_of[sid] in hosts:  # the busiest hosts only
            history.setdefault(port_of[sid], []).append((round(t, 3), limit))
    settings = {"per_host": step.per_host, "per_host_max": step.adaptive_max(), "concurrency": step.concurrency}
    return {"wall_s": wall, "statuses": status_counts(ds), "hosts": hosts, "limits": history, "settings": settings}


def run_img2dataset(urls_file: str, out_dir: str, concurrency: int, image_size: int) -> dict:
    import pyarrow.parquet as pq
    from img2dataset import download

    n = len(Path(urls_file).read_text().split())
    t0 = time.perf_counter()
    download(url_list=urls_file, input_format="txt", output_folder=out_dir, output_format="parquet",
             processes_count=1, thread_count=concurrency, image_size=image_size, resize_mode="keep_ratio",
             encode_quality=95, encode_format="jpg", timeout=10, retries=0, extract_exif=False,
             compute_hash="sha256", enable_wandb=False, number_sample_per_shard=n, distributor="multiprocessing",
             incremental_mode="incremental")  # a fresh folder; "overwrite" deletes its own _tmp
    wall = time.perf_counter() - t0
    statuses: dict[str, int] = {}
    for p in Path(out_dir).glob("*.parquet"):
        t = pq.read_table(p, columns=["status", "error_message"]).to_pylist()
        for row in t:
            key = row["status"]
            if key != "success":
                key += f": {(row['error_message'] or '')[:40]}"
            statuses[key] = statuses.get(key, 0) + 1
    return {"wall_s": wall, "statuses": dict(sorted(statuses.items(), key=lambda kv: -kv[1]))}


def child_main(argv: list[str]) -> None:
    which, urls_file, out_dir, concurrency, per_host, image_size, per_host_max = argv
    if which == "ours":
        result = run_ours(urls_file, out_dir, int(concurrency), per_host, int(image_size), per_host_max)
    else:
        result = run_img2dataset(urls_file, out_dir, int(concurrency), int(image_size))
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# --------------------------------------------------------------------------------------------
# Measuring a subprocess: CPU from getrusage(CHILDREN), peak RSS of the tree from psutil
# --------------------------------------------------------------------------------------------

def _tree_rss(proc) -> int:
    import psutil

    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def measure(cmd: list[str], env: dict | None = None) -> dict:
    import resource

    import psutil

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        try:
            ps = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss(ps))
            stop.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    stop.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed ({proc.returncode}):\n{err[-3000:]}")
    line = next(ln for ln in out.splitlines() if ln.startswith(RESULT_PREFIX))
    result = json.loads(line[len(RESULT_PREFIX):])
    result["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["peak_rss_mib"] = peak[0] / MIB
    return result


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------

def install_img2dataset() -> Path:
    python = I2D_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(I2D_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", I2D_PIN], check=True)
    return python


def img2dataset_python(arg: str | None) -> tuple[str | None, str]:
    """(interpreter, '') or (None, why not)."""
    candidates = [arg] if arg else [sys.executable, str(I2D_VENV / "bin" / "python")]
    for python in candidates:
        if not python or not Path(python).exists():
            continue
        check = subprocess.run([python, "-c", "import img2dataset"], capture_output=True, text=True)
        if check.returncode == 0:
            return python, ""
        why = check.stderr.strip().splitlines()[-1] if check.stderr.strip() else "import failed"
    else:
        why = "no interpreter with img2dataset (run with --install-img2dataset)"
    return None, why


def server_report(port: int, ports: list[int]) -> dict:
    """What the server saw during the last run (and a reset): per-host peaks and 429s, Crawl-delay gaps."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/__report", timeout=10) as resp:
        report = json.load(resp)
    arrivals = report.pop("crawl_delay_arrivals")
    report["crawl_delay_requests"] = len(arrivals)
    report["crawl_delay_min_gap_s"] = min((b - a for a, b in zip(arrivals, arrivals[1:], strict=False)), default=None)
    report["ports"] = ports
    return report


def print_politeness(summary: dict, throttled_ranks: list[int]) -> None:
    print()
    print(f"| downloader | throttled hosts (rank): peak in flight / 429s (tolerated: {THROTTLE_ABOVE}) "
          "| Crawl-delay: 1 host: requests, min gap s | final limits of the 5 busiest hosts (rank: limit) |")
    print("|---|---|---|---|")
    for m, best in summary.items():
        server, ports = best["server"], best["server"]["ports"]
        throttled = ", ".join(f"{h + 1}: {server['peak'].get(str(h), 0)} / {server['http_429'].get(str(h), 0)}"
                              for h in (rank - 1 for rank in throttled_ranks))
        gap = server["crawl_delay_min_gap_s"]
        limits = "-"
        if best.get("hosts"):
            busiest = sorted(best["hosts"].items(), key=lambda kv: -kv[1].get("requests", 0))[:5]
            limits = ", ".join(f"{ports.index(int(port)) + 1}: {h.get('final_limit')}" for port, h in busiest)
        print(f"| {m} | {throttled} | {server['crawl_delay_requests']}, "
              f"{'-' if gap is None else f'{gap:.2f}'} | {limits} |")


def print_floors(summary: dict, plan: list[tuple[int, str]], args) -> None:
    """The polite floor of each of ours (no run that keeps the hosts' rules and its own cap can be shorter)."""
    throttled = {rank - 1 for rank in args.throttled_ranks}
    floor, rank = polite_floor(plan, tuple(args.latency), throttled, args.crawl_delay_rank - 1, None)
    print(f"\nPolite floor of the URL plan (the host rules alone): {floor:.1f} s (host rank {rank})")
    for m, best in summary.items():
        settings = best.get("settings")
        if settings and settings["per_host_max"] is None:
            floor, rank = polite_floor(plan, tuple(args.latency), throttled, args.crawl_delay_rank - 1,
                                       settings["per_host"])
            print(f"  {m} (fixed {settings['per_host']} per host): {floor:.1f} s (host rank {rank})")


def print_limits(summary: dict, plot: str | None) -> None:
    """How the adaptive limits of the busiest hosts moved (text; and a PNG with ``plot``)."""
    adaptive = {m: best for m, best in summary.items()
                if best.get("settings") and best["settings"]["per_host_max"] is not None}
    for m, best in adaptive.items():
        ports = best["server"]["ports"]
        busiest = sorted(best["hosts"].items(), key=lambda kv: -kv[1].get("requests", 0))[:6]
        print(f"\n{m}: adaptive limits of the busiest hosts (rank: requests; limit at 1/5/15/60 s; max reached "
              "at s; final)")
        for port, counts in busiest:
            history = best["limits"].get(port, [])
            if not history:
                continue

            def at(t: float, history=history) -> int:
                return next((limit for when, limit in reversed(history) if when <= t), history[0][1])

            top = max(limit for _, limit in history)
            reached = next(when for when, limit in history if limit == top)
            print(f"  {ports.index(int(port)) + 1}: {counts.get('requests')}; {at(1)}/{at(5)}/{at(15)}/{at(60)}; "
                  f"{top} at {reached:.1f}; {counts.get('final_limit')}")
    if plot and adaptive:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        m, best = next(iter(adaptive.items()))
        ports = best["server"]["ports"]
        fig, ax = plt.subplots(figsize=(7, 3.2), dpi=110)
        busiest = sorted(best["hosts"].items(), key=lambda kv: -kv[1].get("requests", 0))[:6]
        for port, _ in busiest:
            history = best["limits"].get(port, [])
            if history:
                ax.step([t for t, _ in history], [limit for _, limit in history], where="post",
                        label=f"rank {ports.index(int(port)) + 1}")
        ax.set_xlabel("seconds")
        ax.set_ylabel("requests in flight allowed")
        ax.set_title(f"{m}: per-host limits of the busiest hosts")
        ax.legend(fontsize=7, ncol=3)
        fig.tight_layout()
        fig.savefig(plot)
        print(f"plot written to {plot}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--_child":
        child_main(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="URLs (requests are bounded by 3x this)")
    ap.add_argument("--unique", type=int, default=400, help="distinct pictures behind the URLs")
    ap.add_argument("--hosts", type=int, default=16, help="server ports, each standing for one host")
    ap.add_argument("--latency", type=float, nargs=2, default=(0.05, 0.2), metavar=("MIN", "MAX"))
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--per-host", type=int, default=4)
    ap.add_argument("--ours", nargs="+", default=None, metavar="NAME:PER_HOST[:PER_HOST_MAX]",
                    help="settings of ours to run (default: ours:<--per-host>)")
    ap.add_argument("--mix", choices=("even", "zipf"), default="even")
    ap.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent of the host mix")
    ap.add_argument("--throttled-ranks", type=int, nargs="*", default=[2, 4, 6],
                    help="zipf mix: the hosts (ranks, 1 = the biggest) that answer 429 above 2 in flight")
    ap.add_argument("--plot", default=None, help="write the busiest hosts' adaptive limits over time to this PNG")
    ap.add_argument("--crawl-delay-rank", type=int, default=20, help="zipf mix: the host (rank) whose robots.txt "
                                                                        "says Crawl-delay: 1 (0: none)")
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=1, help="runs of each downloader, alternating")
    ap.add_argument("--only", choices=("ours", "img2dataset"), default=None)
    ap.add_argument("--img2dataset-python", default=None)
    ap.add_argument("--install-img2dataset", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    if args.install_img2dataset:
        print("img2dataset installed in", install_img2dataset())
        return
    folder = make_images(args.unique)
    i2d_python, i2d_why = img2dataset_python(args.img2dataset_python)
    variants = {}
    for spec in args.ours or [f"ours:{args.per_host}"]:
        spec, _, concurrency = spec.partition("@")
        name, per_host, *rest = spec.split(":")
        concurrency = concurrency or ("0" if per_host == "default" else str(args.concurrency))
        variants[name] = (per_host if per_host == "default" else str(int(per_host)), rest[0] if rest else "",
                          concurrency)
    methods = [*(variants if args.only in (None, "ours") else []), *(["img2dataset"] if args.only in (None,
                                                                      "img2dataset") else [])]

    import multiprocessing as mp

    with tempfile.TemporaryDirectory(prefix="bench-download-") as tmp:
        ports_file = os.path.join(tmp, "ports.json")
        budget = 3 * args.n * args.rounds * len(methods) + 10 * args.hosts
        server = mp.get_context("spawn").Process(
            target=serve, args=(str(folder), ports_file, args.hosts, *args.latency, budget, args.mix,
                                 tuple(args.throttled_ranks),
                                 args.crawl_delay_rank),
            daemon=True)
        server.start()
        for _ in range(200):
            if os.path.exists(ports_file) and os.path.getsize(ports_file):
                break
            time.sleep(0.05)
        ports = json.loads(Path(ports_file).read_text())
        plan = (zipf_plan(args.n, args.hosts, args.unique, args.zipf) if args.mix == "zipf"
                else url_plan(args.n, args.hosts, args.unique))
        urls = [f"http://127.0.0.1:{ports[h]}{path}" for h, path in plan]
        urls_file = os.path.join(tmp, "urls.txt")
        Path(urls_file).write_text("\n".join(urls) + "\n")

        results: dict[str, list[dict]] = {m: [] for m in methods}
        try:
            for r in range(args.rounds):
                for m in methods:
                    out_dir = os.path.join(tmp, f"{m}-{r}")
                    ours = m in variants
                    if ours:  # img2dataset wants to create its folder (an existing one loses its _tmp)
                        os.makedirs(out_dir)
                    per_host, per_host_max, concurrency = variants.get(m, (args.per_host, "", str(args.concurrency)))
                    child = ["ours" if ours else m, urls_file, out_dir, concurrency, str(per_host),
                             str(args.image_size), per_host_max]
                    if ours:
                        cmd = [sys.executable, __file__, "--_child", *child]
                    elif i2d_python is None:
                        results[m].append({"skipped": i2d_why})
                        continue
                    else:
                        cmd = [i2d_python, __file__, "--_child", *child]
                    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "disabled"}
                    res = measure(cmd, env)
                    res["server"] = server_report(ports[0], ports)
                    print(f"round {r + 1} {m}: {res['wall_s']:.1f}s wall, {res['cpu_s']:.1f}s CPU, "
                          f"{res['peak_rss_mib']:.0f} MiB, {res['statuses']}", flush=True)
                    results[m].append(res)
        finally:
            server.terminate()
            server.join(5)

    print()
    print(f"{args.mix} host mix{f' (Zipf {args.zipf})' if args.mix == 'zipf' else ''}: "
          f"{args.n} URLs over {args.hosts} hosts on 127.0.0.1, latency {args.latency[0] * 1000:.0f}-"
          f"{args.latency[1] * 1000:.0f} ms, {args.image_size} px keep_ratio, JPEG q95, {args.concurrency} in flight, "
          f"one process each; {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}")
    print()
    print("| downloader | ok images | wall s | images/s | images per CPU-s | CPU cores used | peak RSS MiB "
          "| statuses |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    summary = {}
    for m, runs in results.items():
        done = [x for x in runs if "skipped" not in x]
        if not done:
            print(f"| {m} | skipped: {runs[0]['skipped'] if runs else 'not run'} | | | | | | |")
            continue
        best = min(done, key=lambda x: x["wall_s"])
        ok = best["statuses"].get("ok", best["statuses"].get("success", 0))
        per_cpu = ok / best["cpu_s"] if best["cpu_s"] else float("nan")
        summary[m] = {**best, "ok": ok, "images_per_s": ok / best["wall_s"], "images_per_cpu_s": per_cpu,
                      "runs": done}
        statuses = ", ".join(f"{k} {v}" for k, v in best["statuses"].items())
        print(f"| {m} | {ok} | {best['wall_s']:.1f} | {ok / best['wall_s']:.0f} | {per_cpu:.0f} | "
              f"{best['cpu_s'] / best['wall_s']:.2f} | {best['peak_rss_mib']:.0f} | {statuses} |")
    if args.mix == "zipf":
        print_politeness(summary, args.throttled_ranks)
        print_floors(summary, plan, args)
        print_limits(summary, args.plot)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": summary}, indent=1))


if __name__ == "__main__":
    main()
