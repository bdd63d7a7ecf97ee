"""Analytic evaluator: the CDF of the iteration time ``T`` and ``E[T]`` without sampling (SPEC §3, §5).

Model. With independent nodes, a worker ``w`` with load ``ℓ`` delivers at ``C_w = ℓ X_w + Y_w + U_w``; a
decoding edge ``i`` waits for its ``k_i``-th fastest worker and its vector reaches the master at
``A_i = C_(k_i) + P_i + β_i + V_i``; the master waits for the ``(n' - s_e)``-th fastest edge. Hence

* ``P(C_(k_i) <= t) = P(at most s_w of the edge's workers are not done by t)``: a Poisson-binomial tail
  in the per-worker probabilities ``F_{C_w}(t)``, computed by dynamic programming over the workers,
  vectorised over a time grid (identical workers are grouped and enter as one binomial term);
* ``F_{A_i} = F_{C_(k_i)} ⊛ (P_i + V_i)`` shifted by ``β_i``: a convolution on the grid (FFT for long
  kernels, direct sums for short ones);
* ``F_T`` is again a Poisson-binomial tail, over the edges, in the ``F_{A_i}(t)``;
* ``E[T | decoded] = t_0 + ∫ (1 - F_T(t) / F_T(∞)) dt`` (trapezoidal rule on the grid).

Failures enter naturally: a failed node is a completion time of ``+∞``, so a node's CDF is ``(1 - p) F``
and ``F_T(∞) = P(decoded) < 1``; the evaluator reports ``E[T | decoded]`` (what the simulator's
``mean_time`` estimates) and the decoding probability.

Discretisation and error control.

* Grids are uniform, ``t_j = t_0 + j h``; several *nested* ones when ``T`` has a long tail (fine steps
  over the body, coarser ones further out; :class:`Grid`). ``t_0`` is the order statistic of per-node
  lower ``ε``-quantiles (``P(T < t_0) <= (#nodes) ε``), the far end that of the upper ones; a coarse
  pass on that range then locates where ``T``'s own survival falls below 0.3, 1e-2, 1e-4, 1e-7 and
  1e-13, and those points end the levels (levels closer than a factor ``LEVEL_RATIO`` are merged).
* The widest random component of a worker's delay (usually ``ℓ X``) is never discretised: its CDF is
  evaluated exactly at the (shifted) grid points. Every constant part of a delay (constant
  distributions, the lower end of a shifted distribution, ``β_i``) is a shift of the evaluation points,
  hence exact.
* The other random parts (of ``ℓ X + Y + U`` and of ``P + V``) are discretised by *linear (hat)
  weights* ``p_k = E[Λ(R/h - k)]``, computed exactly from closed-form stop-loss transforms
  ``E[(R - x)^+]`` (mean-preserving, exact for atoms, second-order accurate), and convolved in by FFT
  (direct sums for kernels of at most ``DIRECT_CONV_MAX`` points).
* :meth:`Evaluator.evaluate` halves every level's step until two successive values of ``E[T]`` differ by
  less than ``rtol`` (relative), so the reported error estimate is measured, not assumed.
  :meth:`Evaluator.expected_times` (for searches) uses a fixed number of points per level instead.

:class:`Evaluator` also evaluates many candidate strategies at once on a shared grid (used by the JNCSS
optimiser in :mod:`hgc.optimize`).

``flat_gc`` is evaluated analytically only when worker messages reach the master independently (no
per-vector link cost, constant edge delays, no edge failures); otherwise the FIFO relay queue couples
them and :class:`NotAnalyticError` is raised (use the Monte Carlo simulator).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy import fft as sp_fft
from scipy import special, stats

from hgc.distributions import Bimodal, Constant, Distribution, Empirical, LocationScale
from hgc.schemes import Strategy
from hgc.timing import TimingModel

__all__ = [
    "Evaluation", "Evaluator", "Grid", "Lattice", "NotAnalyticError", "cdf_values", "evaluate",
    "expected_time", "hat_weights", "integrated_cdf", "order_statistic_cdf", "stop_loss",
]

SEARCH_POINTS = 1025
"""Grid points used when many candidates are compared (:meth:`Evaluator.expected_times`)."""
SEARCH_EPS = 1e-8
"""Per-node tail probability that sets the ends of the coarse pass during a search."""
ACCURATE_EPS = 1e-11
"""Per-node tail probability that sets the ends of the coarse pass in :meth:`Evaluator.evaluate`."""
PMF_EPS = 1e-13
"""Tail mass of a discretised link/overhead delay that may be dropped."""
BLOCK_ELEMENTS = 3_000_000
"""Target size (floats) of the largest temporary array; bounds memory on big systems."""
DIRECT_CONV_MAX = 8
"""Kernels up to this many grid points are convolved by direct sums, longer ones by FFT."""


class NotAnalyticError(ValueError):
    """The strategy's iteration time has no independent-node form (flat GC with a relay queue)."""


# ----------------------------------------------------------------------------------------------------
# Fast, vectorised CDFs and integrated CDFs

def _standard_cdf(family: str, shape: float | None, z: np.ndarray) -> np.ndarray:
    """CDF of the standard member of a scipy.stats family (``loc=0``, ``scale=1``) at ``z``."""
    if family == "expon":
        return -np.expm1(-np.maximum(z, 0.0))
    if family == "uniform":
        return np.clip(z, 0.0, 1.0)
    if family == "gamma":
        return special.gammainc(shape, np.maximum(z, 0.0))
    if family == "lognorm":
        with np.errstate(divide="ignore"):
            return special.ndtr(np.log(np.maximum(z, 0.0)) / shape)
    if family == "weibull_min":
        return -np.expm1(-np.maximum(z, 0.0) ** shape)
    if family == "pareto":
        return np.where(z >= 1.0, -np.expm1(-shape * np.log(np.maximum(z, 1.0))), 0.0)
    raise KeyError(family)


def _standard_integrated_cdf(family: str, shape: float | None, z: np.ndarray) -> np.ndarray:
    """``∫_{-∞}^z F(u) du = z F(z) - E[X; X <= z]`` for the standard member of a family (closed forms)."""
    z = np.asarray(z, dtype=float)
    if family == "expon":
        zz = np.maximum(z, 0.0)
        return zz + np.expm1(-zz)
    if family == "uniform":
        return np.where(z <= 0.0, 0.0, np.where(z < 1.0, 0.5 * z * z, z - 0.5))
    if family == "gamma":
        zz = np.maximum(z, 0.0)
        return zz * special.gammainc(shape, zz) - shape * special.gammainc(shape + 1.0, zz)
    if family == "lognorm":
        zz = np.maximum(z, 1e-300)
        log_z = np.log(zz)
        value = zz * special.ndtr(log_z / shape) - math.exp(0.5 * shape * shape) * special.ndtr(log_z / shape - shape)
        return np.where(z > 0.0, value, 0.0)
    if family == "weibull_min":
        zz = np.maximum(z, 0.0)
        g = 1.0 + 1.0 / shape
        return zz * -np.expm1(-zz ** shape) - special.gamma(g) * special.gammainc(g, zz ** shape)
    if family == "pareto":
        zz = np.maximum(z, 1.0)
        if shape == 1.0:
            partial = np.log(zz)
        else:
            partial = shape / (shape - 1.0) * -np.expm1((1.0 - shape) * np.log(zz))
        return np.where(z > 1.0, zz * -np.expm1(-shape * np.log(zz)) - partial, 0.0)
    raise KeyError(family)


