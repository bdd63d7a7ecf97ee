"""Size and work limits: refuse absurd requests *before* allocating anything, with the limit in the message.

Two kinds of limits:

* **Hard limits** hold for every run (they protect parsing and bookkeeping, whose cost grows with them):
  at most :data:`MAX_EDGES` edges and :data:`MAX_WORKERS` workers in a topology, :data:`MAX_PARTITIONS`
  partitions, :data:`MAX_PATTERNS` straggler patterns per code, delays that a double represents with room
  to spare (:func:`check_delay`, :func:`check_timing`).
* **Estimated limits** bound the memory (:data:`MAX_MEMORY_BYTES`) and the work of one run from the config
  alone — Monte Carlo draws (:data:`MAX_SAMPLED_DELAYS`), decoded patterns (:data:`MAX_DECODE_WORK`),
  gradient-descent arithmetic (:data:`MAX_TRAIN_WORK`), sweep points (:data:`MAX_SWEEP_POINTS`). The CLI
  flag ``--allow-large`` lifts them (``allow_large=True`` here) for a user who means it.

Every check raises :class:`~hgc.errors.ConfigError` with the key path that sets the size. The functions
take plain sizes (or a validated :class:`~hgc.config.ExperimentConfig`), so the simulator, optimizer and
verifier can call them too.
"""

from __future__ import annotations

import contextlib
import functools
import math
import warnings
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy as np

from hgc.errors import ConfigError

if TYPE_CHECKING:
    from hgc.config import ExperimentConfig
    from hgc.distributions import Distribution
    from hgc.timing import TimingModel
    from hgc.topology import Topology

# ---------------------------------------------------------------------------------------------- hard limits
MAX_EDGES = 10_000
"""Most edge nodes in a topology."""
MAX_WORKERS = 100_000
"""Most workers in a topology (all edges together)."""
MAX_PARTITIONS = 1_000_000
"""Largest ``data.partitions`` (K)."""
MAX_PATTERNS = 100_000_000
"""Largest ``hgc verify --patterns``."""
MAX_DELAY = 1e9
"""Longest delay (seconds, about 32 years) a node may take at the quantile :data:`TAIL_LEVEL`; the
simulator's histogram of iteration times also ends here."""
TAIL_LEVEL = 1.0 - 1e-9
"""The quantile checked against :data:`MAX_DELAY`: a run never samples much further into the tail."""
MIN_SPEED, MAX_SPEED = 1e-6, 1e6
"""Range of a node's ``speed`` factor."""
MIN_SPREAD = 1e-12
"""A random delay must spread over at least this many seconds (or be a constant): the evaluator divides
by its scale."""
MAX_COMPONENTS = 64
"""Most leaf distributions in one (nested ``bimodal``) delay distribution."""

# ---------------------------------------------------------------------------------------------- estimated limits
MAX_MEMORY_BYTES = 4 * 2**30
"""Largest estimated peak memory of one run (bytes)."""
MAX_SAMPLED_DELAYS = 10**12
"""Most node delays one Monte Carlo run draws (trials × nodes; about 10 hours on a 2-core machine)."""
MAX_DECODE_WORK = 10**11
"""Most ``patterns × N × max(N, K)`` summed over the codes ``hgc verify`` checks (a few hours)."""
MAX_TRAIN_WORK = 10**13
"""Most ``iterations × schemes × rows × features × classes`` multiply-adds of ``hgc train``."""
MAX_SWEEP_POINTS = 10_000
"""Most points in one sweep (each is validated before anything runs)."""
MAX_EMULATED_NODES = 1_000
"""Most workers and edges ``hgc emulate`` runs as live objects on a Dask cluster (each an actor with its
share of the data; with ``--kill`` a local cluster starts one process per node)."""

_BYTES_PER_DELAY = 8
_CHUNK_COPIES_PER_WORKER = 5     # per-chunk arrays over workers: compute, fixed, arrivals, temporaries
_CHUNK_COPIES_PER_SLOT = 3       # arrays over (edge, slot) of the largest edge: padding, sorting


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No floating-point warnings on stderr while probing parameters that may overflow (they are checked)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.3g} GiB"


def _exceeds(message: str, key: str, allow_large: bool) -> None:
    if not allow_large:
        raise ConfigError(f"{message}; make it smaller or pass --allow-large", key)


# ---------------------------------------------------------------------------------------------- topology


