"""A compiled evaluator of many strategies on one block of sampled delays (numba), optional.

:func:`evaluate` gives, for every strategy and trial, the iteration time and the vectors the master
received — the same numbers, bit for bit, as :meth:`hgc.simulation.CompiledStrategy.iteration_times`:
it performs the same floating-point operations in the same order (``load·X``, ``+ fixed``, ``+ link``;
``+ beta`` per relayed message in FIFO order or once per decoding edge; ``+ edge delay``) and takes exact
order statistics, whose value does not depend on the algorithm that finds them. Only the way the work is
organised differs: one pass over the trials evaluates every strategy, trials are read in tiles of
``TILE`` (one cache line of float64 per node row), and order statistics are found by a bounded insertion
list when the rank is near either end and by quickselect otherwise.

numba is optional: :data:`AVAILABLE` says whether it imported. Compiled code is cached on disk
(``cache=True``), so only the first call after installation pays for compilation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:
    from hgc.simulation import CompiledStrategy, DelaySample

try:  # pragma: no cover - exercised whichever way the environment is
    import numba
    AVAILABLE = True
except ImportError:  # pragma: no cover
    numba = None
    AVAILABLE = False

TILE = 8
"""Trials evaluated together: a node's delays for ``TILE`` consecutive trials share one cache line."""

SMALL_RANK = 16
"""Ranks within this distance of either end are found with an insertion list, others by quickselect."""


@dataclass(frozen=True)
class KernelStrategies:
    """Strategies flattened into arrays for the kernel (CSR layout: strategy → edges → workers)."""

    edge_ptr: np.ndarray      # (S+1,) intp: edges of strategy s are edge_ptr[s]:edge_ptr[s+1]
    master_k: np.ndarray      # (S,) intp: the master's order statistic (k-th smallest arrival)
    relay: np.ndarray         # (S,) bool: edges relay every worker message
    message: np.ndarray       # (S,) float64: received counts are multiplied by this
    edge_node: np.ndarray     # (E,) intp: global edge index
    worker_ptr: np.ndarray    # (E+1,) intp: workers of edge e are worker_ptr[e]:worker_ptr[e+1]
    edge_beta: np.ndarray     # (E,) float64: seconds per message on the edge's link
    edge_wait: np.ndarray     # (E,) intp: decoding edges send at their edge_wait-th fastest worker
    worker_node: np.ndarray   # (W,) intp: global worker index
    worker_load: np.ndarray   # (W,) float64
    worker_link: np.ndarray   # (W,) float64 (0: no link time)
    max_arrivals: int         # the most arrivals any strategy's master sees
    max_workers: int          # the most workers of one edge

    @classmethod
    def build(cls, compiled: Sequence["CompiledStrategy"]) -> "KernelStrategies":
        edge_ptr, master_k, relay, message = [0], [], [], []
        edge_node: list[int] = []
        worker_ptr = [0]
        edge_beta: list[float] = []
        edge_wait: list[int] = []
        worker_node: list[int] = []
        worker_load: list[float] = []
        worker_link: list[float] = []
        max_arrivals = max_workers = 1
        for cs in compiled:
            counts = cs.counts.tolist()
            loads = np.broadcast_to(np.asarray(cs.load, dtype=float).reshape(-1), (len(cs.worker_index),))
            link = np.zeros(len(cs.worker_index)) if cs.worker_link is None else cs.worker_link[:, 0]
            waits = (np.zeros(len(counts), dtype=np.intp) if cs.relay
                     else np.asarray(cs.strategy.plan.edge_wait, dtype=np.intp))
            start = 0
            for j, count in enumerate(counts):
                edge_node.append(int(cs.edge_index[j]))
                edge_beta.append(float(cs.beta[j, 0]))
                edge_wait.append(int(waits[j]))
                worker_node.extend(int(w) for w in cs.worker_index[start:start + count])
                worker_load.extend(float(v) for v in loads[start:start + count])
                worker_link.extend(float(v) for v in link[start:start + count])
                worker_ptr.append(worker_ptr[-1] + count)
                start += count
                max_workers = max(max_workers, count)
            edge_ptr.append(len(edge_node))
            master_k.append(cs.master_k)
            relay.append(cs.relay)
            message.append(float(cs.message))
            max_arrivals = max(max_arrivals, sum(counts) if cs.relay else len(counts))
        intp = np.intp
        return cls(np.array(edge_ptr, intp), np.array(master_k, intp), np.array(relay, bool),
                   np.array(message, float), np.array(edge_node, intp), np.array(worker_ptr, intp),
                   np.array(edge_beta, float), np.array(edge_wait, intp), np.array(worker_node, intp),
                   np.array(worker_load, float), np.array(worker_link, float), max_arrivals, max_workers)


