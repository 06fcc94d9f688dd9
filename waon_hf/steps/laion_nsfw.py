"""LAION's CLIP-based NSFW detector: the scorer WAON filtered with (``punsafe < 0.1``).

The detector (https://github.com/LAION-AI/CLIP-based-NSFW-Detector, MIT) is a small AutoKeras MLP on
L2-normalised CLIP image embeddings. For CLIP ViT-B/32 (``clip_autokeras_nsfw_b32.zip``, the file
WAON's pipeline used through LAION's tools):

    Normalization(mean[512], variance[512]) -> Dense 512x32 -> ReLU -> Dense 32x32 -> ReLU
    -> Dropout 0.5 (inactive at inference) -> Dense 32x1 -> sigmoid = punsafe

preceded by AutoKeras' ``MultiCategoryEncoding``: the input arrives as text (``tf.strings.as_string``,
``"%f"``: six decimals); 509 columns are read back as numbers, and three (92, 133, 312: outlier
dimensions of CLIP B/32) were judged categorical and go through a ``StringLookup`` (index of the text
in a vocabulary of float16 values seen in training, 1-based; anything else is 0). Keras'
Normalization then computes ``(x - mean) / max(sqrt(variance), 1e-7)``. The vocabularies are string
constants of the SavedModel graph (``saved_model.pb``); they are assigned to the categorical columns
in column order, the order AutoKeras creates its lookup layers in. Because the vocabularies hold
float16 values (clip-retrieval stores embeddings as float16), the embeddings are rounded to float16
before the head, as in LAION's pipeline (``embedding_dtype``).

No TensorFlow is needed: :func:`read_keras_head` reads the SavedModel's variables directly from its
TensorFlow checkpoint (a LevelDB-format table of ``BundleEntryProto`` records, ``variables.index``,
pointing into ``variables.data-00000-of-00001``), from the release zip, the unzipped folder, or an
``.npz`` holding the same arrays (:data:`HEAD_KEYS`). ``head`` may be a local path, an ``http(s)://``
URL (downloaded once into ``~/.cache/waon_hf/laion_nsfw``) or ``hf://<repo id>/<file>`` (the Hub).
The CLIP image tower is any ``CLIPModel`` (``clip_model``; default ``openai/clip-vit-base-patch32``)
with its image processor; its embedding size must match the head's input.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import struct
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

from waon_hf.io import atomic_write

logger = logging.getLogger(__name__)

LAION_B32_URL = "https://raw.githubusercontent.com/LAION-AI/CLIP-based-NSFW-Detector/main/clip_autokeras_nsfw_b32.zip"
DEFAULT_CLIP = "openai/clip-vit-base-patch32"
KERAS_EPSILON = 1e-7
#: array names of a head, in :func:`read_keras_head`'s result and in an ``.npz``
HEAD_KEYS = ("mean", "variance", "kernel_0", "bias_0", "kernel_1", "bias_1", "kernel_2", "bias_2")
_CACHE = Path(os.environ.get("WAON_CACHE", Path.home() / ".cache" / "waon_hf")) / "laion_nsfw"
_TABLE_MAGIC = 0xDB4775248B80FB57
_VOCAB_RUN = re.compile(rb"\x42([\x01-\x7f])(-?[0-9]+\.[0-9]{6})")  # TensorProto string_val: "%f" texts
_DT_FLOAT = 1


# ----------------------------------------------------------------------- TensorFlow checkpoint
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _block_entries(buf: bytes, offset: int, size: int):
    """Key/value pairs of one table block (prefix-compressed keys; restart array at the end)."""
    block = buf[offset:offset + size]
    n_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * n_restarts
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        length, pos = _varint(block, pos)
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + length]
        pos += length


def _table(buf: bytes):
    """Every entry of a LevelDB-format table (the checkpoint index), uncompressed blocks only."""
    footer = buf[-48:]
    if len(buf) < 48 or struct.unpack("<Q", footer[-8:])[0] != _TABLE_MAGIC:
        raise ValueError("not a TensorFlow checkpoint index (bad table magic)")
    pos = 0
    for _ in range(2):  # skip the metaindex handle
        _, pos = _varint(footer, pos)
    index_offset, pos = _varint(footer, pos)
    index_size, pos = _varint(footer, pos)
    for _, handle in _block_entries(buf, index_offset, index_size):
        offset, p = _varint(handle, 0)
        size, _ = _varint(handle, p)
        if buf[offset + size] != 0:
            raise ValueError("compressed checkpoint index blocks are not supported")
        yield from _block_entries(buf, offset, size)


def _proto_fields(msg: bytes):
    pos = 0
    while pos < len(msg):
        tag, pos = _varint(msg, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(msg, pos)
        elif wire == 2:
            n, pos = _varint(msg, pos)
            value, pos = msg[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = msg[pos:pos + 4], pos + 4
        elif wire == 1:
            value, pos = msg[pos:pos + 8], pos + 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, value


def read_checkpoint(index: bytes, data: bytes) -> dict[str, np.ndarray]:
    """The float32 variables of a single-shard TensorFlow checkpoint, by name."""
    out = {}
    for key, value in _table(index):
        if not key:  # the bundle header
            continue
        entry, dims = {}, []
        for number, field in _proto_fields(value):
            if number == 2:  # TensorShapeProto: repeated Dim dim = 2 { int64 size = 1 }
                dims += [dict(_proto_fields(d)).get(1, 0) for n, d in _proto_fields(field) if n == 2]
            else:
                entry[number] = field
        if entry.get(1) != _DT_FLOAT:
            continue
        offset, size = entry.get(4, 0), entry.get(5, 0)
        out[key.decode()] = np.frombuffer(data[offset:offset + size], dtype="<f4").reshape(dims).copy()
    return out


def categorical_columns(index: bytes) -> list[int]:
    """Columns AutoKeras encodes with a lookup (``layer_with_weights-0/encoding_layers/<column>/...``)."""
    found = {int(m.group(1)) for key, _ in _table(index)
             if (m := re.match(rb"layer_with_weights-\d+/encoding_layers/(\d+)/", key))}
    return sorted(found)


def graph_vocabularies(saved_model: bytes) -> list[list[str]]:
    """Runs of ``"%f"``-formatted string constants in a SavedModel graph, in file order (the lookup
    vocabularies; each run is one constant's ``string_val`` list)."""
    runs, start = [], 0
    while (m := _VOCAB_RUN.search(saved_model, start)) is not None:
        values, pos = [], m.start()
        while pos < len(saved_model) and saved_model[pos] == 0x42:
            n = saved_model[pos + 1]
            values.append(saved_model[pos + 2:pos + 2 + n].decode("ascii"))
            pos += 2 + n
        runs.append(values)
        start = pos
    return runs


def _keras_head_from_variables(variables: dict[str, np.ndarray], columns: list[int] | None = None,
                               vocabularies: list[list[str]] | None = None) -> dict:
    """Map the AutoKeras layer variables (``layer_with_weights-N/...``) onto :data:`HEAD_KEYS`."""
    columns, vocabularies = columns or [], vocabularies or []
    if len(columns) != len(vocabularies):
        raise ValueError(f"the head encodes columns {columns} by lookup but the graph holds {len(vocabularies)} "
                         "vocabularies")
    layers: dict[int, dict[str, np.ndarray]] = {}
    for name, array in variables.items():
        parts = name.split("/")
        if parts[0].startswith("layer_with_weights-") and len(parts) >= 2:
            layers.setdefault(int(parts[0].rsplit("-", 1)[1]), {})[parts[1]] = array
    ordered = [layers[i] for i in sorted(layers)]
    norm = [w for w in ordered if "mean" in w and "variance" in w]
    dense = [w for w in ordered if "kernel" in w and "bias" in w]
    if len(norm) != 1 or len(dense) != 3:
        raise ValueError(f"not LAION's NSFW head: expected one Normalization and three Dense layers, found "
                         f"{len(norm)} and {len(dense)}")
    head = {"mean": norm[0]["mean"], "variance": norm[0]["variance"]}
    for i, w in enumerate(dense):
        head[f"kernel_{i}"], head[f"bias_{i}"] = w["kernel"], w["bias"]
    head = check_head(head)
    head["categorical"] = {c: {text: i + 1 for i, text in enumerate(v)} for c, v in zip(columns, vocabularies,
                                                                                        strict=True)}
    return head


def check_head(head: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Validate the arrays' shapes (input d -> 32 -> 32 -> 1 for LAION's B/32 and L/14 heads)."""
    missing = [k for k in HEAD_KEYS if k not in head]
    if missing:
        raise ValueError(f"NSFW head lacks {missing}")
    d = head["mean"].reshape(-1).shape[0]
    k0, k1, k2 = head["kernel_0"], head["kernel_1"], head["kernel_2"]
    if (head["variance"].reshape(-1).shape[0] != d or k0.shape[0] != d or k1.shape[0] != k0.shape[1]
            or k2.shape != (k1.shape[1], 1)):
        raise ValueError(f"NSFW head shapes do not chain: mean {head['mean'].shape}, kernels {k0.shape} "
                         f"{k1.shape} {k2.shape}")
    out = {k: np.asarray(head[k], dtype=np.float32) for k in HEAD_KEYS}
    out["categorical"] = dict(head.get("categorical") or {})
    return out


def read_keras_head(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The head's arrays from LAION's release zip, its unzipped SavedModel folder, or an ``.npz``."""
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path) as npz:
            return check_head({k: npz[k] for k in npz.files})
    if path.is_dir():
        folder = next((p.parent for p in path.rglob("variables.index")), None)
        if folder is None:
            raise ValueError(f"{path}: no variables/variables.index (not a Keras SavedModel)")
        return _keras_head_from_saved_model((folder / "variables.index").read_bytes(),
                                            (folder / "variables.data-00000-of-00001").read_bytes(),
                                            (folder.parent / "saved_model.pb").read_bytes())
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        index = next((n for n in names if n.endswith("variables/variables.index")), None)
        if index is None:
            raise ValueError(f"{path}: no variables/variables.index inside (not a Keras SavedModel zip)")
        data = index.replace("variables.index", "variables.data-00000-of-00001")
        graph = index.replace("variables/variables.index", "saved_model.pb")
        return _keras_head_from_saved_model(zf.read(index), zf.read(data), zf.read(graph))


