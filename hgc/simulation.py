"""Monte Carlo simulation of one training iteration under each scheme.

Trials are drawn in *stream blocks*: block ``b`` draws every delay of every node from its own generator
``stream(seed, Stream.SIMULATION, b)``, and a block holds 4096 trials, fewer on systems of more than 512
nodes (:func:`block_trials`: at most :data:`BLOCK_NODE_TRIALS` node-trials), so results depend on the
seed and the number of trials only. All strategies of a run are evaluated on the same draws (common random
numbers): speed-ups are paired comparisons. Memory is bounded in bytes whatever the system and the number
of trials: a *pass* evaluates as many consecutive blocks as the memory budget allows
(:func:`plan_passes`), and per strategy only running moments and a fine log-spaced histogram of iteration
times (for quantiles) are kept. Moments are merged block by block in stream order, so neither the budget,
nor the evaluator backend, nor an executor spreading *jobs* of blocks over processes or machines changes a
single bit of the results.

Layout: :class:`Sampler` draws a :class:`DelaySample`; a :class:`CompiledStrategy` (NumPy) or the compiled
evaluator of :mod:`hgc.simkernel` (numba, the same numbers) turns it into iteration times; block moments
and :class:`TimeStatistics` accumulate them; :func:`run_strategies` runs many trials, here or on an
executor.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from hgc.distributions import Distribution, StandardFamily
from hgc.errors import ConfigError, Interrupted
from hgc.interrupts import deferred_interrupts
from hgc.rng import Stream, stream
from hgc.schemes import Strategy
from hgc.timing import TimingModel
from hgc.topology import Topology

CHUNK_TRIALS = 4096
"""Trials per random-stream block (fewer on large systems, see :func:`block_trials`). Part of the
definition of a seeded run: changing it changes the sampled numbers."""

BLOCK_NODE_TRIALS = 2 ** 21
"""At most this many node-trials per stream block (16 MiB per float64 array). Part of the definition of a
seeded run."""

MIB = 2 ** 20
DEFAULT_MEMORY = 256 * MIB
"""Default budget (bytes) for the simulator's working arrays; the interpreter and libraries come on top."""

PASS_NODE_TRIALS = 2 ** 19
"""Node-trials a pass aims for: blocks of small systems are evaluated several at a time (fewer calls),
large ones one at a time (cache-sized arrays)."""

PASS_MIN_TRIALS = 256
"""Trials a pass aims for at least (budget permitting): the compiled evaluator's set-up per node and tile
is then small against the work."""

WORKING_ARRAYS = {"numpy": 6, "numba": 3}
"""Float64 arrays per worker alive at once while a pass is evaluated (upper estimates). NumPy: the
samples and the evaluator's per-strategy temporaries; compiled: the pass's samples and one block's draws."""

BACKENDS = ("numba", "numpy")


# ----------------------------------------------------------------------------------------------------
# Sampling

@dataclass
class DelaySample:
    """Delays (seconds) of every node for ``trials`` iterations; arrays are ``(nodes, trials)``.

    Trials run along the last, contiguous axis so that order statistics over a handful of nodes are
    element-wise operations on long rows. ``compute`` is each worker's whole-dataset compute time (speed
    applied); ``fixed`` its load-independent delay (overhead + uplink), an array or a scalar when it is
    the same constant for all; ``edge_delay`` is ``P_i + V_i``. Failure masks are ``None`` when failures
    are off.
    """

    trials: int
    compute: np.ndarray
    fixed: np.ndarray | float
    edge_delay: np.ndarray | float
    worker_failed: np.ndarray | None
    edge_failed: np.ndarray | None
    compute_affine: tuple[np.ndarray, np.ndarray] | None = None
    fixed_affine: tuple[np.ndarray, np.ndarray] | None = None

    def materialized(self) -> "DelaySample":
        """This sample with every delay in seconds. A sample drawn with ``deferred=True`` holds standard
        draws in ``compute`` (or ``fixed``) and per-row ``(scale, loc)`` in ``compute_affine`` (or
        ``fixed_affine``): the delay is ``draw · scale + loc``, the two roundings
        :meth:`~hgc.distributions.StandardFamily.sample` makes."""
        if self.compute_affine is None and self.fixed_affine is None:
            return self
        return replace(self, compute=np.asarray(_affine(self.compute, self.compute_affine)),
                       fixed=_affine(self.fixed, self.fixed_affine), compute_affine=None, fixed_affine=None)


