"""The analytic evaluator: the CDF of the iteration time ``T`` and ``E[T]`` without sampling.

Model. With independent nodes, a worker ``w`` with load ``ℓ_w`` delivers at ``C_w = ℓ_w X_w + Y_w + U_w +
b_w·len_w``; a decoding edge ``i`` waits for its ``k_i``-th fastest worker and its message reaches the master at
``A_i = C_(k_i) + P_i + β_i·len_e + V_i``; the master waits for its ``k``-th fastest edge (the strategy's
:class:`~hgc.schemes.Plan` gives ``k_i`` and ``k``). Hence

* ``P(C_(k_i) <= t)`` is a Poisson-binomial tail in the per-worker probabilities ``F_{C_w}(t)``
  (:mod:`hgc.analytic.order_statistics`), vectorised over a time grid;
* ``F_{A_i} = F_{C_(k_i)} ⊛ (P_i + V_i)`` shifted by the constant parts: a convolution on the grid
  (:mod:`hgc.analytic.grids`);
* ``F_T`` is again a Poisson-binomial tail, over the edges, in the ``F_{A_i}(t)``;
* ``E[T | decoded] = t_0 + ∫ (1 - F_T(t) / F_T(∞)) dt`` (trapezoidal rule on the grid).

Failures enter naturally: a failed node is a completion time of ``+∞``, so a node's CDF is ``(1 - p) F``
and ``F_T(∞) = P(decoded) < 1``; the evaluator reports ``E[T | decoded]`` (what the simulator's
``mean_time`` estimates) and the decoding probability.

Discretisation and error control.

* Grids are uniform, ``t_j = t_0 + j h``; several *nested* ones when ``T`` has a long tail (fine steps
  over the body, coarser ones further out; :class:`~hgc.analytic.grids.Grid`). ``t_0`` is the order
  statistic of per-node lower ``ε``-quantiles (``P(T < t_0) <= (#nodes) ε``), the far end that of the upper
  ones; a coarse pass on that range then locates where ``T``'s own survival falls below 0.3, 1e-2, 1e-4,
  1e-7 and 1e-13, and those points end the levels (levels closer than a factor ``LEVEL_RATIO`` are merged).
* The widest random component of a worker's delay (usually ``ℓ X``) is never discretised: its CDF is
  evaluated exactly at the (shifted) grid points. Every constant part of a delay (constant distributions,
  the lower end of a shifted distribution, per-vector link times) is a shift of the evaluation points,
  hence exact.
* The other random parts (of ``ℓ X + Y + U`` and of ``P + V``) are discretised by linear (hat) weights
  computed exactly from closed-form stop-loss transforms (mean-preserving, exact for atoms, second-order
  accurate; :meth:`~hgc.analytic.components.DistributionBatch.kernels`) and convolved in.
* :meth:`Evaluator.evaluate` halves every level's step until two successive values of ``E[T]`` differ by
  less than ``rtol`` (relative). The reported ``error_estimate`` is that change plus the truncated tail: an
  *estimate* measured from the refinement, not a proven bound.
  :meth:`Evaluator.expected_times` (for searches) uses a fixed number of points per level instead.

Relaying edges (flat GC) are evaluated analytically only when worker messages reach the master
independently (no per-vector link time, constant edge delays, no edge failures); otherwise the FIFO relay
queue couples them and :class:`NotAnalyticError` is raised (use the Monte Carlo simulator).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Hashable, Sequence

import numpy as np

from hgc.analytic.components import DistributionBatch
from hgc.analytic.grids import LEVEL_RATIO, Grid, Lattice, convolve_stages, integrate
from hgc.analytic.order_statistics import order_statistic_cdf
from hgc.distributions import Distribution
from hgc.schemes import Strategy
from hgc.timing import TimingModel

SEARCH_POINTS = 1025
"""Grid points used when many candidates are compared (:meth:`Evaluator.expected_times`)."""
SEARCH_EPS = 1e-8
"""Per-node tail probability that sets the ends of the coarse pass during a search."""
ACCURATE_EPS = 1e-11
"""Per-node tail probability that sets the ends of the coarse pass in :meth:`Evaluator.evaluate`."""
BLOCK_ELEMENTS = 3_000_000
"""Target size (floats) of the largest temporary array; bounds memory on big systems."""
LEVEL_TAILS = (0.3, 1e-2, 1e-4, 1e-7, 1e-13)
"""Survival levels of ``T`` at which the nested grid levels end (the last one: the end of the grid)."""
COARSE_TAIL = 1e-5
"""A search reuses the coarse pass where the survival of ``T`` is below this."""
COARSE_POINTS = 129
"""Points of the coarse pass that locates ``T``'s body and tail before the real computation."""


