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

_CHUNK = 4096  # patterns per batched solve (bounds memory at ~CHUNK * n * A floats)


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


def _svd_weights(Bs: np.ndarray) -> np.ndarray:
    """Minimum-norm solutions of ``Bs[p]^T a = 1`` by SVD, for stacked ``Bs`` ``(p, c, A)``."""
    c, A = Bs.shape[1:]
    u, sv, vt = np.linalg.svd(Bs, full_matrices=False)                  # Bs = u diag(sv) vt
    keep = sv > max(c, A) * np.finfo(float).eps * sv[:, :1]
    inv = np.where(keep, 1.0 / np.where(keep, sv, 1.0), 0.0)
    return np.einsum("pck,pk->pc", u, inv * vt.sum(axis=2))             # a = u diag(1/sv) vt 1


def _qr_weights(Bs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares solutions of ``Bs[p]^T a = 1`` by QR where ``Bs[p]`` has full row rank.

    Returns ``(weights, ok)``; rows with a (numerically) singular ``R`` are left for the SVD.
    """
    c, A = Bs.shape[1:]
    q, r = np.linalg.qr(Bs.transpose(0, 2, 1))                          # Bs^T = Q R, Q (A, c), R (c, c)
    d = np.abs(np.diagonal(r, axis1=1, axis2=2))
    ok = d.min(axis=1) > max(c, A) * np.finfo(float).eps * d.max(axis=1)
    weights = np.zeros(Bs.shape[:2])
    if ok.any():
        weights[ok] = np.linalg.solve(r[ok], q[ok].sum(axis=1)[..., None])[..., 0]   # a = R^-1 Q^T 1
    return weights, ok


def min_norm_weights(coefficients: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Minimum-norm least-squares solutions of ``B_S^T a = 1`` for every mask, batched.

    Parameters
    ----------
    coefficients: ``(n, A)`` coefficient matrix ``B``.
    masks: ``(P, n)`` boolean, ``True`` for responding nodes.

    Returns
    -------
    weights ``(P, n)``, zero outside the mask. Responder sets with linearly independent rows are solved
    by Householder QR (backward stable, about 3× faster than an SVD); the others by SVD, dropping
    singular values below ``max(|S|, A) · ε · σ_max`` (e.g. duplicated rows).
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
            Bs = B[rows]
            a = np.zeros((sel.size, c))
            ok = np.zeros(sel.size, dtype=bool)
            if c <= A:
                a, ok = _qr_weights(Bs)
            if not ok.all():
                a[~ok] = _svd_weights(Bs[~ok])
            weights[sel[:, None], rows] = a
    return weights


def first_per_group(groups: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Keep only the first responder of every group of nodes with identical coefficients."""
    masks = np.asarray(masks, dtype=bool)
    out = np.zeros_like(masks)
    rows = np.arange(masks.shape[0])
    for g in np.unique(groups):
        members = np.flatnonzero(groups == g)
        sub = masks[:, members]
        first = sub.argmax(axis=1)
        present = sub[rows, first]
        out[rows[present], members[first[present]]] = True
    return out


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
                 groups: np.ndarray | None = None, rtol: float = DEFAULT_RTOL) -> Decoding:
    """Decode every responder pattern of one layer and check each residual against ``rtol``.

    ``classes`` selects fractional-repetition decoding (pick one node per class; exact) instead of
    the least-squares solve; ``groups`` (nodes with identical rows) makes the solve use only the first
    responder of each group.
    """
    B = np.asarray(coefficients, dtype=float)
    masks = np.atleast_2d(np.asarray(masks, dtype=bool))
    if classes is not None:
        weights = selection_weights(classes, masks)
    else:
        weights = min_norm_weights(B, masks if groups is None else first_per_group(groups, masks))
    res = residuals(weights, B)
    res[~masks.any(axis=1)] = np.inf
    ok = res <= rtol
    return Decoding(weights, res, np.where(ok, condition_numbers(weights, B), np.inf), ok)