def _affine(draws: np.ndarray | float, affine: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray | float:
    if affine is None:
        return draws
    scale, loc = affine
    out = draws * scale[:, None]
    out += loc[:, None]
    return out


NodeGroups = tuple[tuple[Distribution, "slice | np.ndarray"], ...]


def _node_groups(dists: Sequence[Distribution]) -> NodeGroups:
    """Nodes sharing a distribution, in order of first appearance: ``(dist, rows)`` with ``rows`` a slice
    when the nodes are consecutive."""
    by_object: dict[int, list[int]] = {}  # equal distributions are mostly the same object: hash each once
    first: dict[int, Distribution] = {}
    for j, dist in enumerate(dists):
        rows_of = by_object.get(id(dist))
        if rows_of is None:
            rows_of = by_object[id(dist)] = []
            first[id(dist)] = dist
        rows_of.append(j)
    groups: dict[Distribution, list[int]] = {}
    for key, rows_of in by_object.items():
        groups.setdefault(first[key], []).extend(rows_of)
    out = []
    for dist, rows in groups.items():
        rows.sort()
        contiguous = rows[-1] - rows[0] + 1 == len(rows)
        out.append((dist, slice(rows[0], rows[-1] + 1) if contiguous else np.array(rows, dtype=np.intp)))
    return tuple(out)


def _draw_groups(groups: NodeGroups, nodes: int, rng: np.random.Generator, trials: int) -> np.ndarray | float:
    """A ``(nodes, trials)`` array with the rows of each group drawn from its distribution in one call, in
    group order; a scalar if all nodes share one constant."""
    if len(groups) == 1:
        ((dist, _),) = groups
        if dist.is_constant:
            return float(dist.ppf(0.5))
        return dist.sample(rng, (nodes, trials))
    out = np.empty((nodes, trials))
    for dist, rows in groups:
        count = rows.stop - rows.start if isinstance(rows, slice) else len(rows)
        if dist.is_constant:
            out[rows] = float(dist.ppf(0.5))
        else:
            out[rows] = dist.sample(rng, (count, trials))
    return out


def _draw_per_node(dists: Sequence[Distribution], rng: np.random.Generator, trials: int) -> np.ndarray | float:
    """A ``(len(dists), trials)`` array with row ``j`` drawn from ``dists[j]``; a scalar if all are the
    same constant. Nodes sharing a distribution are drawn in one call, in order of first appearance."""
    return _draw_groups(_node_groups(dists), len(dists), rng, trials)


def _add(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray | float:
    if np.isscalar(b) and b == 0.0:
        return a
    if np.isscalar(a) and a == 0.0:
        return b
    return a + b


def _standard_rows(groups: NodeGroups, nodes: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-row ``(scale, loc)`` when every group is a location-scale family, else ``None``."""
    if not all(isinstance(dist, StandardFamily) for dist, _ in groups):
        return None
    scale, loc = np.empty(nodes), np.empty(nodes)
    for dist, rows in groups:
        scale[rows] = dist.scale  # type: ignore[attr-defined]
        loc[rows] = dist.loc  # type: ignore[attr-defined]
    return scale, loc


def _draw_standard(groups: NodeGroups, nodes: int, rng: np.random.Generator, trials: int) -> np.ndarray:
    """Like :func:`_draw_groups` for location-scale groups, but the standard draws (the same random
    numbers, before ``· scale + loc``)."""
    if len(groups) == 1:
        ((dist, _),) = groups
        return dist.standard_sample(rng, dist.shape, (nodes, trials))  # type: ignore[attr-defined]
    out = np.empty((nodes, trials))
    for dist, rows in groups:
        count = rows.stop - rows.start if isinstance(rows, slice) else len(rows)
        out[rows] = dist.standard_sample(rng, dist.shape, (count, trials))  # type: ignore[attr-defined]
    return out


def _is_zero(groups: NodeGroups) -> bool:
    return len(groups) == 1 and groups[0][0].is_constant and float(groups[0][0].ppf(0.5)) == 0.0


class Sampler:
    """Draws :class:`DelaySample` blocks of one model; which nodes share a distribution is worked out once
    (it costs a pass over every node's distribution, too slow to repeat per block on large systems)."""

    def __init__(self, model: TimingModel):
        self.model = model
        self._groups = [_node_groups(dists) for dists in (model.worker_compute, model.worker_overhead,
                                                           model.worker_uplink, model.edge_process,
                                                           model.edge_uplink)]
        workers = model.topology.n_workers
        compute_g, overhead_g, uplink_g = self._groups[:3]
        self._compute_affine = _standard_rows(compute_g, workers)
        self._fixed_affine = None
        self._fixed_section = -1
        for section, other in ((1, 2), (2, 1)):  # fixed = overhead + uplink: defer when one is zero
            groups = self._groups[section]
            if _is_zero(self._groups[other]) and not _is_zero(groups) and not all(
                    d.is_constant for d, _ in groups):
                self._fixed_affine = _standard_rows(groups, workers)
                self._fixed_section = section if self._fixed_affine is not None else -1
                break

    def sample(self, rng: np.random.Generator, trials: int, deferred: bool = False) -> DelaySample:
        """Every node's delays for ``trials`` iterations, in a fixed order (reproducible). With
        ``deferred``, location-scale delays may come as standard draws and per-row ``(scale, loc)`` (see
        :meth:`DelaySample.materialized`): the same random numbers, one pass over the arrays less."""
        model = self.model
        workers, edges = model.topology.n_workers, model.topology.n_edges
        compute_g, overhead_g, uplink_g, process_g, edge_uplink_g = self._groups
        compute_affine = self._compute_affine if deferred else None
        compute: np.ndarray
        if compute_affine is not None:
            compute = _draw_standard(compute_g, workers, rng, trials)
        else:
            drawn = _draw_groups(compute_g, workers, rng, trials)
            compute = drawn if isinstance(drawn, np.ndarray) else np.full((workers, trials), drawn)
        fixed_affine = self._fixed_affine if deferred else None
        fixed: np.ndarray | float
        if fixed_affine is not None:  # one of overhead and uplink is zero: draw the other where it comes
            fixed = _draw_standard(self._groups[self._fixed_section], workers, rng, trials)
        else:
            fixed = _add(_draw_groups(overhead_g, workers, rng, trials), _draw_groups(uplink_g, workers, rng, trials))
        edge_delay = _add(_draw_groups(process_g, edges, rng, trials), _draw_groups(edge_uplink_g, edges, rng, trials))
        worker_failed = (rng.random((workers, trials)) < model.worker_failure if model.worker_failure > 0 else None)
        edge_failed = (rng.random((edges, trials)) < model.edge_failure if model.edge_failure > 0 else None)
        return DelaySample(trials, compute, fixed, edge_delay, worker_failed, edge_failed,
                           compute_affine, fixed_affine)


def sample_delays(model: TimingModel, rng: np.random.Generator, trials: int) -> DelaySample:
    """Draw every node's delays for ``trials`` iterations, in a fixed order (reproducible)."""
    return Sampler(model).sample(rng, trials)


# ----------------------------------------------------------------------------------------------------
# Order statistics along the node axis

REGISTER_LIMIT = 6
"""Up to this rank, the r-th largest is found with r running maxima (2r element-wise ops per row) instead of
``np.partition``: cheaper when r is small, which it is for the tolerances that pay off."""


def kth_largest(values: np.ndarray, rank: int, axis: int = 0) -> np.ndarray:
    """The ``rank``-th largest (1-based) along ``axis``; ``-inf`` entries act as absent nodes."""
    size = values.shape[axis]
    if rank == 1:
        return values.max(axis=axis)
    if rank == size:
        return values.min(axis=axis)
    if rank <= REGISTER_LIMIT:
        rows = np.moveaxis(values, axis, 0)
        top = [np.full(rows.shape[1:], -np.inf) for _ in range(rank)]  # top[0] >= top[1] >= ...
        for row in rows:
            carry = row
            for r in range(rank):
                higher = np.maximum(top[r], carry)
                carry = np.minimum(top[r], carry)
                top[r] = higher
        return top[-1]
    return np.take(np.partition(values, size - rank, axis=axis), size - rank, axis=axis)


@functools.lru_cache(maxsize=64)
def sorting_network(size: int) -> tuple[tuple[int, int], ...]:
    """Comparators ``(i, j)``, ``i < j``, of Batcher's odd-even merge sort for ``size`` inputs."""
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k - 1, size - j - k - 1) + 1):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return tuple(pairs)


SORTING_NETWORK_LIMIT = 32
"""Sort at most this many nodes per row with a sorting network of element-wise min/max over trials."""


def sort_along(values: np.ndarray, axis: int) -> np.ndarray:
    """A sorted (ascending) copy along ``axis``; for short axes via a sorting network on whole rows."""
    size = values.shape[axis]
    if size > SORTING_NETWORK_LIMIT:
        return np.sort(values, axis=axis)
    out = np.array(values, copy=True)
    rows = np.moveaxis(out, axis, 0)
    scratch = np.empty(rows.shape[1:])
    for i, j in sorting_network(size):
        np.minimum(rows[i], rows[j], out=scratch)
        np.maximum(rows[i], rows[j], out=rows[j])
        rows[i] = scratch
    return out


def kth_smallest(values: np.ndarray, k: int, axis: int = 0) -> np.ndarray:
    """The ``k``-th smallest (1-based) along ``axis``."""
    return kth_largest(values, values.shape[axis] - k + 1, axis)


MERGE_LIMIT = 16
"""Up to this rank (from the largest), the master's statistic over relayed messages comes from merging the
edges' sorted arrival lists instead of ``np.partition`` over all of them."""


def merged_kth_largest(lists: np.ndarray, rank: int) -> np.ndarray:
    """The ``rank``-th largest over ``lists`` ``(lists, length, trials)``, each list sorted ascending along
    axis 1 (a relaying edge's FIFO arrivals): a running top list merged with each list's largest values by
    a bitonic merge (elementwise maximum of a descending and an ascending list, then half-cleaners)."""
    width = 1
    while width < rank:
        width *= 2
    count, length, trials = lists.shape
    top = np.full((width, trials), -np.inf)
    for values in lists:
        tail = values[max(0, length - width):]
        np.maximum(top[width - len(tail):], tail, out=top[width - len(tail):])
        stride = width // 2
        while stride >= 1:
            pairs = top.reshape(width // (2 * stride), 2, stride, trials)
            high = np.maximum(pairs[:, 0], pairs[:, 1])
            np.minimum(pairs[:, 0], pairs[:, 1], out=pairs[:, 1])
            pairs[:, 0] = high
            stride //= 2
    return top[rank - 1]


@dataclass
class CompiledStrategy:
    """A :class:`Strategy` prepared for repeated evaluation on :class:`DelaySample` chunks.

    Follows the strategy's :class:`~hgc.schemes.Plan`: decoding edges wait for their ``edge_wait[j]``-th
    fastest worker, i.e. the ``(m_j - edge_wait[j] + 1)``-th slowest, and send one message; relaying edges
    forward every message FIFO at ``per_vector × message length`` seconds each. The master waits for the
    ``master_wait``-th arrival.
    """

    strategy: Strategy
    model: TimingModel
    worker_index: np.ndarray = field(init=False)
    edge_index: np.ndarray = field(init=False)
    master_k: int = field(init=False)

    def __post_init__(self) -> None:
        st, topo, plan = self.strategy, self.model.topology, self.strategy.plan
        self.edge_index = np.array(st.edges, dtype=np.intp)
        self.worker_index = np.concatenate([int(topo.offsets[e]) + np.asarray(ws, dtype=np.intp)
                                            for e, ws in zip(st.edges, st.workers)]).astype(np.intp)
        self.counts = np.array(st.worker_counts, dtype=np.intp)
        self.all_workers = np.array_equal(self.worker_index, np.arange(topo.n_workers))
        self.all_edges = np.array_equal(self.edge_index, np.arange(topo.n_edges))
        self.uniform = len(set(self.counts.tolist())) == 1
        self.m_max = int(self.counts.max())
        # slot of every participating worker in the padded (edge, slot) layout
        self.pad_edge = np.repeat(np.arange(len(self.edge_index)), self.counts)
        self.pad_slot = np.arange(len(self.worker_index)) - np.repeat(np.cumsum(self.counts) - self.counts,
                                                                      self.counts)
        self.load: float | np.ndarray = (st.load if st.worker_loads is None else st.loads[:, None])
        self.relay = plan.relay
        self.message = plan.worker_message if self.relay else plan.edge_message
        self.beta = self.model.per_vector_array[self.edge_index][:, None] * self.message   # (edges, 1) seconds
        link = self.model.worker_per_vector_array[self.worker_index] * plan.worker_message
        self.worker_link: np.ndarray | None = link[:, None] if np.any(link) else None
        self.master_k = int(plan.master_wait)
        if self.relay:
            self.edge_rank: int | np.ndarray = 0
        else:
            ranks = self.counts - np.asarray(plan.edge_wait, dtype=np.intp) + 1    # rank from the slowest
            self.edge_rank = int(ranks[0]) if np.all(ranks == ranks[0]) else ranks

    # -- pieces -----------------------------------------------------------------------------------
    def _worker_arrivals(self, sample: DelaySample) -> np.ndarray:
        """``C_w = load X_w + Y_w + U_w`` of the participating workers, ``inf`` where failed; ``(workers, trials)``."""
        load = self.load
        if self.all_workers:
            times = load * sample.compute
            fixed = sample.fixed
            failed = sample.worker_failed
        else:
            times = load * sample.compute[self.worker_index]
            fixed = sample.fixed[self.worker_index] if isinstance(sample.fixed, np.ndarray) else sample.fixed
            failed = None if sample.worker_failed is None else sample.worker_failed[self.worker_index]
        if not (np.isscalar(fixed) and fixed == 0.0):
            times += fixed
        if self.worker_link is not None:
            times += self.worker_link
        if failed is not None:
            times[failed] = np.inf
        return times

    def _by_edge(self, times: np.ndarray, pad: float) -> np.ndarray:
        """``(edges, m_max, trials)`` view, or a copy with ``pad`` in the empty slots of smaller edges."""
        trials = times.shape[-1]
        if self.uniform:
            return times.reshape(len(self.edge_index), self.m_max, trials)
        padded = np.full((len(self.edge_index), self.m_max, trials), pad)
        padded[self.pad_edge, self.pad_slot] = times
        return padded

    def _edge_delay(self, sample: DelaySample) -> np.ndarray | float:
        delay = sample.edge_delay
        if not isinstance(delay, np.ndarray) or self.all_edges:
            return delay
        return delay[self.edge_index]

    def _edge_failed(self, sample: DelaySample) -> np.ndarray | None:
        if sample.edge_failed is None:
            return None
        return sample.edge_failed if self.all_edges else sample.edge_failed[self.edge_index]

    def _edge_send_times(self, workers: np.ndarray) -> np.ndarray:
        """When each decoding edge has heard from enough workers, ``(edges, trials)``."""
        grouped = self._by_edge(workers, -np.inf)
        if not isinstance(self.edge_rank, np.ndarray):
            return kth_largest(grouped, int(self.edge_rank), axis=1)
        out = np.empty((grouped.shape[0], grouped.shape[2]))
        for rank in np.unique(self.edge_rank):
            rows = np.flatnonzero(self.edge_rank == rank)
            out[rows] = kth_largest(grouped[rows], int(rank), axis=1)
        return out

    def _master_arrivals(self, sample: DelaySample, workers: np.ndarray) -> np.ndarray:
        """Arrival at the master of every vector: ``(edges, trials)`` for decoding edges, ``(edges, m_max,
        trials)`` for relaying ones (``inf`` for failed nodes and empty slots)."""
        edge_delay = self._edge_delay(sample)
        if self.relay:
            arrivals = self._relay_arrivals(self._by_edge(workers, np.inf), edge_delay)
        else:
            arrivals = np.asarray(_add(self._edge_send_times(workers) + self.beta, edge_delay))
        return self._drop_failed_edges(sample, arrivals)

    def _drop_failed_edges(self, sample: DelaySample, arrivals: np.ndarray) -> np.ndarray:
        edge_failed = self._edge_failed(sample)
        if edge_failed is not None:
            arrivals[np.broadcast_to(edge_failed.reshape(edge_failed.shape[:1] + (1,) * (arrivals.ndim - 2)
                                                         + edge_failed.shape[1:]), arrivals.shape)] = np.inf
        return arrivals

    # -- evaluation ---------------------------------------------------------------------------------
    def iteration_times(self, sample: DelaySample) -> tuple[np.ndarray, np.ndarray]:
        """Iteration time ``T`` (seconds; ``inf`` if the master cannot decode) and the number of vectors
        that reached the master by ``T``, both of shape ``(trials,)``."""
        arrivals = self._master_arrivals(sample, self._worker_arrivals(sample))
        rank = arrivals.shape[0] * (arrivals.shape[1] if arrivals.ndim == 3 else 1) - self.master_k + 1
        if self.relay and np.any(self.beta) and 1 < rank <= MERGE_LIMIT:
            finish = merged_kth_largest(arrivals, rank)
            arrivals = arrivals.reshape(-1, sample.trials)
        else:
            arrivals = arrivals.reshape(-1, sample.trials)
            finish = kth_smallest(arrivals, self.master_k, axis=0)
        received = np.count_nonzero(arrivals <= finish, axis=0)
        return finish, (received if self.message == 1.0 else received * self.message)

    def responders(self, sample: DelaySample) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Who the master hears from in each trial: ``(finish, worker_used, edge_used)``.

        ``finish`` is the iteration time ``T`` (``inf`` if undecodable). ``worker_used`` ``(trials,
        participating workers)`` marks workers whose message is used: for decoding edges, those that
        reached their edge by the edge's send time; for relaying edges, those whose relayed message reached
        the master by ``T``. ``edge_used`` ``(trials, participating edges)`` marks edges whose vector reached
        the master by ``T`` (relay: any of its messages). Columns follow the strategy's order of
        participating workers / edges.
        """
        workers = self._worker_arrivals(sample)
        if self.relay:
            grouped = self._by_edge(workers, np.inf)
            order = np.argsort(grouped, axis=1, kind="stable")
            in_order = self._relay_arrivals(np.take_along_axis(grouped, order, axis=1), self._edge_delay(sample))
            arrivals = np.empty_like(in_order)
            np.put_along_axis(arrivals, order, self._drop_failed_edges(sample, in_order), axis=1)
            finish = kth_smallest(arrivals.reshape(-1, sample.trials), self.master_k, axis=0)
            used = arrivals <= finish
            worker_used = used[self.pad_edge, self.pad_slot]
            edge_used = used.any(axis=1)
        else:
            send = self._edge_send_times(workers)
            arrivals = self._master_arrivals(sample, workers)
            finish = kth_smallest(arrivals, self.master_k, axis=0)
            edge_used = arrivals <= finish
            worker_used = workers <= send[self.pad_edge]
        return finish, worker_used.T, edge_used.T

    def _relay_arrivals(self, grouped: np.ndarray, edge_delay: np.ndarray | float) -> np.ndarray:
        """Arrival at the master of every relayed message in FIFO order, ``(edges, m_max, trials)``:
        ``c_1 = C_(1) + b``, ``c_k = max(C_(k), c_(k-1)) + b``, then ``+ P_i + V_i``."""
        if not np.any(self.beta):
            arrivals = grouped.copy() if self.uniform else grouped
        else:
            arrivals = sort_along(grouped, axis=1)
            departure = arrivals[:, 0]
            departure += self.beta
            for slot in range(1, self.m_max):
                current = arrivals[:, slot]
                np.maximum(current, departure, out=current)
                current += self.beta
                departure = current
        if isinstance(edge_delay, np.ndarray):
            arrivals += edge_delay[:, None, :]
        elif edge_delay != 0.0:
            arrivals += edge_delay
        return arrivals


# ----------------------------------------------------------------------------------------------------
# Statistics with bounded memory

HISTOGRAM_LOW = 1e-9      # seconds; smaller times share the first bin
HISTOGRAM_HIGH = 1e9      # seconds; larger times share the last bin
HISTOGRAM_RESOLUTION = 2e-4  # relative bin width: quantiles are exact to 1e-4 relative


class TimeStatistics:
    """Running statistics of iteration times: count, mean and variance (Chan's parallel update), failures,
    received vectors, exact min/max, and a log-spaced histogram giving quantiles to within
    ``HISTOGRAM_RESOLUTION / 2`` relative error with memory independent of the number of trials."""

    _log_step = np.log1p(HISTOGRAM_RESOLUTION)
    _n_bins = int(np.ceil(np.log(HISTOGRAM_HIGH / HISTOGRAM_LOW) / _log_step)) + 1

    def __init__(self) -> None:
        self.trials = 0
        self.decoded = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.vectors = 0.0
        self.minimum = np.inf
        self.maximum = -np.inf
        self.histogram = np.zeros(self._n_bins, dtype=np.int64)

    def add(self, times: np.ndarray, received: np.ndarray) -> None:
        """Add one block of iteration times (``inf`` = undecodable) and received vector counts."""
        moments, bins = block_moments(times, received)
        self.absorb(moments)
        if bins.size:
            self.histogram += np.bincount(bins, minlength=self._n_bins)

    def absorb(self, moments: Sequence[float]) -> None:
        """Merge one block's :func:`block_moments` into the running moments (Chan's parallel update);
        the histogram is merged separately (:meth:`add_counts`): its sums are exact in any order."""
        trials, n, chunk_mean, chunk_m2, vectors, low, high = moments
        self.trials += int(trials)
        n = int(n)
        if n == 0:
            return
        total = self.decoded + n
        delta = chunk_mean - self.mean
        self.mean += delta * n / total
        self.m2 += chunk_m2 + delta * delta * self.decoded * n / total
        self.decoded = total
        self.vectors += vectors
        self.minimum = min(self.minimum, low)
        self.maximum = max(self.maximum, high)

    def add_counts(self, first_bin: int, counts: np.ndarray) -> None:
        """Add histogram counts of bins ``first_bin, first_bin + 1, ...``."""
        self.histogram[first_bin:first_bin + counts.size] += counts

    @classmethod
    def bins(cls, times: np.ndarray) -> np.ndarray:
        """Histogram bin of each (finite) time."""
        scaled = np.log(np.maximum(times, HISTOGRAM_LOW) / HISTOGRAM_LOW) / cls._log_step
        return np.minimum(scaled.astype(np.int64), cls._n_bins - 1)

    def quantile(self, q: float | np.ndarray) -> np.ndarray:
        """Inverse-CDF quantiles of the decoded times (bin centres, clipped to the exact min and max)."""
        q = np.atleast_1d(np.asarray(q, dtype=float))
        if self.decoded == 0:
            return np.full(q.shape, np.nan)
        cumulative = np.cumsum(self.histogram)
        rank = np.maximum(np.ceil(q * self.decoded), 1)
        index = np.searchsorted(cumulative, rank, side="left")
        centre = HISTOGRAM_LOW * np.exp((index + 0.5) * self._log_step)
        return np.clip(centre, self.minimum, self.maximum)

    @property
    def failure_rate(self) -> float:
        return 1.0 - self.decoded / self.trials if self.trials else float("nan")

    @property
    def sem(self) -> float:
        """Standard error of the mean iteration time (seconds)."""
        if self.decoded < 2:
            return float("nan")
        return float(np.sqrt(self.m2 / (self.decoded - 1) / self.decoded))

    @property
    def mean_time(self) -> float:
        return self.mean if self.decoded else float("nan")

    @property
    def mean_vectors(self) -> float:
        return self.vectors / self.decoded if self.decoded else float("nan")

    @property
    def effective_time(self) -> float:
        """Mean time per *successful* iteration if failed ones are repeated: ``mean / (1 - failure_rate)``
        (seconds; NaN when no trial decoded)."""
        if not self.decoded:
            return float("nan")
        return self.mean_time / (1.0 - self.failure_rate)


MOMENT_FIELDS = ("trials", "decoded", "mean", "m2", "vectors", "minimum", "maximum")


def block_moments(times: np.ndarray, received: np.ndarray) -> tuple[tuple[float, ...], np.ndarray]:
    """One block's moments, in the order of :data:`MOMENT_FIELDS` (trials, decoded trials, mean and sum of
    squared deviations of the decoded times, received vectors, min, max), and the decoded times' bins."""
    ok = np.isfinite(times)
    everything = bool(ok.all())  # the usual case: no masked copies (the same values, in the same order)
    good = times if everything else times[ok]
    n = good.size
    if n == 0:
        return (float(times.size), 0.0, 0.0, 0.0, 0.0, np.inf, -np.inf), np.empty(0, dtype=np.int64)
    chunk_mean = float(good.mean())
    chunk_m2 = float(((good - chunk_mean) ** 2).sum())
    vectors = float((received if everything else received[ok]).sum())
    return ((float(times.size), float(n), chunk_mean, chunk_m2, vectors, float(good.min()), float(good.max())),
            TimeStatistics.bins(good))


# ----------------------------------------------------------------------------------------------------
# Running strategies over many trials

class ChunkSizes(Sequence[int]):
    """Sizes of the blocks that make up ``trials`` trials, computed on demand (no list: memory does not
    grow with the number of trials)."""

    def __init__(self, trials: int, chunk: int = CHUNK_TRIALS):
        self.chunk = int(chunk)
        self.full, self.rest = divmod(int(trials), self.chunk)

    def __len__(self) -> int:
        return self.full + (1 if self.rest else 0)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self.chunk if index < self.full else self.rest

    def __iter__(self) -> Iterator[int]:
        for _ in range(self.full):
            yield self.chunk
        if self.rest:
            yield self.rest

    def total(self, first: int, count: int) -> int:
        """Trials in blocks ``first .. first+count-1``."""
        last = min(first + count, len(self))
        full = max(0, min(last, self.full) - first)
        return full * self.chunk + (self.rest if first <= self.full < last else 0)


def chunk_sizes(trials: int, chunk: int = CHUNK_TRIALS) -> ChunkSizes:
    """Sizes of the blocks of ``chunk`` trials that make up ``trials`` trials (a lazy sequence; the last
    block shorter)."""
    return ChunkSizes(trials, chunk)


def block_trials(topology: Topology) -> int:
    """Trials per random-stream block of ``topology``: :data:`CHUNK_TRIALS`, halved until a block holds at
    most :data:`BLOCK_NODE_TRIALS` node-trials (nodes = workers + edges). Part of the definition of a
    seeded run; systems of up to 512 nodes use 4096-trial blocks."""
    nodes = topology.n_workers + topology.n_edges
    size = CHUNK_TRIALS
    while size > 1 and nodes * size > BLOCK_NODE_TRIALS:
        size //= 2
    return size


def working_bytes_per_trial(model: TimingModel, strategies: Sequence[Strategy], backend: str = "numpy") -> int:
    """Bytes of working arrays one trial needs while a pass is evaluated (the estimate that sizes passes
    under a memory budget): :data:`WORKING_ARRAYS` float64 values per worker slot (of the padded ``(edges,
    largest edge)`` layout for the NumPy evaluator) and per edge, plus failure masks and each strategy's
    outputs."""
    topo = model.topology
    arrays = WORKING_ARRAYS[backend]
    slots = (topo.n_edges * max(topo.workers) if backend == "numpy" else topo.n_workers) + topo.n_edges
    return 8 * arrays * slots + (topo.n_workers + topo.n_edges) + 16 * len(strategies)


@dataclass
class MonteCarloRun:
    """Statistics of each strategy after a (possibly interrupted) run, and how the run was cut.

    ``block_trials`` is the random-stream block (part of the run's definition); ``pass_trials`` the trials
    evaluated at once (chosen from the memory budget; never changes the numbers); ``backend`` the
    evaluator (``numba`` or ``numpy``, identical numbers); ``executor`` facts about where blocks ran.
    """

    statistics: list[TimeStatistics]
    trials_done: int
    interrupted: bool
    seconds: float
    block_trials: int = CHUNK_TRIALS
    pass_trials: int = CHUNK_TRIALS
    backend: str = "numpy"
    executor: dict[str, Any] = field(default_factory=lambda: {"executor": "serial"})


SMALL_RUN_WORK = 2**24
"""Node-trials times strategies below which a run uses the NumPy evaluator by default: loading numba and
the cached compiled code (about 0.7 s) costs more than the compiled evaluator saves on such runs (it
saves roughly 10 ns per unit of work). Both evaluators give identical numbers."""


def default_backend(work: int | None = None) -> str:
    """The evaluator for a run of ``work`` node-trials times strategies (``None``: a large run): ``numba``
    when the compiled evaluator is available and the run is not small (:data:`SMALL_RUN_WORK`), else
    ``numpy``; ``HGC_BACKEND`` overrides."""
    import os  # noqa: PLC0415

    chosen = os.environ.get("HGC_BACKEND", "").strip().lower()
    if chosen in BACKENDS:
        return chosen
    if work is not None and work < SMALL_RUN_WORK:
        return "numpy"
    from hgc import simkernel  # noqa: PLC0415 - imports numba

    return "numba" if simkernel.AVAILABLE else "numpy"


@dataclass(frozen=True)
class BlockJob:
    """Blocks ``first .. first + count - 1`` of a run, to be evaluated in passes of ``pass_blocks``
    blocks. Picklable: it is what an executor ships to a worker process or machine."""

    model: TimingModel
    strategies: tuple[Strategy, ...]
    seed: int
    stream_id: int
    trials: int
    block_trials: int
    first: int
    count: int
    pass_blocks: int
    backend: str


@dataclass
class BlockResults:
    """What evaluating a :class:`BlockJob` gives: per block and strategy the :func:`block_moments`
    (array ``(blocks, strategies, len(MOMENT_FIELDS))``, merged in block order for exact reproducibility)
    and per strategy the histogram counts summed over the job's blocks (``(first bin, counts)``)."""

    first: int
    moments: np.ndarray
    histograms: list[tuple[int, np.ndarray]]

    @property
    def trials(self) -> int:
        return int(self.moments[:, 0, 0].sum()) if self.moments.size else 0


class _Evaluator:
    """Evaluates blocks of one run: the sampler, the compiled strategies and reusable pass buffers."""

    def __init__(self, model: TimingModel, strategies: Sequence[Strategy], backend: str):
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r} (allowed: {', '.join(BACKENDS)})")
        self.model = model
        self.sampler = Sampler(model)
        self.compiled = [CompiledStrategy(st, model) for st in strategies]
        self.backend = backend
        self.kernel = None
        if backend == "numba":
            from hgc import simkernel  # noqa: PLC0415

            if not simkernel.AVAILABLE:
                raise RuntimeError("the numba backend needs numba installed")
            self.kernel = simkernel.KernelStrategies.build(self.compiled)
        self._buffers: dict[str, np.ndarray] = {}

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: Any = float) -> np.ndarray:
        buffer = self._buffers.get(name)
        if buffer is None or buffer.shape[0] != shape[0] or buffer.shape[1] < shape[1] or buffer.dtype != dtype:
            buffer = self._buffers[name] = np.empty(shape, dtype=dtype)
        return buffer[:, :shape[1]]

    def sample_pass(self, seed: int, stream_id: int, blocks: Sequence[tuple[int, int]]) -> DelaySample:
        """The delays of consecutive stream blocks ``(index, trials)`` side by side along the trial axis."""
        deferred = self.kernel is not None  # the kernel applies location and scale itself
        samples = [self.sampler.sample(stream(seed, stream_id, index), size, deferred) for index, size in blocks]
        if len(samples) == 1:
            return samples[0]
        total = sum(size for _, size in blocks)

        def join(name: str, values: list[Any], dtype: Any = float) -> Any:
            if values[0] is None or np.isscalar(values[0]):
                return values[0]
            out = self._buffer(name, (values[0].shape[0], total), dtype)
            start = 0
            for value in values:
                out[:, start:start + value.shape[1]] = value
                start += value.shape[1]
            return out

        return DelaySample(total, join("compute", [x.compute for x in samples]),
                           join("fixed", [x.fixed for x in samples]),
                           join("edge_delay", [x.edge_delay for x in samples]),
                           join("worker_failed", [x.worker_failed for x in samples], bool),
                           join("edge_failed", [x.edge_failed for x in samples], bool),
                           samples[0].compute_affine, samples[0].fixed_affine)

    def times(self, sample: DelaySample) -> tuple[np.ndarray, np.ndarray]:
        """Iteration times and received vectors, ``(strategies, trials)`` each."""
        count = len(self.compiled)
        finish = np.empty((count, sample.trials))
        received = np.empty((count, sample.trials))
        if self.kernel is not None:
            from hgc import simkernel  # noqa: PLC0415

            simkernel.evaluate(self.kernel, sample, finish, received)
        else:
            for row, strategy in enumerate(self.compiled):
                finish[row], received[row] = strategy.iteration_times(sample)
        return finish, received

    def run(self, job: BlockJob, stop: Callable[[], bool] | None = None) -> BlockResults:
        """Evaluate the job's blocks in passes; ``stop()`` is asked between passes (the result then covers
        the blocks before the stop)."""
        full, rest = divmod(job.trials, job.block_trials)
        last = min(job.first + job.count, full + (1 if rest else 0))
        sizes = [job.block_trials if b < full else rest for b in range(job.first, last)]
        moments = np.empty((len(sizes), len(self.compiled), len(MOMENT_FIELDS)))
        bins: list[list[np.ndarray]] = [[] for _ in self.compiled]
        done = 0
        for start in range(0, len(sizes), job.pass_blocks):
            if stop is not None and stop():
                break
            blocks = [(job.first + start + i, size) for i, size in enumerate(sizes[start:start + job.pass_blocks])]
            finish, received = self.times(self.sample_pass(job.seed, job.stream_id, blocks))
            offset = 0
            for i, (_, size) in enumerate(blocks):
                for row in range(len(self.compiled)):
                    values, block_bins = block_moments(finish[row, offset:offset + size],
                                                       received[row, offset:offset + size])
                    moments[start + i, row] = values
                    bins[row].append(block_bins)
                offset += size
            done = start + len(blocks)
        histograms = []
        for row_bins in bins:
            joined = np.concatenate(row_bins) if row_bins else np.empty(0, dtype=np.int64)
            low = int(joined.min()) if joined.size else 0
            histograms.append((low, np.bincount(joined - low) if joined.size else np.empty(0, dtype=np.int64)))
        return BlockResults(job.first, moments[:done], histograms)


