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
  accurate; :meth:`~hgc.analytic.components.DistributionBatch.kernel_parts`) and convolved in, reaching
  back to the earliest possible arrival. The weights of an exponential part are exactly geometric, so they
  are applied by recursion and never truncated (:mod:`hgc.analytic.compiled`).
* :meth:`Evaluator.evaluate` computes ``E[T]`` on grids of 33, 65 and 129 points per level (in one pass),
  then halves the step again as long as the estimated error exceeds ``rtol`` (relative). The reported
  ``error_estimate`` is an *estimate*, not a proven bound: :func:`refinement_error` of the successive
  values, level by level, plus the truncated tail. Against grids 8-16 times finer its ratio actual /
  estimated stayed at or below about 0.5 on ~450 strategies (``benchmarks/evaluator_accuracy.py``).
  :meth:`Evaluator.expected_times` (for searches) uses a fixed number of points per level instead.

Relaying edges (flat GC) are evaluated analytically only when worker messages reach the master
independently (no per-vector link time, constant edge delays, no edge failures); otherwise the FIFO relay
queue couples them and :class:`NotAnalyticError` is raised (use the Monte Carlo simulator).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence

import numpy as np

from hgc.analytic import compiled
from hgc.analytic.components import DistributionBatch
from hgc.analytic.grids import LEVEL_RATIO, Grid, Lattice, convolve_rows, integrate, integrate_levels
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
MIN_POINTS = 33
"""Points per grid level of the first pass of :meth:`Evaluator.evaluate` (then doubled)."""


def refinement_error(values: np.ndarray, discrete: bool = False) -> float:
    """Estimated error (seconds) of ``E[T]`` computed on the last of several grids whose step halves from
    one to the next; ``values[k, l]`` is grid ``k``'s integral over level ``l`` (levels are estimated
    separately and the estimates added, so that errors of opposite signs in two levels cannot hide).

    Per level, with the last differences ``d2 = v[-1] - v[-2]``, ``d1 = v[-2] - v[-3]``, ``d0``:

    * continuous ``T`` (no node delay has an atom): when ``d1/d2`` lies in ``[3, 6]`` (second-order
      convergence, error ``~ C h^2``, so the error of ``v[-1]`` is about ``|d2| / 3``) the estimate is
      ``1.5 |d2|``; otherwise (irregular, pre-asymptotic convergence) ``max(2 |d2|, |d1|)``;
    * ``discrete`` (atoms: the trapezoidal rule across a jump errs by up to ``h/2`` times the jump, first
      order and erratic in sign): ``3 max(|d2|, |d1|/2, |d0|/4)``, needing four grids.

    The factors were set by comparing with grids 8-16 times finer on ~450 strategies (bundled configs,
    random heterogeneous systems, trace-driven and atom-valued models): the largest ratio of actual to
    estimated error was 0.35 (continuous) and 0.51 (discrete); see ``docs/performance-evaluator.md``.
    Returns ``inf`` when there are too few grids to tell.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    if values.shape[0] < (4 if discrete else 3):
        return math.inf
    d = np.diff(values[-4:] if discrete else values[-3:], axis=0)
    d2, d1 = d[-1], d[-2]
    if discrete:
        return float(3.0 * np.maximum.reduce([np.abs(d2), np.abs(d1) / 2, np.abs(d[-3]) / 4]).sum())
    # second order: d1 / d2 in [3, 6] (d2 = 0 never qualifies)
    second_order = (np.abs(d2) > 0) & (d1 * np.sign(d2) >= 3.0 * np.abs(d2)) & (d1 * np.sign(d2) <= 6.0 * np.abs(d2))
    return float(np.where(second_order, 1.5 * np.abs(d2), np.maximum(2.0 * np.abs(d2), np.abs(d1))).sum())


class NotAnalyticError(ValueError):
    """The strategy's iteration time has no independent-node form (relaying edges with a FIFO queue)."""