class NotAnalyticError(ValueError):
    """The strategy's iteration time has no independent-node form (relaying edges with a FIFO queue)."""


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




Row = tuple[int, float, float]
"""A slot of identical workers: ``(worker type, load, evaluation offset in seconds)``."""


@dataclass(frozen=True)
class _EdgeJob:
    """One order statistic before the master: ``rows`` are ``(worker type, load, offset)`` slots with
    ``counts`` identical workers each; the job finishes when all but ``tolerated`` have. ``edge_type`` is
    the model edge type whose link delay and failure apply (``-1``: none, the flat pseudo-edge)."""

    edge_type: int
    rows: tuple[Row, ...]
    counts: tuple[int, ...]
    tolerated: int


@dataclass
class _Plan:
    """A strategy as order statistics: edge jobs, and the master's (job, count) slots and tolerance.
    ``group`` is the key of plans that may share a grid (their loads)."""

    group: Hashable
    jobs: list[_EdgeJob]
    master: tuple[tuple[int, int], ...]
    master_tolerated: int


@dataclass
class _Block:
    """A block of edge jobs: their indices, distinct worker rows, slot matrices and support lower ends."""

    jobs: np.ndarray
    row_types: np.ndarray
    row_loads: np.ndarray
    row_offsets: np.ndarray
    index: np.ndarray
    counts: np.ndarray
    tolerated: np.ndarray
    edge_types: np.ndarray
    lowest: np.ndarray