def _standard_stop_loss(family: str, shape: float | None, z: np.ndarray) -> np.ndarray:
    """``E[(X - z)^+] = ∫_z^∞ P(X > u) du`` for the standard member of a family (closed forms; small in the
    tail, so second differences of it do not cancel). Requires a finite mean."""
    z = np.asarray(z, dtype=float)
    if family == "expon":
        return np.where(z > 0.0, np.exp(-np.maximum(z, 0.0)), 1.0 - z)
    if family == "uniform":
        return np.where(z <= 0.0, 0.5 - z, np.where(z < 1.0, 0.5 * (1.0 - z) ** 2, 0.0))
    if family == "gamma":
        zz = np.maximum(z, 0.0)
        return np.where(z > 0.0, shape * special.gammaincc(shape + 1.0, zz) - zz * special.gammaincc(shape, zz),
                        shape - z)
    if family == "lognorm":
        zz = np.maximum(z, 1e-300)
        log_z = np.log(zz)
        value = (math.exp(0.5 * shape * shape) * special.ndtr(shape - log_z / shape)
                 - zz * special.ndtr(-log_z / shape))
        return np.where(z > 0.0, value, math.exp(0.5 * shape * shape) - z)
    if family == "weibull_min":
        zz = np.maximum(z, 0.0)
        g = 1.0 + 1.0 / shape
        value = special.gamma(g) * special.gammaincc(g, zz ** shape) - zz * np.exp(-zz ** shape)
        return np.where(z > 0.0, value, special.gamma(g) - z)
    if family == "pareto":
        mean = shape / (shape - 1.0)
        zz = np.maximum(z, 1.0)
        return np.where(z > 1.0, np.exp((1.0 - shape) * np.log(zz)) / (shape - 1.0), mean - z)
    raise KeyError(family)


def stop_loss(dist: Distribution, x: np.ndarray) -> np.ndarray:
    """``E[(X - x)^+]`` (seconds) element-wise, for a distribution with a finite mean."""
    x = np.asarray(x, dtype=float)
    if isinstance(dist, Constant):
        return np.maximum(dist.value - x, 0.0)
    if isinstance(dist, LocationScale):
        try:
            return dist.scale * _standard_stop_loss(dist.family, dist.shape, (x - dist.loc) / dist.scale)
        except KeyError:
            pass
    elif isinstance(dist, Bimodal):
        return (1.0 - dist.p) * stop_loss(dist.fast, x) + dist.p * stop_loss(dist.slow, x)
    elif isinstance(dist, Empirical):
        values = np.sort(np.asarray(dist.values, dtype=float)) * dist.factor
        below = np.searchsorted(values, x, side="right")
        tail_sums = np.concatenate([np.cumsum(values[::-1])[::-1], [0.0]])
        return (tail_sums[below] - (values.size - below) * x) / values.size
    return dist.mean - x + integrated_cdf(dist, x)


def cdf_values(dist: Distribution, x: np.ndarray) -> np.ndarray:
    """``P(X <= x)`` element-wise, with fast paths for the families of :mod:`hgc.distributions`."""
    x = np.asarray(x, dtype=float)
    if isinstance(dist, Constant):
        return (x >= dist.value).astype(float)
    if isinstance(dist, LocationScale):
        try:
            return _standard_cdf(dist.family, dist.shape, (x - dist.loc) / dist.scale)
        except KeyError:
            return np.asarray(dist.cdf(x), dtype=float)
    if isinstance(dist, Bimodal):
        return (1.0 - dist.p) * cdf_values(dist.fast, x) + dist.p * cdf_values(dist.slow, x)
    return np.asarray(dist.cdf(x), dtype=float)


def integrated_cdf(dist: Distribution, x: np.ndarray) -> np.ndarray:
    """``∫_{-∞}^x P(X <= u) du`` (seconds) element-wise: closed forms for every family of SPEC §3."""
    x = np.asarray(x, dtype=float)
    if isinstance(dist, Constant):
        return np.maximum(x - dist.value, 0.0)
    if isinstance(dist, LocationScale):
        try:
            return dist.scale * _standard_integrated_cdf(dist.family, dist.shape, (x - dist.loc) / dist.scale)
        except KeyError:
            pass
    elif isinstance(dist, Bimodal):
        return (1.0 - dist.p) * integrated_cdf(dist.fast, x) + dist.p * integrated_cdf(dist.slow, x)
    elif isinstance(dist, Empirical):
        values = np.sort(np.asarray(dist.values, dtype=float)) * dist.factor
        below = np.searchsorted(values, x, side="right")
        partial_sums = np.concatenate([[0.0], np.cumsum(values)])
        return (below * x - partial_sums[below]) / values.size
    # any other distribution: trapezoidal integration of its CDF on a fine grid
    low = float(dist.lower)
    grid = np.linspace(low, max(low, float(np.max(x))), 20001)
    cumulative = np.concatenate([[0.0], np.cumsum(np.diff(grid) * 0.5 * (dist.cdf(grid[1:]) + dist.cdf(grid[:-1])))])
    return np.interp(x, grid, cumulative, left=0.0)


# ----------------------------------------------------------------------------------------------------
# Discretising a random delay on the grid

def hat_weights(dist: Distribution, origin: float, h: float, size: int, scale: float = 1.0,
                finite_mean: bool | None = None) -> np.ndarray:
    """Linear (hat-function) discretisation of ``R = scale * dist - origin`` on the lattice ``0, h, 2h, ...``.

    ``p_k = E[Λ(R/h - k)]`` with ``Λ(u) = max(0, 1 - |u|)``, ``k = 0 .. size-1``, computed exactly as the
    second difference ``(J(k+1) - 2 J(k) + J(k-1)) / h`` of the integrated CDF ``J`` of ``R`` at the lattice
    points (through the stop-loss transform ``E[(R - x)^+]``, which differs from ``J`` by a linear function
    and stays small in the tail, so no precision is lost there). An atom between two lattice points is split between them in proportion to its distance, the
    mean is preserved, and convolving a function that is linear between grid points is exact. Mass
    beyond the lattice is dropped.
    """
    points = (origin + h * np.arange(-1, size + 1)) / scale
    if finite_mean is None:
        finite_mean = math.isfinite(dist.mean)
    if finite_mean:   # J(x) = x - mean + E[(X - x)^+]: the linear part has no second difference
        integral = scale * stop_loss(dist, points)
    else:
        integral = scale * integrated_cdf(dist, points)
    return np.maximum(np.diff(integral, 2) / h, 0.0)


# ----------------------------------------------------------------------------------------------------
# Order statistics of independent non-identical nodes

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


# ----------------------------------------------------------------------------------------------------
# Convolution on the grid