_EMPTY_2D = np.zeros((1, 1))
_EMPTY_MASK = np.zeros((1, 1), dtype=bool)


def evaluate(strategies: KernelStrategies, sample: "DelaySample", finish: np.ndarray,
             received: np.ndarray) -> None:
    """Fill ``finish[s, t]`` (seconds, ``inf`` if undecodable) and ``received[s, t]`` (vectors at the
    master by then) for every strategy ``s`` and trial ``t`` of ``sample``; arrays are ``(S, trials)``."""
    fixed = sample.fixed
    edge_delay = sample.edge_delay
    fixed_array = not np.isscalar(fixed)
    delay_array = not np.isscalar(edge_delay)
    _evaluate(np.ascontiguousarray(sample.compute),
              np.ascontiguousarray(fixed) if fixed_array else _EMPTY_2D,
              0.0 if fixed_array else float(fixed),  # type: ignore[arg-type]
              fixed_array,
              np.ascontiguousarray(edge_delay) if delay_array else _EMPTY_2D,
              0.0 if delay_array else float(edge_delay),  # type: ignore[arg-type]
              delay_array,
              _EMPTY_MASK if sample.worker_failed is None else np.ascontiguousarray(sample.worker_failed),
              sample.worker_failed is not None,
              _EMPTY_MASK if sample.edge_failed is None else np.ascontiguousarray(sample.edge_failed),
              sample.edge_failed is not None,
              strategies.edge_ptr, strategies.master_k, strategies.relay, strategies.message,
              strategies.edge_node, strategies.worker_ptr, strategies.edge_beta, strategies.edge_wait,
              strategies.worker_node, strategies.worker_load, strategies.worker_link,
              strategies.max_arrivals, strategies.max_workers, finish, received)


# ----------------------------------------------------------------------------------------------------
# The compiled part (plain Python when numba is missing: slow, used only to check the logic)

def _jit(function: Any = None, *, inline: bool = False) -> Any:
    def wrap(f: Any) -> Any:
        if numba is None:  # pragma: no cover
            return f
        return numba.njit(cache=True, nogil=True, error_model="numpy", inline="always" if inline else "never")(f)
    return wrap(function) if function is not None else wrap


@_jit(inline=True)
def _kth_smallest(a, r, n, k, small):  # pragma: no cover - compiled
    """The ``k``-th smallest (1-based) of ``a[r, :n]``; the row may be reordered. ``small`` is scratch
    of at least ``SMALL_RANK`` entries."""
    if k == 1:
        best = a[r, 0]
        for i in range(1, n):
            if a[r, i] < best:
                best = a[r, i]
        return best
    if k == n:
        best = a[r, 0]
        for i in range(1, n):
            if a[r, i] > best:
                best = a[r, i]
        return best
    top = n - k + 1
    if k <= SMALL_RANK:
        # the k smallest so far, ascending, in small[:k]
        for i in range(k):
            small[i] = np.inf
        for i in range(n):
            v = a[r, i]
            if v < small[k - 1]:
                j = k - 1
                while j > 0 and small[j - 1] > v:
                    small[j] = small[j - 1]
                    j -= 1
                small[j] = v
        return small[k - 1]
    if top <= SMALL_RANK:
        # the `top` largest so far, descending, in small[:top]
        for i in range(top):
            small[i] = -np.inf
        for i in range(n):
            v = a[r, i]
            if v > small[top - 1]:
                j = top - 1
                while j > 0 and small[j - 1] < v:
                    small[j] = small[j - 1]
                    j -= 1
                small[j] = v
        return small[top - 1]
    return _quickselect(a, r, n, k)


