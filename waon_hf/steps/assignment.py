"""Images assigned to sentences by maximising total similarity (MMC4's linear assignment).

Pure functions over an ``images x sentences`` similarity matrix: an image whose similarity to every
sentence is below the threshold is removed, the rest are assigned one-to-one to sentences with
:func:`scipy.optimize.linear_sum_assignment` (maximising the sum). With more images than sentences
the least-similar images stay unassigned (the document filter then drops the document).
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Assignment:
    """Which images survive and the sentence each is assigned to (``-1``: none left for it)."""

    kept: list[int]  # image indices (ascending) whose best similarity reaches the threshold
    sentence: list[int]  # per kept image: its sentence index, or -1
    similarity: list[float]  # per kept image: similarity to its sentence (its best one when unassigned)


def assign_images(similarity: np.ndarray, min_similarity: float = 0.20) -> Assignment:
    """Drop images below ``min_similarity`` against every sentence; assign the rest by maximum total similarity."""
    from scipy.optimize import linear_sum_assignment

    sim = np.asarray(similarity, dtype=np.float64)
    if sim.ndim != 2:
        raise ValueError(f"similarity must be images x sentences, got shape {sim.shape}")
    if sim.shape[0] == 0 or sim.shape[1] == 0:
        return Assignment([], [], [])
    kept = [i for i in range(sim.shape[0]) if sim[i].max() >= min_similarity]
    if not kept:
        return Assignment([], [], [])
    sub = sim[kept]
    rows, cols = linear_sum_assignment(sub, maximize=True)
    sentence = [-1] * len(kept)
    chosen = [float(sub[k].max()) for k in range(len(kept))]
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        sentence[r] = int(c)
        chosen[r] = float(sub[r, c])
    return Assignment(kept, sentence, chosen)