def _keras_head_from_saved_model(index: bytes, data: bytes, graph: bytes) -> dict:
    return _keras_head_from_variables(read_checkpoint(index, data), categorical_columns(index),
                                      graph_vocabularies(graph))


def fetch_head(source: str) -> Path:
    """A local path for ``source``: itself, a cached download of an URL, or a Hub file (``hf://repo/file``)."""
    if source.startswith(("http://", "https://")):
        name = hashlib.sha256(source.encode()).hexdigest()[:16] + "-" + source.rsplit("/", 1)[-1]
        target = _CACHE / name
        if not target.exists():
            _CACHE.mkdir(parents=True, exist_ok=True)
            logger.info("downloading the LAION NSFW head from %s", source)
            with urllib.request.urlopen(source, timeout=60) as response:  # noqa: S310 (http/https only)
                payload = response.read()
            with atomic_write(target) as f:
                f.write(payload)
        return target
    if source.startswith("hf://"):
        from huggingface_hub import hf_hub_download

        repo, _, filename = source[len("hf://"):].rpartition("/")
        if not repo or not filename:
            raise ValueError(f"{source!r}: write a Hub file as hf://<owner>/<repo>/<file>")
        return Path(hf_hub_download(repo, filename))
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"NSFW head {source!r} not found")
    return path


