"""Decoders: find weights ``a`` with ``a^T B_S = 1^T`` for responding sets ``S``, batched, and check them.

All functions work on a batch of responder masks at once, shape ``(P, n)``, and return a
:class:`Decoding` with, per pattern, the weights (zero for non-responders), the residual
``max_k |(a^T B)_k - 1|`` (the relative error of the decoded gradient is bounded by it, for partial
gradients of similar size) and the condition number of the decoding. A pattern is decodable when its
residual is at most ``rtol``; nothing here ever returns weights for an undecodable pattern without
saying so.

**Condition number.** We report the componentwise (Skeel) condition number of the decoded gradient
``ĝ = Σ_i a_i Σ_k B[i,k] g_k`` with respect to the partial gradients,
``κ = max_k Σ_i |a_i| |B[i,k]|`` (``>= 1`` because ``Σ_i a_i B[i,k] = 1``; exactly 1 for fractional
repetition and uncoded). Rounding errors in the messages and in the decoding sum reach the decoded
gradient amplified by at most ``κ``: its error is about ``κ · ε · Σ_k |g_k|``. Unlike the 2-norm
condition number of ``B_S`` it does not depend on how the rows of ``B`` are scaled, and it tracks the
measured decoding error (the 2-norm figure can overstate it by orders of magnitude).

Coefficient matrices are given on *atoms* (groups of partitions held by exactly the same nodes, see
:func:`hgc.codes.constructions.atoms`): decoding depends only on them, and there are at most as many
atoms as nodes for the placements of :mod:`hgc.codes.placement`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_RTOL = 1e-9
"""Largest accepted decoding residual: a decoded gradient is within ~1e-9 (relative) of the true one."""

_CHUNK = 4096  # patterns per batched SVD (bounds memory at ~CHUNK * n * A floats)


@dataclass(frozen=True)
class Decoding:
    """Result of decoding a batch of ``P`` responder patterns of one layer (or of a whole code).

    weights:  ``(P, n)`` decoding weights, zero for nodes not used.
    residual: ``(P,)`` ``max_k |Σ_i weights[i] B[i,k] - 1|``; ``inf`` when nobody responded.
    cond:     ``(P,)`` condition number ``κ = max_k Σ_i |weights[i]| |B[i,k]|`` (``inf`` if undecodable).
    ok:       ``(P,)`` ``residual <= rtol``.
    """

    weights: np.ndarray
    residual: np.ndarray
    cond: np.ndarray
    ok: np.ndarray


def residuals(weights: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """``max_k |(weights @ coefficients)_k - 1|`` per row of ``weights`` (shape ``(P,)``)."""
    return np.abs(weights @ coefficients - 1.0).max(axis=1)


def condition_numbers(weights: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """``κ = max_k Σ_i |weights[i]| |B[i,k]|`` per row of ``weights`` (shape ``(P,)``)."""
    return (np.abs(weights) @ np.abs(coefficients)).max(axis=1)


def min_norm_weights(coefficients: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Minimum-norm least-squares solutions of ``B_S^T a = 1`` for every mask, by batched SVD.

    Parameters
    ----------
    coefficients: ``(n, A)`` coefficient matrix ``B``.
    masks: ``(P, n)`` boolean, ``True`` for responding nodes.

    Returns
    -------
    weights ``(P, n)``, zero outside the mask. Singular values of ``B_S`` below the numerical-rank
    cut-off ``max(|S|, A) · ε · σ_max`` are dropped (duplicated rows, e.g. in fractional repetition).
    """
    B = np.asarray(coefficients, dtype=float)
    masks = np.asarray(masks, dtype=bool)
    P, n = masks.shape
    A = B.shape[1]
    weights = np.zeros((P, n))
    counts = masks.sum(axis=1)
    for c in np.unique(counts):
        if c == 0:
            continue
        sel_all = np.flatnonzero(counts == c)
        for lo in range(0, sel_all.size, _CHUNK):
            sel = sel_all[lo:lo + _CHUNK]
            rows = np.nonzero(masks[sel])[1].reshape(sel.size, c)      # responders, ascending
            u, sv, vt = np.linalg.svd(B[rows], full_matrices=False)      # B_S = u diag(sv) vt
            keep = sv > max(int(c), A) * np.finfo(float).eps * sv[:, :1]
            inv = np.where(keep, 1.0 / np.where(keep, sv, 1.0), 0.0)
            # B_S^T a = 1  =>  a = u diag(1/sv) vt 1
            weights[sel[:, None], rows] = np.einsum("pck,pk->pc", u, inv * vt.sum(axis=2))
    return weights


def selection_weights(classes: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Fractional-repetition decoding: weight 1 on the first responder of every class, 0 elsewhere.

    ``classes`` ``(n,)`` gives each node's class (nodes of a class hold identical data); the result
    has a class's weight missing (all zero) when none of its nodes responded.
    """
    masks = np.asarray(masks, dtype=bool)
    P = masks.shape[0]
    weights = np.zeros(masks.shape)
    rows = np.arange(P)
    for c in np.unique(classes):
        members = np.flatnonzero(classes == c)
        sub = masks[:, members]
        first = sub.argmax(axis=1)
        present = sub[rows, first]
        weights[rows[present], members[first[present]]] = 1.0
    return weights


def decode_layer(coefficients: np.ndarray, masks: np.ndarray, *, classes: np.ndarray | None = None,
                 rtol: float = DEFAULT_RTOL) -> Decoding:
    """Decode every responder pattern of one layer and check each residual against ``rtol``.

    ``classes`` selects fractional-repetition decoding (pick one node per class; exact) instead of
    the least-squares solve.
    """
    B = np.asarray(coefficients, dtype=float)
    masks = np.atleast_2d(np.asarray(masks, dtype=bool))
    weights = selection_weights(classes, masks) if classes is not None else min_norm_weights(B, masks)
    res = residuals(weights, B)
    res[~masks.any(axis=1)] = np.inf
    ok = res <= rtol
    return Decoding(weights, res, np.where(ok, condition_numbers(weights, B), np.inf), ok)
