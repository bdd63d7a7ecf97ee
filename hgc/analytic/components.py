"""Facts about many delay distributions at once, as arrays (the analytic evaluator's vectorisation).

A :class:`DistributionBatch` holds one distribution per worker or edge *type*. Each distribution is a
mixture of leaves (:meth:`~hgc.distributions.Distribution.leaves`); leaves of one location-scale family
and shape (same :attr:`~hgc.distributions.Distribution.vector_key`) are evaluated together through the
family's standard functions, point masses directly, anything else one distribution at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Hashable, Iterator, Sequence

import numpy as np

from hgc.analytic import compiled
from hgc.distributions import Constant, Distribution, Exponential, StandardFamily, bisect_quantiles

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
        self._groups: dict[bytes, list[tuple[int, int, np.ndarray]]] = {}
        self._prepared: dict[bytes, Callable[[np.ndarray], np.ndarray]] = {}
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
        # per leaf: exponential leaves get geometric kernel tails; ``head`` is how far above the
        # distribution's lower end the leaf needs explicit kernel weights (seconds, unscaled)
        self.geometric = np.zeros(self.weight.shape, dtype=bool)
        self.head = np.zeros(self.weight.shape)
        for j in range(width):
            for i in range(k):
                slot = self.leaf[j][i]
                if slot is None or self.weight[j, i] <= 0:
                    continue
                if self.code[j, i] >= 0 and issubclass(self.families[self.code[j, i]][0], Exponential):
                    self.geometric[j, i] = True
                    self.head[j, i] = self.loc[j, i] - self.lower[i]
                elif self.code[j, i] == ATOM:
                    self.head[j, i] = self.loc[j, i] - self.lower[i]
                else:
                    self.head[j, i] = float(slot.ppf(1.0 - PMF_EPS)) - self.lower[i]
        # mixtures of atoms and exponentials only: kernels in closed form (compiled)
        present = self.weight > 0
        self.simple = np.all(~present | self.geometric | (self.code == ATOM), axis=0)
        self.kind = np.where(present, np.where(self.geometric, 2, 1), 0).astype(np.int64)
        self.kind[:, ~self.simple] = 0
        self.leaf_mean = np.where(self.geometric, self.scale, 0.0)
        # a distribution with an atom: a constant part, or a leaf without a density (e.g. a trace)
        self.atomic = np.any(present & (self.code < 0), axis=0)

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
                leaf_q[j, rows] = [float(self.leaf[j][r].ppf(q)) for r in rows]
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
        """``(j, code, rows)`` groups: leaf slot, family code, and the rows whose leaf ``j`` has it (cached
        by ``index``)."""
        key = np.asarray(index, dtype=np.intp).tobytes()
        groups = self._groups.get(key)
        if groups is None:
            groups = []
            for j in range(self.weight.shape[0]):
                codes = np.where(self.weight[j, index] > 0, self.code[j, index], -9)
                for code in np.unique(codes):
                    if code != -9:
                        groups.append((j, int(code), np.nonzero(codes == code)[0]))
            if len(self._groups) > 10_000:
                self._groups.clear()
            self._groups[key] = groups
        return iter(groups)

    def prepare_cdf(self, index: np.ndarray) -> "Callable[[np.ndarray], np.ndarray]":
        """``f(x)`` = :meth:`cdf` ``(index, x)`` (the same arithmetic), with the per-leaf-family grouping and
        parameters worked out once."""
        index = np.asarray(index, dtype=np.intp)
        key = index.tobytes()
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = self._prepared[key] = self._prepare_cdf(index)
            if len(self._prepared) > 10_000:
                self._prepared.clear()
        return prepared

    def _prepare_cdf(self, index: np.ndarray) -> "Callable[[np.ndarray], np.ndarray]":
        if self.weight.shape[0] == 1 and self.code[0, index].max() == OTHER:
            return lambda x: self.cdf(index, x)
        groups = []
        for j, code, rows in self._by_leaf(index):
            which = index[rows]
            whole = rows.size == index.size
            groups.append((slice(None) if whole else rows, j, code, which, self.weight[j, which, None],
                           self.loc[j, which, None], self.scale[j, which, None]))
        if len(groups) == 1 and groups[0][2] >= 0 and isinstance(groups[0][0], slice) and np.all(groups[0][4] == 1.0):
            _, j, code, _, _, loc, scale = groups[0]
            family, shape = self.families[code]
            return lambda x: family.standard_cdf(shape, (x - loc) / scale)

        def evaluate(x: np.ndarray) -> np.ndarray:
            out = np.zeros_like(x)
            for rows, j, code, which, w, loc, scale in groups:
                if code >= 0:
                    family, shape = self.families[code]
                    out[rows] += w * family.standard_cdf(shape, (x[rows] - loc) / scale)
                elif code == ATOM:
                    out[rows] += w * (x[rows] >= loc)
                else:
                    for r, i in zip(np.arange(x.shape[0])[rows], which):
                        leaf = self.leaf[j][i]
                        out[r] += self.weight[j, i] * np.asarray(leaf.cdf(x[r]), dtype=float)
            return out

        return evaluate

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
                    out[r] += self.weight[j, index[r]] * np.asarray(leaf.cdf(x[r]), dtype=float)
        return out

    def kernel_parts(self, index: np.ndarray, scales: np.ndarray, steps: np.ndarray, caps: np.ndarray
                     ) -> "KernelParts":
        """Linear (hat-function) discretisations of ``scales[r] * dists[index[r]]`` above its lower end on
        the lattices ``0, h, 2h, ...`` for every ``h`` of ``steps``, as an explicit head plus geometric tails.

        ``p_k = E[Λ(R/h - k)]`` with ``Λ(u) = max(0, 1 - |u|)``, computed exactly as the second difference
        ``(J(k+1) - 2 J(k) + J(k-1)) / h`` of the integrated CDF ``J`` — through the stop-loss transform
        ``E[(R - x)^+]``, which differs from ``J`` by a linear function and stays small in the tail, so no
        precision is lost there. An atom between two lattice points is split between them in proportion to
        its distance, the mean is preserved, and convolving a function that is linear between grid points
        is exact. The part of an exponential leaf at least one step past its start is exactly ``c r^k`` with
        ``r = exp(-h / mean)``: it becomes a tail (applied by recursion, never truncated); atoms and other
        leaves are written out up to their ``1 - PMF_EPS`` quantile, at most ``caps[l]`` weights on lattice
        ``l`` (mass beyond is dropped). Mixtures of atoms and exponentials are done in closed form
        (compiled). One kernel row per entry of ``index`` (or a single row when all are the same
        distribution and scale), one per step."""
        if np.all(self.same[index] == self.same[index[0]]) and np.all(scales == scales[0]):
            index, scales = index[:1], scales[:1]
        steps = np.asarray(steps, dtype=float)
        caps = np.asarray(caps, dtype=np.int64)
        rows, levels = len(index), len(steps)
        if self.simple[index].all():
            return self._simple_kernel_parts(index, scales, steps, caps)
        ratio_hs = steps[None, :] / scales[:, None]            # the step in the unscaled variable
        weight = self.weight[:, index]
        present = weight > 0
        geometric = self.geometric[:, index] & present
        tails = int(geometric.sum(axis=0).max())
        # explicit weights: up to the start of a geometric tail (ceil(d/h) + 1), otherwise to the leaf's end
        with np.errstate(divide="ignore", invalid="ignore"):
            reach = self.head[:, index, None] / ratio_hs[None, :, :]        # (slots, rows, levels)
        starts = np.ceil(reach).astype(np.int64) + 1
        needed = np.where(geometric[:, :, None], starts, np.floor(reach).astype(np.int64) + 2)
        fir_length = np.minimum(np.where(present[:, :, None], needed, 0).max(axis=0), caps[None, :])
        size = int(max(1, fir_length.max()))
        offsets = np.arange(-1, size + 1)[None, :] * steps[:, None]                      # (levels, size + 2)
        points = offsets[None, :, :] / scales[:, None, None] + self.lower[index, None, None]
        fir = np.zeros((rows, levels, size))
        tail_amp = np.zeros((rows, levels, tails))
        tail_ratio = np.zeros((rows, levels, tails))
        tail_start = np.zeros((rows, levels, tails), dtype=np.int64)
        tail_count = np.zeros((rows, levels), dtype=np.int64)
        finite_all = self.finite_mean[index]
        k = np.arange(size)
        for j, code, members in self._by_leaf(index):
            which = index[members]
            w = self.weight[j, which, None, None]
            finite = finite_all[members]
            if code >= 0:
                family, shape = self.families[code]
                width = self.scale[j, which, None, None]
                z = (points[members] - self.loc[j, which, None, None]) / width
                part = np.empty_like(z)
                if finite.any():
                    part[finite] = family.standard_stop_loss(shape, z[finite])
                if not finite.all():
                    part[~finite] = family.standard_integrated_cdf(shape, z[~finite])
                part *= w * width
            elif code == ATOM:
                value = self.loc[j, which, None, None]
                part = w * np.where(finite[:, None, None], np.maximum(value - points[members], 0.0),
                                    np.maximum(points[members] - value, 0.0))
            else:
                part = np.empty(points[members].shape)
                for i, (r, row) in enumerate(zip(members, which)):
                    leaf = self.leaf[j][row]
                    flat = points[r].reshape(-1)
                    values = leaf.stop_loss(flat) if finite_all[r] else leaf.integrated_cdf(flat)
                    part[i] = self.weight[j, row] * np.asarray(values, dtype=float).reshape(points[r].shape)
            weights = np.diff(part, 2, axis=2) * (scales[members, None, None] / steps[None, :, None])
            if code >= 0 and self.geometric[j, which[0]]:
                start = starts[j, members]                                           # (members, levels)
                weights[k[None, None, :] >= start[:, :, None]] = 0.0
                mean = (scales[members, None] * self.scale[j, which, None])          # seconds
                x = steps[None, :] / mean
                d = scales[members, None] * (self.loc[j, which, None] - self.lower[which, None])
                slot = tail_count[members]
                amp = (self.weight[j, which, None] / x) * np.exp(x - (start * steps[None, :] - d) / mean) \
                    * np.expm1(-x) ** 2
                rows_index = np.repeat(members, levels)
                level_index = np.tile(np.arange(levels), len(members))
                flat_slot = slot.reshape(-1)
                tail_amp[rows_index, level_index, flat_slot] = amp.reshape(-1)
                tail_ratio[rows_index, level_index, flat_slot] = np.exp(-x).reshape(-1)
                tail_start[rows_index, level_index, flat_slot] = start.reshape(-1)
                tail_count[members] += 1
            fir[members] += weights
        np.maximum(fir, 0.0, out=fir)
        return KernelParts(fir, fir_length, tail_amp, tail_ratio, tail_start, tail_count)

    def _simple_kernel_parts(self, index: np.ndarray, scales: np.ndarray, steps: np.ndarray, caps: np.ndarray
                             ) -> "KernelParts":
        """:meth:`kernel_parts` for mixtures of atoms and exponentials, in closed form (compiled)."""
        rows, levels = len(index), len(steps)
        arrays = compiled.simple_kernels(np.asarray(index, dtype=np.int64), np.asarray(scales, dtype=float),
                                         np.zeros(rows, dtype=np.int64), caps[None, :], steps, self.kind,
                                         self.weight, self.head, self.leaf_mean)
        return KernelParts(*(a.reshape((rows, levels) + a.shape[1:]) for a in arrays))

    def kernels(self, index: np.ndarray, scales: np.ndarray, h: float, size: int) -> np.ndarray:
        """The hat weights of :meth:`kernel_parts` written out on the lattice ``0, h, 2h, ...`` (``size``
        points): one row per entry of ``index``, or a single row when all are the same distribution and
        scale."""
        parts = self.kernel_parts(np.asarray(index), np.asarray(scales, dtype=float), np.array([float(h)]),
                                  np.array([int(size)]))
        return parts.dense(size)[:, 0, :]


@dataclass(frozen=True)
class KernelParts:
    """Hat-weight kernels as an explicit head plus geometric tails (see
    :meth:`DistributionBatch.kernel_parts`), for ``rows`` kernel rows on ``levels`` lattices.

    Kernel ``(r, l)``: ``p_k = fir[r, l, k]`` for ``k < fir_length[r, l]``, plus for each tail ``t <
    tail_count[r, l]`` the term ``tail_amp[r, l, t] * tail_ratio[r, l, t] ** (k - tail_start[r, l, t])``
    for ``k >= tail_start[r, l, t]``."""

    fir: np.ndarray
    fir_length: np.ndarray
    tail_amp: np.ndarray
    tail_ratio: np.ndarray
    tail_start: np.ndarray
    tail_count: np.ndarray

    @property
    def rows(self) -> int:
        return self.fir.shape[0]

    def dense(self, size: int) -> np.ndarray:
        """The kernels written out: shape ``(rows, levels, size)``."""
        rows, levels = self.fir_length.shape
        out = np.zeros((rows, levels, size))
        k = np.arange(size)
        for r in range(rows):
            for l in range(levels):
                n = min(size, int(self.fir_length[r, l]))
                out[r, l, :n] = self.fir[r, l, :n]
                for t in range(int(self.tail_count[r, l])):
                    start = int(self.tail_start[r, l, t])
                    tail = k >= start
                    out[r, l, tail] += self.tail_amp[r, l, t] * self.tail_ratio[r, l, t] ** (k[tail] - start)
        return out
