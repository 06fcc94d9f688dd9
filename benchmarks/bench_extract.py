"""Extraction throughput of ``waon extract`` against a read-only ceiling and WAON's own method.

What is measured, per synthetic corpus (pages = WARC ``response`` records, ~20 KB of HTML and ~18
``<img>`` each, several encodings), every configuration in a fresh subprocess so that its peak
memory is its own:

(a) ceiling: bare FastWARC iteration reading every response payload, best of 3. No extractor can
    beat it; the share of it that ``waon extract`` reaches says how much room is left.
(b) ``waon extract`` with one worker on the corpus file: ``run_extract`` timed end to end (WARC
    reading, extraction, caption filters, exact dedup, writing the dataset), best of 2; the time
    is also split into shard work (``shard.milliseconds``) and finalize (the rest).
(c) WAON's method (``waon_baseline.py``: warcio + trafilatura + lingua + BeautifulSoup) on the first
    ``--baseline-pages`` pages, one run. Its cost is per page, so a subset gives a fair rate. The
    lingua detector is built (all models preloaded) and trafilatura/bs4 are warmed up before the
    clock starts: model load is a one-off cost, not a per-page one.
(d) scaling: the same corpus cut into ``--parts`` files at WARC record boundaries (the gzip members
    are copied as they are, so the parts hold exactly the corpus's records), run by ``waon extract``
    with ``--workers 1`` and with ``--workers N``, one run each.
(e) peak memory of each subprocess: the largest resident set of the process or any of its children
    (``getrusage``), and the sum over the process tree sampled every 50 ms (psutil; this is the one
    that counts for several workers).

The corpora are two mixes: ``ja90`` (90% Japanese pages: the extractor does full work on most
pages) and ``ja10`` (10% Japanese: what a Common Crawl WARC looks like once pre-filtered by
language, where rejecting non-Japanese pages cheaply is what matters). They are generated once by
``waon_hf.testing.synthetic`` with a fixed seed and cached under ``benchmarks/data/`` (git-ignored).

Usage: ``python benchmarks/bench_extract.py [--pages 20000] [--json results.json]``;
``--methods`` picks configurations, ``--profile FILE.prof`` adds a cProfile run of (b) on the first
corpus and prints the top ``waon_hf`` functions by cumulative time.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATA_DIR = HERE / "data"
CHILD_FLAG = "--_child"
RESULT_PREFIX = "BENCH_RESULT "
CORPORA = {"ja90": 0.9, "ja10": 0.1}
METHODS = ("ceiling", "waon", "baseline", "scaling")
MIB = 1024 * 1024

# The ``bench`` extra of pyproject.toml. lingua 2.2.0 requires Python >= 3.12; on 3.11 the newest
# release that installs is 2.1.1 (same API and models).
LINGUA_PIN = "lingua-language-detector==2.2.0" if sys.version_info >= (3, 12) else "lingua-language-detector==2.1.1"
BENCH_REQUIREMENTS = ["warcio==1.8.1", "trafilatura==2.3.1", LINGUA_PIN, "beautifulsoup4==4.15.0", "psutil"]
BENCH_MODULES = ("warcio", "trafilatura", "lingua", "bs4", "psutil")

CHILD_ENV = {
    "TQDM_DISABLE": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


# --------------------------------------------------------------------------- setup


def ensure_bench_deps() -> None:
    """Install the ``bench`` extra into this interpreter's environment when a module is missing."""
    missing = [m for m in BENCH_MODULES if importlib.util.find_spec(m) is None]
    if not missing:
        return
    print(f"installing benchmark dependencies (missing: {', '.join(missing)})", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", *BENCH_REQUIREMENTS], check=True)
    importlib.invalidate_caches()


def _manifest_path(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".warc.gz") + ".manifest.json")


def _cached(path: Path, params: dict) -> bool:
    manifest = _manifest_path(path)
    if not (path.exists() and manifest.exists()):
        return False
    return json.loads(manifest.read_text())["params"] == params