@_jit
def _quickselect(a, r, n, k):  # pragma: no cover - compiled
    """The ``k``-th smallest of ``a[r, :n]`` by quickselect (Hoare partition, median of three)."""
    lo, hi, target = 0, n - 1, k - 1
    while hi > lo:
        mid = (lo + hi) // 2
        x, y, z = a[r, lo], a[r, mid], a[r, hi]
        if x > y:
            x, y = y, x
        if y > z:
            y = z
            if x > y:
                y = x
        pivot = y
        i, j = lo, hi
        while i <= j:
            while a[r, i] < pivot:
                i += 1
            while a[r, j] > pivot:
                j -= 1
            if i <= j:
                a[r, i], a[r, j] = a[r, j], a[r, i]
                i += 1
                j -= 1
        if target <= j:
            hi = j
        elif target >= i:
            lo = i
        else:
            return a[r, target]
    return a[r, target]


@_jit
def _sort_row(a, r, n):  # pragma: no cover - compiled
    """Sort ``a[r, :n]`` ascending in place (insertion sort: rows are an edge's workers, usually few)."""
    if n > 64:
        a[r, :n].sort()
        return
    for i in range(1, n):
        v = a[r, i]
        j = i
        while j > 0 and a[r, j - 1] > v:
            a[r, j] = a[r, j - 1]
            j -= 1
        a[r, j] = v


@_jit
def _evaluate(compute, fixed, fixed_value, fixed_array, edge_delay, delay_value, delay_array,
              worker_failed, has_worker_failures, edge_failed, has_edge_failures,
              edge_ptr, master_k, relay, message, edge_node, worker_ptr, edge_beta, edge_wait,
              worker_node, worker_load, worker_link, max_arrivals, max_workers,
              finish, received):  # pragma: no cover - compiled
    trials = compute.shape[1]
    n_strategies = master_k.shape[0]
    arrivals = np.empty((TILE, max_arrivals))
    values = np.empty((1, max_arrivals))
    times = np.empty((TILE, max_workers))
    small = np.empty(SMALL_RANK + 1)
    add_delay = delay_array or delay_value != 0.0
    add_fixed = fixed_array or fixed_value != 0.0
    for t0 in range(0, trials, TILE):
        width = min(TILE, trials - t0)
        for s in range(n_strategies):
            count = 0
            is_relay = relay[s]
            for e in range(edge_ptr[s], edge_ptr[s + 1]):
                node = edge_node[e]
                first = worker_ptr[e]
                m = worker_ptr[e + 1] - first
                beta = edge_beta[e]
                # worker messages at the edge, C_w = load X_w + fixed_w + link_w (inf if failed)
                for j in range(m):
                    w = worker_node[first + j]
                    load = worker_load[first + j]
                    link = worker_link[first + j]
                    for u in range(width):
                        v = load * compute[w, t0 + u]
                        if add_fixed:
                            v = v + (fixed[w, t0 + u] if fixed_array else fixed_value)
                        if link != 0.0:
                            v = v + link
                        if has_worker_failures and worker_failed[w, t0 + u]:
                            v = np.inf
                        times[u, j] = v
                for u in range(width):
                    delay = edge_delay[node, t0 + u] if delay_array else delay_value
                    dead = has_edge_failures and edge_failed[node, t0 + u]
                    if is_relay:
                        if beta != 0.0:
                            _sort_row(times, u, m)
                            departure = times[u, 0] + beta
                            times[u, 0] = departure
                            for j in range(1, m):
                                current = times[u, j]
                                if departure > current:
                                    current = departure
                                departure = current + beta
                                times[u, j] = departure
                        for j in range(m):
                            v = times[u, j]
                            if add_delay:
                                v = v + delay
                            arrivals[u, count + j] = np.inf if dead else v
                    else:
                        v = _kth_smallest(times, u, m, edge_wait[e], small) + beta
                        if add_delay:
                            v = v + delay
                        arrivals[u, count] = np.inf if dead else v
                count += m if is_relay else 1
            k = master_k[s]
            message_length = message[s]
            for u in range(width):
                for j in range(count):
                    values[0, j] = arrivals[u, j]
                done = _kth_smallest(values, 0, count, k, small)
                heard = 0
                for j in range(count):
                    if arrivals[u, j] <= done:
                        heard += 1
                finish[s, t0 + u] = done
                received[s, t0 + u] = heard * message_length
