"""What a run was made from, recorded in ``.waon/manifest.json`` so that a re-run never returns stale rows.

The manifest holds, for the run in a folder:

* ``sources``: each input's location (credentials removed) and crawl, in shard order;
* ``inputs``: a fingerprint of each local input (size and mtime; a SHA-256 as well for files up to
  :data:`HASH_MAX_BYTES`), ``null`` for a URL (nothing cheap identifies a remote version);
* ``job``: the job's effective settings, ``job.describe()`` (steps and their config, as written to
  ``pipeline.json``) plus the extra ``settings`` a command adds (e.g. the translation prompt).
* ``carried``: a hash of what the card takes over from an input folder (its ``pipeline.json`` and
  ``stats.json``).

On a re-run (:func:`check_manifest`):

* an input whose fingerprint changed (a folder rebuilt under the same file names) has its shard
  redone, and only that shard: a shard's rows depend on its input and the settings alone, and the
  global steps and finalize run again over all shards;
* other settings, or another list of inputs, are refused with the settings that changed, unless
  the caller asks to redo the whole stage (``redo``: ``waon build`` does for its own stages).
* when only ``carried`` changed (an earlier stage redone with other settings, same rows), the
  dataset is finalized again, so its card and ``pipeline.json`` name the settings really used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os

from waon_hf.io import write_json_atomic
from waon_hf.pipeline.layout import ShardLayout
from waon_hf.sources.commoncrawl import SourceFile

logger = logging.getLogger(__name__)

HASH_MAX_BYTES = 1 << 20  # inputs this small are hashed too, so a touched but unchanged file is not redone
REDO_KINDS = ("settings", "inputs")
# Step options that say how fast the work is done, not what it produces: a resumed run may change them
# (more download concurrency, scoring on a GPU) without being refused or redone.
RUNTIME_ONLY_OPTIONS = frozenset({"concurrency", "per_host", "per_host_start", "per_host_max", "decode_threads",
                                  "batch_size", "device"})


def input_fingerprint(location: str) -> dict | None:
    """Size, mtime and (small files) SHA-256 of a local input; None for a URL or a missing file."""
    if "://" in location:
        return None
    try:
        st = os.stat(location)
    except OSError:
        return None
    fingerprint = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if st.st_size <= HASH_MAX_BYTES:
        with open(location, "rb") as f:
            fingerprint["sha256"] = hashlib.sha256(f.read()).hexdigest()
    return fingerprint


def same_input(old: dict | None, new: dict | None) -> bool:
    """Whether two fingerprints describe the same content (a new mtime with the same hash does)."""
    if old == new:
        return True
    if not old or not new or old.get("size") != new.get("size"):
        return False
    return "sha256" in old and old.get("sha256") == new.get("sha256")


def job_settings(job, settings: dict | None = None) -> dict:
    """The job's effective settings as plain JSON (what the manifest records and compares), without the
    steps' :data:`RUNTIME_ONLY_OPTIONS`."""
    plain = json.loads(json.dumps({"describe": job.describe(), "settings": settings or {}}, sort_keys=True,
                                  default=repr, ensure_ascii=False))

    def strip(value):
        if isinstance(value, list):
            return [strip(v) for v in value]
        if not isinstance(value, dict):
            return value
        if isinstance(value.get("name"), str) and isinstance(value.get("config"), dict):  # a step's summary
            value = {**value, "config": {k: v for k, v in value["config"].items() if k not in RUNTIME_ONLY_OPTIONS}}
        return {k: strip(v) for k, v in value.items()}
    return strip(plain)


def changed_paths(old, new, path: str = "") -> list[str]:
    """The dotted paths where two JSON values differ (list items named by their ``name`` when they have one)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted({*old, *new}, key=str):
            if old.get(key) != new.get(key):
                out += changed_paths(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            if a != b:
                label = a["name"] if isinstance(a, dict) and a.get("name") == (b or {}).get("name") and a.get("name") \
                    else str(i)
                out += changed_paths(a, b, f"{path}.{label}" if path else label)
        return out
    return [path or "(all)"] if old != new else []


def describe_change(old: dict | None, new: dict) -> str:
    """"steps.caption_length.config.min_chars, ..." for a refusal message (the ``describe.`` prefix dropped)."""
    if old is None:
        return "not recorded by the earlier run"
    paths = [p.removeprefix("describe.") for p in changed_paths(old, new)]
    return ", ".join(paths[:6]) + (f" and {len(paths) - 6} more" if len(paths) > 6 else "")


def check_manifest(layout: ShardLayout, sources: list[SourceFile], job, *, settings: dict | None = None,
                   slice_info: dict | None = None, redo: tuple[str, ...] = (),
                   carried: dict | None = None) -> list[int]:
    """Record a new run's manifest, or check a re-run against it; returns the shards to redo because
    their input changed (their markers are already removed).

    ``carried``: what the dataset card takes over from the input folder (its ``pipeline.json`` and
    ``stats.json``); when only that changed (an earlier stage redone with other settings but the same
    rows), no shard is redone but the dataset is finalized again, so the card tells the truth.

    ``redo``: ``"settings"`` redoes the whole stage when the settings changed, ``"inputs"`` when the
    list of inputs changed; otherwise either is refused with a :class:`ValueError` naming it.
    """
    unknown = set(redo) - set(REDO_KINDS)
    if unknown:
        raise ValueError(f"redo: unknown kind(s) {sorted(unknown)}; kinds: {REDO_KINDS}")
    record = {"sources": [s.public() for s in sources],
              "inputs": [input_fingerprint(s.location) for s in sources],
              "job": job_settings(job, settings),
              "carried": hashlib.sha256(json.dumps(carried, sort_keys=True, default=repr).encode()).hexdigest(),
              **({"slice": slice_info} if slice_info else {})}
    if not layout.manifest.exists():
        layout.shards.mkdir(parents=True, exist_ok=True)
        write_json_atomic(layout.manifest, record)
        return []
    with open(layout.manifest, encoding="utf-8") as f:
        previous = json.load(f)
    if previous.get("sources") != record["sources"]:
        what = (f"{layout.root} holds a run over other inputs ({len(previous.get('sources', []))} files, "
                f"now {len(record['sources'])})")
        return _redo_stage(layout, record, what, "inputs" in redo)
    if previous.get("job") != record["job"]:
        what = f"{layout.root} holds a run with other settings ({describe_change(previous.get('job'), record['job'])})"
        return _redo_stage(layout, record, what, "settings" in redo)
    old_inputs = previous.get("inputs") or [None] * len(sources)
    changed = [i for i, (old, new) in enumerate(zip(old_inputs, record["inputs"], strict=True))
               if not same_input(old, new) and layout.is_done(i)]
    for i in changed:
        logger.warning("input %s changed since shard %d was made: redoing the shard", sources[i].public_location, i)
        layout.forget_shard(i)
    if previous.get("carried") != record["carried"] and layout.final_marker.exists():
        logger.info("the input's pipeline.json or stats.json changed: writing the dataset and its card again")
        layout.final_marker.unlink()
    if previous != record:  # new fingerprints (after the markers are gone: a kill now still redoes them)
        write_json_atomic(layout.manifest, record)
    return changed


def _redo_stage(layout: ShardLayout, record: dict, what: str, redo: bool) -> list[int]:
    if not redo:
        raise ValueError(f"{what}; nothing was changed. Re-run with --overwrite to discard it, or use another "
                         "output folder")
    logger.warning("%s: redoing the stage", what)
    layout.forget_run()
    layout.shards.mkdir(parents=True, exist_ok=True)
    write_json_atomic(layout.manifest, record)
    return []