_EVALUATORS: dict[tuple[int, str], tuple[BlockJob, _Evaluator]] = {}


def evaluate_blocks(job: BlockJob) -> BlockResults:
    """Evaluate one :class:`BlockJob` (the function executors run; the last evaluator is kept per process
    so that consecutive jobs of one run reuse its compiled strategies and buffers)."""
    key = (id(job.model), job.backend)
    cached = _EVALUATORS.get(key)
    if cached is None or cached[0].model is not job.model or cached[0].strategies != job.strategies:
        _EVALUATORS.clear()
        cached = _EVALUATORS[key] = (job, _Evaluator(job.model, job.strategies, job.backend))
    return cached[1].run(job)


def merge_results(statistics: Sequence[TimeStatistics], results: BlockResults) -> None:
    """Fold a job's results into ``statistics``: moments block by block in stream order (Chan's update,
    so the numbers do not depend on how blocks were grouped into jobs), histograms by exact sums."""
    for block in results.moments:
        for stats, values in zip(statistics, block):
            stats.absorb(values.tolist())
    for stats, (first_bin, counts) in zip(statistics, results.histograms):
        if counts.size:
            stats.add_counts(first_bin, counts)


def plan_passes(model: TimingModel, strategies: Sequence[Strategy], memory: int | None = None,
                backend: str = "numpy") -> tuple[int, int]:
    """``(block_trials, pass_blocks)``: the stream block of ``model`` and how many blocks one pass
    evaluates together: enough for about :data:`PASS_NODE_TRIALS` node-trials and at least
    :data:`PASS_MIN_TRIALS` trials, as many as the ``memory`` budget (bytes; default
    :data:`DEFAULT_MEMORY`) allows.

    Raises :class:`ConfigError` (key ``memory``) when even one block does not fit in the budget."""
    budget = DEFAULT_MEMORY if memory is None else int(memory)
    size = block_trials(model.topology)
    per_block = working_bytes_per_trial(model, strategies, backend) * size
    if per_block > budget:
        raise ConfigError(f"a memory budget of {budget / MIB:.0f} MiB is too small for this system: one block of "
                          f"{size} trials needs about {per_block / MIB:.1f} MiB", "memory")
    nodes = model.topology.n_workers + model.topology.n_edges
    wanted = max(PASS_NODE_TRIALS // (nodes * size), -(-PASS_MIN_TRIALS // size), 1)
    return size, max(1, min(wanted, budget // per_block))


def run_strategies(model: TimingModel, strategies: Sequence[Strategy], *, seed: int, trials: int,
                   stream_id: int = Stream.SIMULATION,
                   progress: Callable[[Iterable[int]], Iterable[int]] | None = None,
                   memory: int | None = None, executor: Any = None, backend: str | None = None) -> MonteCarloRun:
    """Evaluate every strategy on the same ``trials`` sampled iterations.

    Block ``b`` of :func:`block_trials` trials draws from ``stream(seed, stream_id, b)``; its statistics are
    merged in block order, so results depend on the seed and ``trials`` only — not on the ``memory``
    budget (bytes of working arrays, see :func:`plan_passes`), the ``executor`` (an
    :class:`hgc.executors.Executor`; ``None`` runs here) or the ``backend`` (``numba``/``numpy``; default
    :func:`default_backend`). ``progress`` wraps the list of pass (or job) sizes in trials, e.g. a tqdm bar.

    A ``KeyboardInterrupt`` (Ctrl-C, SIGTERM) stops the run and raises :class:`~hgc.errors.Interrupted`
    whose ``partial`` is the :class:`MonteCarloRun` of the blocks merged so far (blocks ``0 .. k-1``, never a
    gap; flagged ``interrupted``): callers that do not catch it stop too, so a truncated run is never
    mistaken for a whole one.
    """
    nodes = model.topology.n_workers + model.topology.n_edges
    backend = backend or default_backend(int(trials) * nodes * len(strategies))
    size, pass_blocks = plan_passes(model, strategies, memory, backend)
    statistics = [TimeStatistics() for _ in strategies]
    sizes = chunk_sizes(trials, size)
    started = time.perf_counter()
    facts: dict[str, Any] = {"executor": "serial"} if executor is None else executor.describe()
    job = functools.partial(BlockJob, model, tuple(strategies), int(seed), int(stream_id), int(trials), size,
                            pass_blocks=pass_blocks, backend=backend)
    done = [0]                                        # trials merged so far (a cell: read after an interrupt)
    try:
        if executor is None:
            evaluator = _Evaluator(model, strategies, backend)
            passes = (sizes.total(i, pass_blocks) for i in range(0, len(sizes), pass_blocks))
            ticks = iter(progress(passes) if progress is not None else passes)
            for index in range(0, len(sizes), pass_blocks):
                results = evaluator.run(job(index, min(pass_blocks, len(sizes) - index)))
                with deferred_interrupts():  # every strategy gets this pass, or none does
                    merge_results(statistics, results)
                    done[0] += results.trials
                next(ticks, None)
        else:
            _run_on_executor(executor, job, sizes, pass_blocks, statistics, progress, done)
    except KeyboardInterrupt:
        partial = MonteCarloRun(statistics, done[0], True, time.perf_counter() - started, size,
                                size * pass_blocks, backend, facts)
        raise Interrupted(f"interrupted after {done[0]} of {trials} trials", partial) from None
    return MonteCarloRun(statistics, done[0], False, time.perf_counter() - started, size, size * pass_blocks,
                         backend, facts)


JOBS_PER_WORKER = 4
"""At least this many jobs per executor worker, to balance the load."""

JOB_NODE_TRIALS = 2 ** 24
"""Node-trials per job (about a second of work): progress is reported and an interrupted run keeps its
finished prefix at this granularity."""

JOB_MIN_TRIALS = 1024
"""Trials per job at least: a job's set-up (unpickling the model, grouping nodes) grows with the system
like its work per trial, so on large systems jobs need enough trials to stay small against their work."""


def _run_on_executor(executor: Any, job: Callable[..., BlockJob], sizes: ChunkSizes, pass_blocks: int,
                     statistics: Sequence[TimeStatistics], progress: Callable[[Iterable[int]], Iterable[int]] | None,
                     done: list[int]) -> int:
    """Spread the blocks over ``executor`` in contiguous jobs and merge the results in stream order as the
    prefix of finished jobs grows; returns the trials merged."""
    workers = int(executor.describe().get("jobs") or executor.describe().get("dask_workers") or 1)
    nodes = job(0, 0).model.topology.n_workers + job(0, 0).model.topology.n_edges
    job_trials = max(JOB_NODE_TRIALS // nodes, JOB_MIN_TRIALS)
    wanted = max(JOBS_PER_WORKER * workers, -(-sizes.total(0, len(sizes)) // job_trials))
    count = max(1, min(len(sizes), wanted))
    bounds = np.linspace(0, len(sizes), count + 1).round().astype(int)
    jobs = [job(int(a), int(b - a)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    trials_per_job = [sizes.total(j.first, j.count) for j in jobs]
    ticks = iter(progress(trials_per_job) if progress is not None else trials_per_job)
    finished: dict[int, BlockResults] = {}
    order = [j.first for j in jobs]
    merged = 0
    for task, result, error in executor.run(evaluate_blocks, jobs):
        if error is not None:
            time.sleep(0.5)  # a worker that died of the same Ctrl-C may report before our own signal
            raise error
        finished[task.first] = result
        next(ticks, None)
        while merged < len(order) and order[merged] in finished:
            results = finished.pop(order[merged])
            with deferred_interrupts():  # every strategy gets these blocks, or none does
                merge_results(statistics, results)
                done[0] += results.trials
            merged += 1
    return done[0]
