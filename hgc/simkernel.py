"""A compiled evaluator of many strategies on one block of sampled delays (numba), optional.

:func:`evaluate` gives, for every strategy and trial, the iteration time and the vectors the master
received — the same numbers, bit for bit, as :meth:`hgc.simulation.CompiledStrategy.iteration_times`:
it performs the same floating-point operations in the same order (``load·X``, ``+ fixed``, ``+ link``;
``+ beta`` per relayed message in FIFO order or once per decoding edge; ``+ edge delay``) and takes exact
order statistics, whose value does not depend on the algorithm that finds them (a relaying edge's FIFO
arrivals are sorted, so the master's top list absorbs them by a bitonic merge). Only the way the work is
organised differs: trials are processed in tiles of up to ``TILE`` and every operation is a loop over the
tile (vectorised by the compiler) — worker times, a sorting network over each relaying edge's messages,
the FIFO recursion, running top (or bottom) lists for order statistics of rank near either end — with
nothing written to memory but each strategy's results. Ranks far from both ends fall back to a
quickselect per trial.

numba is optional: :data:`AVAILABLE` says whether it imported. Compiled code is cached on disk
(``cache=True``), so only the first call after installation pays for compilation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:
    from hgc.simulation import CompiledStrategy, DelaySample

numba: Any
try:  # pragma: no cover - exercised whichever way the environment is
    import numba
    AVAILABLE = True
except ImportError:  # pragma: no cover
    numba = None
    AVAILABLE = False

TILE = 512
"""Trials evaluated together (fewer when the per-tile buffers would exceed ``TILE_BYTES``): large tiles
amortise the per-tile, per-edge set-up."""

TILE_BYTES = 2 ** 21

SHARE_BYTES = 2 ** 21
"""When every worker's ``X`` and fixed delay for one tile fit in this many bytes, they are computed once per
tile (``draw · scale + loc``) and shared by all strategies."""

SMALL_RANK = 16
"""Ranks within this distance of either end are found with running top/bottom lists, others by quickselect."""

NETWORK_LIMIT = 256
"""Relaying edges of at most this many workers sort their messages with a sorting network (vectorised over
the tile: about ``log2(m)^2 / 4`` compare-exchanges per message); larger ones sort trial by trial."""


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
    arrivals: np.ndarray      # (S,) intp: messages the master of strategy s may receive
    network_ptr: np.ndarray   # (NETWORK_LIMIT+2,) intp: comparators for m inputs are network_ptr[m]:[m+1]
    network: np.ndarray       # (P, 2) intp: Batcher's odd-even merge sort comparators
    max_arrivals: int         # the most arrivals any strategy's master stores
    max_workers: int          # the most workers of one edge
    tile: int                 # trials per tile

    @classmethod
    def build(cls, compiled: Sequence["CompiledStrategy"]) -> "KernelStrategies":
        from hgc.simulation import sorting_network  # noqa: PLC0415 - the simulator imports this module

        counts = [cs.counts for cs in compiled]
        edge_node = np.concatenate([cs.edge_index for cs in compiled]).astype(np.intp)
        edge_ptr = np.concatenate([[0], np.cumsum([len(c) for c in counts])]).astype(np.intp)
        worker_ptr = np.concatenate([[0], np.cumsum(np.concatenate(counts))]).astype(np.intp)
        edge_beta = np.concatenate([cs.beta[:, 0] for cs in compiled]).astype(float)
        edge_wait = np.concatenate([np.zeros(len(cs.counts), dtype=np.intp) if cs.relay
                                    else np.asarray(cs.strategy.plan.edge_wait, dtype=np.intp) for cs in compiled])
        worker_node = np.concatenate([cs.worker_index for cs in compiled]).astype(np.intp)
        worker_load = np.concatenate([np.broadcast_to(np.asarray(cs.load, dtype=float).reshape(-1),
                                                      (len(cs.worker_index),)) for cs in compiled])
        worker_link = np.concatenate([np.zeros(len(cs.worker_index)) if cs.worker_link is None
                                      else cs.worker_link[:, 0] for cs in compiled])
        arrivals = np.array([int(cs.counts.sum()) if cs.relay else len(cs.counts) for cs in compiled], dtype=np.intp)
        master_k = np.array([cs.master_k for cs in compiled], dtype=np.intp)
        relay = np.array([cs.relay for cs in compiled], dtype=bool)
        stored = [int(a) for a, cs in zip(arrivals, compiled)
                  if not (cs.relay and a - cs.master_k + 1 <= SMALL_RANK)]  # others are streamed, not stored
        max_arrivals = max(stored, default=1)
        max_workers = max(int(c.max()) for c in counts)
        relay_sizes = {int(m) for cs in compiled if cs.relay and np.any(cs.beta) for m in np.unique(cs.counts)}
        network_ptr = [0]
        pairs: list[tuple[int, int]] = []
        for m in range(NETWORK_LIMIT + 1):
            if m in relay_sizes:
                pairs.extend(sorting_network(m))
            network_ptr.append(len(pairs))
        tile = int(max(8, min(TILE, TILE_BYTES // 8 // (max_arrivals + max_workers + 2 * SMALL_RANK))))
        return cls(edge_ptr, master_k, relay, np.array([float(cs.message) for cs in compiled]), edge_node,
                   worker_ptr, edge_beta, edge_wait, worker_node, np.ascontiguousarray(worker_load), worker_link,
                   arrivals, np.array(network_ptr, np.intp), np.array(pairs, np.intp).reshape(-1, 2),
                   max_arrivals, max_workers, tile)


_EMPTY_2D = np.zeros((1, 1))
_EMPTY_MASK = np.zeros((1, 1), dtype=bool)
_NO_ROWS = np.zeros(1)


def evaluate(strategies: KernelStrategies, sample: "DelaySample", finish: np.ndarray,
             received: np.ndarray) -> None:
    """Fill ``finish[s, t]`` (seconds, ``inf`` if undecodable) and ``received[s, t]`` (vectors at the
    master by then) for every strategy ``s`` and trial ``t`` of ``sample``; arrays are ``(S, trials)``."""
    fixed = sample.fixed
    edge_delay = sample.edge_delay
    no_affine = (_NO_ROWS, _NO_ROWS)
    fixed_array = not np.isscalar(fixed)
    delay_array = not np.isscalar(edge_delay)
    share = SHARE_BYTES >= 16 * sample.compute.shape[0] * strategies.tile and len(strategies.master_k) > 1
    compute_scale, compute_loc = sample.compute_affine or no_affine
    fixed_scale, fixed_loc = sample.fixed_affine or no_affine
    _evaluate(np.ascontiguousarray(sample.compute), compute_scale, compute_loc, sample.compute_affine is not None,
              fixed_scale, fixed_loc, sample.fixed_affine is not None,
              np.ascontiguousarray(fixed) if fixed_array else _EMPTY_2D,
              0.0 if fixed_array else float(fixed),
              fixed_array,
              np.ascontiguousarray(edge_delay) if delay_array else _EMPTY_2D,
              0.0 if delay_array else float(edge_delay),
              delay_array,
              _EMPTY_MASK if sample.worker_failed is None else np.ascontiguousarray(sample.worker_failed),
              sample.worker_failed is not None,
              _EMPTY_MASK if sample.edge_failed is None else np.ascontiguousarray(sample.edge_failed),
              sample.edge_failed is not None,
              strategies.edge_ptr, strategies.master_k, strategies.relay, strategies.message,
              strategies.edge_node, strategies.worker_ptr, strategies.edge_beta, strategies.edge_wait,
              strategies.worker_node, strategies.worker_load, strategies.worker_link, strategies.arrivals,
              strategies.network_ptr, strategies.network, strategies.max_arrivals, strategies.max_workers,
              strategies.tile, share, finish, received)


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


@_jit(inline=True)
def _push_top(top, r, row, w):  # pragma: no cover - compiled
    """Insert ``row[:w]`` into the running lists ``top[:r, :w]`` (per trial, descending: top[0] largest).
    Inner loops run over 1-D rows: 2-D indexing there defeats vectorisation."""
    for q in range(r):
        level = top[q]
        for u in range(w):
            a = level[u]
            b = row[u]
            level[u] = a if a > b else b
            row[u] = b if a > b else a


@_jit(inline=True)
def _push_bottom(bottom, k, row, w):  # pragma: no cover - compiled
    """Insert ``row[:w]`` into the running lists ``bottom[:k, :w]`` (per trial, ascending)."""
    for q in range(k):
        level = bottom[q]
        for u in range(w):
            a = level[u]
            b = row[u]
            level[u] = a if a < b else b
            row[u] = b if a < b else a


@_jit
def _select_columns(values, n, k, w, out, lists, carry, column, small):  # pragma: no cover - compiled
    """``out[u]`` = the ``k``-th smallest of ``values[:n, u]`` for ``u < w``."""
    top = n - k + 1
    if top <= SMALL_RANK:
        for q in range(top):
            level = lists[q]
            for u in range(w):
                level[u] = -np.inf
        for j in range(n):
            row = values[j]
            for u in range(w):
                carry[u] = row[u]
            _push_top(lists, top, carry, w)
        level = lists[top - 1]
    elif k <= SMALL_RANK:
        for q in range(k):
            level = lists[q]
            for u in range(w):
                level[u] = np.inf
        for j in range(n):
            row = values[j]
            for u in range(w):
                carry[u] = row[u]
            _push_bottom(lists, k, carry, w)
        level = lists[k - 1]
    else:
        for u in range(w):
            for j in range(n):
                column[0, j] = values[j, u]
            out[u] = _kth_smallest(column, 0, n, k, small)
        return
    for u in range(w):
        out[u] = level[u]


@_jit(inline=True)
def _worker_row(share, base, extra, out, compute, c_scale, c_loc, c_affine, fixed, f_scale, f_loc, f_affine,
                fixed_value, fixed_array, add_fixed, worker_failed, has_worker_failures, wk, load, link, t0,
                w):  # pragma: no cover - compiled
    """``out[:w]`` = worker ``wk``'s message times ``load X + fixed + link`` (``inf`` if failed) for trials
    ``t0 .. t0 + w - 1``: the same operations, in the same order, as sampling (``draw · scale + loc`` for
    deferred location-scale rows) followed by the NumPy evaluator. With ``share``, ``X`` and the fixed
    delay of the tile are already in ``base`` and ``extra``."""
    if share:
        x = base[wk]
        for u in range(w):
            out[u] = load * x[u]
        if add_fixed:
            if fixed_array:
                y = extra[wk]
                for u in range(w):
                    out[u] = out[u] + y[u]
            else:
                for u in range(w):
                    out[u] = out[u] + fixed_value
        if link != 0.0:
            for u in range(w):
                out[u] = out[u] + link
        if has_worker_failures:
            failed = worker_failed[wk, t0:t0 + w]
            for u in range(w):
                if failed[u]:
                    out[u] = np.inf
        return
    x = compute[wk, t0:t0 + w]
    if c_affine:
        scale = c_scale[wk]
        loc = c_loc[wk]
        for u in range(w):
            out[u] = load * (x[u] * scale + loc)
    else:
        for u in range(w):
            out[u] = load * x[u]
    if add_fixed:
        if fixed_array:
            y = fixed[wk, t0:t0 + w]
            if f_affine:
                scale = f_scale[wk]
                loc = f_loc[wk]
                for u in range(w):
                    out[u] = out[u] + (y[u] * scale + loc)
            else:
                for u in range(w):
                    out[u] = out[u] + y[u]
        else:
            for u in range(w):
                out[u] = out[u] + fixed_value
    if link != 0.0:
        for u in range(w):
            out[u] = out[u] + link
    if has_worker_failures:
        failed = worker_failed[wk, t0:t0 + w]
        for u in range(w):
            if failed[u]:
                out[u] = np.inf


@_jit
def _evaluate(compute, c_scale, c_loc, c_affine, f_scale, f_loc, f_affine, fixed, fixed_value, fixed_array, edge_delay, delay_value, delay_array,
              worker_failed, has_worker_failures, edge_failed, has_edge_failures,
              edge_ptr, master_k, relay, message, edge_node, worker_ptr, edge_beta, edge_wait,
              worker_node, worker_load, worker_link, arrivals_count, network_ptr, network,
              max_arrivals, max_workers, tile, share, finish, received):  # pragma: no cover - compiled
    trials = compute.shape[1]
    n_workers = compute.shape[0]
    base = np.empty((n_workers if share else 1, tile))
    extra = np.empty((n_workers if share and fixed_array else 1, tile))
    n_strategies = master_k.shape[0]
    lists_size = 2 * SMALL_RANK
    times = np.empty((max_workers, tile))
    arrivals = np.empty((max_arrivals, tile))
    master = np.empty((lists_size, tile))
    lists = np.empty((lists_size, tile))
    carry = np.empty(tile)
    departure = np.empty(tile)
    result = np.empty(tile)
    delay = np.zeros(tile)
    dead = np.zeros(tile, dtype=np.bool_)
    column = np.empty((1, max(max_arrivals, max_workers)))
    small = np.empty(lists_size)
    add_delay = delay_array or delay_value != 0.0
    add_fixed = fixed_array or fixed_value != 0.0
    for t0 in range(0, trials, tile):
        w = min(tile, trials - t0)
        if share:
            for wk in range(n_workers):
                x = compute[wk, t0:t0 + w]
                row = base[wk]
                if c_affine:
                    scale = c_scale[wk]
                    loc = c_loc[wk]
                    for u in range(w):
                        row[u] = x[u] * scale + loc
                else:
                    for u in range(w):
                        row[u] = x[u]
                if fixed_array:
                    y = fixed[wk, t0:t0 + w]
                    row = extra[wk]
                    if f_affine:
                        scale = f_scale[wk]
                        loc = f_loc[wk]
                        for u in range(w):
                            row[u] = y[u] * scale + loc
                    else:
                        for u in range(w):
                            row[u] = y[u]
        for s in range(n_strategies):
            is_relay = relay[s]
            k = master_k[s]
            total = arrivals_count[s]
            rank = total - k + 1                      # the master's statistic, counted from the largest
            streaming = is_relay and rank <= SMALL_RANK
            width = 1                                 # the master's list length: a power of two >= rank
            while width < rank:
                width *= 2
            if streaming:
                for q in range(width):
                    level = master[q]
                    for u in range(w):
                        level[u] = -np.inf
            count = 0
            for e in range(edge_ptr[s], edge_ptr[s + 1]):
                node = edge_node[e]
                first = worker_ptr[e]
                m = worker_ptr[e + 1] - first
                beta = edge_beta[e]
                if delay_array:
                    source = edge_delay[node, t0:t0 + w]
                    for u in range(w):
                        delay[u] = source[u]
                else:
                    for u in range(w):
                        delay[u] = delay_value
                if has_edge_failures:
                    flags = edge_failed[node, t0:t0 + w]
                    for u in range(w):
                        dead[u] = flags[u]
                wait = edge_wait[e]
                fused = not is_relay and (m - wait + 1 <= SMALL_RANK or wait <= SMALL_RANK)
                if not fused:
                    # worker messages at the edge, C_w = load X_w + fixed_w + link_w (inf if failed)
                    for j in range(m):
                        _worker_row(share, base, extra, times[j], compute, c_scale, c_loc, c_affine, fixed, f_scale, f_loc, f_affine,
                                    fixed_value, fixed_array, add_fixed, worker_failed,
                                    has_worker_failures, worker_node[first + j], worker_load[first + j],
                                    worker_link[first + j], t0, w)
                if is_relay:
                    if beta != 0.0:
                        if m <= NETWORK_LIMIT:
                            for p in range(network_ptr[m], network_ptr[m + 1]):
                                low = times[network[p, 0]]
                                high = times[network[p, 1]]
                                for u in range(w):
                                    a = low[u]
                                    b = high[u]
                                    low[u] = a if a < b else b
                                    high[u] = b if a < b else a
                        else:
                            for u in range(w):
                                for j in range(m):
                                    column[0, j] = times[j, u]
                                column[0, :m].sort()
                                for j in range(m):
                                    times[j, u] = column[0, j]
                        row = times[0]
                        for u in range(w):
                            departure[u] = row[u] + beta
                            row[u] = departure[u]
                        for j in range(1, m):
                            row = times[j]
                            for u in range(w):
                                a = row[u]
                                b = departure[u]
                                departure[u] = (b if b > a else a) + beta
                                row[u] = departure[u]
                    if streaming and beta != 0.0:
                        # the edge's arrivals are sorted: bitonic merge of its largest `width` into the list
                        for i in range(width):
                            j = m - width + i
                            if j < 0:
                                continue
                            row = times[j]
                            level = master[i]
                            for u in range(w):
                                v = row[u]
                                if add_delay:
                                    v = v + delay[u]
                                if dead[u]:
                                    v = np.inf
                                a = level[u]
                                level[u] = a if a > v else v
                        stride = width // 2
                        while stride >= 1:
                            for i in range(width):
                                if i & stride == 0:
                                    high = master[i]
                                    low = master[i + stride]
                                    for u in range(w):
                                        a = high[u]
                                        b = low[u]
                                        high[u] = a if a > b else b
                                        low[u] = b if a > b else a
                            stride //= 2
                    else:
                        for j in range(m):
                            row = times[j]
                            target = carry if streaming else arrivals[count + j]
                            for u in range(w):
                                v = row[u]
                                if add_delay:
                                    v = v + delay[u]
                                target[u] = np.inf if dead[u] else v
                            if streaming:
                                _push_top(master, rank, carry, w)
                    count += m
                else:
                    if fused:
                        # the edge's order statistic from running lists fed worker by worker
                        top = m - wait + 1
                        up = top <= SMALL_RANK
                        size = top if up else wait
                        for q in range(size):
                            level = lists[q]
                            for u in range(w):
                                level[u] = -np.inf if up else np.inf
                        for j in range(m):
                            _worker_row(share, base, extra, carry, compute, c_scale, c_loc, c_affine, fixed, f_scale, f_loc, f_affine,
                                        fixed_value, fixed_array, add_fixed, worker_failed,
                                        has_worker_failures, worker_node[first + j], worker_load[first + j],
                                        worker_link[first + j], t0, w)
                            if size == 1:
                                level = lists[0]
                                for u in range(w):
                                    a = level[u]
                                    b = carry[u]
                                    level[u] = (a if a > b else b) if up else (a if a < b else b)
                            elif up:
                                _push_top(lists, size, carry, w)
                            else:
                                _push_bottom(lists, size, carry, w)
                        level = lists[size - 1]
                        for u in range(w):
                            result[u] = level[u]
                    else:
                        _select_columns(times, m, wait, w, result, lists, carry, column, small)
                    target = arrivals[count]
                    for u in range(w):
                        v = result[u] + beta
                        if add_delay:
                            v = v + delay[u]
                        target[u] = np.inf if dead[u] else v
                    count += 1
            length = message[s]
            out_finish = finish[s, t0:t0 + w]
            out_received = received[s, t0:t0 + w]
            if streaming:
                # values above the rank-th largest are all in the list: received = total - those
                last = master[rank - 1]
                for u in range(w):
                    carry[u] = 0.0
                for q in range(rank - 1):
                    level = master[q]
                    for u in range(w):
                        if level[u] > last[u]:
                            carry[u] += 1.0
                for u in range(w):
                    out_finish[u] = last[u]
                    out_received[u] = (total - carry[u]) * length
            else:
                _select_columns(arrivals, count, k, w, result, lists, carry, column, small)
                for u in range(w):
                    carry[u] = 0.0
                for j in range(count):
                    row = arrivals[j]
                    for u in range(w):
                        if row[u] <= result[u]:
                            carry[u] += 1.0
                for u in range(w):
                    out_finish[u] = result[u]
                    out_received[u] = carry[u] * length