@dataclass
class _Layout:
    """Grid-independent structure of a batch of plans (see :meth:`Evaluator.layout`)."""

    n_jobs: int
    blocks: list[_Block]
    master_index: np.ndarray
    master_counts: np.ndarray
    master_tolerated: np.ndarray


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
        self.edge_parts = [DistributionBatch([k[c] for k in self.edge_types]) for c in range(2)]
        self.edge_beta = np.array([k[2] for k in self.edge_types])
        self.edge_shift = self.edge_beta + self.edge_parts[0].lower + self.edge_parts[1].lower
        self.edge_random = [tuple(d for d in k[:2] if not d.is_constant) for k in self.edge_types]
        # vectorised per-type facts: worker components (compute, overhead, uplink), edge components
        # (process, uplink)
        self.worker_parts = [DistributionBatch([t[c] for t in self.types]) for c in range(3)]
        self._job_arrays: dict[_EdgeJob, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}

    # -- strategies as order statistics ----------------------------------------------------------------
    def _edge_job(self, edge: int, rows: tuple[Row, ...], tolerated: int) -> _EdgeJob:
        key = (edge, rows, tolerated)
        job = self._job_cache.get(key)
        if job is None:
            slots = sorted(Counter(rows).items())
            job = _EdgeJob(int(self.edge_type[edge]), tuple(r for r, _ in slots), tuple(c for _, c in slots),
                           int(tolerated))
            if len(self._job_cache) > 200_000:
                self._job_cache.clear()
            self._job_cache[key] = job
        return job

    def _worker_slots(self, strategy: Strategy, edge_message: float) -> list[tuple[int, tuple[Row, ...]]]:
        """Per participating edge: ``(edge, rows)`` with one ``(type, load, offset)`` row per worker. The
        offset is every constant delay after the worker's compute: its link's per-vector time and, for a
        decoding edge, the edge's constant parts (``β·len_e`` and the lower ends of ``P`` and ``V``)."""
        topo = self.model.topology
        plan = strategy.plan
        uniform = strategy.worker_loads is None
        loads = None if uniform else strategy.loads
        worker_link = self.model.worker_per_vector_array * plan.worker_message
        out = []
        position = 0
        for edge, positions in zip(strategy.edges, strategy.workers):
            first = int(topo.offsets[edge])
            t = self.edge_type[edge]
            shift = float(self.edge_beta[t] * edge_message + self.edge_parts[0].lower[t] + self.edge_parts[1].lower[t])
            rows = []
            for p in positions:
                w = first + int(p)
                load = strategy.load if loads is None else float(loads[position])
                link = float(worker_link[w])
                rows.append((int(self.worker_type[w]), float(load), shift + link if link else shift))
                position += 1
            out.append((int(edge), tuple(rows)))
        return out

    def plan(self, strategy: Strategy) -> _Plan:
        """The order statistics that make up ``strategy``'s iteration time (from its :class:`~hgc.schemes.Plan`)."""
        timing = strategy.plan
        group = strategy.load if strategy.worker_loads is None else strategy.worker_loads
        if timing.relay:
            return self._relay_plan(strategy, group)
        slots = self._worker_slots(strategy, timing.edge_message)
        jobs: dict[_EdgeJob, int] = {}
        for (edge, rows), wait in zip(slots, timing.edge_wait):  # type: ignore[arg-type]
            if not 1 <= wait <= len(rows):
                raise ValueError(f"edge {edge} waits for {wait} of its {len(rows)} participating workers")
            job = self._edge_job(edge, rows, len(rows) - wait)
            jobs[job] = jobs.get(job, 0) + 1
        if not 1 <= timing.master_wait <= len(slots):
            raise ValueError(f"the master waits for {timing.master_wait} of {len(slots)} edges")
        job_list = list(jobs)
        return _Plan(group, job_list, tuple((j, jobs[job]) for j, job in enumerate(job_list)),
                     len(slots) - timing.master_wait)

    def _relay_plan(self, strategy: Strategy, group: Hashable) -> _Plan:
        model = self.model
        timing = strategy.plan
        for edge in strategy.edges:
            process, uplink, beta = self.edge_types[self.edge_type[edge]]
            if beta != 0.0 or not process.is_constant or not uplink.is_constant or model.edge_failure > 0:
                raise NotAnalyticError(
                    "relaying edges forward every worker message through a FIFO link; the iteration time is "
                    "analytic only with per_vector = 0, constant edge delays and no edge failures "
                    "(use the Monte Carlo simulator)")
        rows = [row for _, edge_rows in self._worker_slots(strategy, timing.worker_message) for row in edge_rows]
        slots = sorted(Counter(rows).items())
        total = sum(c for _, c in slots)
        if not 1 <= timing.master_wait <= total:
            raise ValueError(f"the master waits for {timing.master_wait} of {total} worker messages")
        job = _EdgeJob(-1, tuple(r for r, _ in slots), tuple(c for _, c in slots), total - timing.master_wait)
        return _Plan(group, [job], ((0, 1),), 0)

    def order_statistic_cost(self, strategy: Strategy) -> int:
        """A measure of the work of evaluating ``strategy``: distinct worker slots × tolerated stragglers
        (squared when identical workers enter as a binomial), over its largest order statistic."""
        plan = self.plan(strategy)
        cost = 0
        for job in plan.jobs:
            top = min(job.tolerated, sum(job.counts) - job.tolerated - 1) + 1
            binomial = max(job.counts) > 4
            cost = max(cost, len(job.rows) * top * (top if binomial else 1))
        return cost

    # -- per-node quantiles ----------------------------------------------------------------------------
    def worker_quantiles(self, q: float) -> tuple[np.ndarray, np.ndarray]:
        """Per worker of the model: the quantile at ``q`` of its whole-dataset compute time and the sum of
        the quantiles of its other delays (seconds)."""
        compute, others = self._type_quantiles(q)
        return compute[self.worker_type], others[self.worker_type]

    def edge_quantiles(self, q: float) -> np.ndarray:
        """Per edge of the model: ``β`` plus the quantiles at ``q`` of its processing and link delays (s)."""
        return self.edge_quantile_sum(q)[self.edge_type]

    # -- support bounds --------------------------------------------------------------------------------
    def _type_quantiles(self, q: float) -> tuple[np.ndarray, np.ndarray]:
        """Per worker type: the compute quantile at ``q`` and the sum of the other components' quantiles."""
        parts = self.worker_parts
        return parts[0].quantiles(q), parts[1].quantiles(q) + parts[2].quantiles(q)

    def _edge_excess(self, q: float) -> np.ndarray:
        """Per edge type: the sum over its random components of (quantile at ``q`` - lower end)."""
        return sum(np.where(part.random, part.quantiles(q) - part.lower, 0.0) for part in self.edge_parts)

    def edge_quantile_sum(self, q: float) -> np.ndarray:
        """Per edge *type*: ``β`` plus the quantiles at ``q`` of its processing and link delays (seconds)."""
        return self.edge_beta + self.edge_parts[0].quantiles(q) + self.edge_parts[1].quantiles(q)

    def _arrays(self, job: _EdgeJob) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(types, loads, offsets, counts)`` of a job's rows as arrays."""
        arrays = self._job_arrays.get(job)
        if arrays is None:
            arrays = (np.array([r[0] for r in job.rows], dtype=np.intp), np.array([r[1] for r in job.rows]),
                      np.array([r[2] for r in job.rows]), np.array(job.counts, dtype=np.intp))
            if len(self._job_arrays) > 200_000:
                self._job_arrays.clear()
            self._job_arrays[job] = arrays
        return arrays

    def _row_quantiles(self, types: np.ndarray, loads: np.ndarray, offsets: np.ndarray, q: float) -> np.ndarray:
        """Values that worker rows are below with probability ``>= q`` (``q`` near 1) or above with
        probability ``>= 1 - q`` (``q`` near 0): sums of their components' quantiles (seconds)."""
        compute, others = self._type_quantiles(q)
        return loads * compute[types] + others[types] + offsets

    def _job_bounds(self, job: _EdgeJob, eps_low: float, eps_high: Sequence[float]) -> np.ndarray:
        """``[low, high_1, ...]``: the job's arrival is ``>= low`` except with probability <= (#nodes)
        eps_low, and ``<= high_i`` except with probability <= (#nodes) eps_high[i] (union bounds)."""
        types, loads, offsets, counts = self._arrays(job)
        k = int(counts.sum()) - job.tolerated
        out = []
        for q in (eps_low, *(1.0 - e for e in eps_high)):
            values = np.repeat(self._row_quantiles(types, loads, offsets, q), counts)
            if q > 0.5 and self.model.worker_failure > 0:
                value = float(values.max())
            else:
                value = float(np.partition(values, k - 1)[k - 1])
            if job.edge_type >= 0:
                value += float(self._edge_excess(q)[job.edge_type])
            out.append(value)
        return np.array(out)

    def bounds(self, plan: _Plan, eps_low: float, eps_high: Sequence[float],
               cache: dict[Any, np.ndarray] | None = None) -> np.ndarray:
        """``[low, high_1, ...]`` for ``T``: ``P(T < low) <= (#nodes) eps_low`` and
        ``P(high_i < T < ∞) <= (#nodes) eps_high[i]``."""
        rows = []
        for j, count in plan.master:
            key = plan.jobs[j]
            if cache is not None and key in cache:
                b = cache[key]
            else:
                b = self._job_bounds(plan.jobs[j], eps_low, eps_high)
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
    def _worker_rows(self, loads: np.ndarray, types: np.ndarray, offsets: np.ndarray, first: float, h: float,
                     length: int) -> np.ndarray:
        """CDFs of the workers' delivery times ``C = load X + Y + U`` for rows of worker ``types`` with
        ``loads`` at the
        points ``first - offsets[r] + h * arange(length)``; shape ``(rows, length + 1)``, the last column
        being the value at ``t = ∞`` (``1 - p_worker``).

        Of the random components the widest (central 80%) is evaluated exactly at the points, the others
        are discretised by hat weights and convolved in, one batched convolution per component (the
        interpolation error then comes from the smoothest CDF)."""
        parts = self.worker_parts
        rows = len(types)
        out = np.empty((rows, length + 1))
        out[:, -1] = 1.0
        factor = [np.asarray(loads, dtype=float), np.ones(rows), np.ones(rows)]   # per row and component
        width = np.stack([np.where(parts[c].random[types], factor[c] * parts[c].spread[types], -1.0)
                          for c in range(3)])
        widest = np.argmax(width, axis=0)                         # component evaluated exactly
        shifts = factor[0] * parts[0].lower[types] + parts[1].lower[types] + parts[2].lower[types] + offsets
        stages = []
        total = np.ones(rows, dtype=np.int64)
        # kernels reach back to the earliest possible delivery from the end of the lattice: capping them at
        # the lattice length would drop mass whenever a delivery can precede the lattice by more than that
        reach = length + max(0, int(np.ceil((first - shifts.min()) / h)))
        for c in range(3):
            members = np.nonzero(parts[c].random[types] & (widest != c))[0]
            if members.size:
                extent = (factor[c][members] * parts[c].extent[types[members]]).max()
                size = int(min(reach, math.ceil(extent / h) + 2))
                kernel = parts[c].kernels(types[members], factor[c][members], h, size)
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
                values[rows_c] = parts[c].cdf(types[rows_c], remainder[rows_c] / factor[c][rows_c, None] + lows)
        out[:, :length] = np.clip(convolve_stages(values, stages, extra, length), 0.0, 1.0)
        if self.model.worker_failure > 0:
            out *= 1.0 - self.model.worker_failure
        return out

    def layout(self, plans: Sequence[_Plan], points: int) -> "_Layout":
        """The grid-independent structure of computing ``plans``: the distinct edge jobs in memory-bounded
        blocks, each block's distinct worker rows and slot matrices, and the master's slot matrices. Built
        once, reused by every grid pass."""
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
                blocks.append(self._block([jobs[j] for j in members[start:stop]], np.array(members[start:stop])))
                start = stop
        width = max(len(m[0]) for m in masters)
        master_index = np.full((len(masters), width), len(jobs), dtype=np.intp)
        master_counts = np.zeros((len(masters), width), dtype=np.int64)
        for b, (pairs, _) in enumerate(masters):
            master_index[b, : len(pairs)] = [p[0] for p in pairs]
            master_counts[b, : len(pairs)] = [p[1] for p in pairs]
        return _Layout(len(jobs), blocks, master_index, master_counts,
                       np.array([m[1] for m in masters], dtype=np.int64))

    def _block(self, block: Sequence[_EdgeJob], members: np.ndarray) -> "_Block":
        unique: dict[Row, int] = {}
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
        row_loads = np.array([r[1] for r in rows])
        row_offsets = np.array([r[2] for r in rows])
        row_lowest = self._row_quantiles(row_types, row_loads, row_offsets, 0.0)
        lowest = np.array([row_lowest[index[b, : len(job.rows)]].min() for b, job in enumerate(block)])
        return _Block(members, row_types, row_loads, row_offsets, index, counts,
                      np.array([job.tolerated for job in block], dtype=np.int64),
                      np.array([job.edge_type for job in block], dtype=np.intp), lowest)

    def _block_on_grid(self, lattice: Lattice, block: "_Block") -> np.ndarray:
        """CDF of each job of ``block``'s arrival at the master on ``lattice`` (plus ``t = ∞``)."""
        n, h = lattice.points, lattice.step
        edge_types = block.edge_types
        linked = edge_types >= 0
        # link delays: component 0 (process P) and 1 (uplink V), discretised and convolved in together
        stages = []
        total = np.ones(len(edge_types), dtype=np.int64)
        reach = n + max(0, int(np.ceil((lattice.start - block.lowest.min()) / h)))   # see _worker_rows
        for parts in self.edge_parts:
            members = np.nonzero(linked)[0]
            members = members[parts.random[edge_types[members]]]
            if members.size:
                size = int(min(reach, math.ceil(parts.extent[edge_types[members]].max() / h) + 2))
                stages.append((members, parts.kernels(edge_types[members], np.ones(members.size), h, size)))
                total[members] += size - 1
        extra = int(np.clip(np.max(np.minimum(np.ceil((lattice.start - block.lowest) / h), total - 1)), 0, None))
        length = n + extra
        cdf = self._worker_rows(block.row_loads, block.row_types, block.row_offsets, lattice.start - extra * h, h,
                                length)
        cdf = np.vstack([cdf, np.ones((1, length + 1))])   # padding row: always finished
        edge_cdf = order_statistic_cdf(cdf[block.index], block.counts, block.tolerated)
        out = np.empty((len(edge_types), n + 1))
        out[:, -1] = edge_cdf[:, -1]
        out[:, :n] = np.clip(convolve_stages(edge_cdf[:, :length], stages, extra, n), 0.0, 1.0)
        if self.model.edge_failure > 0 and linked.any():
            out[linked] *= 1.0 - self.model.edge_failure
        return out

    def _plans_on_lattice(self, plans: Sequence[_Plan], lattice: Lattice, layout: "_Layout | None" = None
                          ) -> np.ndarray:
        """CDF of ``T`` (plus ``t = ∞``) of ``plans`` on ``lattice``: ``(len(plans), n+1)``."""
        if layout is None:
            layout = self.layout(plans, lattice.points)
        width = lattice.points + 1
        job_cdfs = np.empty((layout.n_jobs + 1, width))
        job_cdfs[-1] = 1.0                                   # padding: always arrived
        for block in layout.blocks:
            job_cdfs[block.jobs] = self._block_on_grid(lattice, block)
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
        """A nested grid for ``plans``, and the coarse pass that located it.

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
        by_load: dict[Hashable, list[int]] = {}
        for i, plan in enumerate(plans):
            by_load.setdefault(plan.group, []).append(i)
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
                m, d, _ = integrate(cdfs, lattices, segments)
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
        mean, decoded, tail = (float(v[0]) for v in integrate(cdfs, lattices, grid.segments(lattices)))
        points, converged, error = base, False, math.inf
        while decoded > 0 and (points - 1) * 2 + 1 <= max_points:
            points = (points - 1) * 2 + 1
            layout = self.layout([plan], points)  # re-blocked for the longer grid (bounded memory)
            cdfs, lattices = self._plans_on_grid([plan], grid, points, layout)
            fine_mean, decoded, tail = (float(v[0]) for v in integrate(cdfs, lattices, grid.segments(lattices)))
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