def _convolve_rows(values: np.ndarray, kernels: np.ndarray, start: int, length: int) -> np.ndarray:
    """``out[r, j] = Σ_k values[r, start + j - k] kernels[r, k]`` (values before index 0 are 0), for
    ``j < length``. ``kernels`` has one row per row of ``values`` (or a single row)."""
    size = kernels.shape[-1]
    if size <= DIRECT_CONV_MAX:
        out = np.zeros((values.shape[0], length))
        kernels = np.broadcast_to(kernels, (values.shape[0], size))
        for k in range(size):
            lo = start - k
            if lo + length <= 0:
                break
            src_lo, dst_lo = max(lo, 0), max(-lo, 0)
            out[:, dst_lo:] += values[:, src_lo: lo + length] * kernels[:, k: k + 1]
        return out
    size = min(size, start + length)              # later kernel entries only meet zeros
    n_fft = sp_fft.next_fast_len(start + length + size - 1, real=True)
    spectrum = sp_fft.rfft(values[:, : start + length], n_fft, axis=1) * sp_fft.rfft(kernels[:, :size], n_fft, axis=1)
    return sp_fft.irfft(spectrum, n_fft, axis=1)[:, start: start + length]


def _convolve_stages(values: np.ndarray, stages: Sequence[tuple[np.ndarray, np.ndarray]], start: int,
                     length: int) -> np.ndarray:
    """``values`` convolved, row by row, with every kernel of ``stages`` that applies to the row (each stage
    is ``(rows, kernels)`` with one kernel per listed row, or a single kernel for all of them); returns
    columns ``start .. start+length-1``. Short kernels by direct sums, otherwise one FFT round trip with
    the kernels' spectra multiplied together."""
    if not stages:
        return values[:, start: start + length]
    span = start + length
    sizes = [min(kernel.shape[-1], span) for _, kernel in stages]
    if sum(sizes) - len(sizes) + 1 <= DIRECT_CONV_MAX:
        out = values[:, :span].copy()
        for (members, kernel), size in zip(stages, sizes):
            out[members] = _convolve_rows(out[members], kernel[:, :size], 0, span)
        return out[:, start:]
    n_fft = sp_fft.next_fast_len(span + sum(sizes) - len(sizes), real=True)
    spectrum = sp_fft.rfft(values[:, :span], n_fft, axis=1)
    rows = values.shape[0]
    for (members, kernel), size in zip(stages, sizes):
        kernel_spectrum = sp_fft.rfft(kernel[:, :size], n_fft, axis=1)
        if members.size == rows:
            spectrum *= kernel_spectrum
        else:
            spectrum[members] *= kernel_spectrum
    return sp_fft.irfft(spectrum, n_fft, axis=1)[:, start:span]


# ----------------------------------------------------------------------------------------------------
# Grids and results

@dataclass(frozen=True)
class Lattice:
    """The uniform time grid ``t_j = start + j * step`` (seconds), ``j = 0 .. points-1``."""

    start: float
    step: float
    points: int

    @property
    def times(self) -> np.ndarray:
        return self.start + self.step * np.arange(self.points)

    @property
    def end(self) -> float:
        return self.start + self.step * (self.points - 1)

    @classmethod
    def spanning(cls, low: float, high: float, points: int) -> "Lattice":
        """``points`` points from ``low`` to ``high`` (a tiny positive step if ``high <= low``)."""
        step = (high - low) / (points - 1) if high > low else 0.0
        step = max(step, 1e-12 * max(1.0, abs(low)))
        return cls(float(low), float(step), int(points))


LEVEL_RATIO = 4.0
"""A finer nested grid is added when the body of ``T`` is this many times shorter than the full range."""


@dataclass(frozen=True)
class Grid:
    """Nested uniform lattices that share their start: level ``i`` spans ``[start, ends[i]]`` with
    ``points`` points; the integral of a function uses level 0 on ``[start, ends[0]]`` and level ``i`` on
    ``[ends[i-1], ends[i]]``. Fine steps where ``T`` has its body, coarse ones in a long tail, at a cost
    proportional to ``levels x points`` (each level is computed independently: convolutions only look
    back in time, so a grid ending early is still exact on its range). Every ``ends[i]`` is a point of
    level ``i + 1`` for any ``points = (base - 1) 2^r + 1``."""

    start: float
    ends: tuple[float, ...]
    points: int

    @classmethod
    def build(cls, start: float, uppers: Sequence[float], points: int) -> "Grid":
        """A grid from ``start`` to ``uppers[-1]`` with an extra level at each (increasing) ``uppers[i]``
        that is ``LEVEL_RATIO`` times closer to ``start`` than the next kept end."""
        top = max(float(uppers[-1]), start)
        ends = [top]
        for upper in reversed(list(uppers[:-1])):
            if upper > start and (upper - start) * LEVEL_RATIO <= ends[0] - start:
                ends.insert(0, float(upper))
        aligned = [ends[-1]]
        for end in reversed(ends[:-1]):   # put each end on the next coarser lattice
            coarse = Lattice.spanning(start, aligned[0], points)
            j = min(points - 1, max(1, math.ceil((end - start) / coarse.step - 1e-9)))
            aligned.insert(0, start + j * coarse.step)
        return cls(float(start), tuple(aligned), int(points))

    def lattices(self, points: int | None = None) -> list[Lattice]:
        n = self.points if points is None else int(points)
        return [Lattice.spanning(self.start, end, n) for end in self.ends]

    def segments(self, lattices: Sequence[Lattice]) -> list[slice]:
        """The index range of each lattice that the integral uses."""
        out, previous = [], self.start
        for lattice in lattices:
            first = int(round((previous - lattice.start) / lattice.step))
            out.append(slice(first, lattice.points))
            previous = lattice.end
        return out


