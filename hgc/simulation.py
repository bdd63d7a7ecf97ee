"""Monte Carlo simulation of one training iteration under each scheme.

Trials are processed in fixed-size chunks; chunk ``c`` draws every delay of every node from its own
generator ``stream(seed, Stream.SIMULATION, c)``, so results depend on the seed and the number of trials
only. All strategies of a run are evaluated on the same draws (common random numbers): speed-ups are
paired comparisons. Memory is bounded by the chunk size whatever the number of trials: per strategy only
running moments and a fine log-spaced histogram of iteration times (for quantiles) are kept.

Layout: :func:`sample_delays` draws a :class:`DelaySample`; a :class:`CompiledStrategy` turns it into
iteration times; :class:`TimeStatistics` accumulates them; :func:`simulate` runs a whole config.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from hgc.distributions import Distribution
from hgc.errors import Interrupted
from hgc.interrupts import deferred_interrupts
from hgc.rng import Stream, stream
from hgc.schemes import Strategy
from hgc.timing import TimingModel

CHUNK_TRIALS = 4096
"""Trials per chunk. Part of the definition of a seeded run: changing it changes the sampled numbers."""


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


def _draw_per_node(dists: Sequence[Distribution], rng: np.random.Generator, trials: int) -> np.ndarray | float:
    """A ``(len(dists), trials)`` array with row ``j`` drawn from ``dists[j]``; a scalar if all are the
    same constant. Nodes sharing a distribution are drawn in one call, in order of first appearance."""
    groups: dict[Distribution, list[int]] = {}
    for j, dist in enumerate(dists):
        groups.setdefault(dist, []).append(j)
    if len(groups) == 1:
        (dist,) = groups
        if dist.is_constant:
            return float(dist.ppf(0.5))
        return dist.sample(rng, (len(dists), trials))
    out = np.empty((len(dists), trials))
    for dist, rows in groups.items():
        target = slice(rows[0], rows[-1] + 1) if rows[-1] - rows[0] + 1 == len(rows) else rows
        if dist.is_constant:
            out[target] = float(dist.ppf(0.5))
        else:
            out[target] = dist.sample(rng, (len(rows), trials))
    return out


def _add(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray | float:
    if np.isscalar(b) and b == 0.0:
        return a
    if np.isscalar(a) and a == 0.0:
        return b
    return a + b


def sample_delays(model: TimingModel, rng: np.random.Generator, trials: int) -> DelaySample:
    """Draw every node's delays for ``trials`` iterations, in a fixed order (reproducible)."""
    compute = _draw_per_node(model.worker_compute, rng, trials)
    if np.isscalar(compute):
        compute = np.full((model.topology.n_workers, trials), compute)
    fixed = _add(_draw_per_node(model.worker_overhead, rng, trials),
                 _draw_per_node(model.worker_uplink, rng, trials))
    edge_delay = _add(_draw_per_node(model.edge_process, rng, trials),
                      _draw_per_node(model.edge_uplink, rng, trials))
    worker_failed = (rng.random((model.topology.n_workers, trials)) < model.worker_failure
                     if model.worker_failure > 0 else None)
    edge_failed = (rng.random((model.topology.n_edges, trials)) < model.edge_failure
                   if model.edge_failure > 0 else None)
    return DelaySample(trials, compute, fixed, edge_delay, worker_failed, edge_failed)


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
        self.worker_index = np.array([topo.offsets[e] + p for e, ws in zip(st.edges, st.workers) for p in ws],
                                     dtype=np.intp)
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
            fixed = sample.fixed if np.isscalar(sample.fixed) else sample.fixed[self.worker_index]
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
        if np.isscalar(sample.edge_delay):
            return sample.edge_delay
        return sample.edge_delay if self.all_edges else sample.edge_delay[self.edge_index]

    def _edge_failed(self, sample: DelaySample) -> np.ndarray | None:
        if sample.edge_failed is None:
            return None
        return sample.edge_failed if self.all_edges else sample.edge_failed[self.edge_index]

    def _edge_send_times(self, workers: np.ndarray) -> np.ndarray:
        """When each decoding edge has heard from enough workers, ``(edges, trials)``."""
        grouped = self._by_edge(workers, -np.inf)
        if np.isscalar(self.edge_rank):
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
            arrivals = _add(self._edge_send_times(workers) + self.beta, edge_delay)
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
        if np.isscalar(edge_delay):
            if edge_delay != 0.0:
                arrivals += edge_delay
        else:
            arrivals += edge_delay[:, None, :]
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
        ok = np.isfinite(times)
        self.trials += times.size
        good = times[ok]
        n = good.size
        if n == 0:
            return
        chunk_mean = float(good.mean())
        chunk_m2 = float(((good - chunk_mean) ** 2).sum())
        total = self.decoded + n
        delta = chunk_mean - self.mean
        self.mean += delta * n / total
        self.m2 += chunk_m2 + delta * delta * self.decoded * n / total
        self.decoded = total
        self.vectors += float(received[ok].sum())
        self.minimum = min(self.minimum, float(good.min()))
        self.maximum = max(self.maximum, float(good.max()))
        self.histogram += np.bincount(self._bin(good), minlength=self._n_bins)

    def _bin(self, times: np.ndarray) -> np.ndarray:
        scaled = np.log(np.maximum(times, HISTOGRAM_LOW) / HISTOGRAM_LOW) / self._log_step
        return np.minimum(scaled.astype(np.int64), self._n_bins - 1)

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