@dataclass(frozen=True)
class Evaluation:
    """The analytic iteration-time distribution of one strategy.

    ``expected_time`` is ``E[T | decoded]`` in seconds (the simulator's ``mean_time``);
    ``decode_probability`` is ``P(T < ∞)``; ``times``/``cdf`` give ``P(T <= t)`` on the final grid (the
    unconditional CDF, which tends to ``decode_probability``); ``error_estimate`` (seconds) is an
    *estimate* of the error of ``expected_time``, from how ``E[T]`` changed over the last grid refinements
    (:func:`refinement_error`) plus the truncated tail — measured to exceed the actual error by a factor two
    or more on the strategies of ``benchmarks/evaluator_accuracy.py``, but not a proven bound.
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
    """A block of edge jobs and everything about computing them that does not depend on the grid.

    ``jobs`` are their indices in the layout; the distinct worker rows are ``(row_types, row_loads,
    row_offsets)`` and job ``b`` has ``counts[b, s]`` workers of row ``index[b, s]``, tolerates
    ``tolerated[b]`` stragglers and arrives no earlier than ``lowest[b]``. Worker row ``r`` delivers no
    earlier than ``shifts[r]``; its widest random component is evaluated exactly at ``(t - shifts[r]) /
    exact_scale[r] + exact_low[r]`` (by ``exact_cdfs``: ``(rows or None for all, function)``), its other random
    components are convolved in, stage after stage: row ``r`` uses kernel ``worker_bank[s, r]`` in stage
    ``s`` (``-1``: none), job ``b`` kernel ``edge_bank[s, b]`` in edge stage ``s``. Kernel ``k`` is
    ``kernel_scale[k]`` times distribution ``kernel_type[k]`` of batch ``kernel_batch[k]`` (``kernel_dist[k]``
    in the evaluator's joint leaf tables) and reaches ``extents[kernel_stage[k]]`` seconds; all are in
    closed form when ``simple``."""

    jobs: np.ndarray
    row_types: np.ndarray
    row_loads: np.ndarray
    row_offsets: np.ndarray
    index: np.ndarray
    counts: np.ndarray
    tolerated: np.ndarray
    edge_types: np.ndarray
    lowest: np.ndarray
    shifts: np.ndarray
    exact_scale: np.ndarray
    exact_low: np.ndarray
    exact_cdfs: list[tuple[np.ndarray | None, Callable[[np.ndarray], np.ndarray]]]
    worker_bank: np.ndarray
    edge_bank: np.ndarray
    worker_extents: np.ndarray
    edge_extents: np.ndarray
    kernel_batch: np.ndarray
    kernel_type: np.ndarray
    kernel_scale: np.ndarray
    kernel_stage: np.ndarray
    kernel_dist: np.ndarray
    simple: bool


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
        types: dict[tuple[Distribution, Distribution, Distribution], int] = {}
        self.worker_type = np.empty(topo.n_workers, dtype=np.intp)
        for w in range(topo.n_workers):
            key = (model.worker_compute[w], model.worker_overhead[w], model.worker_uplink[w])
            self.worker_type[w] = types.setdefault(key, len(types))
        self.types = list(types)
        edge_types: dict[tuple[Distribution, Distribution, float], int] = {}
        self.edge_type = np.empty(topo.n_edges, dtype=np.intp)
        for i in range(topo.n_edges):
            edge_key = (model.edge_process[i], model.edge_uplink[i], float(model.per_vector[i]))
            self.edge_type[i] = edge_types.setdefault(edge_key, len(edge_types))
        self.edge_types = list(edge_types)
        self.edge_parts = [DistributionBatch([k[0] for k in self.edge_types]),
                           DistributionBatch([k[1] for k in self.edge_types])]
        self.edge_beta = np.array([k[2] for k in self.edge_types])
        self.edge_shift = self.edge_beta + self.edge_parts[0].lower + self.edge_parts[1].lower
        self.edge_random = [tuple(d for d in k[:2] if not d.is_constant) for k in self.edge_types]
        # vectorised per-type facts: worker components (compute, overhead, uplink), edge components
        # (process, uplink)
        self.worker_parts = [DistributionBatch([t[c] for t in self.types]) for c in range(3)]
        # every batch's leaf tables side by side (kernels of atom/exponential mixtures are compiled)
        self._batches = [*self.worker_parts, *self.edge_parts]
        self._dist_offset = np.cumsum([0] + [len(b.dists) for b in self._batches])[:-1]
        slots = max(b.kind.shape[0] for b in self._batches)

        def table(name: str, dtype: type) -> np.ndarray:
            columns = [np.pad(getattr(b, name), ((0, slots - b.kind.shape[0]), (0, 0))) for b in self._batches]
            return np.ascontiguousarray(np.concatenate(columns, axis=1).astype(dtype))

        self._leaf_tables = (table("kind", np.int64), table("weight", float), table("head", float),
                             table("leaf_mean", float))
        # per worker type and component (compute, overhead, uplink): random?, central 80% width, lower end,
        # 1 - PMF_EPS quantile width; per edge type and component (process, uplink): random?
        self._worker_facts = tuple(np.stack([getattr(part, name) for part in self.worker_parts])
                                   for name in ("random", "spread", "lower", "extent"))
        self._edge_random_parts = np.stack([part.random for part in self.edge_parts])
        # whether T can have atoms: some edge whose delays and some of whose workers' delays all have atoms
        worker_atomic = np.all([part.atomic for part in self.worker_parts], axis=0)[self.worker_type]
        edge_atomic = (self.edge_parts[0].atomic & self.edge_parts[1].atomic)[self.edge_type]
        self.discrete = bool(any(edge_atomic[i] and worker_atomic[topo.offsets[i]: topo.offsets[i] + m].any()
                                 for i, m in enumerate(topo.workers)))
        """Whether some node's delivery time has an atom (then ``T`` may have jumps and the grid error is
        first-order and irregular; see :func:`refinement_error`)."""
        self._job_arrays: dict[_EdgeJob, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        self._excess: dict[float, np.ndarray] = {}

    # -- strategies as order statistics ----------------------------------------------------------------
    def _slots(self, strategy: Strategy, edge_message: float, by_edge: bool = True
               ) -> list[tuple[int, tuple[Row, ...], tuple[int, ...]]]:
        """Per participating edge (or, with ``by_edge=False``, for all workers together): ``(edge, rows,
        counts)`` with ``counts[i]`` workers of row ``rows[i] = (type, load, offset)``, rows sorted. The
        offset is every constant delay after the worker's compute: its link's per-vector time and, for a
        decoding edge, the edge's constant parts (``β·len_e`` and the lower ends of ``P`` and ``V``)."""
        topo = self.model.topology
        sizes = np.fromiter((len(w) for w in strategy.workers), dtype=np.intp, count=len(strategy.workers))
        edges = np.asarray(strategy.edges, dtype=np.intp)
        positions = np.fromiter(itertools.chain.from_iterable(strategy.workers), dtype=np.intp, count=int(sizes.sum()))
        edge_of = np.repeat(np.arange(len(edges)), sizes)
        ids = topo.offsets[edges][edge_of] + positions
        types = self.worker_type[ids]
        if strategy.worker_loads is None:
            loads = np.full(ids.size, float(strategy.load))
        else:
            loads = np.asarray(strategy.loads, dtype=float)
        t = self.edge_type[edges]
        shift = self.edge_beta[t] * edge_message + self.edge_parts[0].lower[t] + self.edge_parts[1].lower[t]
        offsets = shift[edge_of] + self.model.worker_per_vector_array[ids] * strategy.plan.worker_message
        group = edge_of if by_edge else np.zeros(ids.size, dtype=np.intp)
        order = np.lexsort((offsets, loads, types, group))
        keys = (group[order], types[order], loads[order], offsets[order])
        change = np.ones(ids.size, dtype=bool)
        change[1:] = np.any([k[1:] != k[:-1] for k in keys], axis=0)
        starts = np.nonzero(change)[0]
        counts = np.diff(np.append(starts, ids.size)).tolist()
        first = [k[starts].tolist() for k in keys]
        rows = list(zip(first[1], first[2], first[3]))
        bounds = np.searchsorted(first[0], np.arange(int(group.max()) + 2)).tolist() if ids.size else [0, 0]
        members = edges.tolist() if by_edge else [-1]
        return [(members[g], tuple(rows[bounds[g]: bounds[g + 1]]), tuple(counts[bounds[g]: bounds[g + 1]]))
                for g in range(len(members))]

    def plan(self, strategy: Strategy) -> _Plan:
        """The order statistics that make up ``strategy``'s iteration time (from its :class:`~hgc.schemes.Plan`)."""
        timing = strategy.plan
        group = strategy.load if strategy.worker_loads is None else strategy.worker_loads
        if timing.relay:
            return self._relay_plan(strategy, group)
        slots = self._slots(strategy, timing.edge_message)
        jobs: dict[_EdgeJob, int] = {}
        for (edge, rows, counts), wait in zip(slots, timing.edge_wait):  # type: ignore[arg-type]
            total = sum(counts)
            if not 1 <= wait <= total:
                raise ValueError(f"edge {edge} waits for {wait} of its {total} participating workers")
            job = _EdgeJob(int(self.edge_type[edge]), rows, counts, total - wait)
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
        _, rows, counts = self._slots(strategy, timing.worker_message, by_edge=False)[0]
        total = sum(counts)
        if not 1 <= timing.master_wait <= total:
            raise ValueError(f"the master waits for {timing.master_wait} of {total} worker messages")
        job = _EdgeJob(-1, rows, counts, total - timing.master_wait)
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

    def edge_quantiles(self, q: float, message: float = 1.0) -> np.ndarray:
        """Per edge of the model: ``β · message`` (its per-vector time for a message of that length, a
        fraction of a gradient) plus the quantiles at ``q`` of its processing and link delays (s)."""
        return (self.edge_quantile_sum(q) - (1.0 - message) * self.edge_beta)[self.edge_type]

    # -- support bounds --------------------------------------------------------------------------------
    def _type_quantiles(self, q: float) -> tuple[np.ndarray, np.ndarray]:
        """Per worker type: the compute quantile at ``q`` and the sum of the other components' quantiles."""
        parts = self.worker_parts
        return parts[0].quantiles(q), parts[1].quantiles(q) + parts[2].quantiles(q)

    def _edge_excess(self, q: float) -> np.ndarray:
        """Per edge type: the sum over its random components of (quantile at ``q`` - lower end)."""
        cached = self._excess.get(q)
        if cached is None:
            cached = np.zeros(len(self.edge_types))
            for part in self.edge_parts:
                cached = cached + np.where(part.random, part.quantiles(q) - part.lower, 0.0)
            self._excess[q] = cached
        return cached

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

    def layout_bounds(self, layout: "_Layout", eps_low: float, eps_high: Sequence[float]) -> np.ndarray:
        """:meth:`bounds` of every plan of ``layout`` at once (rows in plan order), vectorised over jobs."""
        qs = [eps_low, *(1.0 - e for e in eps_high)]
        job_bounds = np.full((layout.n_jobs + 1, len(qs)), np.inf)
        excess = np.stack([self._edge_excess(q) for q in qs]) if len(self.edge_types) else None
        for block in layout.blocks:
            rows = np.stack([np.append(self._row_quantiles(block.row_types, block.row_loads, block.row_offsets, q),
                                       np.inf) for q in qs])
            values = rows[:, block.index]                                    # (quantiles, jobs, slots)
            needed = block.counts.sum(axis=1) - block.tolerated
            kth = compiled.kth_smallest(values, block.counts, needed)
            if self.model.worker_failure > 0:
                high = np.array([q > 0.5 for q in qs])
                kth[high] = np.where(block.counts > 0, values[high], -np.inf).max(axis=2)
            linked = np.nonzero(block.edge_types >= 0)[0]
            if linked.size and excess is not None:
                kth[:, linked] += excess[:, block.edge_types[linked]]
            job_bounds[block.jobs] = kth.T
        values = np.moveaxis(job_bounds[layout.master_index], 2, 0)        # (quantiles, plans, slots)
        needed = layout.master_counts.sum(axis=1) - layout.master_tolerated
        out = compiled.kth_smallest(np.ascontiguousarray(values), layout.master_counts, needed).T
        if self.model.edge_failure > 0:
            out[:, 1:] = np.where(layout.master_counts > 0, values[1:], -np.inf).max(axis=2).T
        out[:, 1:] = np.maximum.accumulate(np.maximum(out[:, 1:], out[:, :1]), axis=1)
        return out

    # -- the computation on a grid ---------------------------------------------------------------------
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
        flat = [unique.setdefault(row, len(unique)) for job in block for row in job.rows]
        facts = np.array([(len(job.rows), job.edge_type, job.tolerated) for job in block], dtype=np.int64)
        sizes, edge_types, tolerated = facts[:, 0], facts[:, 1], facts[:, 2]
        present = np.arange(int(sizes.max()))[None, :] < sizes[:, None]
        index = np.full(present.shape, len(unique), dtype=np.intp)
        index[present] = flat
        counts = np.zeros(present.shape, dtype=np.int64)
        counts[present] = [c for job in block for c in job.counts]
        table = np.array(list(unique), dtype=float)
        types, loads, offsets = table[:, 0].astype(np.intp), table[:, 1], table[:, 2]
        # worker rows: the widest random component (central 80%) is evaluated exactly, the others convolved
        random, spread, lower, extent = (a[:, types] for a in self._worker_facts)
        factor = np.ones((3, len(types)))
        factor[0] = loads
        exact = np.argmax(np.where(random, factor * spread, -1.0), axis=0)
        shifts = (factor * lower).sum(axis=0) + offsets
        lowest = np.append(self._row_quantiles(types, loads, offsets, 0.0), np.inf)[index].min(axis=1)
        convolved = random & (exact != np.arange(3)[:, None])
        linked = edge_types >= 0
        edge_random = self._edge_random_parts[:, np.maximum(edge_types, 0)] & linked
        # stages (worker components, then edge components) with one kernel per distinct (distribution, scale)
        kernels: dict[tuple[int, int, float], int] = {}
        firsts: list[tuple[int, int, float, int]] = []
        banks: list[tuple[bool, np.ndarray]] = []
        extents: list[float] = []
        for batch in range(5):
            if batch < 3:
                chosen = np.nonzero(convolved[batch])[0]
                kinds, scales = types[chosen], factor[batch, chosen]
            else:
                chosen = np.nonzero(edge_random[batch - 3])[0]
                kinds, scales = edge_types[chosen], np.ones(chosen.size)
            if not chosen.size:
                continue
            same = self._batches[batch].same[kinds]
            if (same == same[0]).all() and (scales == scales[0]).all():     # one kernel for the whole stage
                rows_of = np.full(chosen.size, len(firsts), dtype=np.int64)
                firsts.append((batch, int(kinds[0]), float(scales[0]), len(banks)))
            else:
                rows_of = np.empty(chosen.size, dtype=np.int64)
                for i, (kind, key, scale) in enumerate(zip(kinds.tolist(), same.tolist(), scales.tolist())):
                    k = kernels.setdefault((batch, key, scale), len(firsts))
                    if k == len(firsts):
                        firsts.append((batch, kind, scale, len(banks)))
                    rows_of[i] = k
            bank = np.full(len(types) if batch < 3 else len(block), -1, dtype=np.int64)
            bank[chosen] = rows_of
            banks.append((batch < 3, bank))
            extents.append(float((scales * self._batches[batch].extent[kinds]).max()))
        spec = np.array(firsts, dtype=float).reshape(-1, 4)
        kernel_batch, kernel_type = spec[:, 0].astype(np.int64), spec[:, 1].astype(np.int64)
        worker = [i for i, (flag, _) in enumerate(banks) if flag]
        edge = [i for i, (flag, _) in enumerate(banks) if not flag]

        def stack(chosen: list[int], rows: int) -> np.ndarray:
            return np.stack([banks[i][1] for i in chosen]) if chosen else np.full((1, rows), -1, dtype=np.int64)

        groups = np.flatnonzero(np.bincount(exact, minlength=3)).tolist()
        exact_cdfs: list[tuple[np.ndarray | None, Callable[[np.ndarray], np.ndarray]]] = []
        for c in groups:
            if len(groups) == 1:
                exact_cdfs.append((None, self.worker_parts[c].prepare_cdf(types)))
            else:
                chosen = np.nonzero(exact == c)[0]
                exact_cdfs.append((chosen, self.worker_parts[c].prepare_cdf(types[chosen])))
        columns = np.arange(len(types))
        return _Block(members, types, loads, offsets, index, counts, tolerated, edge_types, lowest, shifts,
                      factor[exact, columns], lower[exact, columns], exact_cdfs,
                      stack(worker, len(types)), stack(edge, len(block)),
                      np.array([extents[i] for i in worker]), np.array([extents[i] for i in edge]),
                      kernel_batch, kernel_type, spec[:, 2].copy(), spec[:, 3].astype(np.int64),
                      self._dist_offset[kernel_batch] + kernel_type,
                      bool(all(self._batches[b].simple[t] for b, t in zip(kernel_batch.tolist(), kernel_type.tolist()))))

    def _kernel_bank(self, block: "_Block", caps: np.ndarray, steps: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The kernels of ``block`` (row ``k * levels + l``: kernel ``k`` on lattice ``l``) with at most
        ``caps[stage, l]`` explicit weights: compiled closed forms, or each batch's general discretisation."""
        if block.simple:
            return compiled.simple_kernels(block.kernel_dist, block.kernel_scale, block.kernel_stage, caps, steps,
                                           *self._leaf_tables)
        levels = len(steps)
        parts = []
        for k in range(len(block.kernel_type)):
            batch = self._batches[int(block.kernel_batch[k])]
            kp = batch.kernel_parts(block.kernel_type[k: k + 1], block.kernel_scale[k: k + 1], steps,
                                    caps[block.kernel_stage[k]])
            parts.append(kp)
        size = max(kp.fir.shape[-1] for kp in parts)
        tails = max(kp.tail_amp.shape[-1] for kp in parts)

        def stack(name: str, width: int | None) -> np.ndarray:
            arrays = [getattr(kp, name).reshape(levels, getattr(kp, name).shape[-1]) if width is not None
                      else getattr(kp, name).reshape(levels) for kp in parts]
            if width is not None:
                arrays = [np.pad(a, ((0, 0), (0, width - a.shape[1]))) for a in arrays]
            return np.ascontiguousarray(np.concatenate(arrays, axis=0))

        return (stack("fir", size), stack("fir_length", None), stack("tail_amp", tails), stack("tail_ratio", tails),
                stack("tail_start", tails), stack("tail_count", None))

    def _block_on_levels(self, lattices: Sequence[Lattice], block: "_Block") -> np.ndarray:
        """CDF of each job of ``block``'s arrival at the master on each of ``lattices``, side by side, each
        followed by its value at ``t = ∞``: shape ``(jobs, Σ (points + 1))``.

        Worker rows are computed from ``extra`` points before each lattice (as far back as the link
        delays' kernels reach, or to the earliest possible arrival) and their discretised components
        reach back to the earliest possible delivery, so that no mass is cut off."""
        points = np.array([lat.points for lat in lattices], dtype=np.int64)
        steps = np.array([lat.step for lat in lattices])
        starts = np.array([lat.start for lat in lattices])
        rows, jobs = len(block.row_types), len(block.edge_types)
        edge_caps, extras, lengths, firsts, worker_caps, worker_extras = compiled.pass_geometry(
            points, steps, starts, float(block.lowest.min()), block.edge_extents, float(block.shifts.min()),
            block.worker_extents)
        # the exactly evaluated component at the points
        x = compiled.grid_points(firsts, steps, lengths, worker_extras, block.shifts, block.exact_scale,
                                 block.exact_low)
        if len(block.exact_cdfs) == 1:
            values = block.exact_cdfs[0][1](x)
        else:
            values = np.empty_like(x)
            for chosen, function in block.exact_cdfs:
                values[chosen] = function(x[chosen])
        bank = self._kernel_bank(block, np.concatenate([worker_caps, edge_caps]), steps)
        if not (bank[1] > FIR_DIRECT_MAX).any():                     # the usual case: one compiled call
            return compiled.block_rows(values, points, lengths, worker_extras, extras, block.worker_bank,
                                       block.edge_bank, *bank, block.index, block.counts, block.tolerated,
                                       block.edge_types >= 0, float(self.model.worker_failure),
                                       float(self.model.edge_failure))
        # worker rows convolved, on segments of lengths + extras, into columns of lengths + 1 (last: t = ∞)
        segments = lengths + worker_extras
        columns = np.cumsum(lengths + 1)
        out_start = columns - (lengths + 1)
        cdf = np.empty((rows + 1, int(columns[-1])))
        _convolve(values, np.cumsum(segments) - segments, segments, block.worker_bank, bank, cdf, out_start,
                  worker_extras)
        cdf[:rows, columns - 1] = 1.0
        if self.model.worker_failure > 0:
            cdf[:rows] *= 1.0 - self.model.worker_failure
        cdf[rows] = 1.0                                    # padding row: always finished
        edge_cdf = np.empty((jobs, cdf.shape[1]))
        compiled.order_statistics(cdf, block.index, block.counts, block.tolerated, edge_cdf)
        level_end = np.cumsum(points + 1)
        out = np.empty((jobs, int(level_end[-1])))
        _convolve(edge_cdf, out_start, lengths, block.edge_bank, bank, out, level_end - (points + 1), extras)
        out[:, level_end - 1] = edge_cdf[:, columns - 1]
        if self.model.edge_failure > 0:
            linked = block.edge_types >= 0
            if linked.any():
                out[linked] *= 1.0 - self.model.edge_failure
        return out

    def _plans_on_levels(self, plans: Sequence[_Plan], lattices: Sequence[Lattice], layout: "_Layout | None" = None
                         ) -> list[np.ndarray]:
        """CDF of ``T`` (plus ``t = ∞``) of ``plans`` on each of ``lattices``, all computed together: one array
        ``(len(plans), points + 1)`` per lattice."""
        ends = np.cumsum([lat.points + 1 for lat in lattices])
        if layout is None:
            layout = self.layout(plans, int(ends[-1]))
        job_cdfs = np.empty((layout.n_jobs + 1, int(ends[-1])))
        job_cdfs[-1] = 1.0                                   # padding: always arrived
        for block in layout.blocks:
            job_cdfs[block.jobs] = self._block_on_levels(lattices, block)
        out = np.empty((len(layout.master_tolerated), int(ends[-1])))
        compiled.order_statistics(job_cdfs, layout.master_index, layout.master_counts, layout.master_tolerated, out)
        return [out[:, end - lat.points - 1: end] for lat, end in zip(lattices, ends.tolist())]

    def _plans_on_lattice(self, plans: Sequence[_Plan], lattice: Lattice, layout: "_Layout | None" = None
                          ) -> np.ndarray:
        """CDF of ``T`` (plus ``t = ∞``) of ``plans`` on ``lattice``: ``(len(plans), n+1)``."""
        return self._plans_on_levels(plans, [lattice], layout)[0]

    def _plans_on_grid(self, plans: Sequence[_Plan], grid: Grid, points: int | Sequence[int] | None = None,
                       layout: _Layout | None = None) -> tuple[list[np.ndarray], list[Lattice]]:
        """Per-level CDFs of ``plans`` on ``grid`` with ``points`` per level; with several ``points``, the
        grids of every resolution computed together (levels of the first, then of the second, ...)."""
        sizes = [points] if points is None or isinstance(points, (int, np.integer)) else list(points)
        lattices = [lat for size in sizes for lat in grid.lattices(size)]
        if layout is None:
            layout = self.layout(plans, sum(lat.points for lat in lattices))
        return self._plans_on_levels(plans, lattices, layout), lattices

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
        if bounds is None and layout is not None:
            bounds = self.layout_bounds(layout, eps, (eps,))
        elif bounds is None:
            cache: dict = {}
            bounds = np.array([self.bounds(plan, eps, (eps,), cache) for plan in plans])
        low, high = float(bounds[:, 0].min()), float(bounds[:, -1].max())
        coarse = Lattice.spanning(low, high, COARSE_POINTS)
        cdf = self._plans_on_lattice(plans, coarse, layout)
        decoded = cdf[:, -1:]
        survival = (1.0 - np.divide(cdf[:, :-1], decoded, out=np.ones_like(cdf[:, :-1]), where=decoded > 0)).max(axis=0)
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
        layout = self.layout(plans, points * len(LEVEL_TAILS))
        grid, coarse, coarse_cdf = self.grid_for(plans, points, SEARCH_EPS, bounds, layout=layout)
        decoded = coarse_cdf[:, -1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            survival = np.where(decoded > 0, 1.0 - coarse_cdf[:, :-1] / decoded, 0.0).max(axis=0)
        small = np.nonzero(survival <= COARSE_TAIL)[0]
        if len(grid.ends) == 1 or small.size == 0 or grid.ends[-2] < coarse.start + coarse.step * small[0]:
            cdfs, lattices = self._plans_on_grid(plans, grid, layout=layout)
            return cdfs, lattices, grid.segments(lattices)
        lattices = [Lattice.spanning(grid.start, end, points) for end in grid.ends[:-1]]
        cdfs = self._plans_on_levels(plans, lattices, layout)
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

    def evaluate(self, strategy: Strategy, *, rtol: float = 1e-4, min_points: int = MIN_POINTS,
                 max_points: int = 1 << 18) -> Evaluation:
        """``E[T]`` and the CDF of ``T`` for ``strategy``, halving the grid step until the estimated error
        of ``E[T]`` (:func:`refinement_error` of the successive values, plus the truncated tail) is below
        ``rtol`` (relative).

        The grid (see :meth:`grid_for`) spans ``T``'s support up to a survival of ``1e-13``, with finer
        nested levels over the body when the tail is long; every level starts with ``min_points`` points.
        ``converged`` is False if ``max_points`` (per level) was reached first.
        """
        plan = self.plan(strategy)
        base = int(min_points)
        layout = self.layout([plan], COARSE_POINTS)
        grid = self.grid_for([plan], base, ACCURATE_EPS, layout=layout)[0]
        levels = len(grid.ends)
        # the first three resolutions in one pass (an error estimate needs three values), then one at a time
        sizes = [base]
        while len(sizes) < 3 and (sizes[-1] - 1) * 2 + 1 <= max_points:
            sizes.append((sizes[-1] - 1) * 2 + 1)
        converged, error = False, math.inf
        history: list[np.ndarray] = []        # per grid: the integral over each level
        while True:
            if not self._fits(layout, sum(sizes) * levels):
                layout = self.layout([plan], sum(sizes) * levels)   # re-blocked for longer grids (bounded memory)
            all_cdfs, all_lattices = self._plans_on_grid([plan], grid, sizes, layout)
            for i in range(len(sizes)):
                cdfs, lattices = all_cdfs[i * levels: (i + 1) * levels], all_lattices[i * levels: (i + 1) * levels]
                parts, decoded_all, tail_all = integrate_levels(cdfs, lattices, grid.segments(lattices))
                history.append(parts[0])
            points, decoded, tail = sizes[-1], float(decoded_all[0]), float(tail_all[0])
            if not decoded > 0:
                break
            mean = grid.start + float(history[-1].sum())
            error = refinement_error(np.array(history), self.discrete) + tail * (lattices[-1].end - lattices[-1].start)
            if error <= rtol * abs(mean) or (math.isfinite(error) and lattices[0].step <= 1e-12 * max(1.0, abs(mean))):
                converged = True
                break
            if (points - 1) * 2 + 1 > max_points:
                break
            sizes = [(points - 1) * 2 + 1]
        segments = grid.segments(lattices)
        times = np.concatenate([lat.times[seg] for lat, seg in zip(lattices, segments)])
        values = np.concatenate([cdf[0, :-1][seg] for cdf, seg in zip(cdfs, segments)])
        if not decoded > 0:
            return Evaluation(strategy, math.nan, 0.0, times, values, math.nan, points, False)
        return Evaluation(strategy, mean, decoded, times, values, error, points * len(lattices), converged)

    @staticmethod
    def _fits(layout: "_Layout", points: int) -> bool:
        """Whether ``layout``'s blocks stay within the memory budget on grids of ``points`` points (then
        :meth:`layout` would block the same way)."""
        return all(len(block.jobs) == 1 or len(block.jobs) * block.index.shape[1] * 2 * points <= BLOCK_ELEMENTS
                   for block in layout.blocks)

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



FIR_DIRECT_MAX = 64
"""Explicit kernel heads longer than this are convolved by FFT, shorter ones by direct sums."""

Bank = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _convolve(values: np.ndarray, seg_start: np.ndarray, seg_length: np.ndarray, bank_row: np.ndarray, bank: Bank,
              out: np.ndarray, out_start: np.ndarray, skip: np.ndarray) -> None:
    """Convolve the rows of ``values`` (level ``l`` in columns ``seg_start[l] ..`` of length ``seg_length[l]``)
    with the kernels ``bank_row[stage, row]`` of ``bank`` one stage after the other, and write level ``l``'s
    values from ``skip[l]`` on, clipped to ``[0, 1]``, to ``out[:, out_start[l]:]`` (see
    :func:`hgc.analytic.compiled.convolve_chain`). Long explicit kernel heads are convolved by FFT."""
    fir, fir_length = bank[0], bank[1]
    levels = len(seg_start)
    used = bank_row.max(axis=1)
    long = fir_length > FIR_DIRECT_MAX
    if not long.any() or used.max() < 0:
        compiled.convolve_chain(values, seg_start, seg_length, bank_row, *bank, _EMPTY, False, out, out_start, skip,
                                True)
        return
    x = values
    stages = bank_row.shape[0]
    for s in range(stages):
        last = s == stages - 1
        pre = np.zeros_like(x)
        ids = np.where(bank_row[s][:, None] >= 0, bank_row[s][:, None] * levels + np.arange(levels)[None, :], -1)
        _fft_heads(x, seg_start, seg_length, ids, fir, fir_length, long, pre)
        short = (np.where(long, 0, fir_length),)
        target = out if last else np.empty_like(x)
        compiled.convolve_chain(x, seg_start, seg_length, bank_row[s: s + 1], fir, *short, *bank[2:], pre, True,
                                target, out_start if last else seg_start,
                                skip if last else np.zeros(levels, dtype=np.int64), last)
        x = target


def _fft_heads(x: np.ndarray, seg_start: np.ndarray, seg_length: np.ndarray, kernel_id: np.ndarray, fir: np.ndarray,
               fir_length: np.ndarray, long: np.ndarray, pre: np.ndarray) -> None:
    """``pre`` = the segments of ``x`` convolved with the long explicit kernel heads (FFT), per level."""
    for l in range(len(seg_start)):
        ids = kernel_id[:, l]
        rows = np.nonzero((ids >= 0) & long[np.maximum(ids, 0)])[0]
        if rows.size == 0:
            continue
        first, length = int(seg_start[l]), int(seg_length[l])
        size = int(fir_length[ids[rows]].max())
        pre[rows, first: first + length] = convolve_rows(x[rows, first: first + length], fir[ids[rows], :size], 0, length)


_EMPTY = np.zeros((0, 0))