def ensure_corpus(path: Path, n_pages: int, ja_fraction: float, seed: int, legacy_every: int) -> Path:
    """Generate a synthetic corpus unless the cached file was made with the same parameters."""
    params = {"n_pages": n_pages, "ja_fraction": ja_fraction, "seed": seed, "legacy_every": legacy_every}
    if _cached(path, params):
        return path
    from waon_hf.testing.synthetic import generate_corpus

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    print(f"generating {path.name}: {n_pages:,} pages, ja_fraction={ja_fraction}, seed={seed}", flush=True)
    started = time.perf_counter()
    manifest = generate_corpus(tmp, n_pages=n_pages, ja_fraction=ja_fraction, seed=seed, include_pages=False,
                               legacy_every=legacy_every)
    os.replace(tmp, path)
    _manifest_path(path).write_text(json.dumps({"params": params, "manifest": manifest}, default=str, indent=1))
    print(f"  {path.stat().st_size / MIB:.1f} MiB in {time.perf_counter() - started:.1f} s", flush=True)
    return path


def gzip_members(data: bytes, chunk: int = 1 << 14) -> list[tuple[int, int, bool]]:
    """``(offset, length, is_response)`` of every gzip member (= WARC record) of a ``.warc.gz``."""
    members = []
    view = memoryview(data)
    pos = 0
    while pos < len(data):
        decoder = zlib.decompressobj(wbits=31)
        head = b""
        fed = pos
        while not decoder.eof:
            if fed >= len(data):
                raise ValueError(f"truncated gzip member at offset {pos}")
            out = decoder.decompress(view[fed:fed + chunk])
            fed += len(view[fed:fed + chunk])
            if len(head) < 4096:
                head += out[:4096]
        end = fed - len(decoder.unused_data)
        header = head.split(b"\r\n\r\n", 1)[0]
        members.append((pos, end - pos, b"\r\nWARC-Type: response\r\n" in header + b"\r\n"))
        pos = end
    return members


