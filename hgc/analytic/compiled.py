"""The analytic evaluator's inner loops, compiled with numba (one implementation, no NumPy twin).

* :func:`order_statistics` — Poisson-binomial tails of independent nodes, point by point: the CDF of the time
  by which all but ``s`` of a job's nodes have finished, from the nodes' CDFs on a grid;
* :func:`convolve_chain` — convolution stages on segmented rows: kernels given as a short explicit head
  (FIR) plus geometric tails (the exact hat weights of exponential delays), a tail applied by recursion in
  ``O(points)`` instead of ``O(points x kernel length)``;
* :func:`simple_kernels` — those kernels in closed form for mixtures of atoms and exponentials;
* :func:`grid_points` — the points at which the exactly evaluated component's CDF is needed;
* :func:`pass_geometry` — how far back each stage of a pass must look;
* :func:`block_rows` — a whole pass of a block of edge jobs (worker stages, order statistics, edge stages);
* :func:`kth_smallest` — order statistics of per-node quantiles (support bounds);
* :func:`trapezoid_survival` — ``∫ (1 - F_T / F_T(∞))`` on one grid level.

They take every grid level and every row of a pass in one call, so the Python overhead of a pass does not
grow with the number of rows, slots or levels. Results are deterministic (no parallel reductions).
Compiled functions are cached on disk (``cache=True``); the first call in a fresh environment compiles
them (tens of seconds on a small machine, once; see ``benchmarks/evaluator_speed.py``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def _binomial_pmf(count: int, p: float, q: float, top: int, pmf: np.ndarray) -> None:
    """``pmf[j] = P(Bin(count, p) = j)`` for ``j = 0..top`` (``q = 1 - p`` given separately for precision).
    Linear ratio recurrence from ``q^count``, or in logs when ``q^count`` would underflow."""
    for j in range(top + 1):
        pmf[j] = 0.0
    if p <= 0.0:
        pmf[0] = 1.0
        return
    if q <= 0.0:
        if count <= top:
            pmf[count] = 1.0
        return
    last = min(top, count)
    log_first = count * math.log(q)
    if log_first > -700.0:
        value = math.exp(log_first)
        ratio = p / q
        pmf[0] = value
        for j in range(1, last + 1):
            value = value * ratio * ((count - j + 1) / j)
            pmf[j] = value
    else:
        log_ratio = math.log(p) - math.log(q)
        log_value = log_first
        pmf[0] = math.exp(log_value)
        for j in range(1, last + 1):
            log_value += math.log((count - j + 1) / j) + log_ratio
            pmf[j] = math.exp(log_value)


@njit(cache=True, nogil=True, error_model="numpy")
def order_statistics(values: np.ndarray, index: np.ndarray, counts: np.ndarray, tolerated: np.ndarray,
                     out: np.ndarray) -> None:
    """``out[j, l]`` = P(all but ``tolerated[j]`` of job ``j``'s nodes are done at point ``l``).

    Slot ``s`` of job ``j`` stands for ``counts[j, s]`` identical independent nodes whose CDF at point ``l``
    is ``values[index[j, s], l]`` (count 0: padding). With ``K`` nodes and ``s`` tolerated the DP counts
    the stragglers (at most ``s``) or the finished nodes (at most ``K - s - 1``, then the complement),
    whichever tracks fewer states: ``state[c, l]`` = P(``c`` events so far), updated slot by slot
    (node by node, or by one binomial term for a large slot), vectorised over the points.
    """
    jobs, slots = index.shape
    length = values.shape[1]
    width = 1
    for j in range(jobs):
        total = 0
        for s in range(slots):
            total += counts[j, s]
        width = max(width, min(tolerated[j], total - tolerated[j] - 1) + 1)
    state = np.empty((width, length))
    pmf = np.empty((width, length))
    p = np.empty(length)
    q = np.empty(length)
    column = np.empty(width)
    for j in range(jobs):
        total = 0
        for s in range(slots):
            total += counts[j, s]
        stragglers = tolerated[j] <= total - tolerated[j] - 1
        top = tolerated[j] if stragglers else total - tolerated[j] - 1
        for l in range(length):
            state[0, l] = 1.0
        for k in range(1, top + 1):
            for l in range(length):
                state[k, l] = 0.0
        for s in range(slots):
            count = counts[j, s]
            if count == 0:
                continue
            row = index[j, s]
            for l in range(length):
                f = values[row, l]
                if stragglers:          # the event: still running
                    p[l] = 1.0 - f
                    q[l] = f
                else:                   # the event: finished
                    p[l] = f
                    q[l] = 1.0 - f
            if top == 0 or count * (top + 1) <= (top + 1) * (top + 2) // 2 + 40:
                for _ in range(count):
                    for k in range(top, 0, -1):
                        for l in range(length):
                            state[k, l] = state[k, l] * q[l] + state[k - 1, l] * p[l]
                    for l in range(length):
                        state[0, l] *= q[l]
            else:
                for l in range(length):
                    _binomial_pmf(count, p[l], q[l], top, column)
                    for k in range(top + 1):
                        pmf[k, l] = column[k]
                for k in range(top, -1, -1):
                    for l in range(length):
                        acc = 0.0
                        for i in range(k + 1):
                            acc += state[k - i, l] * pmf[i, l]
                        state[k, l] = acc
        for l in range(length):
            acc = 0.0
            for k in range(top + 1):
                acc += state[k, l]
            out[j, l] = acc if stragglers else 1.0 - acc


@njit(cache=True, nogil=True, error_model="numpy")
def convolve_chain(values: np.ndarray, seg_start: np.ndarray, seg_length: np.ndarray, bank_row: np.ndarray,
                   fir: np.ndarray, fir_length: np.ndarray, tail_amp: np.ndarray, tail_ratio: np.ndarray,
                   tail_start: np.ndarray, tail_count: np.ndarray, pre: np.ndarray, use_pre: bool,
                   out: np.ndarray, out_start: np.ndarray, skip: np.ndarray, clip: bool) -> None:
    """Convolution stages, one after the other, over rows split into level segments.

    Level ``l`` of row ``r`` is ``x = values[r, seg_start[l] : seg_start[l] + seg_length[l]]`` (values before
    the segment count as 0). Stage ``s`` convolves it with kernel ``k = bank_row[s, r] * levels + l``
    (nothing if ``bank_row[s, r] < 0``):

        ``y[i] = Σ_{m < fir_length[k]} fir[k, m] x[i - m] + Σ_t tail_amp[k, t] Σ_{m >= tail_start[k, t]}
        tail_ratio[k, t]^(m - tail_start[k, t]) x[i - m]``

    (each tail by the recursion ``g[i] = x[i - start] + ratio g[i - 1]``). Then ``pre[r, seg_start[l] + i]``
    is added when ``use_pre`` (a part convolved elsewhere, e.g. a long head by FFT; single-stage calls
    only), and ``y[skip[l] + i]`` is written to ``out[r, out_start[l] + i]`` for ``i < seg_length[l] -
    skip[l]``, clipped to ``[0, 1]`` if ``clip``.
    """
    stages = bank_row.shape[0]
    rows = values.shape[0]
    levels = seg_start.shape[0]
    longest = 1
    for l in range(levels):
        longest = max(longest, seg_length[l])
    x = np.empty(longest)
    y = np.empty(longest)
    for r in range(rows):
        for l in range(levels):
            first, length = seg_start[l], seg_length[l]
            for i in range(length):
                x[i] = values[r, first + i]
            for s in range(stages):
                row = bank_row[s, r]
                if row < 0:
                    continue
                k = row * levels + l
                taps = min(fir_length[k], length)
                count = tail_count[k]
                if taps <= 2 and count <= 2:
                    # the usual kernel (an atom or two, one or two exponential tails): one fused sweep
                    w0 = fir[k, 0] if taps > 0 else 0.0
                    w1 = fir[k, 1] if taps > 1 else 0.0
                    a0 = tail_amp[k, 0] if count > 0 else 0.0
                    r0 = tail_ratio[k, 0] if count > 0 else 0.0
                    s0 = tail_start[k, 0] if count > 0 else length
                    a1 = tail_amp[k, 1] if count > 1 else 0.0
                    r1 = tail_ratio[k, 1] if count > 1 else 0.0
                    s1 = tail_start[k, 1] if count > 1 else length
                    g0 = 0.0
                    g1 = 0.0
                    previous = 0.0
                    for i in range(length):
                        current = x[i]
                        acc = w0 * current
                        if taps > 1:
                            acc += w1 * previous
                        if i >= s0:
                            g0 = x[i - s0] + r0 * g0
                            acc += a0 * g0
                        if i >= s1:
                            g1 = x[i - s1] + r1 * g1
                            acc += a1 * g1
                        y[i] = acc
                        previous = current
                else:
                    for i in range(length):
                        y[i] = 0.0
                    for m in range(taps):
                        weight = fir[k, m]
                        if weight != 0.0:
                            for i in range(m, length):
                                y[i] += weight * x[i - m]
                    for t in range(count):
                        start, ratio, amp = tail_start[k, t], tail_ratio[k, t], tail_amp[k, t]
                        g = 0.0
                        for i in range(start, length):
                            g = x[i - start] + ratio * g
                            y[i] += amp * g
                for i in range(length):
                    x[i] = y[i]
            if use_pre:
                for i in range(length):
                    x[i] += pre[r, first + i]
            base, offset = out_start[l], skip[l]
            for i in range(length - offset):
                v = x[offset + i]
                if clip:
                    v = min(max(v, 0.0), 1.0)
                out[r, base + i] = v


@njit(cache=True, nogil=True, error_model="numpy")
def _stop_loss(mu: float, d: float, x: float) -> float:
    """``E[(d + Exp(mu) - x)^+]``."""
    return mu * math.exp(-(x - d) / mu) if x >= d else mu + d - x


@njit(cache=True, nogil=True, error_model="numpy")
def simple_kernels(dist: np.ndarray, scale: np.ndarray, stage: np.ndarray, caps: np.ndarray, steps: np.ndarray,
                   kind: np.ndarray, weight: np.ndarray, offset: np.ndarray, mean: np.ndarray):
    """Hat weights, as an explicit head plus geometric tails, of ``scale[r] * D[dist[r]]`` above its lower
    end on lattices of step ``steps[l]``, for mixtures ``D`` of atoms and exponential leaves only: leaf
    ``j`` of ``D[i]`` has ``kind[j, i]`` (0: absent, 1: atom, 2: exponential), ``weight``, ``offset`` (its
    lower end above ``D``'s, unscaled seconds) and ``mean`` (of its exponential part). Kernel row ``r``
    has at most ``caps[stage[r], l]`` explicit weights on lattice ``l``.

    An atom at ``d`` puts ``w Λ(d/h - k)`` on point ``k``; an exponential leaf ``d + Exp(μ)`` the second
    differences ``(S((k-1)h) - 2 S(kh) + S((k+1)h)) / h`` of its stop-loss ``S(x) = w μ e^{-(x - d)/μ}``
    (``x >= d``; else ``w (μ + d - x)``) for ``k < m = ceil(d/h) + 1``, and from ``m`` on the exact tail
    ``w (μ/h) e^{-(kh - d)/μ} (e^{h/μ} - 2 + e^{-h/μ})``.

    Returns ``(fir, fir_length, tail_amp, tail_ratio, tail_start, tail_count)`` with rows ``r * levels +
    l`` (see :func:`convolve_chain`).
    """
    rows = dist.shape[0]
    levels = steps.shape[0]
    slots = kind.shape[0]
    size = 1
    tails = 0
    for r in range(rows):
        i = dist[r]
        count = 0
        for j in range(slots):
            if kind[j, i] == 2:
                count += 1
            if kind[j, i] != 0:
                for l in range(levels):
                    reach = int(math.ceil(offset[j, i] * scale[r] / steps[l])) + 2
                    size = max(size, min(reach, caps[stage[r], l]))
        tails = max(tails, count)
    fir = np.zeros((rows * levels, size))
    fir_length = np.zeros(rows * levels, dtype=np.int64)
    tail_amp = np.zeros((rows * levels, tails))
    tail_ratio = np.zeros((rows * levels, tails))
    tail_start = np.zeros((rows * levels, tails), dtype=np.int64)
    tail_count = np.zeros(rows * levels, dtype=np.int64)
    for r in range(rows):
        i = dist[r]
        for l in range(levels):
            k_row = r * levels + l
            h = steps[l]
            cap = min(caps[stage[r], l], size)
            length = 0
            count = 0
            for j in range(slots):
                if kind[j, i] == 0:
                    continue
                w = weight[j, i]
                d = offset[j, i] * scale[r]
                u = d / h
                if kind[j, i] == 1:
                    low = int(math.floor(u))
                    if 0 <= low < cap:
                        fir[k_row, low] += w * max(0.0, 1.0 - (u - low))
                    if 0 <= low + 1 < cap:
                        fir[k_row, low + 1] += w * max(0.0, 1.0 - (low + 1 - u))
                    length = max(length, min(cap, low + 2))
                else:
                    mu = mean[j, i] * scale[r]
                    m = int(math.ceil(u)) + 1
                    for k in range(min(m, cap)):
                        acc = _stop_loss(mu, d, (k - 1) * h) - 2.0 * _stop_loss(mu, d, k * h) \
                            + _stop_loss(mu, d, (k + 1) * h)
                        fir[k_row, k] += max(0.0, w * acc / h)
                    length = max(length, min(cap, m))
                    x = h / mu
                    tail_amp[k_row, count] = (w / x) * math.exp(x - (m * h - d) / mu) * math.expm1(-x) ** 2
                    tail_ratio[k_row, count] = math.exp(-x)
                    tail_start[k_row, count] = m
                    count += 1
            fir_length[k_row] = length
            tail_count[k_row] = count
    return fir, fir_length, tail_amp, tail_ratio, tail_start, tail_count


@njit(cache=True, nogil=True, error_model="numpy")
def grid_points(firsts: np.ndarray, steps: np.ndarray, lengths: np.ndarray, extras: np.ndarray,
                shifts: np.ndarray, scale: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Row ``r``, level ``l``: ``(firsts[l] - shifts[r] + steps[l] (i - extras[l] + 1e-9)) / scale[r] + low[r]``
    for ``i < lengths[l] + extras[l]``, the levels side by side (the point nudged up a billionth of a step
    so that atoms sitting exactly on grid points are not lost to rounding)."""
    rows = shifts.shape[0]
    levels = steps.shape[0]
    width = 0
    for l in range(levels):
        width += lengths[l] + extras[l]
    out = np.empty((rows, width))
    for r in range(rows):
        column = 0
        for l in range(levels):
            base = firsts[l] - shifts[r]
            for i in range(lengths[l] + extras[l]):
                out[r, column] = (base + steps[l] * (i - extras[l] + 1e-9)) / scale[r] + low[r]
                column += 1
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def pass_geometry(points: np.ndarray, steps: np.ndarray, starts: np.ndarray, lowest: float,
                  edge_extents: np.ndarray, shift: float, worker_extents: np.ndarray):
    """Array sizes of one pass of a block over lattices ``starts[l] + steps[l] * arange(points[l])``.

    The edge stage looks back ``extras[l]`` points: as far as its kernels reach (each at most the
    ``1 - PMF_EPS`` quantile width ``edge_extents[s]`` or back to the earliest arrival ``lowest``), so the
    worker rows are needed on ``lengths = points + extras`` points from ``firsts = starts - extras * steps``; the
    worker stage looks back ``worker_extras`` points in the same way (earliest delivery ``shift``). Returns
    ``(edge_caps, extras, lengths, firsts, worker_caps, worker_extras)``; ``*_caps[s, l]`` bounds the
    explicit kernel weights of stage ``s`` on lattice ``l``.
    """
    levels = steps.shape[0]
    edge_caps = np.empty((edge_extents.shape[0], levels), dtype=np.int64)
    worker_caps = np.empty((worker_extents.shape[0], levels), dtype=np.int64)
    extras = np.empty(levels, dtype=np.int64)
    lengths = np.empty(levels, dtype=np.int64)
    firsts = np.empty(levels)
    worker_extras = np.empty(levels, dtype=np.int64)
    for l in range(levels):
        h = steps[l]
        n = points[l]
        need = int(max(0.0, math.ceil((starts[l] - lowest) / h)))
        reach = 0
        for s in range(edge_extents.shape[0]):
            edge_caps[s, l] = min(n + need, int(math.ceil(edge_extents[s] / h)) + 2)
            reach += edge_caps[s, l] - 1
        extras[l] = min(need, reach)
        lengths[l] = n + extras[l]
        firsts[l] = starts[l] - extras[l] * h
        need = int(max(0.0, math.ceil((firsts[l] - shift) / h)))
        reach = 0
        for s in range(worker_extents.shape[0]):
            worker_caps[s, l] = min(lengths[l] + need, int(math.ceil(worker_extents[s] / h)) + 2)
            reach += worker_caps[s, l] - 1
        worker_extras[l] = min(need, reach)
    return edge_caps, extras, lengths, firsts, worker_caps, worker_extras


@njit(cache=True, nogil=True, error_model="numpy")
def trapezoid_survival(cdf: np.ndarray, decoded: np.ndarray, first: int, step: float, total: np.ndarray,
                       last: np.ndarray) -> None:
    """Adds to ``total[r]`` the trapezoidal integral, on step ``step`` from column ``first`` to the last but one
    column of ``cdf`` (the last is ``t = ∞``), of the survival ``1 - cdf[r] / decoded[r]`` clipped to ``[0, 1]``,
    and sets ``last[r]`` to its value at the last point."""
    rows = cdf.shape[0]
    points = cdf.shape[1] - 1
    for r in range(rows):
        d = decoded[r]
        part = 0.0
        s = 0.0
        for i in range(first, points):
            s = min(max(1.0 - cdf[r, i] / d, 0.0), 1.0) if d > 0.0 else np.nan
            part += 0.5 * s if i == first or i == points - 1 else s
        if points - first >= 2:
            total[r] += step * part
        last[r] = s


@njit(cache=True, nogil=True, error_model="numpy")
def kth_smallest(values: np.ndarray, counts: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``out[q, j]`` = the ``k[j]``-th smallest (1-based) of ``values[q, j, :]`` with slot ``s`` repeated
    ``counts[j, s]`` times (count 0: absent)."""
    quantiles, jobs, slots = values.shape
    out = np.empty((quantiles, jobs))
    for q in range(quantiles):
        for j in range(jobs):
            # the smallest value with at least k[j] copies at or below it
            best = np.inf
            for s in range(slots):
                if counts[j, s] == 0 or values[q, j, s] >= best:
                    continue
                below = 0
                for t in range(slots):
                    if values[q, j, t] <= values[q, j, s]:
                        below += counts[j, t]
                if below >= k[j]:
                    best = values[q, j, s]
            out[q, j] = best
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def block_rows(values: np.ndarray, points: np.ndarray, lengths: np.ndarray, worker_extras: np.ndarray,
               extras: np.ndarray, worker_bank: np.ndarray, edge_bank: np.ndarray, fir: np.ndarray,
               fir_length: np.ndarray, tail_amp: np.ndarray, tail_ratio: np.ndarray, tail_start: np.ndarray,
               tail_count: np.ndarray, index: np.ndarray, counts: np.ndarray, tolerated: np.ndarray,
               linked: np.ndarray, worker_failure: float, edge_failure: float) -> np.ndarray:
    """One pass of a block of edge jobs, from the exactly evaluated component's CDF at the points to the
    jobs' arrival CDFs at the master (see ``Evaluator._block_on_levels``).

    ``values[r]`` holds, level after level, ``lengths[l] + worker_extras[l]`` points of worker row ``r``;
    the worker stages (kernels ``worker_bank``) turn them into the rows' delivery CDFs on ``lengths[l]``
    points (then ``t = ∞``), scaled by ``1 - worker_failure``; each job is the order statistic of its rows
    (``index``, ``counts``, ``tolerated``); the edge stages (``edge_bank``) add the link delays and keep the
    last ``points[l]`` points of each level (then ``t = ∞``), scaled by ``1 - edge_failure`` for ``linked``
    jobs. Returns ``(jobs, Σ (points + 1))``."""
    rows = values.shape[0]
    jobs = index.shape[0]
    levels = points.shape[0]
    seg_start = np.empty(levels, dtype=np.int64)
    seg_length = np.empty(levels, dtype=np.int64)
    out_start = np.empty(levels, dtype=np.int64)
    level_start = np.empty(levels, dtype=np.int64)
    a = b = c = 0
    for l in range(levels):
        seg_start[l], seg_length[l], out_start[l], level_start[l] = a, lengths[l] + worker_extras[l], b, c
        a += lengths[l] + worker_extras[l]
        b += lengths[l] + 1
        c += points[l] + 1
    cdf = np.empty((rows + 1, b))
    convolve_chain(values, seg_start, seg_length, worker_bank, fir, fir_length, tail_amp, tail_ratio, tail_start,
                   tail_count, values[:0, :0], False, cdf, out_start, worker_extras, True)
    keep = 1.0 - worker_failure
    for r in range(rows):
        for l in range(levels):
            cdf[r, out_start[l] + lengths[l]] = 1.0
        if worker_failure > 0.0:
            for i in range(b):
                cdf[r, i] *= keep
    for i in range(b):
        cdf[rows, i] = 1.0                       # padding row: always finished
    edge_cdf = np.empty((jobs, b))
    order_statistics(cdf, index, counts, tolerated, edge_cdf)
    out = np.empty((jobs, c))
    convolve_chain(edge_cdf, out_start, lengths, edge_bank, fir, fir_length, tail_amp, tail_ratio, tail_start,
                   tail_count, values[:0, :0], False, out, level_start, extras, True)
    keep = 1.0 - edge_failure
    for j in range(jobs):
        for l in range(levels):
            out[j, level_start[l] + points[l]] = edge_cdf[j, out_start[l] + lengths[l]]
        if edge_failure > 0.0 and linked[j]:
            for i in range(c):
                out[j, i] *= keep
    return out
