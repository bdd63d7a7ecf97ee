"""Order statistics of independent, non-identical nodes on a time grid (Poisson-binomial tails).

The CDF of the time by which all but ``s`` of a set of independent nodes have finished is the
probability that at most ``s`` of them are still running: a Poisson-binomial tail in the per-node
probabilities, computed by dynamic programming over the nodes (:func:`hgc.analytic.compiled.order_statistics`),
for every grid point and many order statistics ("jobs") at once. Identical nodes share a *slot* and
enter together (as one binomial term when there are many).
"""

from __future__ import annotations

import numpy as np

from hgc.analytic import compiled


def order_statistic_cdf(cdfs: np.ndarray, counts: np.ndarray, tolerated: np.ndarray) -> np.ndarray:
    """CDF of the time by which all but ``tolerated[j]`` of job ``j``'s nodes have finished.

    ``cdfs[j, s]`` (shape ``(J, S, L)``) is the CDF, on a grid, of one node of slot ``s`` of job ``j``;
    slot ``s`` stands for ``counts[j, s]`` identical independent nodes (0 = padding). With ``K_j`` nodes in
    job ``j`` the result (shape ``(J, L)``) is the CDF of their ``(K_j - tolerated[j])``-th smallest value.
    """
    cdfs = np.asarray(cdfs, dtype=float)
    counts = np.asarray(counts, dtype=np.int64)
    tolerated = np.asarray(tolerated, dtype=np.int64)
    if np.any(counts.sum(axis=1) - tolerated < 1):
        raise ValueError("each job must wait for at least one node")
    jobs, slots, length = cdfs.shape
    rows = np.ascontiguousarray(cdfs.reshape(jobs * slots, length))
    index = np.arange(jobs * slots, dtype=np.intp).reshape(jobs, slots)
    out = np.empty((jobs, length))
    compiled.order_statistics(rows, index, counts, tolerated, out)
    return out