def encode_inputs(head: dict, embeddings: np.ndarray) -> np.ndarray:
    """AutoKeras' input encoding: each value as ``"%f"`` text, read back as a number (six decimals), or
    for a categorical column its 1-based vocabulary index (0 when absent)."""
    x = np.round(embeddings.astype(np.float32).astype(np.float64), 6)
    for column, vocab in (head.get("categorical") or {}).items():
        x[:, column] = [vocab.get(f"{float(v):f}", 0) for v in embeddings[:, column].astype(np.float32)]
    return x.astype(np.float32)


def head_punsafe(head: dict, embeddings: np.ndarray) -> np.ndarray:
    """The head on (already L2-normalised) embeddings ``(N, d)`` -> punsafe ``(N,)`` float32."""
    x = (encode_inputs(head, embeddings) - head["mean"].reshape(1, -1)) / np.maximum(
        np.sqrt(head["variance"].reshape(1, -1)), KERAS_EPSILON)
    x = np.maximum(x @ head["kernel_0"] + head["bias_0"], 0.0)
    x = np.maximum(x @ head["kernel_1"] + head["bias_1"], 0.0)
    logit = (x @ head["kernel_2"] + head["bias_2"])[:, 0]
    return (1.0 / (1.0 + np.exp(-logit))).astype(np.float32)