def check_topology_size(n_edges: int, workers: Sequence[int] | int, key: str = "topology") -> None:
    """Hard caps on the number of edges and workers (``workers``: per edge, or one count for all)."""
    if n_edges > MAX_EDGES:
        raise ConfigError(f"at most {MAX_EDGES} edges are supported, got {n_edges}", f"{key}.edges")
    total = workers * n_edges if isinstance(workers, int) else sum(workers)
    if total > MAX_WORKERS:
        raise ConfigError(f"at most {MAX_WORKERS} workers in total are supported, got {total}",
                          f"{key}.workers")


# ---------------------------------------------------------------------------------------------- delays


def _components(spec: Any) -> int:
    """Leaf distributions of a distribution's config form (a mixture counts its parts)."""
    if isinstance(spec, dict) and spec.get("dist") == "bimodal":
        return _components(spec.get("fast")) + _components(spec.get("slow"))
    return 1


def _quantile_bounds(dist: Distribution, level: float) -> tuple[float, float]:
    """``(smallest value, bound on the quantile at level)``. For a mixture, the bounds of its components
    (``P(X <= t) >= level`` when every component's is), which avoids inverting the mixture's CDF."""
    from hgc.distributions import Bimodal, Empirical  # noqa: PLC0415

    if isinstance(dist, Bimodal):
        parts = [part for part, weight in ((dist.fast, 1.0 - dist.p), (dist.slow, dist.p)) if weight > 0]
        bounds = [_quantile_bounds(part, level) for part in parts]
        return min(b[0] for b in bounds), max(b[1] for b in bounds)
    if isinstance(dist, Empirical):  # equality names the file, not its current contents: no caching
        return float(dist.ppf(0.0)), float(dist.ppf(level))
    return _parametric_bounds(dist, level)


@functools.lru_cache(maxsize=4096)
def _parametric_bounds(dist: Distribution, level: float) -> tuple[float, float]:
    """:func:`_quantile_bounds` of a parametric family, cached: equal distributions (same family and
    parameters) recur across configs and sweep points, and scipy's quantiles cost about a millisecond."""
    return float(dist.ppf(0.0)), float(dist.ppf(level))


def check_delay(dist: Distribution, key: str, what: str = "delay") -> None:
    """A delay distribution every part of hgc can compute with: support in ``[0, MAX_DELAY]`` up to the
    :data:`TAIL_LEVEL` quantile, finite, a spread of 0 or at least :data:`MIN_SPREAD`, at most
    :data:`MAX_COMPONENTS` components. (For a mixture the quantile is bounded by its components'.)"""
    components = _components(dist.spec())
    if components > MAX_COMPONENTS:
        raise ConfigError(f"a mixture of {components} distributions; at most {MAX_COMPONENTS} are supported", key)
    try:
        with _quiet():
            lower, upper = _quantile_bounds(dist, TAIL_LEVEL)
    except (ArithmeticError, ValueError) as err:
        raise ConfigError(f"the {what} cannot be evaluated with these parameters ({err})", key) from None
    if not math.isfinite(lower) or lower < 0.0:
        raise ConfigError(f"the {what} must be finite and >= 0, but its smallest value is {lower:g}", key)
    if not math.isfinite(upper) or upper > MAX_DELAY:
        shown = f"is {upper:.3g} s" if math.isfinite(upper) else "is infinite or undefined"
        raise ConfigError(f"the {what} is too long to represent: its {TAIL_LEVEL:.9g} quantile {shown}; "
                          f"the limit is {MAX_DELAY:g} s", key)
    if not dist.is_constant and 0.0 < upper - lower < MIN_SPREAD:
        raise ConfigError(f"the {what} varies by only {upper - lower:.3g} s, below the resolution of "
                          f"{MIN_SPREAD:g} s; use a constant", key)


def check_timing(model: TimingModel, key: str = "timing") -> None:
    """Every node's whole delay (speed applied, relay queue included) is within :data:`MAX_DELAY` at the
    :data:`TAIL_LEVEL` quantile, so no sum or order statistic of delays overflows and every iteration time
    fits the simulator's histogram."""
    topo = model.topology
    cache: dict[Any, float] = {}

    def upper(dist: Distribution) -> float:
        if dist not in cache:
            with _quiet():
                cache[dist] = _quantile_bounds(dist, TAIL_LEVEL)[1]
        return cache[dist]

    for e in range(topo.n_edges):
        edge_part = upper(model.edge_process[e]) + upper(model.edge_uplink[e])
        relay = model.per_vector[e] * topo.workers[e]
        for w in range(int(topo.offsets[e]), int(topo.offsets[e + 1])):
            worker_part = (upper(model.worker_compute[w]) + upper(model.worker_overhead[w])
                           + upper(model.worker_uplink[w]))
            total = worker_part + edge_part + relay
            if not math.isfinite(total) or total > MAX_DELAY:
                position = w - int(topo.offsets[e])
                shown = f"{total:.3g} s" if math.isfinite(total) else "an infinite or undefined time"
                raise ConfigError(
                    f"worker {position} of edge {e}: its delays (speed applied) and its edge's add up to {shown} "
                    f"at the {TAIL_LEVEL:.9g} quantile; the limit is {MAX_DELAY:g} s", key)