def _integrate(cdfs: Sequence[np.ndarray], lattices: Sequence[Lattice], segments: Sequence[slice]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(E[T | decoded], P(decoded), survival at the end)`` from per-level CDF rows (last column: ∞)."""
    decoded = cdfs[-1][:, -1]
    total = np.zeros(decoded.shape)
    survival = None
    with np.errstate(invalid="ignore", divide="ignore"):
        for cdf, lattice, seg in zip(cdfs, lattices, segments):
            survival = np.clip(1.0 - cdf[:, :-1][:, seg] / decoded[:, None], 0.0, 1.0)
            if survival.shape[1] > 1:
                total += lattice.step * (survival.sum(axis=1) - 0.5 * (survival[:, 0] + survival[:, -1]))
    mean = np.where(decoded > 0, lattices[0].start + total, np.nan)
    return mean, decoded, survival[:, -1]


@dataclass(frozen=True)
class Evaluation:
    """The analytic iteration-time distribution of one strategy.

    ``expected_time`` is ``E[T | decoded]`` in seconds (the simulator's ``mean_time``);
    ``decode_probability`` is ``P(T < ∞)``; ``times``/``cdf`` give ``P(T <= t)`` on the final grid (the
    unconditional CDF, which tends to ``decode_probability``); ``error_estimate`` is the measured change
    of ``E[T]`` between the last two grid refinements plus the truncated tail (seconds).
    """

    strategy: Strategy
    expected_time: float
    decode_probability: float
    times: np.ndarray = field(repr=False)
    cdf: np.ndarray = field(repr=False)
    error_estimate: float
    points: int
    converged: bool

    @property
    def failure_probability(self) -> float:
        return 1.0 - self.decode_probability

    @property
    def effective_time(self) -> float:
        """``E[T | decoded] / P(decoded)``: mean time per successful iteration when failed ones are repeated."""
        return self.expected_time / self.decode_probability if self.decode_probability > 0 else math.inf

    def quantile(self, q: float | np.ndarray) -> np.ndarray:
        """Quantiles of ``T`` given decoding, by linear interpolation of the CDF on the grid."""
        conditional = np.maximum.accumulate(self.cdf / self.decode_probability)
        return np.interp(np.asarray(q, dtype=float), conditional, self.times)


# ----------------------------------------------------------------------------------------------------
# The evaluator

@dataclass(frozen=True)
class _EdgeJob:
    """One order statistic before the master: ``rows`` are ``(worker type, evaluation offset)`` slots with
    ``counts`` identical workers each; the job finishes when all but ``tolerated`` have. ``edge_type`` is
    the model edge type whose link delay and failure apply (``-1``: none, the flat pseudo-edge)."""

    edge_type: int
    rows: tuple[tuple[int, float], ...]
    counts: tuple[int, ...]
    tolerated: int


@dataclass
class _Plan:
    """A strategy as order statistics: edge jobs, and the master's (job, count) slots and tolerance."""

    load: float
    jobs: list[_EdgeJob]
    master: tuple[tuple[int, int], ...]
    master_tolerated: int


LEVEL_TAILS = (0.3, 1e-2, 1e-4, 1e-7, 1e-13)
"""Survival levels of ``T`` at which the nested grid levels end (the last one: the end of the grid)."""
COARSE_TAIL = 1e-5
"""A search reuses the coarse pass where the survival of ``T`` is below this."""
COARSE_POINTS = 129
"""Points of the coarse pass that locates ``T``'s body and tail before the real computation."""


@dataclass
class _Block:
    """A block of edge jobs: their indices, distinct worker rows, slot matrices and support lower ends."""

    jobs: np.ndarray
    row_types: np.ndarray
    row_offsets: np.ndarray
    index: np.ndarray
    counts: np.ndarray
    tolerated: np.ndarray
    edge_types: np.ndarray
    lowest: np.ndarray


@dataclass
class _Layout:
    """Grid-independent structure of a batch of plans with one load (see :meth:`Evaluator.layout`)."""

    load: float
    n_jobs: int
    blocks: list[_Block]
    master_index: np.ndarray
    master_counts: np.ndarray
    master_tolerated: np.ndarray


def _leaves(dist: Distribution, weight: float = 1.0) -> list[tuple[float, Distribution]]:
    """``dist`` as a mixture ``[(weight, leaf), ...]`` of non-mixture distributions (bimodal flattened)."""
    if isinstance(dist, Bimodal):
        out = []
        if dist.p < 1.0:
            out += _leaves(dist.fast, weight * (1.0 - dist.p))
        if dist.p > 0.0:
            out += _leaves(dist.slow, weight * dist.p)
        return out
    return [(weight, dist)]


ATOM = -2
"""Leaf code of a point mass (its value in ``loc``)."""


class _Components:
    """Vectorisation helper: facts about a list of distributions (one per worker or edge type) as arrays.

    Each distribution is a mixture of *leaves* (bimodal mixtures are flattened): leaf slot ``j`` of
    ``dists[i]`` has weight ``weight[j, i]`` and ``code[j, i]`` numbering its location-scale family and
    shape (``ATOM``: a point mass at ``loc``; -1: another kind, handled one distribution at a time), so
    CDFs and discretised kernels of many distributions are computed in one call per family.
    ``lower``/``spread``/``extent`` are the support's lower end, the width of the central 80% and of
    ``[lower, 1 - PMF_EPS quantile]`` (seconds, 0 for constants)."""

    def __init__(self, dists: Sequence[Distribution]):
        self.dists = list(dists)
        k = len(self.dists)
        self.random = np.array([not d.is_constant for d in self.dists], dtype=bool)
        self._quantiles: dict[float, np.ndarray] = {}
        leaves = [_leaves(d) for d in self.dists]
        width = max(len(x) for x in leaves)
        families: dict[tuple, int] = {}
        self.weight = np.zeros((width, k))
        self.code = np.full((width, k), ATOM, dtype=np.intp)
        self.loc = np.zeros((width, k))
        self.scale = np.ones((width, k))
        self.leaf: list[list[Distribution | None]] = [[None] * k for _ in range(width)]
        for i, mixture in enumerate(leaves):
            for j, (w, leaf) in enumerate(mixture):
                self.weight[j, i] = w
                self.leaf[j][i] = leaf
                if isinstance(leaf, LocationScale) and leaf.family in _FAST_FAMILIES:
                    self.code[j, i] = families.setdefault((leaf.family, leaf.shape), len(families))
                    self.loc[j, i], self.scale[j, i] = leaf.loc, leaf.scale
                elif isinstance(leaf, Constant):
                    self.code[j, i], self.loc[j, i] = ATOM, leaf.value
                else:
                    self.code[j, i] = -1
        self.families = list(families)
        self.finite_mean = np.array([math.isfinite(d.mean) for d in self.dists], dtype=bool)
        # identical distributions get the same number (one kernel row serves them all)
        same: dict[Distribution, int] = {}
        self.same = np.array([same.setdefault(d, len(same)) for d in self.dists], dtype=np.intp)
        self.lower = self.quantiles(0.0)
        self.spread = np.where(self.random, self.quantiles(0.9) - self.quantiles(0.1), 0.0)
        self.extent = np.where(self.random, self.quantiles(1.0 - PMF_EPS) - self.lower, 0.0)

    def quantiles(self, q: float) -> np.ndarray:
        """Every distribution's quantile at ``q`` (``q = 0``: lower end of the support), cached: scipy's
        ``ppf`` per leaf family, and for mixtures a vectorised bisection on the mixture CDF."""
        cached = self._quantiles.get(q)
        if cached is not None:
            return cached
        k = len(self.dists)
        everything = np.arange(k)
        leaf_q = np.full(self.weight.shape, np.nan)
        for j, code, rows in self._by_leaf(everything):
            if code >= 0:
                family, shape = self.families[code]
                args = () if shape is None else (shape,)
                leaf_q[j, rows] = getattr(stats, family).ppf(q, *args, loc=self.loc[j, rows], scale=self.scale[j, rows])
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
                lo = np.where(self.cdf(mixtures, lo[:, None])[:, 0] >= q, lo - 1e-300, lo)
                for _ in range(200):
                    mid = 0.5 * (lo + hi)
                    below = self.cdf(mixtures, mid[:, None])[:, 0] < q
                    lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
                    if np.all(hi - lo <= 1e-13 * np.maximum(1.0, np.abs(hi))):
                        break
                out[mixtures] = hi
            else:
                out[mixtures] = lo
        self._quantiles[q] = out
        return out

    def _by_leaf(self, index: np.ndarray):
        """``(j, code, rows)`` groups: leaf slot, family code, and the rows whose leaf ``j`` has it."""
        for j in range(self.weight.shape[0]):
            codes = np.where(self.weight[j, index] > 0, self.code[j, index], -9)
            for code in np.unique(codes):
                if code != -9:
                    yield j, int(code), np.nonzero(codes == code)[0]

    def cdf(self, index: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Row ``r``: CDF of ``dists[index[r]]`` at ``x[r]``; one vectorised call per leaf family."""
        if self.weight.shape[0] == 1 and np.all(self.code[0, index] == -1):
            return np.array([cdf_values(self.dists[i], row) for i, row in zip(index, x)])
        out = np.zeros_like(x)
        for j, code, rows in self._by_leaf(index):
            which = index[rows]
            w = self.weight[j, which, None]
            if code >= 0:
                family, shape = self.families[code]
                z = (x[rows] - self.loc[j, which, None]) / self.scale[j, which, None]
                out[rows] += w * _standard_cdf(family, shape, z)
            elif code == ATOM:
                out[rows] += w * (x[rows] >= self.loc[j, which, None])
            else:
                for r in rows:
                    out[r] += self.weight[j, index[r]] * cdf_values(self.leaf[j][index[r]], x[r])
        return out

    def kernels(self, index: np.ndarray, scales: np.ndarray, h: float, size: int) -> np.ndarray:
        """Hat weights (see :func:`hat_weights`) of ``scales[r] * dists[index[r]]`` above its lower end,
        one row each, or a single row when all rows are the same distribution and scale: the second
        difference of the (mixture of the leaves') stop-loss transforms at the lattice points."""
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
                    part[finite] = _standard_stop_loss(family, shape, z[finite])
                if not finite.all():
                    part[~finite] = _standard_integrated_cdf(family, shape, z[~finite])
                integral[rows] += w * width * part
            elif code == ATOM:
                value = self.loc[j, which, None]
                integral[rows] += w * np.where(finite[:, None], np.maximum(value - points[rows], 0.0),
                                               np.maximum(points[rows] - value, 0.0))
            else:
                for r, row in zip(rows, which):
                    leaf = self.leaf[j][row]
                    part = stop_loss(leaf, points[r]) if finite_all[r] else integrated_cdf(leaf, points[r])
                    integral[r] += self.weight[j, row] * part
        integral *= scales[:, None]
        return np.maximum(np.diff(integral, 2, axis=1) / h, 0.0)


_FAST_FAMILIES = ("expon", "uniform", "gamma", "lognorm", "weibull_min", "pareto")


class Evaluator:
    """Analytic ``E[T]`` and CDF of ``T`` for strategies on one :class:`~hgc.timing.TimingModel`.

    Creating one is cheap; it caches per-distribution facts (support ends, quantiles, discretised
    delays), so reuse it when evaluating many strategies on the same model.
    """

    def __init__(self, model: TimingModel):
        self.model = model
        topo = model.topology
        self._job_cache: dict[tuple, _EdgeJob] = {}
        types: dict[tuple[Distribution, Distribution, Distribution], int] = {}
        self.worker_type = np.empty(topo.n_workers, dtype=np.intp)
        for w in range(topo.n_workers):
            key = (model.worker_compute[w], model.worker_overhead[w], model.worker_uplink[w])
            self.worker_type[w] = types.setdefault(key, len(types))
        self.types = list(types)
        edge_types: dict[tuple[Distribution, Distribution, float], int] = {}
        self.edge_type = np.empty(topo.n_edges, dtype=np.intp)
        for i in range(topo.n_edges):
            key = (model.edge_process[i], model.edge_uplink[i], float(model.per_vector[i]))
            self.edge_type[i] = edge_types.setdefault(key, len(edge_types))
        self.edge_types = list(edge_types)
        self.edge_parts = [_Components([k[c] for k in self.edge_types]) for c in range(2)]
        self.edge_beta = np.array([k[2] for k in self.edge_types])
        self.edge_shift = self.edge_beta + self.edge_parts[0].lower + self.edge_parts[1].lower
        self.edge_random = [tuple(d for d in k[:2] if not d.is_constant) for k in self.edge_types]
        # vectorised per-type facts: worker components (compute, overhead, uplink), edge components
        # (process, uplink)
        self.worker_parts = [_Components([t[c] for t in self.types]) for c in range(3)]
        self._job_arrays: dict[_EdgeJob, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    # -- per-distribution facts ---------------------------------------------------------------------
    # -- strategies as order statistics ----------------------------------------------------------------
    def _edge_job(self, edge: int, positions: tuple[int, ...], tolerated: int) -> _EdgeJob:
        key = (edge, positions, tolerated)
        job = self._job_cache.get(key)
        if job is None:
            offset = int(self.model.topology.offsets[edge])
            types = Counter(int(self.worker_type[offset + p]) for p in positions)
            shift = float(self.edge_shift[self.edge_type[edge]])
            ordered = sorted(types.items())
            job = _EdgeJob(int(self.edge_type[edge]), tuple((t, shift) for t, _ in ordered),
                           tuple(c for _, c in ordered), int(tolerated))
            if len(self._job_cache) > 200_000:
                self._job_cache.clear()
            self._job_cache[key] = job
        return job

    def plan(self, strategy: Strategy) -> _Plan:
        """The order statistics that make up ``strategy``'s iteration time."""
        pairs = [(int(e), tuple(int(p) for p in ws)) for e, ws in zip(strategy.edges, strategy.workers) if ws]
        if not pairs:
            raise ValueError("the strategy has no participating worker")
        kind = strategy.kind
        if kind == "flat_gc":
            return self._flat_plan(strategy, pairs)
        if kind == "uncoded":
            s_e, s_w = 0, 0
        elif kind == "hgc":
            s_e, s_w = int(strategy.s_e), int(strategy.s_w)
        else:
            raise ValueError(f"no analytic form for scheme kind '{kind}'")
        jobs: dict[_EdgeJob, int] = {}
        for edge, positions in pairs:
            if s_w >= len(positions):
                raise ValueError(f"s_w={s_w} but edge {edge} has {len(positions)} participating workers")
            job = self._edge_job(edge, positions, s_w)
            jobs[job] = jobs.get(job, 0) + 1
        if s_e >= len(pairs):
            raise ValueError(f"s_e={s_e} but only {len(pairs)} edges participate")
        job_list = list(jobs)
        return _Plan(float(strategy.load), job_list, tuple((j, jobs[job]) for j, job in enumerate(job_list)), s_e)

    def _flat_plan(self, strategy: Strategy, pairs: list[tuple[int, tuple[int, ...]]]) -> _Plan:
        model = self.model
        for edge, _ in pairs:
            process, uplink, beta = self.edge_types[self.edge_type[edge]]
            if beta != 0.0 or not process.is_constant or not uplink.is_constant or model.edge_failure > 0:
                raise NotAnalyticError(
                    "flat_gc relays every worker message through a FIFO edge link; its iteration time is "
                    "analytic only with per_vector = 0, constant edge delays and no edge failures "
                    "(use the Monte Carlo simulator)")
        slots: Counter = Counter()
        for edge, positions in pairs:
            offset = int(model.topology.offsets[edge])
            shift = float(self.edge_shift[self.edge_type[edge]])
            for p in positions:
                slots[(int(self.worker_type[offset + p]), shift)] += 1
        ordered = sorted(slots.items())
        if int(strategy.s) >= sum(c for _, c in ordered):
            raise ValueError(f"s={strategy.s} but only {sum(c for _, c in ordered)} workers participate")
        job = _EdgeJob(-1, tuple(k for k, _ in ordered), tuple(c for _, c in ordered), int(strategy.s))
        return _Plan(float(strategy.load), [job], ((0, 1),), 0)

    # -- support bounds --------------------------------------------------------------------------------
    def _type_quantiles(self, q: float) -> tuple[np.ndarray, np.ndarray]:
        """Per worker type: the compute quantile at ``q`` and the sum of the other components' quantiles."""
        parts = self.worker_parts
        return parts[0].quantiles(q), parts[1].quantiles(q) + parts[2].quantiles(q)

    def _edge_excess(self, q: float) -> np.ndarray:
        """Per edge type: the sum over its random components of (quantile at ``q`` - lower end)."""
        return sum(np.where(part.random, part.quantiles(q) - part.lower, 0.0) for part in self.edge_parts)

    def edge_quantile_sum(self, q: float) -> np.ndarray:
        """Per edge type: ``β`` plus the quantiles at ``q`` of its processing and link delays (seconds)."""
        return self.edge_beta + self.edge_parts[0].quantiles(q) + self.edge_parts[1].quantiles(q)

    def _arrays(self, job: _EdgeJob) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(types, offsets, counts)`` of a job's rows as arrays."""
        arrays = self._job_arrays.get(job)
        if arrays is None:
            arrays = (np.array([r[0] for r in job.rows], dtype=np.intp), np.array([r[1] for r in job.rows]),
                      np.array(job.counts, dtype=np.intp))
            if len(self._job_arrays) > 200_000:
                self._job_arrays.clear()
            self._job_arrays[job] = arrays
        return arrays

    def _row_quantiles(self, types: np.ndarray, offsets: np.ndarray, load: float, q: float) -> np.ndarray:
        """Values that worker rows are below with probability ``>= q`` (``q`` near 1) or above with
        probability ``>= 1 - q`` (``q`` near 0): sums of their components' quantiles (seconds)."""
        compute, others = self._type_quantiles(q)
        return load * compute[types] + others[types] + offsets

    def _job_bounds(self, job: _EdgeJob, load: float, eps_low: float, eps_high: Sequence[float]
                    ) -> np.ndarray:
        """``[low, high_1, ...]``: the job's arrival is ``>= low`` except with probability <= (#nodes)
        eps_low, and ``<= high_i`` except with probability <= (#nodes) eps_high[i] (union bounds)."""
        types, offsets, counts = self._arrays(job)
        k = int(counts.sum()) - job.tolerated
        out = []
        for q in (eps_low, *(1.0 - e for e in eps_high)):
            values = np.repeat(self._row_quantiles(types, offsets, load, q), counts)
            if q > 0.5 and self.model.worker_failure > 0:
                value = float(values.max())
            else:
                value = float(np.partition(values, k - 1)[k - 1])
            if job.edge_type >= 0:
                value += float(self._edge_excess(q)[job.edge_type])
            out.append(value)
        return np.array(out)

    def bounds(self, plan: _Plan, eps_low: float, eps_high: Sequence[float],
               cache: dict | None = None) -> np.ndarray:
        """``[low, high_1, ...]`` for ``T``: ``P(T < low) <= (#nodes) eps_low`` and
        ``P(high_i < T < ∞) <= (#nodes) eps_high[i]``."""
        rows = []
        for j, count in plan.master:
            key = (plan.jobs[j], plan.load)
            if cache is not None and key in cache:
                b = cache[key]
            else:
                b = self._job_bounds(plan.jobs[j], plan.load, eps_low, eps_high)
                if cache is not None:
                    cache[key] = b
            rows += [b] * count
        values = np.sort(np.array(rows), axis=0)
        k = len(rows) - plan.master_tolerated
        out = values[k - 1].copy()
        if self.model.edge_failure > 0:
            out[1:] = values[-1, 1:]
        out[1:] = np.maximum.accumulate(np.maximum(out[1:], out[0]))
        return out

    # -- the computation on a grid ---------------------------------------------------------------------
    def _worker_rows(self, load: float, types: np.ndarray, offsets: np.ndarray, first: float, h: float,
                     length: int) -> np.ndarray:
        """CDFs of the workers' delivery times ``C = load X + Y + U`` for rows of worker ``types`` at the
        points ``first - offsets[r] + h * arange(length)``; shape ``(rows, length + 1)``, the last column
        being the value at ``t = ∞`` (``1 - p_worker``).

        Of the random components the widest (central 80%) is evaluated exactly at the points, the others
        are discretised by hat weights and convolved in, one batched convolution per component (the
        interpolation error then comes from the smoothest CDF)."""
        parts = self.worker_parts
        rows = len(types)
        out = np.empty((rows, length + 1))
        out[:, -1] = 1.0
        factor = np.array([load, 1.0, 1.0])
        width = np.stack([np.where(parts[c].random[types], factor[c] * parts[c].spread[types], -1.0)
                          for c in range(3)])
        widest = np.argmax(width, axis=0)                         # component evaluated exactly
        shifts = load * parts[0].lower[types] + parts[1].lower[types] + parts[2].lower[types] + offsets
        stages = []
        total = np.ones(rows, dtype=np.int64)
        for c in range(3):
            members = np.nonzero(parts[c].random[types] & (widest != c))[0]
            if members.size:
                extent = factor[c] * parts[c].extent[types[members]].max()
                size = int(min(length, math.ceil(extent / h) + 2))
                kernel = parts[c].kernels(types[members], np.full(members.size, factor[c]), h, size)
                stages.append((members, kernel))
                total[members] += size - 1
        extra = int(np.clip(np.max(np.minimum(np.ceil((first - shifts) / h), total - 1)), 0, None))
        # remainder of the sampled component at each point, nudged up a billionth of a step so that
        # atoms sitting exactly on grid points are not lost to rounding
        remainder = (first - shifts)[:, None] + h * (np.arange(length + extra) - extra + 1e-9)[None, :]
        values = np.empty_like(remainder)
        for c in range(3):
            rows_c = np.nonzero(widest == c)[0]
            if rows_c.size:
                lows = parts[c].lower[types[rows_c]][:, None]
                values[rows_c] = parts[c].cdf(types[rows_c], remainder[rows_c] / factor[c] + lows)
        out[:, :length] = np.clip(_convolve_stages(values, stages, extra, length), 0.0, 1.0)
        if self.model.worker_failure > 0:
            out *= 1.0 - self.model.worker_failure
        return out

    def layout(self, plans: Sequence[_Plan], points: int) -> "_Layout":
        """The grid-independent structure of computing ``plans`` (which share one load): the distinct edge
        jobs in memory-bounded blocks, each block's distinct worker rows and slot matrices, and the
        master's slot matrices. Built once, reused by every grid pass."""
        load = plans[0].load
        unique: dict[_EdgeJob, int] = {}
        masters = []
        for plan in plans:
            slots = tuple((unique.setdefault(plan.jobs[j], len(unique)), c) for j, c in plan.master)
            masters.append((slots, plan.master_tolerated))
        jobs = list(unique)
        linked = [job.edge_type >= 0 and bool(self.edge_random[job.edge_type]) for job in jobs]
        blocks = []
        for flag in (True, False):
            members = sorted((j for j in range(len(jobs)) if linked[j] == flag), key=lambda j: len(jobs[j].rows))
            start = 0
            while start < len(members):
                stop, width = start, 0
                while stop < len(members):
                    width = max(width, len(jobs[members[stop]].rows))
                    if (stop - start + 1) * width * 2 * points > BLOCK_ELEMENTS and stop > start:
                        break
                    stop += 1
                blocks.append(self._block([jobs[j] for j in members[start:stop]], np.array(members[start:stop]), load))
                start = stop
        width = max(len(m[0]) for m in masters)
        master_index = np.full((len(masters), width), len(jobs), dtype=np.intp)
        master_counts = np.zeros((len(masters), width), dtype=np.int64)
        for b, (pairs, _) in enumerate(masters):
            master_index[b, : len(pairs)] = [p[0] for p in pairs]
            master_counts[b, : len(pairs)] = [p[1] for p in pairs]
        return _Layout(load, len(jobs), blocks, master_index, master_counts,
                       np.array([m[1] for m in masters], dtype=np.int64))

    def _block(self, block: Sequence[_EdgeJob], members: np.ndarray, load: float) -> "_Block":
        unique: dict[tuple[int, float], int] = {}
        for job in block:
            for row in job.rows:
                unique.setdefault(row, len(unique))
        rows = list(unique)
        slots = max(len(job.rows) for job in block)
        index = np.full((len(block), slots), len(rows), dtype=np.intp)
        counts = np.zeros((len(block), slots), dtype=np.int64)
        for b, job in enumerate(block):
            index[b, : len(job.rows)] = [unique[row] for row in job.rows]
            counts[b, : len(job.rows)] = job.counts
        row_types = np.array([r[0] for r in rows], dtype=np.intp)
        row_offsets = np.array([r[1] for r in rows])
        row_lowest = self._row_quantiles(row_types, row_offsets, load, 0.0)
        lowest = np.array([row_lowest[index[b, : len(job.rows)]].min() for b, job in enumerate(block)])
        return _Block(members, row_types, row_offsets, index, counts,
                      np.array([job.tolerated for job in block], dtype=np.int64),
                      np.array([job.edge_type for job in block], dtype=np.intp), lowest)

    def _block_on_grid(self, load: float, lattice: Lattice, block: "_Block") -> np.ndarray:
        """CDF of each job of ``block``'s arrival at the master on ``lattice`` (plus ``t = ∞``)."""
        n, h = lattice.points, lattice.step
        edge_types = block.edge_types
        linked = edge_types >= 0
        # link delays: component 0 (process P) and 1 (uplink V), discretised and convolved in together
        stages = []
        total = np.ones(len(edge_types), dtype=np.int64)
        for parts in self.edge_parts:
            members = np.nonzero(linked)[0]
            members = members[parts.random[edge_types[members]]]
            if members.size:
                size = int(min(n, math.ceil(parts.extent[edge_types[members]].max() / h) + 2))
                stages.append((members, parts.kernels(edge_types[members], np.ones(members.size), h, size)))
                total[members] += size - 1
        extra = int(np.clip(np.max(np.minimum(np.ceil((lattice.start - block.lowest) / h), total - 1)), 0, None))
        length = n + extra
        cdf = self._worker_rows(load, block.row_types, block.row_offsets, lattice.start - extra * h, h, length)
        cdf = np.vstack([cdf, np.ones((1, length + 1))])   # padding row: always finished
        edge_cdf = order_statistic_cdf(cdf[block.index], block.counts, block.tolerated)
        out = np.empty((len(edge_types), n + 1))
        out[:, -1] = edge_cdf[:, -1]
        out[:, :n] = np.clip(_convolve_stages(edge_cdf[:, :length], stages, extra, n), 0.0, 1.0)
        if self.model.edge_failure > 0 and linked.any():
            out[linked] *= 1.0 - self.model.edge_failure
        return out

    def _plans_on_lattice(self, plans: Sequence[_Plan], lattice: Lattice, layout: "_Layout | None" = None
                          ) -> np.ndarray:
        """CDF of ``T`` (plus ``t = ∞``) of plans that share one load, on ``lattice``: ``(len(plans), n+1)``."""
        if layout is None:
            layout = self.layout(plans, lattice.points)
        width = lattice.points + 1
        job_cdfs = np.empty((layout.n_jobs + 1, width))
        job_cdfs[-1] = 1.0                                   # padding: always arrived
        for block in layout.blocks:
            job_cdfs[block.jobs] = self._block_on_grid(layout.load, lattice, block)
        masters = len(layout.master_tolerated)
        out = np.empty((masters, width))
        per_block = max(1, BLOCK_ELEMENTS // max(1, layout.master_index.shape[1] * width))
        for start in range(0, masters, per_block):
            chunk = slice(start, start + per_block)
            out[chunk] = order_statistic_cdf(job_cdfs[layout.master_index[chunk]], layout.master_counts[chunk],
                                             layout.master_tolerated[chunk])
        return out

    def _plans_on_grid(self, plans: Sequence[_Plan], grid: Grid, points: int | None = None,
                       layout: _Layout | None = None) -> tuple[list[np.ndarray], list[Lattice]]:
        lattices = grid.lattices(points)
        if layout is None:
            layout = self.layout(plans, max(lat.points for lat in lattices))
        return [self._plans_on_lattice(plans, lattice, layout) for lattice in lattices], lattices

    def grid_for(self, plans: Sequence[_Plan], points: int, eps: float, bounds: np.ndarray | None = None,
                 tails: Sequence[float] = LEVEL_TAILS, layout: _Layout | None = None
                 ) -> tuple[Grid, Lattice, np.ndarray]:
        """A nested grid for plans that share one load, and the coarse pass that located it.

        Union bounds over per-node ``eps`` and ``1 - eps`` quantiles give a range that surely holds ``T``
        (but can be far too long: the ``k``-th smallest of many nodes sits well below every node's high
        quantile); a coarse pass on that range then finds where the survival of ``T`` falls below each
        of ``tails``, and those points become the ends of the levels. ``bounds`` (rows
        ``[low, ..., high]`` from :meth:`bounds`) may be given when already known. Returns the grid, the
        coarse lattice and the coarse CDFs (one row per plan, last column ``t = ∞``)."""
        if bounds is None:
            cache: dict = {}
            bounds = np.array([self.bounds(plan, eps, (eps,), cache) for plan in plans])
        low, high = float(bounds[:, 0].min()), float(bounds[:, -1].max())
        coarse = Lattice.spanning(low, high, COARSE_POINTS)
        cdf = self._plans_on_lattice(plans, coarse, layout)
        decoded = cdf[:, -1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            survival = np.where(decoded > 0, 1.0 - cdf[:, :-1] / decoded, 0.0).max(axis=0)
        ends = []
        for level in tails:
            below = np.nonzero(survival <= level)[0]
            ends.append(high if below.size == 0 else coarse.start + coarse.step * min(below[0] + 1, coarse.points - 1))
        return Grid.build(low, ends, points), coarse, cdf

    def _search_cdfs(self, plans: Sequence[_Plan], points: int, bounds: np.ndarray
                     ) -> tuple[list[np.ndarray], list[Lattice], list[slice]]:
        """Per-level CDFs for a search: the nested grid of :meth:`grid_for`, except that beyond the
        second-to-last level, when ``T``'s survival there is below ``COARSE_TAIL``, the coarse pass itself
        is used."""
        layout = self.layout(plans, points)
        grid, coarse, coarse_cdf = self.grid_for(plans, points, SEARCH_EPS, bounds, layout=layout)
        decoded = coarse_cdf[:, -1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            survival = np.where(decoded > 0, 1.0 - coarse_cdf[:, :-1] / decoded, 0.0).max(axis=0)
        small = np.nonzero(survival <= COARSE_TAIL)[0]
        if len(grid.ends) == 1 or small.size == 0 or grid.ends[-2] < coarse.start + coarse.step * small[0]:
            cdfs, lattices = self._plans_on_grid(plans, grid, layout=layout)
            return cdfs, lattices, grid.segments(lattices)
        lattices = [Lattice.spanning(grid.start, end, points) for end in grid.ends[:-1]]
        cdfs = [self._plans_on_lattice(plans, lattice, layout) for lattice in lattices]
        segments = grid.segments(lattices)
        first = int(round((lattices[-1].end - coarse.start) / coarse.step))
        return cdfs + [coarse_cdf], lattices + [coarse], segments + [slice(first, coarse.points)]

    # -- public API ------------------------------------------------------------------------------------
    def expected_times(self, strategies: Sequence[Strategy], *, points: int = SEARCH_POINTS
                       ) -> tuple[np.ndarray, np.ndarray]:
        """``(E[T | decoded], P(decoded))`` of many strategies on fixed-size grids (fast; for searches).

        Strategies with the same load and a similar support share one grid, and their common edge order
        statistics are computed once. Accuracy is typically 1e-4 relative; use :meth:`evaluate` for a
        value with a measured error.
        """
        plans = [self.plan(st) for st in strategies]
        means = np.full(len(plans), np.nan)
        decoded = np.full(len(plans), np.nan)
        by_load: dict[float, list[int]] = {}
        for i, plan in enumerate(plans):
            by_load.setdefault(plan.load, []).append(i)
        cache: dict = {}
        for members in by_load.values():
            bounds = np.array([self.bounds(plans[i], SEARCH_EPS, (1e-3, SEARCH_EPS), cache) for i in members])
            # candidates whose bodies differ by more than LEVEL_RATIO get their own grids
            body = bounds[:, 1] - bounds[:, 0]
            order = np.argsort(body, kind="stable")
            groups, current = [], [order[0]]
            for i in order[1:]:
                if body[i] > LEVEL_RATIO * max(body[current[0]], 1e-300):
                    groups.append(current)
                    current = [i]
                else:
                    current.append(i)
            groups.append(current)
            for group in groups:
                group_plans = [plans[members[i]] for i in group]
                cdfs, lattices, segments = self._search_cdfs(group_plans, points, bounds[group][:, [0, 2]])
                m, d, _ = _integrate(cdfs, lattices, segments)
                index = [members[i] for i in group]
                means[index] = m
                decoded[index] = d
        return means, decoded

    def evaluate(self, strategy: Strategy, *, rtol: float = 1e-4, min_points: int = 513,
                 max_points: int = 1 << 18) -> Evaluation:
        """``E[T]`` and the CDF of ``T`` for ``strategy``, halving the grid step until ``E[T]`` changes by
        less than ``rtol`` (relative) between two successive grids.

        The grid (see :meth:`grid_for`) spans ``T``'s support up to a survival of ``1e-13``, with finer
        nested levels over the body when the tail is long. ``converged`` is False if ``max_points`` (per
        level) was reached first.
        """
        plan = self.plan(strategy)
        base = int(min_points)
        layout = self.layout([plan], base)
        grid = self.grid_for([plan], base, ACCURATE_EPS, layout=layout)[0]
        cdfs, lattices = self._plans_on_grid([plan], grid, base, layout)
        mean, decoded, tail = (float(v[0]) for v in _integrate(cdfs, lattices, grid.segments(lattices)))
        points, converged, error = base, False, math.inf
        while decoded > 0 and (points - 1) * 2 + 1 <= max_points:
            points = (points - 1) * 2 + 1
            layout = self.layout([plan], points)  # re-blocked for the longer grid (bounded memory)
            cdfs, lattices = self._plans_on_grid([plan], grid, points, layout)
            fine_mean, decoded, tail = (float(v[0]) for v in _integrate(cdfs, lattices, grid.segments(lattices)))
            error, mean = abs(fine_mean - mean), fine_mean
            if error <= rtol * abs(mean) or lattices[0].step <= 1e-12 * max(1.0, abs(mean)):
                converged = True
                break
        segments = grid.segments(lattices)
        times = np.concatenate([lat.times[seg] for lat, seg in zip(lattices, segments)])
        values = np.concatenate([cdf[0, :-1][seg] for cdf, seg in zip(cdfs, segments)])
        if not decoded > 0:
            return Evaluation(strategy, math.nan, 0.0, times, values, math.nan, points, False)
        truncation = tail * (lattices[-1].end - lattices[-1].start)
        return Evaluation(strategy, mean, decoded, times, values, error + truncation,
                          points * len(lattices), converged)

    def cdf(self, strategy: Strategy, times: np.ndarray, *, points: int = 4097) -> np.ndarray:
        """``P(T <= t)`` at arbitrary ``times`` (seconds), by linear interpolation on an accurate grid."""
        result = self.evaluate(strategy, min_points=points, max_points=points)
        return np.interp(np.asarray(times, dtype=float), result.times, result.cdf, left=0.0,
                         right=result.decode_probability)


def evaluate(model: TimingModel, strategy: Strategy, *, rtol: float = 1e-4) -> Evaluation:
    """Analytic iteration-time distribution of ``strategy`` on ``model`` (see :class:`Evaluator`)."""
    return Evaluator(model).evaluate(strategy, rtol=rtol)


def expected_time(model: TimingModel, strategy: Strategy, *, rtol: float = 1e-4) -> float:
    """``E[T | decoded]`` in seconds (see :meth:`Evaluator.evaluate`)."""
    return evaluate(model, strategy, rtol=rtol).expected_time