class LaionClipScorer:
    """CLIP image embeddings (L2-normalised) through LAION's NSFW head; loaded once, lazily."""

    def __init__(self, head: str | None, clip_model: str | None, device: str, embedding_dtype: str = "float16"):
        from waon_hf.steps.nsfw import NsfwModelError

        source = head or LAION_B32_URL
        clip_model = clip_model or DEFAULT_CLIP
        try:
            self.head = read_keras_head(fetch_head(source))
        except (OSError, ValueError, zipfile.BadZipFile) as e:
            raise NsfwModelError(f"nsfw backend 'laion_clip': could not load the head {source!r}: "
                                 f"{type(e).__name__}: {e}") from e
        try:
            import torch
            from transformers import AutoImageProcessor, CLIPModel

            self.processor = AutoImageProcessor.from_pretrained(clip_model)
            self.model = CLIPModel.from_pretrained(clip_model).to(device).eval()
        except Exception as e:
            raise NsfwModelError(f"nsfw backend 'laion_clip': could not load CLIP {clip_model!r}: "
                                 f"{type(e).__name__}: {e}") from e
        width = self.model.config.projection_dim
        if width != self.head["mean"].size:
            raise NsfwModelError(f"nsfw backend 'laion_clip': CLIP {clip_model!r} embeds into {width} dimensions, "
                                 f"the head {source!r} takes {self.head['mean'].size} (B/32: 512, L/14: 768)")
        self.torch, self.device, self.embedding_dtype = torch, device, np.dtype(embedding_dtype)

    def embed(self, images) -> np.ndarray:
        inputs = self.processor(images=images, return_tensors="pt").to(self.device)
        with self.torch.inference_mode():
            out = self.model.get_image_features(pixel_values=inputs["pixel_values"])
        features = getattr(out, "pooler_output", out).float()
        return (features / features.norm(dim=-1, keepdim=True)).cpu().numpy().astype(self.embedding_dtype)

    def __call__(self, images) -> np.ndarray:
        return head_punsafe(self.head, self.embed(images))


def save_head_npz(head: dict[str, np.ndarray], path: str | os.PathLike) -> None:
    """Write a head as ``.npz`` (e.g. converted once from the zip, or a stand-in of the same shapes)."""
    if head.get("categorical"):
        raise ValueError("a head with categorical columns cannot be saved as .npz (keep the release zip)")
    buf = io.BytesIO()
    np.savez(buf, **{k: v for k, v in check_head(head).items() if k in HEAD_KEYS})
    Path(path).write_bytes(buf.getvalue())