# ----------------------------------------------------------------------------------------------------
# Running strategies over many trials

class ChunkSizes(Sequence[int]):
    """Sizes of the chunks that make up ``trials`` trials, computed on demand (no list: memory does not
    grow with the number of trials)."""

    def __init__(self, trials: int, chunk: int = CHUNK_TRIALS):
        self.chunk = int(chunk)
        self.full, self.rest = divmod(int(trials), self.chunk)

    def __len__(self) -> int:
        return self.full + (1 if self.rest else 0)

    def __getitem__(self, index):  # type: ignore[no-untyped-def, override]
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


def chunk_sizes(trials: int, chunk: int = CHUNK_TRIALS) -> ChunkSizes:
    """Sizes of the chunks that make up ``trials`` trials (a lazy sequence)."""
    return ChunkSizes(trials, chunk)


@dataclass
class MonteCarloRun:
    """Statistics of each strategy after a (possibly interrupted) run."""

    statistics: list[TimeStatistics]
    trials_done: int
    interrupted: bool
    seconds: float


def run_strategies(model: TimingModel, strategies: Sequence[Strategy], *, seed: int, trials: int,
                   stream_id: int = Stream.SIMULATION,
                   progress: Callable[[Iterable[int]], Iterable[int]] | None = None) -> MonteCarloRun:
    """Evaluate every strategy on the same ``trials`` sampled iterations.

    ``progress`` wraps the iterable of chunk sizes (e.g. a tqdm bar). A ``KeyboardInterrupt`` (Ctrl-C,
    SIGTERM) stops the run and raises :class:`~hgc.errors.Interrupted` whose ``partial`` is the
    :class:`MonteCarloRun` of the completed chunks (flagged ``interrupted``): callers that do not catch it
    stop too, so a partial run is never mistaken for a finished one.
    """
    compiled = [CompiledStrategy(st, model) for st in strategies]
    statistics = [TimeStatistics() for _ in strategies]
    sizes = chunk_sizes(trials)
    chunks: Iterable[int] = progress(sizes) if progress is not None else sizes
    started = time.perf_counter()
    done, interrupted = 0, False
    try:
        for index, size in enumerate(chunks):
            sample = sample_delays(model, stream(seed, stream_id, index), size)
            results = [strategy.iteration_times(sample) for strategy in compiled]
            with deferred_interrupts():  # every strategy gets this chunk, or none does
                for stats, (times, received) in zip(statistics, results):
                    stats.add(times, received)
                done += size
    except KeyboardInterrupt:
        partial = MonteCarloRun(statistics, done, True, time.perf_counter() - started)
        raise Interrupted(f"interrupted after {done} of {trials} trials", partial) from None
    return MonteCarloRun(statistics, done, interrupted, time.perf_counter() - started)
