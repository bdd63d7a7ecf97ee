"""Order statistics of independent, non-identical nodes on a time grid (Poisson-binomial tails).

The CDF of the time by which all but ``s`` of a set of independent nodes have finished is the
probability that at most ``s`` of them are still running: a Poisson-binomial tail in the per-node
probabilities, computed by dynamic programming over the nodes, vectorised over grid points and over many
order statistics ("jobs") at once. Identical nodes share a *slot* and enter as one binomial term.
"""

from __future__ import annotations

import math

import numpy as np

REPEAT_MAX = 4
"""Slots of up to this many identical nodes are added one node at a time; larger ones as a binomial."""


def _binomial_pmf(count: np.ndarray, p: np.ndarray, top: int) -> np.ndarray:
    """``P(Bin(count, p) = j)`` for ``j = 0..top``: ``count`` has shape ``(J,)``, ``p`` shape ``(J, L)``;
    the result has shape ``(top+1, J, L)``.

    ``q^c`` once, then the ratio recurrence ``pmf_j = pmf_{j-1} (c-j+1)/j p/q`` (``q`` clipped at 1e-300);
    rows with ``count <= top``, where an underflowing ``q^c`` would lose the mass at ``j = count``, are
    computed in logs instead."""
    c = np.asarray(count, dtype=float)[:, None]
    q = 1.0 - p
    safe_q = np.maximum(q, 1e-300)
    out = np.empty((top + 1,) + p.shape)
    out[0] = np.exp(c * np.log(safe_q))
    ratio = p / safe_q
    for j in range(1, top + 1):
        out[j] = out[j - 1] * ratio * (np.maximum(c - (j - 1), 0.0) / j)
    small = np.nonzero(c[:, 0] <= top)[0]
    if small.size:
        cs = c[small]
        log_p = np.log(np.clip(p[small], 1e-300, 1.0))
        log_q = np.log(safe_q[small])
        log_choose = np.zeros_like(cs)
        for j in range(top + 1):
            if j > 0:
                log_choose = log_choose + np.log(np.maximum(cs - (j - 1), 1.0)) - math.log(j)
            valid = cs >= j
            out[j, small] = np.where(valid, np.exp(log_choose + j * log_p + np.where(valid, cs - j, 0.0) * log_q), 0.0)
    return out


def _count_at_most(event: np.ndarray, counts: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``P(#events <= thresholds[j])`` for each job ``j``.

    ``event[j, s]`` (shape ``(J, S, L)``) is the probability that one node of slot ``s`` has the event;
    the slot holds ``counts[j, s]`` independent identical nodes (0 for padding). Dynamic programming over
    the slots, vectorised over jobs and grid points; the state keeps ``P(#events = c)`` for
    ``c <= max(thresholds)`` only, so a slot costs ``O(max(thresholds))`` array operations (a binomial
    slot ``O(max(thresholds)^2)``). Returns shape ``(J, L)``.
    """
    jobs, slots, length = event.shape
    top = int(thresholds.max())
    if top == 0:                                   # nobody may have the event: a product
        return np.prod((1.0 - event) ** counts[:, :, None], axis=1)
    state = np.zeros((top + 1, jobs, length))
    state[0] = 1.0
    for s in range(slots):
        c = counts[:, s]
        c_max = int(c.max())
        if c_max <= REPEAT_MAX:
            for r in range(1, c_max + 1):
                p = event[:, s, :] if c.min() >= r else event[:, s, :] * (c >= r)[:, None]
                q = 1.0 - p
                for k in range(top, 0, -1):
                    state[k] *= q
                    state[k] += state[k - 1] * p
                state[0] *= q
        else:
            pmf = _binomial_pmf(c, event[:, s, :], top)
            new = state * pmf[0]
            for k in range(1, top + 1):
                new[k:] += state[: top + 1 - k] * pmf[k]
            state = new
    if np.all(thresholds == top):
        return state.sum(axis=0)
    cumulative = np.cumsum(state, axis=0)
    return np.take_along_axis(cumulative, thresholds[None, :, None].astype(np.intp), axis=0)[0]


def order_statistic_cdf(cdfs: np.ndarray, counts: np.ndarray, tolerated: np.ndarray) -> np.ndarray:
    """CDF of the time by which all but ``tolerated[j]`` of job ``j``'s nodes have finished.

    ``cdfs[j, s]`` (shape ``(J, S, L)``) is the CDF, on a grid, of one node of slot ``s`` of job ``j``;
    slot ``s`` stands for ``counts[j, s]`` identical independent nodes (0 = padding). With ``K_j`` nodes in
    job ``j`` the result is the CDF of their ``(K_j - tolerated[j])``-th smallest value: the DP tracks the
    smaller of "stragglers <= tolerated" and "finished <= K_j - tolerated - 1".
    """
    counts = np.asarray(counts)
    tolerated = np.asarray(tolerated, dtype=np.int64)
    total = counts.sum(axis=1)
    needed = total - tolerated
    if np.any(needed < 1):
        raise ValueError("each job must wait for at least one node")
    if tolerated.max() <= needed.max() - 1:
        return _count_at_most(1.0 - cdfs, counts, tolerated)
    return 1.0 - _count_at_most(cdfs, counts, needed - 1)

