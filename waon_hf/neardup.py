"""Near-duplicate search over 64-bit hashes (Hamming distance ``<= k``) in about linear time.

imagededup's ``find_duplicates`` compares every pair (10k hashes: 16 s, 100k: 28 min), and WAON's
Bloom filter only catches exact pHash matches (and drops about 1% of unique images by false
positives). This module finds *exactly* the pairs a brute force finds, with numpy only.

Method (multi-index / pigeonhole search, as in Manku et al., "Detecting near-duplicates for web
crawling", 2007):

* Split the 64 bits into ``B > k`` contiguous blocks. Two hashes within distance ``k`` differ in at
  most ``k`` blocks, so they agree exactly on at least ``B - k`` blocks: for at least one of the
  ``C(B, k)`` choices of ``B - k`` blocks ("tables"), their keys (those blocks, concatenated) are
  equal. ``B = k + 1`` is the textbook "k + 1 bands, one band equal" split; a larger ``B`` makes
  longer keys (fewer random collisions) at the price of more tables.
* Per table, the key and the row id are packed into one ``uint64`` and sorted (``np.sort``, about
  0.2 s for 10^7 values with AVX-512); equal keys become runs, every pair inside a run is a
  candidate, verified with ``np.bitwise_count`` of the XOR. Runs are expanded in bounded chunks, so
  a huge bucket is a block brute force over that bucket and never a memory blow-up.
* A pair is reported only by its *canonical* table (the ``B - k`` lowest blocks on which it
  agrees), so no pair is reported twice and no global ``unique`` over pairs is needed.
* Identical hashes are collapsed first (one node per distinct value), so a million copies of one
  hash cost one sort, not a trillion candidate pairs.

``B`` is chosen by a cost model (sort cost per table + expected random collisions), which keeps the
candidate count about ``N`` per table: for ``N = 10^7``, ``k = 4`` that is 7 blocks, 35 tables,
28-bit keys. The search is exact whatever ``B`` is; ``B`` only changes the speed. For small inputs a
block brute force is cheaper and used instead.

:func:`near_duplicate_groups` then joins the pairs into connected components (vectorised
hook-and-compress union-find) and names every row's group by its first row in input order.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterator

import numpy as np

from waon_hf.hashes import hamming, hex_to_uint64, uint64_to_hex  # noqa: F401  (public API of this module)

logger = logging.getLogger(__name__)

# Cost model, in nanoseconds, measured on a 2-core Xeon (AVX-512) with numpy 2.4: per element per
# table (key extraction + pack + sort + run detection), per candidate pair (gather + XOR + popcount
# + canonical check), per brute-force pair (block XOR + popcount + compare).
_NS_PER_SORTED = 45.0
_NS_PER_CANDIDATE = 40.0
_NS_PER_BRUTE_PAIR = 3.0
_CHUNK = 1 << 22  # candidate pairs (or brute-force cells) handled per numpy call


# --------------------------------------------------------------------------------------- planning
def _block_layout(n_blocks: int) -> list[tuple[int, int]]:
    """``(low bit, width)`` of each block; block 0 holds the most significant bits."""
    base, extra = divmod(64, n_blocks)
    layout, hi = [], 64
    for b in range(n_blocks):
        width = base + (1 if b < extra else 0)
        layout.append((hi - width, width))
        hi -= width
    return layout


def _estimate_ns(n_blocks: int, k: int, n_sorted: int, pairs_total: float) -> float:
    """Expected time of the table search with ``n_blocks`` blocks (random hashes)."""
    base, extra = divmod(64, n_blocks)
    kept = n_blocks - k  # blocks in each key; ``extra`` of the blocks are one bit wider
    # average over tables of 2^-(key bits): hypergeometric number of wide blocks in the key
    collide = sum(
        math.comb(extra, j) * math.comb(n_blocks - extra, kept - j) * 2.0 ** -(kept * base + j)
        for j in range(max(0, kept - (n_blocks - extra)), min(extra, kept) + 1)
    ) / math.comb(n_blocks, kept)
    tables = math.comb(n_blocks, k)
    return tables * (_NS_PER_SORTED * n_sorted + _NS_PER_CANDIDATE * pairs_total * collide)


def _id_bits(n: int) -> int:
    return max(1, int(n - 1).bit_length())


def choose_blocks(k: int, n_sorted: int, pairs_total: float) -> int | None:
    """Number of blocks for the table search, or ``None`` when a brute force is expected cheaper."""
    if k < 0:
        raise ValueError("k must be >= 0")
    best, best_cost = None, _NS_PER_BRUTE_PAIR * pairs_total
    id_bits = _id_bits(n_sorted)
    for n_blocks in range(k + 1, 65):
        base, extra = divmod(64, n_blocks)
        if (n_blocks - k) * base + min(extra, n_blocks - k) + id_bits > 64:
            continue  # key and row id must pack into one uint64
        if math.comb(n_blocks, k) > 100_000:
            break
        cost = _estimate_ns(n_blocks, k, n_sorted, pairs_total)
        if cost < best_cost:
            best, best_cost = n_blocks, cost
    return best


def describe_search(n: int, k: int, *, blocks: int | None = None, n_targets: int | None = None) -> dict:
    """The plan for ``n`` distinct hashes (or ``n`` queries against ``n_targets``) at distance ``k``:
    blocks (0: brute force), tables, mean key bits, expected random candidates and the modelled time."""
    n_sorted = n if n_targets is None else n + n_targets
    pairs_total = n * (n - 1) / 2 if n_targets is None else float(n) * n_targets
    if blocks is None:
        blocks = choose_blocks(k, n_sorted, pairs_total) or 0
    if blocks == 0:
        return {"blocks": 0, "tables": 0, "key_bits": None, "expected_candidates": pairs_total,
                "estimated_s": _NS_PER_BRUTE_PAIR * pairs_total / 1e9}
    tables = _Tables(blocks, k)
    seconds = _estimate_ns(blocks, k, n_sorted, pairs_total) / 1e9
    per_table = (seconds * 1e9 / len(tables) - _NS_PER_SORTED * n_sorted) / _NS_PER_CANDIDATE
    return {"blocks": blocks, "tables": len(tables),
            "key_bits": sum(tables.key_bits(t) for t in range(len(tables))) / len(tables),
            "expected_candidates": per_table * len(tables), "estimated_s": seconds}


class _Tables:
    """The ``C(B, k)`` tables of a ``B``-block split: key extraction and the canonical-table test."""

    def __init__(self, n_blocks: int, k: int):
        if not k < n_blocks <= 64:
            raise ValueError(f"need k < blocks <= 64, got blocks={n_blocks}, k={k}")
        self.n_blocks, self.k = n_blocks, k
        self.layout = _block_layout(n_blocks)
        self.block_masks = [np.uint64(((1 << w) - 1) << lo) for lo, w in self.layout]
        self.combos = list(itertools.combinations(range(n_blocks), n_blocks - k))

    def __len__(self) -> int:
        return len(self.combos)

    def key_bits(self, t: int) -> int:
        return sum(self.layout[b][1] for b in self.combos[t])

    def keys(self, hashes: np.ndarray, t: int, out: np.ndarray | None = None,
             scratch: np.ndarray | None = None) -> np.ndarray:
        """The blocks of table ``t`` concatenated into the low bits of a ``uint64`` key (into ``out``)."""
        segments: list[list[int]] = []  # runs of adjacent blocks become one shift-and-mask
        for b in self.combos[t]:
            if segments and segments[-1][-1] == b - 1:
                segments[-1].append(b)
            else:
                segments.append([b])
        key = np.empty_like(hashes) if out is None else out
        part = np.empty_like(hashes) if scratch is None else scratch
        for i, seg in enumerate(segments):
            lo = self.layout[seg[-1]][0]
            width = sum(self.layout[b][1] for b in seg)
            target = key if i == 0 else part
            np.right_shift(hashes, np.uint64(lo), out=target)
            np.bitwise_and(target, np.uint64((1 << width) - 1), out=target)
            if i:
                np.left_shift(key, np.uint64(width), out=key)
                np.bitwise_or(key, part, out=key)
        return key

    def canonical(self, xor: np.ndarray, t: int) -> np.ndarray:
        """For verified pairs (given by the XOR of their hashes) found in table ``t``: is ``t`` the
        first table, in enumeration order, whose blocks they all agree on?

        Tables are the lexicographically ordered ``(B - k)``-subsets of blocks, so the first one a
        pair agrees on is its ``B - k`` lowest agreeing blocks: every block below the highest block
        of ``t`` that ``t`` leaves out must differ.
        """
        combo = self.combos[t]
        ok = np.ones(len(xor), dtype=bool)
        chosen = set(combo)
        for b in range(combo[-1]):
            if b not in chosen:
                ok &= (xor & self.block_masks[b]) != 0
        return ok


# ---------------------------------------------------------------------------------- run expansion
def _expand(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + c) for s, c in zip(starts, counts)])``, vectorised."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.cumsum(counts) - counts
    return np.repeat(starts - offsets, counts) + np.arange(total, dtype=np.int64)


def _chunks(counts: np.ndarray, limit: int = _CHUNK) -> Iterator[slice]:
    """Slices of ``counts`` whose sums are about ``limit`` (one entry may exceed it alone)."""
    if len(counts) == 0:
        return
    cum = np.cumsum(counts)
    start = 0
    while start < len(counts):
        base = cum[start - 1] if start else 0
        stop = int(np.searchsorted(cum, base + limit, side="right"))
        stop = max(stop, start + 1)
        yield slice(start, stop)
        start = stop


def _runs(packed: np.ndarray, id_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """``(first position, length)`` of every run of >= 2 equal keys in a sorted packed array (key in
    the high bits, id in the low ``id_bits``): neighbours share a key iff their XOR is below ``2^id_bits``."""
    xor = np.bitwise_xor(packed[1:], packed[:-1])
    pos = np.flatnonzero(np.less(xor, np.uint64(1 << id_bits)))
    del xor
    if len(pos) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    breaks = np.flatnonzero(np.diff(pos) != 1) + 1
    first = pos[np.r_[0, breaks]]
    last = pos[np.r_[breaks - 1, len(pos) - 1]] + 1
    return first.astype(np.int64), (last - first + 1).astype(np.int64)


# ------------------------------------------------------------------------------ pairs of distinct
def _pack_sort(keys: np.ndarray, ids: np.ndarray, id_bits: int) -> np.ndarray:
    """Keys in the high bits, ids (``arange``) in the low ``id_bits``, sorted."""
    keys <<= np.uint64(id_bits)
    keys |= ids
    keys.sort()
    return keys


def _ids_at(packed: np.ndarray, positions: np.ndarray, id_bits: int) -> np.ndarray:
    return (packed[positions] & np.uint64((1 << id_bits) - 1)).astype(np.int64)


def _self_pairs_table(u: np.ndarray, k: int, tables: _Tables, t: int, ids: np.ndarray, id_bits: int,
                      buffers: tuple[np.ndarray, np.ndarray]):
    """Pairs ``(a, b, dist)``, ``a < b``, of distinct hashes whose canonical table is ``t``."""
    packed = _pack_sort(tables.keys(u, t, *buffers), ids, id_bits)
    first, length = _runs(packed, id_bits)
    out_a, out_b, out_d = [], [], []
    if len(first):
        # every position of a run is paired with the positions after it in the same run
        left = _expand(first, length - 1)
        run_last = np.repeat(first + length - 1, length - 1)
        counts = run_last - left
        for part in _chunks(counts):
            lpos = left[part]
            rpos = _expand(lpos + 1, counts[part])
            lpos = np.repeat(lpos, counts[part])
            a, b = _ids_at(packed, lpos, id_bits), _ids_at(packed, rpos, id_bits)
            xor = u[a] ^ u[b]
            dist = np.bitwise_count(xor)
            ok = dist <= k
            ok[ok] = tables.canonical(xor[ok], t)
            a, b = a[ok], b[ok]
            out_a.append(np.minimum(a, b))
            out_b.append(np.maximum(a, b))
            out_d.append(dist[ok])
    return out_a, out_b, out_d


def _brute_self(u: np.ndarray, k: int):
    n = len(u)
    out_a, out_b, out_d = [], [], []
    rows = max(1, _CHUNK // max(n, 1))
    for i0 in range(0, n, rows):
        i1 = min(n, i0 + rows)
        dist = np.bitwise_count(u[i0:i1, None] ^ u[None, i0:])
        # column c (relative to i0) pairs with row r only when c > r
        mask = (dist <= k) & (np.arange(n - i0)[None, :] > np.arange(i1 - i0)[:, None])
        r, c = np.nonzero(mask)
        out_a.append(r + i0)
        out_b.append(c + i0)
        out_d.append(dist[r, c])
    return out_a, out_b, out_d


def _concat(parts: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype=dtype)


def distinct_pairs(u: np.ndarray, k: int, *, blocks: int | None = None,
                   table_range: range | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs of entries of ``u`` (assumed distinct) within distance ``k``: ``(a, b, dist)``, ``a < b``.

    ``blocks`` forces the block count (``None``: cost model; ``0``: brute force); ``table_range``
    restricts the search to some tables (benchmarks use it to time a subset of tables).
    """
    u = np.ascontiguousarray(u, dtype=np.uint64)
    n = len(u)
    if n < 2 or k < 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    if blocks is None:
        blocks = choose_blocks(k, n, n * (n - 1) / 2) or 0
    logger.debug("near-duplicate search: %d distinct hashes, k=%d, %s", n, k,
                 f"{blocks} blocks, {math.comb(blocks, k)} tables" if blocks else "brute force")
    if blocks == 0 or k >= 64:
        parts = _brute_self(u, k)
    else:
        tables = _Tables(blocks, k)
        parts = ([], [], [])
        id_bits = _id_bits(n)
        ids = np.arange(n, dtype=np.uint64)
        buffers = (np.empty_like(u), np.empty_like(u))
        for t in table_range if table_range is not None else range(len(tables)):
            for acc, new in zip(parts, _self_pairs_table(u, k, tables, t, ids, id_bits, buffers), strict=True):
                acc.extend(new)
    a, b, d = (_concat(p, np.int64) for p in parts)
    order = np.lexsort((b, a))
    return a[order], b[order], d[order]