# ---------------------------------------------------------------------------------------------- Monte Carlo


def monte_carlo_bytes(topology: Topology, chunk_trials: int) -> int:
    """Estimated peak memory (bytes) of a Monte Carlo chunk of ``chunk_trials`` trials on ``topology``."""
    slots = topology.n_edges * max(topology.workers)
    per_trial = _CHUNK_COPIES_PER_WORKER * topology.n_workers + _CHUNK_COPIES_PER_SLOT * slots
    return _BYTES_PER_DELAY * chunk_trials * per_trial


def check_monte_carlo(topology: Topology, trials: int, *, key: str = "trials", runs: int = 1,
                      allow_large: bool = False) -> None:
    """Memory of one chunk and draws of ``runs`` runs of ``trials`` trials within the estimated limits."""
    from hgc.simulation import CHUNK_TRIALS  # noqa: PLC0415 - keeps this module import-light

    memory = monte_carlo_bytes(topology, min(trials, CHUNK_TRIALS))
    if memory > MAX_MEMORY_BYTES:
        _exceeds(f"a Monte Carlo chunk on {topology.n_workers} workers would need about {_gib(memory)} of memory, "
                 f"above the limit of {_gib(MAX_MEMORY_BYTES)}", "topology", allow_large)
    draws = runs * trials * (topology.n_workers + topology.n_edges)
    if draws > MAX_SAMPLED_DELAYS:
        _exceeds(f"{trials} trials x {topology.n_workers + topology.n_edges} nodes"
                 + (f" x {runs} runs" if runs > 1 else "")
                 + f" = {draws:.3g} sampled delays, above the limit of {MAX_SAMPLED_DELAYS:.3g}", key, allow_large)


# ---------------------------------------------------------------------------------------------- verify


def code_bytes(workers: int, partitions: int) -> int:
    """Estimated memory (bytes) of one code's coefficient matrices on ``workers`` workers and ``partitions``
    partitions (encoding, decoding and their temporaries)."""
    return 3 * _BYTES_PER_DELAY * workers * partitions


def check_verify(config: ExperimentConfig, max_patterns: int, *, allow_large: bool = False) -> None:
    """``--patterns`` within :data:`MAX_PATTERNS`; decoding work and code memory within the estimates.

    Stops at the first code that takes the running total over a limit, so refusing a huge system costs
    little; a system within the limits costs one placement per code (far less than verifying it).
    """
    if max_patterns > MAX_PATTERNS:
        raise ConfigError(f"at most {MAX_PATTERNS} patterns per code are supported, got {max_patterns}",
                          "--patterns")
    if allow_large:
        return
    key = "data.partitions" if config.data.partitions else "topology"
    work = 0
    sizes = (size for spec in config.schemes for size in spec.scheme.verify_work(spec, config.topology))
    for n, smallest, count in sizes:
        patterns = min(count, max_patterns)
        work += patterns * n * n
        if work <= MAX_DECODE_WORK:
            k = config.data.partitions or smallest
            if k is None:
                continue  # inadmissible: verify reports it without building anything
            memory = code_bytes(n, k)
            if memory > MAX_MEMORY_BYTES:
                _exceeds(f"a code's coefficient matrices would need about {_gib(memory)} of memory, above the "
                         f"limit of {_gib(MAX_MEMORY_BYTES)}", key, allow_large)
            work += patterns * n * max(k - n, 0)
        if work > MAX_DECODE_WORK:
            _exceeds(f"decoding the straggler patterns would take more than {MAX_DECODE_WORK:.3g} operations "
                     "(patterns x workers x max(workers, partitions), summed over the codes)", "--patterns",
                     allow_large)


# ---------------------------------------------------------------------------------------------- train


def training_sizes(config: ExperimentConfig) -> tuple[int, int, int]:
    """``(rows, features, outputs)`` of ``config``'s training set (before the split into train and test)."""
    cfg = config.train
    if cfg.dataset == "digits":
        return 1797, 64, 10
    return cfg.samples, cfg.features, 1 if cfg.dataset == "synthetic_regression" else cfg.classes


