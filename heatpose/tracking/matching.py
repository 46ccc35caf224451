"""Greedy matching by descending similarity (paper §3.3).

Repeatedly take the most similar remaining (new pose, track) pair, give the pose that track's id,
and remove both; stop when the best remaining similarity is under ``min_similarity``. Unlike the
Hungarian assignment this never trades a confident pair for two mediocre ones, which is what the
paper chose. Ties are broken by the smaller row, then the smaller column, so results do not
depend on sort stability.
"""

from __future__ import annotations

import numpy as np


def greedy_match(similarity: np.ndarray, min_similarity: float = 0.0) -> list[tuple[int, int]]:
    """Pairs ``(row, column)`` of ``similarity`` (N, M), best first; each row and column at most once.

    A pair is taken only when its similarity is ``>= min_similarity`` and > 0.
    """
    sim = np.asarray(similarity, dtype=np.float64)
    if sim.ndim != 2:
        raise ValueError(f"similarity must be 2-D, got shape {sim.shape}")
    rows, cols = np.nonzero((sim >= min_similarity) & (sim > 0))
    order = np.lexsort((cols, rows, -sim[rows, cols]))
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r in used_rows or c in used_cols:
            continue
        pairs.append((r, c))
        used_rows.add(r)
        used_cols.add(c)
    return pairs