# ------------------------------------------------------------------------------ collapse and groups
def _collapse(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct values in first-occurrence order: ``(values, first row of each, value id of each row)``."""
    h = np.ascontiguousarray(hashes, dtype=np.uint64)
    n = len(h)
    if n == 0:
        return h, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order = np.argsort(h)
    sh = h[order]
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(sh[1:], sh[:-1], out=new[1:])
    group_start = np.flatnonzero(new)
    first_rows = np.minimum.reduceat(order, group_start)  # the sort is not stable
    # number the values by first occurrence (so a smaller id means an earlier first row) without a
    # second sort: mark first rows, count them in row order
    is_first = np.zeros(n, dtype=bool)
    is_first[first_rows] = True
    id_at_row = np.cumsum(is_first) - 1
    group_id = id_at_row[first_rows]
    values = np.empty(len(group_start), dtype=np.uint64)
    values[group_id] = sh[group_start]
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.repeat(group_id, np.diff(np.r_[group_start, n]))
    return values, np.flatnonzero(is_first), inverse


def connected_components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Root of every node ``0..n-1`` given edges ``(a, b)``; the root is the smallest node of its component.

    Vectorised hook-and-compress: each round hooks every edge's larger root under the smallest root
    it meets (``np.minimum.at``), then pointer-jumps until every node points at its root. Parents only
    ever decrease, so there are no cycles and the root is the component minimum.
    """
    parent = np.arange(n, dtype=np.int64)
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    while len(a):
        ra, rb = parent[a], parent[b]
        differ = ra != rb
        if not differ.any():
            break
        a, b, ra, rb = a[differ], b[differ], ra[differ], rb[differ]
        np.minimum.at(parent, np.maximum(ra, rb), np.minimum(ra, rb))
        while True:  # compress: point every node at its root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
    return parent


def hamming_pairs(hashes: np.ndarray, k: int, *, return_distances: bool = False, blocks: int | None = None):
    """Every pair of rows ``i < j`` with ``hamming(hashes[i], hashes[j]) <= k``, sorted by ``(i, j)``.

    Returns ``(i, j)`` (``int64`` arrays), or ``(i, j, dist)`` with ``return_distances``. Rows with
    equal hashes pair with each other (distance 0): the output grows with the square of the number
    of copies, which is what is asked for; use :func:`near_duplicate_groups` to deduplicate.
    """
    values, _, inverse = _collapse(hashes)
    a, b, d = distinct_pairs(values, k, blocks=blocks)
    rows_by_value = np.argsort(inverse, kind="stable")
    counts = np.bincount(inverse, minlength=len(values)).astype(np.int64)
    start = np.cumsum(counts) - counts
    parts_i, parts_j, parts_d = [], [], []
    # rows of two different values: every combination
    ca, cb = counts[a], counts[b]
    if len(a):
        reps = ca * cb
        left_slot = np.repeat(np.arange(len(a)), reps)
        within = _expand(np.zeros(len(a), dtype=np.int64), reps)
        parts_i.append(rows_by_value[start[a][left_slot] + within // cb[left_slot]])
        parts_j.append(rows_by_value[start[b][left_slot] + within % cb[left_slot]])
        parts_d.append(d[left_slot])
    # rows sharing one value: every pair among them, distance 0
    dup = np.flatnonzero(counts >= 2)
    if len(dup):
        c = counts[dup]
        members_left = _expand(start[dup], c - 1)  # slot of the left row of each pair
        slot_end = np.repeat(start[dup] + c, c - 1)
        tail = slot_end - members_left - 1
        left = np.repeat(members_left, tail)
        right = _expand(members_left + 1, tail)
        parts_i.append(rows_by_value[left])
        parts_j.append(rows_by_value[right])
        parts_d.append(np.zeros(len(left), dtype=np.int64))
    i, j, dist = (_concat(p, np.int64) for p in (parts_i, parts_j, parts_d))
    i, j = np.minimum(i, j), np.maximum(i, j)
    order = np.lexsort((j, i))
    if return_distances:
        return i[order], j[order], dist[order]
    return i[order], j[order]


def near_duplicate_groups(hashes: np.ndarray, k: int, *, blocks: int | None = None) -> np.ndarray:
    """Group representative (a row index) of every row: rows joined by chains of pairs within
    distance ``k`` form one group, represented by its first row in input order.

    ``reps[i] == i`` marks the rows to keep; the result does not depend on ``blocks`` nor on how the
    search is split, only on the hashes and their order.
    """
    values, first_rows, inverse = _collapse(hashes)
    a, b, _ = distinct_pairs(values, k, blocks=blocks)
    roots = connected_components(len(values), a, b)
    return first_rows[roots][inverse]


# ------------------------------------------------------------------------------------ cross search
def _cross_distinct(q: np.ndarray, t: np.ndarray, k: int, blocks: int | None = None):
    """Pairs ``(query id, target id, dist)`` within ``k`` between two arrays of distinct values."""
    nq, nt = len(q), len(t)
    if nq == 0 or nt == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    if blocks is None:
        blocks = choose_blocks(k, nq + nt, float(nq) * nt) or 0
    out_q, out_t, out_d = [], [], []
    if blocks == 0 or k >= 64:
        rows = max(1, _CHUNK // nt)
        for i0 in range(0, nq, rows):
            dist = np.bitwise_count(q[i0:i0 + rows, None] ^ t[None, :])
            r, c = np.nonzero(dist <= k)
            out_q.append(r + i0)
            out_t.append(c)
            out_d.append(dist[r, c])
    else:
        tables = _Tables(blocks, k)
        both = np.concatenate([t, q])  # targets get the small ids, so they sort first within a key
        id_bits = _id_bits(len(both))
        ids = np.arange(len(both), dtype=np.uint64)
        buffers = (np.empty_like(both), np.empty_like(both))
        for ti in range(len(tables)):
            packed = _pack_sort(tables.keys(both, ti, *buffers), ids, id_bits)
            first, length = _runs(packed, id_bits)
            if not len(first):
                continue
            # number of targets at the head of each run; runs without one or without a query are skipped
            is_target = (_ids_at(packed, _expand(first, length), id_bits) < nt).astype(np.int64)
            csum = np.r_[0, np.cumsum(is_target)]
            run_end = np.cumsum(length)
            n_targets = csum[run_end] - csum[run_end - length]
            useful = (n_targets > 0) & (n_targets < length)
            first, length, n_targets = first[useful], length[useful], n_targets[useful]
            qpos = _expand(first + n_targets, length - n_targets)
            counts = np.repeat(n_targets, length - n_targets)
            tstart = np.repeat(first, length - n_targets)
            for part in _chunks(counts):
                c = counts[part]
                lpos = np.repeat(qpos[part], c)
                rpos = _expand(tstart[part], c)
                qa, tb = _ids_at(packed, lpos, id_bits), _ids_at(packed, rpos, id_bits)
                xor = both[qa] ^ both[tb]
                dist = np.bitwise_count(xor)
                ok = dist <= k
                ok[ok] = tables.canonical(xor[ok], ti)
                out_q.append(qa[ok] - nt)
                out_t.append(tb[ok])
                out_d.append(dist[ok])
    return _concat(out_q, np.int64), _concat(out_t, np.int64), _concat(out_d, np.int64)


def cross_hamming_pairs(queries: np.ndarray, targets: np.ndarray, k: int, *, blocks: int | None = None):
    """Every ``(query row, target row)`` within distance ``k``: ``(qi, ti, dist)``, sorted by ``(qi, ti)``.

    The tables index both sets at once; only runs holding a query and a target are expanded, so
    near-duplicates *within* either set cost nothing.
    """
    qv, _, qinv = _collapse(queries)
    tv, _, tinv = _collapse(targets)
    qa, tb, d = _cross_distinct(qv, tv, k, blocks)
    q_rows = np.argsort(qinv, kind="stable")
    q_counts = np.bincount(qinv, minlength=len(qv)).astype(np.int64)
    q_start = np.cumsum(q_counts) - q_counts
    t_rows = np.argsort(tinv, kind="stable")
    t_counts = np.bincount(tinv, minlength=len(tv)).astype(np.int64)
    t_start = np.cumsum(t_counts) - t_counts
    cq, ct = q_counts[qa], t_counts[tb]
    reps = cq * ct
    slot = np.repeat(np.arange(len(qa)), reps)
    within = _expand(np.zeros(len(qa), dtype=np.int64), reps)
    qi = q_rows[q_start[qa][slot] + within // ct[slot]]
    ti = t_rows[t_start[tb][slot] + within % ct[slot]]
    dist = d[slot]
    order = np.lexsort((ti, qi))
    return qi[order], ti[order], dist[order]


def nearest_targets(queries: np.ndarray, targets: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For every query row: the closest target row within ``k`` (ties: the first target) and its
    distance; ``-1`` where there is none."""
    n = len(queries)
    best_t = np.full(n, -1, dtype=np.int64)
    best_d = np.full(n, -1, dtype=np.int64)
    qv, _, qinv = _collapse(queries)
    tv, t_first, _ = _collapse(targets)
    qa, tb, d = _cross_distinct(qv, tv, k)
    if len(qa):
        order = np.lexsort((t_first[tb], d, qa))  # per query value: smallest distance, then first target
        qa, tb, d = qa[order], tb[order], d[order]
        head = np.r_[True, qa[1:] != qa[:-1]]
        value_t = np.full(len(qv), -1, dtype=np.int64)
        value_d = np.full(len(qv), -1, dtype=np.int64)
        value_t[qa[head]] = t_first[tb[head]]
        value_d[qa[head]] = d[head]
        best_t, best_d = value_t[qinv], value_d[qinv]
    return best_t, best_d