def training_bytes(config: ExperimentConfig, iterations: int | None = None) -> tuple[int, str]:
    """Estimated memory (bytes) of ``hgc train`` (the delays of every iteration, the dataset, the codes
    when ``data.partitions`` is set) and the config key that sets its largest part."""
    topo = config.topology
    iterations = int(iterations if iterations is not None else config.train.iterations)
    rows, features, _ = training_sizes(config)
    nodes = topo.n_workers + topo.n_edges
    delays = 4 * _BYTES_PER_DELAY * iterations * nodes
    data = 4 * _BYTES_PER_DELAY * rows * (features + 1)
    partitions = config.data.partitions or 0
    codes = code_bytes(topo.n_workers, min(partitions, rows))
    key = "train.iterations" if delays >= max(data, codes) else ("train.samples" if data >= codes else "data.partitions")
    return delays + data + codes, key


def training_work(config: ExperimentConfig, iterations: int | None = None) -> int:
    """Multiply-adds of ``hgc train``: iterations × schemes (the baseline included) × rows × (features + 1)
    × outputs."""
    iterations = int(iterations if iterations is not None else config.train.iterations)
    rows, features, classes = training_sizes(config)
    return iterations * (len(config.schemes) + 1) * rows * (features + 1) * max(classes, 1)


def check_training(config: ExperimentConfig, iterations: int | None = None, *, allow_large: bool = False) -> None:
    """Memory (delays of every iteration, dataset, codes) and arithmetic of ``hgc train`` within the limits."""
    iterations = int(iterations if iterations is not None else config.train.iterations)
    rows, features, classes = training_sizes(config)
    memory, key = training_bytes(config, iterations)
    if memory > MAX_MEMORY_BYTES:
        _exceeds(f"training would need about {_gib(memory)} of memory, above the limit of {_gib(MAX_MEMORY_BYTES)}",
                 key, allow_large)
    schemes = len(config.schemes) + 1
    work = training_work(config, iterations)
    if work > MAX_TRAIN_WORK:
        _exceeds(f"{iterations} iterations x {schemes} schemes x {rows} rows x {features + 1} features x "
                 f"{max(classes, 1)} outputs = {work:.3g} multiply-adds, above the limit of {MAX_TRAIN_WORK:.3g}",
                 "train.iterations", allow_large)


# ---------------------------------------------------------------------------------------------- sweep


def sweep_size(lengths: Iterable[int]) -> int:
    """Number of points of a grid whose axes have ``lengths`` values (computed without enumerating)."""
    return math.prod(lengths)


def check_sweep_points(count: int, *, allow_large: bool = False) -> None:
    """At most :data:`MAX_SWEEP_POINTS` points (every point is validated before anything runs)."""
    if count > MAX_SWEEP_POINTS:
        _exceeds(f"the grid has {count:.6g} points, above the limit of {MAX_SWEEP_POINTS}", "grid", allow_large)


# ---------------------------------------------------------------------------------------------- one entry point


def check_run(config: ExperimentConfig, verb: str, *, trials: int | None = None, iterations: int | None = None,
              max_patterns: int | None = None, allow_large: bool = False) -> None:
    """The estimated limits of running ``verb`` (``simulate``, ``optimize``, ``sweep``, ``train``,
    ``verify``, ``emulate``) on ``config``; ``trials``/``iterations``/``max_patterns`` are the CLI overrides."""
    if verb in ("simulate", "optimize", "sweep"):
        n_trials = int(trials if trials is not None else config.trials)
        check_monte_carlo(config.topology, n_trials, key="--trials" if trials is not None else "trials",
                          allow_large=allow_large)
    elif verb == "train":
        check_training(config, iterations, allow_large=allow_large)
    elif verb == "emulate":   # trains for real (and predicts with the Monte Carlo of `hgc simulate`)
        check_training(config, iterations, allow_large=allow_large)
        check_monte_carlo(config.topology, config.trials, allow_large=allow_large)
        nodes = config.topology.n_workers + config.topology.n_edges
        if nodes > MAX_EMULATED_NODES:
            _exceeds(f"{nodes} nodes to emulate, above the limit of {MAX_EMULATED_NODES} live nodes", "topology",
                     allow_large)
    elif verb == "verify":
        from hgc.verify import DEFAULT_PATTERNS  # noqa: PLC0415

        check_verify(config, max_patterns if max_patterns is not None else DEFAULT_PATTERNS,
                     allow_large=allow_large)
