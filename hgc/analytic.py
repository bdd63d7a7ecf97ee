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

* The grid is uniform, ``t_j = t_0 + j h``. ``t_0`` is the exact lower end of ``T``'s support; the upper
  end comes from per-node ``1 - ε`` quantiles pushed through the same order statistics (so
  ``P(T > t_max) <= (#nodes) ε`` by a union bound), then narrowed to where ``T``'s own survival is
  negligible.
* Worker compute ``ℓ X`` is never discretised: its CDF is evaluated exactly at the (shifted) grid points.
  Every constant part of a delay (constant distributions, the lower end of a shifted distribution,
  ``β_i``) is a shift of the evaluation points, hence exact.
* Only the random remainder of ``Y + U`` and of ``P + V`` is discretised, by *linear (hat) weights*
  ``p_k = E[Λ(R/h - k)]`` (mean-preserving, exact for atoms, second-order accurate).
* :meth:`Evaluator.evaluate` halves ``h`` until two successive values of ``E[T]`` differ by less than
  ``rtol`` (relative), so the reported error estimate is measured, not assumed.

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
from scipy import special

from hgc.distributions import Bimodal, Constant, Distribution, Empirical, LocationScale
from hgc.schemes import Strategy
from hgc.timing import TimingModel

__all__ = [
    "Evaluation", "Evaluator", "Lattice", "NotAnalyticError", "cdf_values", "evaluate", "expected_time",
    "hat_weights", "order_statistic_cdf",
]

SEARCH_POINTS = 1024
"""Grid points used when many candidates are compared (:meth:`Evaluator.expected_times`)."""
SEARCH_EPS = 1e-8
"""Per-node tail probability that sets the grid's upper end during a search."""
ACCURATE_EPS = 1e-11
"""Per-node tail probability that sets the initial upper end in :meth:`Evaluator.evaluate`."""
TAIL_TOL = 1e-12
"""Survival below which the upper end of the grid is cut in :meth:`Evaluator.evaluate`."""
PMF_EPS = 1e-13
"""Tail mass of a discretised link/overhead delay that may be dropped."""
BLOCK_ELEMENTS = 3_000_000
"""Target size (floats) of the largest temporary array; bounds memory on big systems."""
DIRECT_CONV_MAX = 24
"""Kernels up to this many grid points are convolved by direct sums, longer ones by FFT."""


class NotAnalyticError(ValueError):
    """The strategy's iteration time has no independent-node form (flat GC with a relay queue)."""


# ----------------------------------------------------------------------------------------------------
# Fast, vectorised CDFs

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


def _cdf_rows(dists: Sequence[Distribution], x: np.ndarray) -> np.ndarray:
    """Row ``r`` of the result is ``dists[r]``'s CDF at ``x[r]``; rows of one location-scale family (any
    location and scale) are evaluated in a single vectorised call."""
    out = np.empty_like(x)
    by_family: dict[tuple, list[int]] = {}
    for r, dist in enumerate(dists):
        key = ("ls", dist.family, dist.shape) if isinstance(dist, LocationScale) else ("d", dist)
        by_family.setdefault(key, []).append(r)
    for key, rows in by_family.items():
        idx = np.asarray(rows)
        if key[0] == "ls":
            loc = np.array([dists[r].loc for r in rows])[:, None]
            scale = np.array([dists[r].scale for r in rows])[:, None]
            try:
                out[idx] = _standard_cdf(key[1], key[2], (x[idx] - loc) / scale)
                continue
            except KeyError:
                pass
            for r in rows:
                out[r] = cdf_values(dists[r], x[r])
        else:
            out[idx] = cdf_values(key[1], x[idx])
    return out


# ----------------------------------------------------------------------------------------------------
# Discretising a random delay on the grid

def _atoms(dist: Distribution) -> tuple[np.ndarray, np.ndarray] | None:
    """``(values, masses)`` if ``dist`` is purely atomic (constants, traces, mixtures of them)."""
    if isinstance(dist, Constant):
        return np.array([dist.value]), np.array([1.0])
    if isinstance(dist, Empirical):
        return np.asarray(dist.values, dtype=float) * dist.factor, np.full(dist.values.size, 1.0 / dist.values.size)
    if isinstance(dist, Bimodal):
        fast, slow = _atoms(dist.fast), _atoms(dist.slow)
        if fast is None or slow is None:
            return None
        return (np.concatenate([fast[0], slow[0]]),
                np.concatenate([(1.0 - dist.p) * fast[1], dist.p * slow[1]]))
    return None


def hat_weights(dist: Distribution, origin: float, h: float, size: int) -> np.ndarray:
    """Linear (hat-function) discretisation of ``R = dist - origin`` on the lattice ``0, h, 2h, ...``.

    ``p_k = E[Λ(R/h - k)]`` with ``Λ(u) = max(0, 1 - |u|)``, ``k = 0 .. size-1``: an atom between two
    lattice points is split between them in proportion to its distance, so the mean is preserved and
    convolving a CDF that is linear between grid points is exact. For continuous parts
    ``p_k = (J_k - J_{k-1}) / h`` with ``J_k = ∫_{kh}^{(k+1)h} F(origin + r) dr`` (Simpson's rule on four
    sub-intervals per cell). Mass beyond the lattice is dropped.
    """
    weights = np.zeros(size)
    if isinstance(dist, Bimodal):
        if dist.p < 1.0:
            weights += (1.0 - dist.p) * hat_weights(dist.fast, origin, h, size)
        if dist.p > 0.0:
            weights += dist.p * hat_weights(dist.slow, origin, h, size)
        return weights
    atoms = _atoms(dist)
    if atoms is not None:
        position = (atoms[0] - origin) / h
        below = np.floor(position + 1e-12).astype(np.int64)
        frac = np.clip(position - below, 0.0, 1.0)
        for index, mass in ((below, atoms[1] * (1.0 - frac)), (below + 1, atoms[1] * frac)):
            ok = (index >= 0) & (index < size)
            np.add.at(weights, index[ok], mass[ok])
        return weights
    sub = origin + h * np.arange(4 * size + 1) / 4.0
    f = cdf_values(dist, sub)
    cells = (h / 12.0) * (f[0:-1:4] + 4 * f[1::4] + 2 * f[2::4] + 4 * f[3::4] + f[4::4])
    weights[0] = cells[0] / h
    weights[1:] = np.diff(cells) / h
    return np.maximum(weights, 0.0)


# ----------------------------------------------------------------------------------------------------
# Order statistics of independent non-identical nodes

def _binomial_pmf(count: np.ndarray, p: np.ndarray, top: int) -> np.ndarray:
    """``P(Bin(count, p) = j)`` for ``j = 0..top``; ``count`` broadcasts against ``p``; shape ``(top+1,)+p.shape``."""
    j = np.arange(top + 1).reshape((-1,) + (1,) * p.ndim)
    c = np.broadcast_to(np.asarray(count, dtype=float), p.shape)[None]
    ok = j <= c
    cj = np.where(ok, c - j, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_pmf = (special.gammaln(c + 1) - special.gammaln(j + 1.0) - special.gammaln(cj + 1)
                   + special.xlogy(j, p[None]) + special.xlog1py(cj, -p[None]))
        pmf = np.exp(log_pmf)
    return np.where(ok, np.nan_to_num(pmf, nan=0.0), 0.0)


def _count_at_most(event: np.ndarray, counts: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``P(#events <= thresholds[j])`` for each job ``j``.

    ``event[j, s]`` (shape ``(J, S, L)``) is the probability that one node of slot ``s`` has the event;
    the slot holds ``counts[j, s]`` independent identical nodes (0 for padding). Dynamic programming over
    the slots, vectorised over jobs and grid points; the state keeps ``P(#events = c)`` for
    ``c <= max(thresholds)`` only. Returns shape ``(J, L)``.
    """
    jobs, slots, length = event.shape
    top = int(thresholds.max())
    state = np.zeros((top + 1, jobs, length))
    state[0] = 1.0
    for s in range(slots):
        p = event[:, s, :]
        c = counts[:, s]
        if c.max() <= 1:
            if c.min() == 0:
                p = p * (c > 0)[:, None]
            q = 1.0 - p
            for k in range(top, 0, -1):
                state[k] *= q
                state[k] += state[k - 1] * p
            state[0] *= q
        else:
            pmf = _binomial_pmf(c[:, None], p, top)
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
        for k in range(size):
            lo = start - k
            if lo + length <= 0:
                break
            src_lo, dst_lo = max(lo, 0), max(-lo, 0)
            out[:, dst_lo:] += values[:, src_lo: lo + length] * kernels[:, k: k + 1]
        return out
    n_fft = 1 << int(math.ceil(math.log2(values.shape[1] + size - 1)))
    spectrum = np.fft.rfft(values, n_fft, axis=1) * np.fft.rfft(kernels, n_fft, axis=1)
    return np.fft.irfft(spectrum, n_fft, axis=1)[:, start: start + length]


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


@dataclass(frozen=True)
class Evaluation:
    """The analytic iteration-time distribution of one strategy.

    ``expected_time`` is ``E[T | decoded]`` in seconds (the simulator's ``mean_time``);
    ``decode_probability`` is ``P(T < ∞)``; ``times``/``cdf`` give ``P(T <= t)`` on the final grid (the
    unconditional CDF, which tends to ``decode_probability``); ``error_estimate`` is the measured
    difference between the last two grid refinements plus the truncated tail (seconds).
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


class Evaluator:
    """Analytic ``E[T]`` and CDF of ``T`` for strategies on one :class:`~hgc.timing.TimingModel`.

    Creating one is cheap; it caches per-distribution facts (lower ends, quantiles, discretised link
    delays), so reuse it when evaluating many strategies on the same model.
    """

    def __init__(self, model: TimingModel):
        self.model = model
        topo = model.topology
        self._quantile_cache: dict[tuple[Distribution, float], float] = {}
        self._weights_cache: dict[tuple, np.ndarray] = {}
        self._job_cache: dict[tuple, _EdgeJob] = {}
        types: dict[tuple[Distribution, Distribution, Distribution], int] = {}
        self.worker_type = np.empty(topo.n_workers, dtype=np.intp)
        for w in range(topo.n_workers):
            key = (model.worker_compute[w], model.worker_overhead[w], model.worker_uplink[w])
            self.worker_type[w] = types.setdefault(key, len(types))
        self.types = list(types)
        self.type_compute = [t[0] for t in self.types]
        self.type_shift = np.array([sum(self._lower(d) for d in t[1:]) for t in self.types])
        self.type_random = [tuple(d for d in t[1:] if not d.is_constant) for t in self.types]
        self.type_compute_lower = np.array([self._lower(t[0]) for t in self.types])
        edge_types: dict[tuple[Distribution, Distribution, float], int] = {}
        self.edge_type = np.empty(topo.n_edges, dtype=np.intp)
        for i in range(topo.n_edges):
            key = (model.edge_process[i], model.edge_uplink[i], float(model.per_vector[i]))
            self.edge_type[i] = edge_types.setdefault(key, len(edge_types))
        self.edge_types = list(edge_types)
        self.edge_shift = np.array([k[2] + self._lower(k[0]) + self._lower(k[1]) for k in self.edge_types])
        self.edge_random = [tuple(d for d in k[:2] if not d.is_constant) for k in self.edge_types]

    # -- per-distribution facts ---------------------------------------------------------------------
    def _lower(self, dist: Distribution) -> float:
        """The lower end of the support (seconds)."""
        key = (dist, -1.0)
        if key not in self._quantile_cache:
            self._quantile_cache[key] = float(dist.value) if isinstance(dist, Constant) else float(dist.lower)
        return self._quantile_cache[key]

    def _upper(self, dist: Distribution, eps: float) -> float:
        """The ``1 - eps`` quantile (seconds)."""
        if dist.is_constant:
            return self._lower(dist)
        key = (dist, eps)
        if key not in self._quantile_cache:
            self._quantile_cache[key] = float(dist.ppf(1.0 - eps))
        return self._quantile_cache[key]

    def _random_upper(self, parts: tuple[Distribution, ...], eps: float) -> float:
        """Upper end (``1 - eps`` quantiles) of the sum of the random remainders of ``parts``."""
        return sum(self._upper(d, eps) - self._lower(d) for d in parts)

    def _kernel(self, parts: tuple[Distribution, ...], h: float, size: int) -> np.ndarray:
        """Hat weights of the sum of the random remainders of ``parts`` on the lattice of step ``h``."""
        key = (parts, h, size)
        if key not in self._weights_cache:
            kernel = np.array([1.0])
            for dist in parts:
                extent = self._upper(dist, PMF_EPS) - self._lower(dist)
                n = int(min(size, math.ceil(extent / h) + 2))
                w = hat_weights(dist, self._lower(dist), h, max(n, 1))
                kernel = np.convolve(kernel, w)[:size] if kernel.size > 1 else w
            if len(self._weights_cache) > 256:
                self._weights_cache.clear()
            self._weights_cache[key] = kernel
        return self._weights_cache[key]

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
            if len(self._job_cache) > 100_000:
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
        job = _EdgeJob(-1, tuple(k for k, _ in ordered), tuple(c for _, c in ordered), int(strategy.s))
        return _Plan(float(strategy.load), [job], ((0, 1),), 0)

    # -- support bounds --------------------------------------------------------------------------------
    def _job_bounds(self, job: _EdgeJob, load: float, eps: float) -> tuple[float, float]:
        """Lower end of the job's arrival time and an upper value exceeded with probability <= #nodes*eps."""
        lows, highs = [], []
        for (t, offset), count in zip(job.rows, job.counts):
            x = self.type_compute[t]
            low = load * self.type_compute_lower[t] + self.type_shift[t] + offset
            high = (load * self._upper(x, eps) + self.type_shift[t] + offset
                    + self._random_upper(self.type_random[t], eps))
            lows += [low] * count
            highs += [high] * count
        k = len(lows) - job.tolerated
        lows.sort()
        highs.sort()
        high = highs[-1] if self.model.worker_failure > 0 else highs[k - 1]
        if job.edge_type >= 0:
            high += self._random_upper(self.edge_random[job.edge_type], eps)
        return lows[k - 1], high

    def bounds(self, plan: _Plan, eps: float) -> tuple[float, float]:
        """``(t_low, t_high)``: ``T >= t_low`` always; ``P(t_high < T < ∞) <= (#nodes) eps``."""
        lows, highs = [], []
        for j, count in plan.master:
            low, high = self._job_bounds(plan.jobs[j], plan.load, eps)
            lows += [low] * count
            highs += [high] * count
        k = len(lows) - plan.master_tolerated
        lows.sort()
        highs.sort()
        high = highs[-1] if self.model.edge_failure > 0 else highs[k - 1]
        return lows[k - 1], max(high, lows[k - 1])

    # -- the computation on a grid ---------------------------------------------------------------------
    def _worker_rows(self, load: float, rows: Sequence[tuple[int, float]], first: float, h: float,
                     length: int) -> np.ndarray:
        """CDFs of the workers' delivery times ``C = load X + Y + U`` for each ``(type, offset)`` row at
        the points ``first - offset + h * arange(length)``; shape ``(len(rows), length + 1)``, the last
        column being the value at ``t = ∞`` (``1 - p_worker``)."""
        out = np.empty((len(rows), length + 1))
        out[:, -1] = 1.0
        groups: dict[tuple[Distribution, ...], list[int]] = {}
        for r, (t, _) in enumerate(rows):
            groups.setdefault(self.type_random[t], []).append(r)
        for random_parts, members in groups.items():
            types = np.array([rows[r][0] for r in members])
            offsets = np.array([rows[r][1] for r in members])
            base = first - offsets - self.type_shift[types]           # first evaluation point of X-part
            extra = 0
            if random_parts:
                extent = self._random_upper(random_parts, PMF_EPS)
                size = int(min(length, math.ceil(extent / h) + 2))
                kernel = self._kernel(random_parts, h, size)
                lowest = load * self.type_compute_lower[types]
                need = np.ceil((base - lowest) / h).max()
                extra = int(np.clip(need, 0, kernel.size - 1))
            points = base[:, None] + h * (np.arange(length + extra) - extra)[None, :]
            dists = [self.type_compute[t] for t in types]
            values = _cdf_rows(dists, points / load)
            if random_parts:
                values = _convolve_rows(values, kernel[None, :], extra, length)
            out[members, :length] = np.clip(values, 0.0, 1.0)
        if self.model.worker_failure > 0:
            out *= 1.0 - self.model.worker_failure
        return out

    def _jobs_on_grid(self, load: float, lattice: Lattice, jobs: Sequence[_EdgeJob]) -> np.ndarray:
        """CDF of each job's arrival time at the master on ``lattice`` (plus ``t = ∞``): ``(len(jobs), n+1)``."""
        n, h = lattice.points, lattice.step
        result = np.empty((len(jobs), n + 1))
        # jobs with the same link delay share a kernel; blocks bound the temporary arrays
        order = sorted(range(len(jobs)), key=lambda j: (jobs[j].edge_type, len(jobs[j].rows)))
        start = 0
        while start < len(order):
            stop, width = start, 0
            edge_type = jobs[order[start]].edge_type
            while stop < len(order) and jobs[order[stop]].edge_type == edge_type:
                width = max(width, len(jobs[order[stop]].rows))
                if (stop - start + 1) * width * 2 * n > BLOCK_ELEMENTS and stop > start:
                    break
                stop += 1
            block = [jobs[j] for j in order[start:stop]]
            result[order[start:stop]] = self._job_block(load, lattice, block, edge_type)
            start = stop
        return result

    def _job_block(self, load: float, lattice: Lattice, block: Sequence[_EdgeJob], edge_type: int) -> np.ndarray:
        n, h = lattice.points, lattice.step
        random_parts = self.edge_random[edge_type] if edge_type >= 0 else ()
        extra, kernel = 0, None
        if random_parts:
            extent = self._random_upper(random_parts, PMF_EPS)
            kernel = self._kernel(random_parts, h, int(min(n, math.ceil(extent / h) + 2)))
            lowest = min(load * self.type_compute_lower[t] + self.type_shift[t] + offset
                         for job in block for t, offset in job.rows)
            extra = int(np.clip(math.ceil((lattice.start - lowest) / h), 0, kernel.size - 1))
        length = n + extra
        unique: dict[tuple[int, float], int] = {}
        for job in block:
            for row in job.rows:
                unique.setdefault(row, len(unique))
        rows = list(unique)
        cdf = self._worker_rows(load, rows, lattice.start - extra * h, h, length)
        cdf = np.vstack([cdf, np.ones((1, length + 1))])   # padding row: always finished
        slots = max(len(job.rows) for job in block)
        index = np.full((len(block), slots), len(rows), dtype=np.intp)
        counts = np.zeros((len(block), slots), dtype=np.int64)
        for b, job in enumerate(block):
            index[b, : len(job.rows)] = [unique[row] for row in job.rows]
            counts[b, : len(job.rows)] = job.counts
        tolerated = np.array([job.tolerated for job in block])
        edge_cdf = order_statistic_cdf(cdf[index], counts, tolerated)
        out = np.empty((len(block), n + 1))
        out[:, -1] = edge_cdf[:, -1]
        if kernel is not None:
            out[:, :n] = np.clip(_convolve_rows(edge_cdf[:, :length], kernel[None, :], extra, n), 0.0, 1.0)
        else:
            out[:, :n] = edge_cdf[:, extra: extra + n]
        if edge_type >= 0 and self.model.edge_failure > 0:
            out *= 1.0 - self.model.edge_failure
        return out

    def _master_on_grid(self, job_cdfs: np.ndarray, masters: Sequence[tuple[tuple[tuple[int, int], ...], int]]
                        ) -> np.ndarray:
        """CDF of ``T`` for each ``(slots, s_e)`` master, slots being ``(row of job_cdfs, count)``."""
        width = job_cdfs.shape[1]
        padded = np.vstack([job_cdfs, np.ones((1, width))])
        slots = max(len(m[0]) for m in masters)
        out = np.empty((len(masters), width))
        per_block = max(1, BLOCK_ELEMENTS // max(1, slots * width))
        for start in range(0, len(masters), per_block):
            chunk = masters[start: start + per_block]
            index = np.full((len(chunk), slots), job_cdfs.shape[0], dtype=np.intp)
            counts = np.zeros((len(chunk), slots), dtype=np.int64)
            for b, (pairs, _) in enumerate(chunk):
                index[b, : len(pairs)] = [p[0] for p in pairs]
                counts[b, : len(pairs)] = [p[1] for p in pairs]
            tolerated = np.array([m[1] for m in chunk])
            out[start: start + len(chunk)] = order_statistic_cdf(padded[index], counts, tolerated)
        return out

    def _plans_on_grid(self, plans: Sequence[_Plan], lattice: Lattice) -> np.ndarray:
        """CDF of ``T`` (plus ``t = ∞``) of plans that share one load, on ``lattice``: ``(len(plans), n+1)``."""
        load = plans[0].load
        unique: dict[_EdgeJob, int] = {}
        masters = []
        for plan in plans:
            slots = tuple((unique.setdefault(plan.jobs[j], len(unique)), c) for j, c in plan.master)
            masters.append((slots, plan.master_tolerated))
        job_cdfs = self._jobs_on_grid(load, lattice, list(unique))
        return self._master_on_grid(job_cdfs, masters)

    @staticmethod
    def _moments(cdf: np.ndarray, lattice: Lattice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(E[T | decoded], P(decoded), survival at the grid end)`` for rows of CDFs with a ∞ column."""
        decoded = cdf[:, -1]
        with np.errstate(invalid="ignore", divide="ignore"):
            survival = np.clip(1.0 - cdf[:, :-1] / decoded[:, None], 0.0, 1.0)
        integral = lattice.step * (survival.sum(axis=1) - 0.5 * (survival[:, 0] + survival[:, -1]))
        mean = np.where(decoded > 0, lattice.start + integral, np.nan)
        return mean, decoded, survival[:, -1]

    # -- public API ------------------------------------------------------------------------------------
    def expected_times(self, strategies: Sequence[Strategy], *, points: int = SEARCH_POINTS,
                       eps: float = SEARCH_EPS) -> tuple[np.ndarray, np.ndarray]:
        """``(E[T | decoded], P(decoded))`` of many strategies on fixed-size grids (fast; for searches).

        Strategies with the same load share one grid spanning all their supports, and their common edge
        order statistics are computed once. Accuracy is typically ~1e-4 relative; use :meth:`evaluate`
        for a value with a measured error.
        """
        plans = [self.plan(st) for st in strategies]
        means = np.full(len(plans), np.nan)
        decoded = np.full(len(plans), np.nan)
        by_load: dict[float, list[int]] = {}
        for i, plan in enumerate(plans):
            by_load.setdefault(plan.load, []).append(i)
        for members in by_load.values():
            bounds = np.array([self.bounds(plans[i], eps) for i in members])
            lattice = Lattice.spanning(bounds[:, 0].min(), bounds[:, 1].max(), points)
            cdf = self._plans_on_grid([plans[i] for i in members], lattice)
            m, d, _ = self._moments(cdf, lattice)
            means[members] = m
            decoded[members] = d
        return means, decoded

    def cdf_on(self, strategy: Strategy, lattice: Lattice) -> np.ndarray:
        """``P(T <= t)`` at ``lattice.times`` followed by ``P(T < ∞)``."""
        return self._plans_on_grid([self.plan(strategy)], lattice)[0]

    def evaluate(self, strategy: Strategy, *, rtol: float = 1e-4, min_points: int = 2048,
                 max_points: int = 1 << 18) -> Evaluation:
        """``E[T]`` and the CDF of ``T`` for ``strategy``, refining the grid until ``E[T]`` changes by less
        than ``rtol`` (relative) between two successive halvings of the step.

        The upper end of the grid starts at the order statistics of per-node ``1 - 1e-11`` quantiles and
        is cut where ``T``'s own survival falls below ``1e-12``. ``converged`` is False if
        ``max_points`` was reached first.
        """
        plan = self.plan(strategy)
        low, high = self.bounds(plan, ACCURATE_EPS)
        points = int(min_points)
        lattice = Lattice.spanning(low, high, points)
        cdf = self._plans_on_grid([plan], lattice)
        for _ in range(3):  # narrow the range to where T actually lives
            decoded = cdf[0, -1]
            if decoded <= 0:
                break
            survival = 1.0 - cdf[0, :-1] / decoded
            beyond = np.nonzero(survival <= TAIL_TOL)[0]
            if beyond.size == 0 or beyond[0] >= 0.6 * (points - 1):
                break
            high = lattice.start + lattice.step * min(points - 1, beyond[0] + 2)
            lattice = Lattice.spanning(low, high, points)
            cdf = self._plans_on_grid([plan], lattice)
        mean, decoded, tail = (v[0] for v in self._moments(cdf, lattice))
        if not decoded > 0:
            return Evaluation(strategy, math.nan, 0.0, lattice.times, cdf[0, :-1], math.nan, points, False)
        converged, error = False, math.inf
        while points * 2 <= max_points:
            points = 2 * (points - 1) + 1           # halves the step on the same range
            fine = Lattice.spanning(low, lattice.end, points)
            fine_cdf = self._plans_on_grid([plan], fine)
            fine_mean, decoded, tail = (v[0] for v in self._moments(fine_cdf, fine))
            error = abs(fine_mean - mean)
            lattice, cdf, mean = fine, fine_cdf, fine_mean
            if error <= rtol * abs(mean) or lattice.step <= 1e-12 * max(1.0, abs(mean)):
                converged = True
                break
        truncation = float(tail) * (lattice.end - lattice.start)
        return Evaluation(strategy, float(mean), float(decoded), lattice.times, cdf[0, :-1],
                          float(error + truncation), points, converged)


def evaluate(model: TimingModel, strategy: Strategy, *, rtol: float = 1e-4) -> Evaluation:
    """Analytic iteration-time distribution of ``strategy`` on ``model`` (see :class:`Evaluator`)."""
    return Evaluator(model).evaluate(strategy, rtol=rtol)


def expected_time(model: TimingModel, strategy: Strategy, *, rtol: float = 1e-4) -> float:
    """``E[T | decoded]`` in seconds (see :meth:`Evaluator.evaluate`)."""
    return evaluate(model, strategy, rtol=rtol).expected_time

