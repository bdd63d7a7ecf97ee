"""Decoders: find weights ``a`` with ``a^T B_S = 1^T`` for responding sets ``S``, batched, and check them.

With reduction ``ℓ`` (chunked messages, see :mod:`hgc.codes.constructions`) the coefficients have shape
``(n, A, ℓ)`` and the decoder finds ``ℓ`` weight rows ``A`` (``ℓ × n``) with
``Σ_i A[c', i] B[i, k, c] = [c = c']``: row ``c'`` applied to the messages gives chunk ``c'`` of the
gradient. Every quantity below reduces to the one-vector case for ``ℓ = 1`` (weights ``(P, 1, n)``).

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

**Closed-form weights for the polynomial constructions.** Node ``i`` of a polynomial code (see
:mod:`hgc.codes.constructions`) sends ``f(x_i) / σ_i`` where ``f`` has degree ``r - 1`` (``r = n - s``),
its ``ℓ`` leading coefficients are the wanted chunk sums, and ``σ_i`` is the row scale. From exactly ``r``
responders ``S`` those coefficients are divided differences of the values: with
``w_i = σ_i / Π_{j ∈ S, j ≠ i} (x_i - x_j)``, the weight of node ``i`` for chunk ``d`` is
``w_i (-1)^d e_d(x_{S∖i})`` (``e_d`` the elementary symmetric polynomial; ``e_0 = 1``, so
``ℓ = 1`` needs only ``w_i``). :class:`PolynomialDecoder` evaluates them for a batch of patterns in
``O(r · min(r, n - r))`` multiplications each instead of one QR factorisation. They are used only when
the polynomials span all polynomials of degree ``< r`` (checked when the code is built): then ``B_S``
has full row rank, the solution is unique and equals the minimum-norm one up to rounding. With more
than ``r`` responders (e.g. several members of a node group answered, or fewer than ``s`` straggled)
the weights are no longer unique; the decoder then returns the minimum-norm ones over *all* responders,
from a QR factorisation of the small ``(|S|, r)`` matrix of a Chebyshev basis at the responders'
points (:meth:`PolynomialDecoder.weights`) rather than of the ``(|S|, A·ℓ)`` coefficients. Patterns
whose closed-form residual exceeds ``rtol`` go to the generic solver, so the closed form never refuses
a pattern the generic decoder accepts; the reported ``κ`` is that of the weights actually used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULT_RTOL = 1e-9
"""Largest accepted decoding residual: a decoded gradient is within ~1e-9 (relative) of the true one."""

_CHUNK = 4096  # patterns per batched solve (bounds memory at ~CHUNK * n * A floats)


@dataclass(frozen=True)
class Decoding:
    """Result of decoding a batch of ``P`` responder patterns of one layer (or of a whole code).

    weights:  ``(P, ℓ, n)`` decoding weights, zero for nodes not used; row ``c`` gives output chunk ``c``.
    residual: ``(P,)`` ``max |Σ_i weights[c', i] B[i, k, c] - [c = c']|``; ``inf`` when nobody responded.
    cond:     ``(P,)`` condition number ``κ = max Σ_i |weights[c', i]| |B[i, k, c]|`` (``inf`` if undecodable).
    ok:       ``(P,)`` ``residual <= rtol``.
    """

    weights: np.ndarray
    residual: np.ndarray
    cond: np.ndarray
    ok: np.ndarray

    def __getitem__(self, index: Any) -> "Decoding":
        """The sub-batch ``index`` of the patterns (any NumPy index on the first axis)."""
        return Decoding(self.weights[index], self.residual[index], self.cond[index], self.ok[index])


def as_chunked(coefficients: np.ndarray) -> np.ndarray:
    """Coefficients as ``(n, A, ℓ)``; a 2-D ``(n, A)`` array is one chunk."""
    B = np.asarray(coefficients, dtype=float)
    return B[:, :, None] if B.ndim == 2 else B


def _flat(coefficients: np.ndarray) -> tuple[np.ndarray, int]:
    """``(B2, ℓ)`` with ``B2 = B.reshape(n, A·ℓ)``: column ``a·ℓ + c`` is atom ``a``, chunk ``c``."""
    B = as_chunked(coefficients)
    return B.reshape(B.shape[0], -1), B.shape[2]


def _products(weights: np.ndarray, B2: np.ndarray) -> np.ndarray:
    """``weights @ B2`` for weights ``(P, ℓ, n)``: shape ``(P, ℓ, A·ℓ)`` via one 2-D product."""
    P, ell, n = weights.shape
    return (weights.reshape(P * ell, n) @ B2).reshape(P, ell, B2.shape[1])


def residuals(weights: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """``max |Σ_i weights[c', i] B[i, k, c] - [c = c']|`` per pattern (shape ``(P,)``).

    ``weights`` ``(P, ℓ, n)`` (or ``(P, n)`` with 2-D ``coefficients``, one chunk)."""
    B2, ell = _flat(coefficients)
    if weights.ndim == 2:
        return np.abs(weights @ B2 - 1.0).max(axis=1)
    if ell == 1:
        return np.abs(weights.reshape(weights.shape[0], -1) @ B2 - 1.0).max(axis=1)
    prod = _products(weights, B2).reshape(weights.shape[0], ell, -1, ell)
    return np.abs(prod - np.eye(ell)[:, None, :]).max(axis=(1, 2, 3))


def condition_numbers(weights: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """``κ = max Σ_i |weights[c', i]| |B[i, k, c]|`` per pattern (shape ``(P,)``)."""
    B2, ell = _flat(coefficients)
    if weights.ndim == 2:
        return (np.abs(weights) @ np.abs(B2)).max(axis=1)
    if ell == 1:
        return (np.abs(weights.reshape(weights.shape[0], -1)) @ np.abs(B2)).max(axis=1)
    return _products(np.abs(weights), np.abs(B2)).max(axis=(1, 2))


def _svd_weights(Bs: np.ndarray, ell: int) -> np.ndarray:
    """Minimum-norm solutions of ``Bs[p]^T a_c = e_c`` by SVD, for stacked ``Bs`` ``(p, c, A·ℓ)``.

    Returns ``(p, ℓ, c)``."""
    c, A = Bs.shape[1:]
    u, sv, vt = np.linalg.svd(Bs, full_matrices=False)                  # Bs = u diag(sv) vt
    keep = sv > max(c, A) * np.finfo(float).eps * sv[:, :1]
    inv = np.where(keep, 1.0 / np.where(keep, sv, 1.0), 0.0)
    if ell == 1:
        return np.einsum("pck,pk->pc", u, inv * vt.sum(axis=2))[:, None, :]   # a = u diag(1/sv) vt 1
    target = vt.reshape(vt.shape[0], vt.shape[1], -1, ell).sum(axis=2)         # vt E^T: (p, k, ℓ)
    return np.einsum("pck,pkl->plc", u, inv[:, :, None] * target)


def _qr_weights(Bs: np.ndarray, ell: int) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares solutions of ``Bs[p]^T a_c = e_c`` by QR where ``Bs[p]`` has full row rank.

    Returns ``(weights (p, ℓ, c), ok)``; rows with a (numerically) singular ``R`` are left for the SVD.
    """
    c, A = Bs.shape[1:]
    q, r = np.linalg.qr(Bs.transpose(0, 2, 1))                          # Bs^T = Q R, Q (A, c), R (c, c)
    d = np.abs(np.diagonal(r, axis1=1, axis2=2))
    ok = d.min(axis=1) > max(c, A) * np.finfo(float).eps * d.max(axis=1)
    weights = np.zeros((Bs.shape[0], ell, c))
    if ok.any():
        if not ok.all():                                                # (no copies in the common case)
            q, r = q[ok], r[ok]
        if ell == 1:
            weights[ok, 0] = np.linalg.solve(r, q.sum(axis=1)[..., None])[..., 0]   # a = R^-1 Q^T 1
        else:
            qt_e = q.reshape(q.shape[0], -1, ell, c).sum(axis=1).transpose(0, 2, 1)  # Q^T E^T: (p, c, ℓ)
            weights[ok] = np.linalg.solve(r, qt_e).transpose(0, 2, 1)
    return weights, ok


def min_norm_weights(coefficients: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Minimum-norm least-squares decoding weights for every mask, batched.

    Parameters
    ----------
    coefficients: ``(n, A, ℓ)`` coefficients ``B`` (or ``(n, A)``: one chunk).
    masks: ``(P, n)`` boolean, ``True`` for responding nodes.

    Returns
    -------
    weights ``(P, ℓ, n)``, zero outside the mask, solving ``Σ_i w[c', i] B[i, k, c] = [c = c']`` in the
    least-squares sense. Responder sets with linearly independent rows are solved by Householder QR
    (backward stable, about 3× faster than an SVD); the others by SVD, dropping singular values below
    ``max(|S|, A·ℓ) · ε · σ_max`` (e.g. duplicated rows).
    """
    B, ell = _flat(coefficients)
    masks = np.asarray(masks, dtype=bool)
    P, n = masks.shape
    weights = np.zeros((P, ell, n))
    row_id = _row_ids(B)
    counts = masks.sum(axis=1)
    for c in np.unique(counts):
        if c == 0:
            continue
        sel = np.flatnonzero(counts == c)
        rows = np.nonzero(masks[sel])[1].reshape(sel.size, c)          # responders, ascending
        if row_id is None:
            a = _solve_stacked(B, rows, ell)
        else:                  # identical rows: equal systems (same rows, same order) are solved once
            keys, first, inverse = np.unique(row_id[rows], axis=0, return_index=True, return_inverse=True)
            a = _solve_stacked(B, rows[first], ell)[inverse.reshape(-1)]
        weights[sel[:, None, None], np.arange(ell)[None, :, None], rows[:, None, :]] = a
    return weights


def _row_ids(B: np.ndarray) -> np.ndarray | None:
    """Label of every row of ``B`` (equal rows, equal labels), or ``None`` when all rows differ."""
    _, inverse = np.unique(B, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    return inverse if np.unique(inverse).size < B.shape[0] else None


def _solve_stacked(B: np.ndarray, rows: np.ndarray, ell: int) -> np.ndarray:
    """Weights ``(p, ℓ, c)`` for the stacked systems ``B[rows[p]]`` (each solved on its own: the result
    for one system does not depend on the others in the batch)."""
    p, c = rows.shape
    out = np.zeros((p, ell, c))
    for lo in range(0, p, _CHUNK):
        Bs = B[rows[lo:lo + _CHUNK]]
        a = np.zeros((Bs.shape[0], ell, c))
        ok = np.zeros(Bs.shape[0], dtype=bool)
        if c <= B.shape[1]:
            a, ok = _qr_weights(Bs, ell)
        if not ok.all():
            a[~ok] = _svd_weights(Bs[~ok], ell)
        out[lo:lo + _CHUNK] = a
    return out


_GATHER = 1 << 21  # elements per gathered (patterns, r, k) block of differences (16 MiB of float64)


@dataclass(frozen=True, eq=False)
class PolynomialDecoder:
    """Closed-form decoding weights of a polynomial construction (see the module docstring).

    points:    ``(G,)`` distinct evaluation points ``x_g``, one per point of the code (a node, or a group
               of nodes with identical rows).
    scales:    ``(G,)`` row scales ``σ_g``: row ``g`` of the coefficients is ``p(x_g) / σ_g`` (0: a zero row).
    needed:    ``r``: responders that determine the messages' polynomial (its degree is ``r - 1``).
    reduction: ``ℓ``: the decoder reads the ``ℓ`` leading coefficients.
    group_of:  ``(n,)`` point of every node (``None``: node ``i`` is point ``i``).
    """

    points: np.ndarray
    scales: np.ndarray
    needed: int
    reduction: int = 1
    group_of: np.ndarray | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def n_points(self) -> int:
        return int(self.points.size)

    def _differences(self) -> np.ndarray:
        """``(G, G)`` ``x_g - x_h`` (as the constructions compute them)."""
        if "diff" not in self._cache:
            self._cache["diff"] = self.points[:, None] - self.points[None, :]
        return self._cache["diff"]

    def _full_weights(self) -> np.ndarray | None:
        """``σ_g / Π_{h ≠ g} (x_g - x_h)`` over all points, in extended precision then rounded once
        (``None`` if it is not representable): ``w_g`` for a responder set ``S`` is this times
        ``Π_{h ∉ S} (x_g - x_h)``."""
        if "full" not in self._cache:
            x = self.points.astype(np.longdouble)
            diff = x[:, None] - x[None, :]
            np.fill_diagonal(diff, 1.0)
            with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
                full = (self.scales.astype(np.longdouble) / diff.prod(axis=1)).astype(float)
            ok = np.isfinite(full).all() and ((full != 0) | (self.scales == 0)).all()
            self._cache["full"] = full if ok else None
        return self._cache["full"]

    def _basis(self) -> tuple[np.ndarray, np.ndarray]:
        """``Z`` ``(G, r)``: what every point sends for the messages' polynomial ``f = T_j(x/2)``
        (Chebyshev polynomials, ``j < r``: a well-conditioned basis on ``[-2, 2]``), i.e.
        ``T_j(x_g/2) / σ_g``; and ``u`` ``(r, ℓ)``: their ``ℓ`` leading coefficients (of
        ``x^{r-1}, ..., x^{r-ℓ}``)."""
        if "basis" not in self._cache:
            r, ell = self.needed, self.reduction
            Z = np.polynomial.chebyshev.chebvander(self.points / 2.0, r - 1) / self.scales[:, None]
            u = np.zeros((r, ell))
            for j in range(r):
                power = np.polynomial.chebyshev.cheb2poly(np.eye(j + 1)[j])     # T_j(t), t = x/2
                for c in range(ell):
                    m = r - 1 - c
                    if m <= j:
                        u[j, c] = power[m] / 2.0 ** m
            self._cache["basis"] = (Z, u)
        return self._cache["basis"]

    def weights(self, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weights ``(P, ℓ, n)`` for node masks ``(P, n)`` with at most one responder per point, and
        ``(P,)`` which patterns they solve: those with at least ``r`` responding points (the others are
        left at zero for the generic solver).

        Exactly ``r`` points: the closed form. More: the minimum-norm weights over all of them (as
        the generic solver finds them; any ``r`` would do, but the minimum-norm choice keeps the
        weights, and so ``κ``, those of :func:`min_norm_weights`), from a QR factorisation of the
        ``(c, r)`` matrix :meth:`_basis` at the ``c`` responding points instead of the ``(c, A·ℓ)``
        coefficients: the weights must satisfy ``Z_S^T a = u`` (because the construction's
        polynomials span those of degree ``< r``, this is the same set of solutions as
        ``a^T B_S = [c = c']``), and its minimum-norm solution is ``a = Q R^{-T} u``.
        """
        masks = np.asarray(masks, dtype=bool)
        P, n = masks.shape
        ell, r, G = self.reduction, self.needed, self.n_points
        point_masks = masks if self.group_of is None else _point_masks(masks, self.group_of, G)
        counts = point_masks.sum(axis=1)
        solved = (counts >= r) & (r > 0)
        weights = np.zeros((P, ell, n))
        sel = np.flatnonzero(solved)
        if sel.size == 0:
            return weights, solved
        uniq, inverse = _distinct_rows(point_masks[sel])     # equal point sets: equal weights, found once
        ucounts = uniq.sum(axis=1)
        point_weights = np.zeros((uniq.shape[0], ell, G))
        for c in np.unique(ucounts):
            part = np.flatnonzero(ucounts == c)
            rows = np.nonzero(uniq[part])[1].reshape(part.size, c)                   # responding points
            w = np.empty((part.size, ell, c))
            if c == r:
                others = np.nonzero(~uniq[part])[1].reshape(part.size, G - r)
                step = max(1, _GATHER // max(1, r * min(r, G - r + 1)))
                for lo in range(0, part.size, step):
                    w[lo:lo + step] = self._point_weights(rows[lo:lo + step], others[lo:lo + step])
            else:
                step = max(1, _GATHER // (c * r))
                for lo in range(0, part.size, step):
                    w[lo:lo + step] = self._projected_weights(rows[lo:lo + step])
            point_weights[part[:, None, None], np.arange(ell)[None, :, None], rows[:, None, :]] = w
        finite = np.asarray(np.isfinite(point_weights).all(axis=(1, 2)))   # over/underflow: generic solver
        if not finite.all():
            point_weights[~finite] = 0.0
            solved[sel[~finite[inverse]]] = False
        point_weights = point_weights[inverse]
        if self.group_of is None:
            weights[sel] = point_weights
        else:
            weights[sel] = point_weights[:, :, self.group_of] * masks[sel][:, None, :]
        return weights, solved

    def _projected_weights(self, rows: np.ndarray) -> np.ndarray:
        """``(p, ℓ, c)`` minimum-norm weights of the responding points ``rows`` ``(p, c)``, ``c > r``."""
        Z, u = self._basis()
        q, R = np.linalg.qr(Z[rows])                                              # (p, c, r), (p, r, r)
        try:
            with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
                y = np.linalg.solve(R.transpose(0, 2, 1), np.broadcast_to(u, (rows.shape[0],) + u.shape))
        except np.linalg.LinAlgError:                     # an exactly singular R: the generic solver decides
            return np.full((rows.shape[0], u.shape[1], rows.shape[1]), np.nan)
        return (q @ y).transpose(0, 2, 1)

    def _point_weights(self, rows: np.ndarray, others: np.ndarray) -> np.ndarray:
        """``(p, ℓ, r)`` weights of the responding points ``rows`` ``(p, r)`` (the rest: ``others``)."""
        diff = self._differences()
        p, r = rows.shape
        full = self._full_weights()
        with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
            if full is not None and others.shape[1] < r - 1:       # fewer factors: divide out the others
                w = full[rows] * diff[rows[:, None, :], others[:, :, None]].prod(axis=1)
            else:
                d = diff[rows[:, :, None], rows[:, None, :]]                     # (p, r, r)
                d[:, np.arange(r), np.arange(r)] = 1.0
                w = self.scales[rows] / d.prod(axis=2)
        if self.reduction == 1:
            return w[:, None, :]
        x = self.points[rows]                                                    # (p, r)
        e_all = np.zeros((p, self.reduction))                                    # e_d(x_S), d < ℓ
        e_all[:, 0] = 1.0
        for j in range(r):
            e_all[:, 1:] = e_all[:, 1:] + x[:, j, None] * e_all[:, :-1]
        out = np.empty((p, self.reduction, r))
        e_rest = np.ones((p, r))                                                 # e_d(x_{S∖i})
        out[:, 0] = w
        for d in range(1, self.reduction):
            e_rest = e_all[:, d, None] - x * e_rest
            out[:, d] = w * e_rest if d % 2 == 0 else -w * e_rest
        return out


def _distinct_rows(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(distinct, inverse)`` with ``masks == distinct[inverse]`` for boolean rows ``(P, G)``."""
    if masks.shape[1] <= 63:
        keys = masks.astype(np.int64) @ (np.int64(1) << np.arange(masks.shape[1], dtype=np.int64))
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    else:
        _, first, inverse = np.unique(masks, axis=0, return_index=True, return_inverse=True)
    return masks[first], inverse.reshape(-1)


def _point_masks(masks: np.ndarray, group_of: np.ndarray, n_points: int) -> np.ndarray:
    """``(P, G)``: which points have a responder, for node masks ``(P, n)``."""
    out = np.zeros((masks.shape[0], n_points), dtype=bool)
    for g in range(n_points):
        out[:, g] = masks[:, group_of == g].any(axis=1)
    return out


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
    ``(P, 1, n)`` has a class's weight missing (all zero) when none of its nodes responded.
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
    return weights[:, None, :]


def decode_layer(coefficients: np.ndarray, masks: np.ndarray, *, classes: np.ndarray | None = None,
                 groups: np.ndarray | None = None, rtol: float = DEFAULT_RTOL,
                 closed_form: PolynomialDecoder | None = None) -> Decoding:
    """Decode every responder pattern of one layer and check each residual against ``rtol``.

    ``coefficients`` ``(n, A, ℓ)`` (or ``(n, A)``); ``classes`` selects fractional-repetition decoding
    (pick one node per class; exact) instead of the least-squares solve; ``groups`` (nodes with identical
    rows) makes the solve use only the first responder of each group. ``closed_form`` (the coefficients'
    :class:`PolynomialDecoder`) gives the weights of patterns with at least ``r`` responding points
    (closed form for exactly ``r``); the other patterns, and any whose closed-form residual exceeds
    ``rtol``, are solved by :func:`min_norm_weights`. Weights are ``(P, ℓ, n)``.
    """
    B = as_chunked(coefficients)
    masks = np.atleast_2d(np.asarray(masks, dtype=bool))
    if classes is not None:
        weights = selection_weights(classes, masks)
        res = residuals(weights, B)
    else:
        used = masks if groups is None else first_per_group(groups, masks)
        if closed_form is None:
            weights = min_norm_weights(B, used)
            res = residuals(weights, B)
        else:
            weights, solved = closed_form.weights(used)
            res = residuals(weights, B)
            generic = ~solved | ~(res <= rtol)             # (NaN residuals from overflow count as failed)
            if generic.any():
                weights[generic] = min_norm_weights(B, used[generic])
                res[generic] = residuals(weights[generic], B)
    res[~masks.any(axis=1)] = np.inf
    ok = res <= rtol
    return Decoding(weights, res, np.where(ok, condition_numbers(weights, B), np.inf), ok)
