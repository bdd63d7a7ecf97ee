"""Facts about many delay distributions at once, as arrays (the analytic evaluator's vectorisation).

A :class:`DistributionBatch` holds one distribution per worker or edge *type*. Each distribution is a
mixture of leaves (:meth:`~hgc.distributions.Distribution.leaves`); leaves of one location-scale family
and shape (same :attr:`~hgc.distributions.Distribution.vector_key`) are evaluated together through the
family's standard functions, point masses directly, anything else one distribution at a time.
"""

from __future__ import annotations

import math
from typing import Hashable, Iterator, Sequence

import numpy as np

from hgc.distributions import Constant, Distribution, StandardFamily, bisect_quantiles

PMF_EPS = 1e-13
"""Tail mass of a discretised link/overhead delay that may be dropped."""
ATOM = -2
"""Leaf code of a point mass (its value in ``loc``)."""
OTHER = -1
"""Leaf code of a distribution without a vectorised standard form."""


class DistributionBatch:
    """Vectorised facts about a list of distributions (one per worker or edge type).

    Leaf slot ``j`` of ``dists[i]`` has weight ``weight[j, i]`` and ``code[j, i]`` numbering its family
    and shape (:data:`ATOM`: a point mass at ``loc``; :data:`OTHER`: evaluated on its own).
    ``lower``/``spread``/``extent`` are the support's lower end, the width of the central 80 % and of
    ``[lower, 1 - PMF_EPS quantile]`` (seconds, 0 for constants).
    """

    def __init__(self, dists: Sequence[Distribution]):
        self.dists = list(dists)
        k = len(self.dists)
        self.random = np.array([not d.is_constant for d in self.dists], dtype=bool)
        self._quantiles: dict[float, np.ndarray] = {}
        leaves = [d.leaves() for d in self.dists]
        width = max(len(x) for x in leaves)
        families: dict[Hashable, int] = {}
        self.weight = np.zeros((width, k))
        self.code = np.full((width, k), ATOM, dtype=np.intp)
        self.loc = np.zeros((width, k))
        self.scale = np.ones((width, k))
        self.leaf: list[list[Distribution | None]] = [[None] * k for _ in range(width)]
        self.families: list[tuple[type[StandardFamily], float | None]] = []
        for i, mixture in enumerate(leaves):
            for j, (w, leaf) in enumerate(mixture):
                self.weight[j, i] = w
                self.leaf[j][i] = leaf
                if isinstance(leaf, StandardFamily):
                    key = leaf.vector_key
                    if key not in families:
                        families[key] = len(families)
                        self.families.append((leaf.standard(), leaf.shape))
                    self.code[j, i] = families[key]
                    self.loc[j, i], self.scale[j, i] = leaf.loc, leaf.scale
                elif isinstance(leaf, Constant):
                    self.code[j, i], self.loc[j, i] = ATOM, leaf.value
                else:
                    self.code[j, i] = OTHER
        self.finite_mean = np.array([math.isfinite(d.mean) for d in self.dists], dtype=bool)
        # identical distributions get the same number (one kernel row serves them all)
        same: dict[Distribution, int] = {}
        self.same = np.array([same.setdefault(d, len(same)) for d in self.dists], dtype=np.intp)
        self.lower = self.quantiles(0.0)
        self.spread = np.where(self.random, self.quantiles(0.9) - self.quantiles(0.1), 0.0)
        self.extent = np.where(self.random, self.quantiles(1.0 - PMF_EPS) - self.lower, 0.0)

    def quantiles(self, q: float) -> np.ndarray:
        """Every distribution's quantile at ``q`` (``q = 0``: lower end of the support), cached: closed
        forms per leaf family, and for mixtures a vectorised bisection on the mixture CDF."""
        cached = self._quantiles.get(q)
        if cached is not None:
            return cached
        k = len(self.dists)
        leaf_q = np.full(self.weight.shape, np.nan)
        for j, code, rows in self._by_leaf(np.arange(k)):
            if code >= 0:
                family, shape = self.families[code]
                member = family(shape, 0.0, 1.0)
                leaf_q[j, rows] = float(member.ppf(q)) * self.scale[j, rows] + self.loc[j, rows]
            elif code == ATOM:
                leaf_q[j, rows] = self.loc[j, rows]
            else:
                leaf_q[j, rows] = [float(self.leaf[j][r].ppf(q)) for r in rows]  # type: ignore[union-attr]
        out = leaf_q[0].copy()
        mixtures = np.nonzero((self.weight > 0).sum(axis=0) > 1)[0]
        if mixtures.size:
            present = self.weight[:, mixtures] > 0
            lo = np.where(present, leaf_q[:, mixtures], np.inf).min(axis=0)
            hi = np.where(present, leaf_q[:, mixtures], -np.inf).max(axis=0)
            if q > 0.0:
                out[mixtures] = bisect_quantiles(lambda t: self.cdf(mixtures, t[:, None])[:, 0], q, lo, hi,
                                                 exact_atoms=False)
            else:
                out[mixtures] = lo
        self._quantiles[q] = out
        return out

    def _by_leaf(self, index: np.ndarray) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(j, code, rows)`` groups: leaf slot, family code, and the rows whose leaf ``j`` has it."""
        for j in range(self.weight.shape[0]):
            codes = np.where(self.weight[j, index] > 0, self.code[j, index], -9)
            for code in np.unique(codes):
                if code != -9:
                    yield j, int(code), np.nonzero(codes == code)[0]

    def cdf(self, index: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Row ``r``: CDF of ``dists[index[r]]`` at ``x[r]``; one vectorised call per leaf family."""
        if self.weight.shape[0] == 1 and np.all(self.code[0, index] == OTHER):
            return np.array([np.asarray(self.dists[i].cdf(row), dtype=float) for i, row in zip(index, x)])
        out = np.zeros_like(x)
        for j, code, rows in self._by_leaf(index):
            which = index[rows]
            w = self.weight[j, which, None]
            if code >= 0:
                family, shape = self.families[code]
                z = (x[rows] - self.loc[j, which, None]) / self.scale[j, which, None]
                out[rows] += w * family.standard_cdf(shape, z)
            elif code == ATOM:
                out[rows] += w * (x[rows] >= self.loc[j, which, None])
            else:
                for r in rows:
                    leaf = self.leaf[j][index[r]]
                    out[r] += self.weight[j, index[r]] * np.asarray(leaf.cdf(x[r]), dtype=float)  # type: ignore[union-attr]
        return out

    def kernels(self, index: np.ndarray, scales: np.ndarray, h: float, size: int) -> np.ndarray:
        """Linear (hat-function) discretisation of ``scales[r] * dists[index[r]]`` above its lower end on the
        lattice ``0, h, 2h, ...`` (``size`` points), one row each, or a single row when all rows are the same
        distribution and scale.

        ``p_k = E[Λ(R/h - k)]`` with ``Λ(u) = max(0, 1 - |u|)``, computed exactly as the second difference
        ``(J(k+1) - 2 J(k) + J(k-1)) / h`` of the integrated CDF ``J`` — through the stop-loss transform
        ``E[(R - x)^+]``, which differs from ``J`` by a linear function and stays small in the tail, so no
        precision is lost there. An atom between two lattice points is split between them in proportion to
        its distance, the mean is preserved, and convolving a function that is linear between grid points
        is exact. Mass beyond the lattice is dropped."""
        if np.all(self.same[index] == self.same[index[0]]) and np.all(scales == scales[0]):
            index, scales = index[:1], scales[:1]
        offsets = np.arange(-1, size + 1) * h
        points = offsets[None, :] / scales[:, None] + self.lower[index, None]   # in the unscaled variable
        integral = np.zeros((len(index), size + 2))
        finite_all = self.finite_mean[index]
        for j, code, rows in self._by_leaf(index):
            which = index[rows]
            w = self.weight[j, which, None]
            finite = finite_all[rows]
            if code >= 0:
                family, shape = self.families[code]
                width = self.scale[j, which, None]
                z = (points[rows] - self.loc[j, which, None]) / width
                part = np.empty_like(z)
                if finite.any():
                    part[finite] = family.standard_stop_loss(shape, z[finite])
                if not finite.all():
                    part[~finite] = family.standard_integrated_cdf(shape, z[~finite])
                integral[rows] += w * width * part
            elif code == ATOM:
                value = self.loc[j, which, None]
                integral[rows] += w * np.where(finite[:, None], np.maximum(value - points[rows], 0.0),
                                               np.maximum(points[rows] - value, 0.0))
            else:
                for r, row in zip(rows, which):
                    leaf = self.leaf[j][row]
                    part = leaf.stop_loss(points[r]) if finite_all[r] else leaf.integrated_cdf(points[r])  # type: ignore[union-attr]
                    integral[r] += self.weight[j, row] * part
        integral *= scales[:, None]
        return np.maximum(np.diff(integral, 2, axis=1) / h, 0.0)