def split_corpus(path: Path, parts: int) -> list[Path]:
    """Cut a ``.warc.gz`` into ``parts`` files with equal numbers of responses (cached)."""
    stem = path.name.removesuffix(".warc.gz")
    outs = [path.with_name(f"{stem}.part{k + 1}of{parts}.warc.gz") for k in range(parts)]
    marker = path.with_name(f"{stem}.parts{parts}.json")
    source_stamp = {"source_size": path.stat().st_size, "source_mtime": path.stat().st_mtime}
    if marker.exists() and json.loads(marker.read_text()) == source_stamp and all(p.exists() for p in outs):
        return outs
    data = path.read_bytes()
    members = gzip_members(data)
    n_responses = sum(is_resp for _, _, is_resp in members)
    if len(members) < parts or n_responses < parts:
        raise ValueError(f"{path} has {len(members)} gzip members; cannot cut it into {parts} parts")
    files = [open(p, "wb") for p in outs]  # noqa: SIM115 - closed below
    try:
        seen = 0
        for offset, length, is_resp in members:
            files[min(parts - 1, seen * parts // n_responses)].write(data[offset:offset + length])
            seen += is_resp
    finally:
        for f in files:
            f.close()
    marker.write_text(json.dumps(source_stamp))
    return outs


# --------------------------------------------------------------------------- child side


def _maxrss_mib() -> tuple[float, float]:
    """Peak RSS of this process and of its largest reaped child (pool workers), in MiB.

    For this process the kernel's high-water mark ``VmHWM`` is used: Linux carries the parent's RSS
    at fork time over ``exec`` into ``RUSAGE_SELF.ru_maxrss``, which would charge the benchmark
    driver's memory to every child. ``RUSAGE_CHILDREN.ru_maxrss`` (KiB) is the largest single reaped
    descendant; pool workers are forked without ``exec``, so theirs is their own.
    """
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with contextlib.suppress(OSError), open("/proc/self/status", encoding="ascii") as f:
        own = next((int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:")), own)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def ceiling_pass(path: str) -> int:
    """Iterate a WARC with FastWARC and read every response payload; returns the response count."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    n = 0
    with open(path, "rb") as stream:
        for record in ArchiveIterator(stream, parse_http=True):
            if record.record_type == WarcRecordType.response:
                record.reader.read()
                n += 1
    return n


def child_ceiling(spec: dict) -> dict:
    times, pages = [], 0
    for _ in range(spec["repeats"]):
        started = time.perf_counter()
        pages = sum(ceiling_pass(p) for p in spec["paths"])
        times.append(time.perf_counter() - started)
    return {"seconds": min(times), "all_seconds": times, "pages": pages}


def waon_pass(paths: list[str], workers: int) -> tuple[float, dict]:
    """One ``run_extract`` call into a fresh temporary folder, timed end to end."""
    from waon_hf.jobs.extract import run_extract
    from waon_hf.sources.commoncrawl import SourceFile

    sources = [SourceFile(p, "") for p in paths]
    with tempfile.TemporaryDirectory(prefix="waon-bench-") as out:
        started = time.perf_counter()
        stats = run_extract(sources, out, workers=workers, overwrite=True)
        seconds = time.perf_counter() - started
    return seconds, dict(stats)


def child_waon(spec: dict) -> dict:
    import waon_hf.jobs.extract  # noqa: F401 - import cost (datasets, pyarrow) is not part of the rate

    runs = [waon_pass(spec["paths"], spec["workers"]) for _ in range(spec["repeats"])]
    seconds, stats = min(runs, key=lambda r: r[0])
    shard_s = stats.get("shard.milliseconds", 0) / 1000
    return {
        "seconds": seconds,
        "all_seconds": [r[0] for r in runs],
        "pages": stats.get("warc.records", 0) - stats.get("warc.non_response", 0),
        "shard_seconds": shard_s,
        "finalize_seconds": seconds - shard_s if spec["workers"] == 1 else None,
        "japanese_pages": stats.get("extract.japanese_pages", 0),
        "pairs": stats.get("extract.pairs", 0),
        "kept": stats.get("exact_dedup.kept", 0),
    }


def _warm_up_baseline() -> float:
    """Build lingua (all models) and run each library once; returns the seconds it took."""
    import waon_baseline

    started = time.perf_counter()
    waon_baseline.build_detector(preload=True)
    html = ("<html><head><title>t</title></head><body><article><p>" + "これは日本語の文章です。" * 20
            + "</p><figure><img src='a.jpg' alt='x'><figcaption>図</figcaption></figure></article></body></html>")
    waon_baseline.is_japanese(waon_baseline.main_text(html.encode()))
    waon_baseline.image_pairs(html.encode(), "https://example.com/")
    return time.perf_counter() - started


def child_baseline(spec: dict) -> dict:
    import waon_baseline

    setup_s = _warm_up_baseline()
    started = time.perf_counter()
    pages, japanese, pairs = waon_baseline.baseline_extract(spec["paths"][0], spec["limit"])
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "all_seconds": [seconds], "pages": pages, "japanese_pages": japanese,
            "pairs": pairs, "setup_seconds": setup_s}


def child_profile(spec: dict) -> dict:
    import cProfile

    import waon_hf.jobs.extract  # noqa: F401

    profiler = cProfile.Profile()
    profiler.enable()
    seconds, stats = waon_pass(spec["paths"], 1)
    profiler.disable()
    profiler.dump_stats(spec["profile"])
    return {"seconds": seconds, "all_seconds": [seconds],
            "pages": stats.get("warc.records", 0) - stats.get("warc.non_response", 0)}


CHILD_KINDS = {"ceiling": child_ceiling, "waon": child_waon, "baseline": child_baseline, "profile": child_profile}


def child_main(spec_json: str) -> int:
    sys.path.insert(0, str(HERE))
    spec = json.loads(spec_json)
    result = CHILD_KINDS[spec["kind"]](spec)
    result["maxrss_self_mib"], result["maxrss_children_mib"] = _maxrss_mib()
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


# --------------------------------------------------------------------------- parent side


class TreeRssSampler:
    """Samples the summed RSS of a process and all its descendants in a background thread."""

    def __init__(self, pid: int, interval: float = 0.05):
        import psutil

        self._root = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self.peak_bytes = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        import psutil

        total = 0
        try:
            procs = [self._root, *self._root.children(recursive=True)]
        except psutil.Error:
            return 0
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self._sample())
            self._stop.wait(self._interval)

    def __enter__(self) -> TreeRssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_child(spec: dict) -> dict:
    """Run one configuration in a fresh interpreter; returns its result plus the sampled tree RSS."""
    env = {**os.environ, **CHILD_ENV}
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), CHILD_FLAG, json.dumps(spec)],
                            stdout=subprocess.PIPE, text=True, env=env)
    with TreeRssSampler(proc.pid) as sampler:
        stdout, _ = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child {spec['kind']} failed with exit code {proc.returncode}")
    lines = [line for line in stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if not lines:
        raise RuntimeError(f"benchmark child {spec['kind']} printed no result")
    result = json.loads(lines[-1].removeprefix(RESULT_PREFIX))
    result["peak_tree_rss_mib"] = sampler.peak_bytes / MIB
    return result


@dataclass
class Row:
    corpus: str
    method: str
    key: str  # stable id: ceiling, waon_w1, baseline, scaling_w1, scaling_wN
    pages: int
    seconds: float
    peak_rss_mib: float
    peak_tree_rss_mib: float
    detail: dict = field(default_factory=dict)
    pct_ceiling: float | None = None
    x_baseline: float | None = None

    @property
    def rate(self) -> float:
        return self.pages / self.seconds if self.seconds > 0 else 0.0


def _row(corpus: str, method: str, key: str, result: dict) -> Row:
    detail = {k: v for k, v in result.items()
              if k not in ("pages", "seconds", "maxrss_self_mib", "maxrss_children_mib", "peak_tree_rss_mib")}
    return Row(corpus, method, key, int(result["pages"]), float(result["seconds"]),
               max(result["maxrss_self_mib"], result["maxrss_children_mib"]), result["peak_tree_rss_mib"], detail)


def bench_corpus(name: str, path: Path, args: argparse.Namespace) -> list[Row]:
    """All selected configurations on one corpus, each in its own subprocess."""
    rows = []
    p = str(path)

    def step(label: str, spec: dict, method: str, key: str) -> None:
        print(f"[{name}] {label} ...", flush=True)
        result = run_child(spec)
        rows.append(_row(name, method, key, result))
        print(f"[{name}]   {result['pages']:,} pages in {result['seconds']:.2f} s "
              f"({rows[-1].rate:,.0f} pages/s)", flush=True)

    if "ceiling" in args.methods:
        step("ceiling (FastWARC read, best of 3)", {"kind": "ceiling", "paths": [p], "repeats": 3},
             "ceiling: FastWARC iterate + read payloads (best of 3)", "ceiling")
    if "waon" in args.methods:
        step("waon extract --workers 1 (best of 2)", {"kind": "waon", "paths": [p], "workers": 1, "repeats": 2},
             "waon extract --workers 1, 1 file (best of 2)", "waon_w1")
    if "baseline" in args.methods:
        step(f"WAON baseline, first {args.baseline_pages:,} pages",
             {"kind": "baseline", "paths": [p], "limit": args.baseline_pages},
             f"WAON baseline (warcio+trafilatura+lingua+bs4), first {args.baseline_pages:,} pages", "baseline")
    if "scaling" in args.methods:
        parts = [str(x) for x in split_corpus(path, args.parts)]
        for workers in (1, args.workers):
            step(f"waon extract --workers {workers} on {args.parts} parts",
                 {"kind": "waon", "paths": parts, "workers": workers, "repeats": 1},
                 f"waon extract --workers {workers}, {args.parts} files", f"scaling_w{workers}")
    _relate(rows)
    return rows


def _relate(rows: list[Row]) -> None:
    """Fill % of ceiling and × baseline for the rows of one corpus."""
    by_key = {r.key: r for r in rows}
    ceiling, baseline = by_key.get("ceiling"), by_key.get("baseline")
    for r in rows:
        if ceiling is not None:
            r.pct_ceiling = 100 * r.rate / ceiling.rate
        if baseline is not None:
            r.x_baseline = r.rate / baseline.rate


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def markdown_table(rows: list[Row]) -> str:
    lines = ["| corpus | method | pages | seconds | pages/s | % of ceiling | × baseline | peak RSS MiB "
             "(largest process) | peak RSS MiB (process tree) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.corpus} | {r.method} | {r.pages:,} | {r.seconds:.2f} | {r.rate:,.0f} | "
                     f"{_fmt(r.pct_ceiling, '.1f')} | {_fmt(r.x_baseline, '.1f')} | {r.peak_rss_mib:,.0f} | "
                     f"{r.peak_tree_rss_mib:,.0f} |")
    return "\n".join(lines)


def notes(rows: list[Row], args: argparse.Namespace) -> list[str]:
    out = []
    for r in rows:
        d = r.detail
        if r.key == "waon_w1" and d.get("finalize_seconds") is not None:
            out.append(f"- {r.corpus}, waon --workers 1: shard work {d['shard_seconds']:.2f} s + finalize "
                       f"(dedup, dataset write) {d['finalize_seconds']:.2f} s; {d['japanese_pages']:,} Japanese "
                       f"pages, {d['pairs']:,} pairs extracted, {d['kept']:,} kept after filters and dedup; "
                       f"runs: {', '.join(f'{s:.2f}' for s in d['all_seconds'])} s")
        elif r.key == "baseline":
            out.append(f"- {r.corpus}, baseline: rate over the first {r.pages:,} pages (its cost is per page, so "
                       f"a subset is fair); lingua built with all models preloaded and libraries warmed up before "
                       f"timing ({d['setup_seconds']:.1f} s, not counted); {d['japanese_pages']:,} Japanese pages, "
                       f"{d['pairs']:,} pairs")
        elif r.key == "ceiling":
            out.append(f"- {r.corpus}, ceiling runs: {', '.join(f'{s:.2f}' for s in r.detail['all_seconds'])} s")
    scaling = {(r.corpus, r.key): r for r in rows if r.key.startswith("scaling_")}
    for corpus in dict.fromkeys(r.corpus for r in rows):
        one, many = scaling.get((corpus, "scaling_w1")), scaling.get((corpus, f"scaling_w{args.workers}"))
        if one and many:
            out.append(f"- {corpus}, scaling on {args.parts} parts (the corpus cut at record boundaries): "
                       f"--workers {args.workers} is {many.rate / one.rate:.2f}× --workers 1")
    return out


def targets(rows: list[Row]) -> list[dict]:
    """The project's targets: (b) >= 25% of (a) on ja90 and >= 50% on ja10, i.e. >= 20× the baseline."""
    wanted = {"ja90": 25.0, "ja10": 50.0}
    out = []
    for r in rows:
        if r.key == "waon_w1" and r.corpus in wanted and r.pct_ceiling is not None:
            out.append({"corpus": r.corpus, "pct_ceiling": r.pct_ceiling, "target_pct": wanted[r.corpus],
                        "met": r.pct_ceiling >= wanted[r.corpus], "x_baseline": r.x_baseline,
                        "x_baseline_met": None if r.x_baseline is None else r.x_baseline >= 20})
    return out


def machine() -> dict:
    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu or platform.processor(), "python": platform.python_version(),
            "platform": platform.platform()}


def print_profile(path: str, top: int) -> str:
    """The ``top`` functions of ``waon_hf`` by cumulative time, as a Markdown table."""
    import pstats

    st = pstats.Stats(path)
    total = max(st.total_tt, 1e-9)
    entries = [(key, v) for key, v in st.stats.items() if "/waon_hf/" in key[0].replace(os.sep, "/")]
    entries.sort(key=lambda kv: kv[1][3], reverse=True)
    lines = [f"total profiled time {total:.2f} s", "",
             "| function | ncalls | tottime s | cumtime s | % of total |", "|---|---:|---:|---:|---:|"]
    for (filename, line, func), (_, ncalls, tottime, cumtime, _) in entries[:top]:
        where = filename.replace(os.sep, "/").split("/waon_hf/", 1)[1]
        lines.append(f"| `waon_hf/{where}:{line}({func})` | {ncalls:,} | {tottime:.2f} | {cumtime:.2f} | "
                     f"{100 * cumtime / total:.1f} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--pages", type=int, default=20_000, help="pages per corpus")
    ap.add_argument("--baseline-pages", type=int, default=1_000, help="pages given to the WAON baseline")
    ap.add_argument("--parts", type=int, default=4, help="files the corpus is cut into for the scaling run")
    ap.add_argument("--workers", type=int, default=2, help="workers of the scaling run (vs 1)")
    ap.add_argument("--corpora", nargs="+", choices=sorted(CORPORA), default=list(CORPORA))
    ap.add_argument("--methods", nargs="*", choices=METHODS, default=list(METHODS),
                    help="configurations to run (none: only --profile)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the synthetic corpora")
    ap.add_argument("--legacy-every", type=int, default=10,
                    help="one Japanese page in N uses a legacy encoding (Shift_JIS, CP932, EUC-JP, ISO-2022-JP), "
                         "the rest UTF-8; 10 is close to the Japanese web today, 1 rotates evenly through all five")
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="where corpora are cached")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--profile", help="cProfile (b) on the first corpus into this .prof file and print the "
                                      "top waon_hf functions by cumulative time")
    ap.add_argument("--profile-top", type=int, default=15)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ensure_bench_deps()
    info = machine()
    command = " ".join(["python", "benchmarks/bench_extract.py", *(sys.argv[1:] if argv is None else argv)])
    print(f"machine: {info['nproc']} CPUs, {info['cpu']}, Python {info['python']}", flush=True)
    suffix = "" if args.legacy_every == 10 else f"-legacy{args.legacy_every}"
    paths = {name: ensure_corpus(args.data_dir / f"{name}{suffix}.warc.gz", args.pages, CORPORA[name], args.seed,
                                 args.legacy_every)
             for name in args.corpora}

    rows: list[Row] = []
    for name, path in paths.items():
        if args.methods:
            rows += bench_corpus(name, path, args)
    report: dict = {"command": command, "machine": info, "rows": [], "targets": targets(rows)}
    if rows:
        report["rows"] = [{**asdict(r), "pages_per_s": r.rate} for r in rows]
        print("\n" + markdown_table(rows) + "\n")
        print("\n".join(notes(rows, args)))
        for t in report["targets"]:
            print(f"- target {t['corpus']}: waon --workers 1 at {t['pct_ceiling']:.1f}% of ceiling "
                  f"(target >= {t['target_pct']:.0f}%): {'met' if t['met'] else 'NOT met'}; "
                  f"{_fmt(t['x_baseline'], '.1f')}× baseline (target >= 20×)")
    if args.profile:
        name = args.corpora[0]
        print(f"\n[{name}] profiling waon extract --workers 1 -> {args.profile}", flush=True)
        result = run_child({"kind": "profile", "paths": [str(paths[name])], "profile": args.profile})
        report["profile"] = {"corpus": name, "seconds": result["seconds"], "file": args.profile}
        table = print_profile(args.profile, args.profile_top)
        report["profile"]["table"] = table
        print(table)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False))
        print(f"\nresults written to {args.json}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == CHILD_FLAG:
        sys.exit(child_main(sys.argv[2]))
    sys.exit(main())
