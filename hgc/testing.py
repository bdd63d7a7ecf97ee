"""Synthetic heterogeneous systems for tests, benchmarks and examples (seeded)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from hgc.distributions import Bimodal, Constant, parse_distribution
from hgc.timing import TimingModel
from hgc.topology import Topology

COMPUTE_FAMILIES = {
    "shifted_exponential": {"dist": "shifted_exponential", "shift": 1.0, "mean": 0.5},
    "exponential": {"dist": "shifted_exponential", "shift": 0.2, "mean": 1.0},
    "bimodal": {"dist": "bimodal", "p": 0.1, "fast": {"dist": "shifted_exponential", "shift": 1.0, "mean": 0.2},
                "slow": {"dist": "shifted_exponential", "shift": 5.0, "mean": 2.0}},
    "lognormal": {"dist": "lognormal", "mu": 0.0, "sigma": 0.8},
}
"""Whole-dataset compute time families of the synthetic systems (seconds, before speed factors)."""


def random_system(seed: int, n_edges: int, workers: int | Sequence[int], *, distinct: bool = False,
                  compute: str = "shifted_exponential", overhead_mean: float = 0.02) -> TimingModel:
    """A seeded heterogeneous system for benchmarks and tests.

    Compute follows ``COMPUTE_FAMILIES[compute]`` (whole dataset), divided by a per-edge speed
    (log-normal, σ = 0.4) and a per-worker factor: one of 1, 0.5, 0.2 (probabilities 0.8, 0.12, 0.08),
    or with ``distinct`` a log-normal factor (σ = 0.3) so that no two workers are alike. Every worker has
    an exponential overhead (mean ``overhead_mean`` s) and a 1 ms uplink; every edge an exponential link
    to the master (mean log-normal around 20 ms), 5 ms per vector, and with probability 0.3 a bimodal
    processing delay (exponential with mean 0.5 s with probability 0.1).
    """
    rng = np.random.default_rng(seed)
    counts = (int(workers),) * n_edges if isinstance(workers, (int, np.integer)) else tuple(int(w) for w in workers)
    topo = Topology(counts)
    base = parse_distribution(COMPUTE_FAMILIES[compute], "compute")
    edge_speed = np.exp(rng.normal(0.0, 0.4, n_edges))
    times = []
    for i, m in enumerate(counts):
        for _ in range(m):
            factor = rng.lognormal(0.0, 0.3) if distinct else rng.choice([1.0, 0.5, 0.2], p=[0.8, 0.12, 0.08])
            times.append(base.scaled(1.0 / (edge_speed[i] * factor)))
    overhead = parse_distribution({"dist": "exponential", "mean": overhead_mean}, "overhead")
    uplink = Constant(0.001)
    links = tuple(parse_distribution({"dist": "exponential", "mean": float(v)}, "uplink")
                  for v in np.exp(rng.normal(math.log(0.02), 0.8, n_edges)))
    slow = Bimodal(0.1, Constant(0.0), parse_distribution({"dist": "exponential", "mean": 0.5}, "process"))
    process = tuple(slow if rng.random() < 0.3 else Constant(0.0) for _ in range(n_edges))
    big_n = topo.n_workers
    return TimingModel(topo, tuple(times), (overhead,) * big_n, (uplink,) * big_n, process, links,
                       (0.005,) * n_edges)


def random_small_system(seed: int) -> TimingModel:
    """A random small heterogeneous system: 2-5 edges with 1-4 workers each, a compute family and an
    overhead (10-200 ms) drawn at random (see :func:`random_system`)."""
    rng = np.random.default_rng([seed, 1])
    n = int(rng.integers(2, 6))
    family = list(COMPUTE_FAMILIES)[int(rng.integers(len(COMPUTE_FAMILIES)))]
    return random_system(seed, n, [int(m) for m in rng.integers(1, 5, n)], compute=family,
                         overhead_mean=float(np.exp(rng.uniform(math.log(0.01), math.log(0.2)))))


def spread_system(n_edges: int, workers: int | Sequence[int], spread: float, *, across: str = "system",
                  compute: str = "shifted_exponential", overhead_mean: float = 0.02,
                  edge_uplink_mean: float = 0.01) -> TimingModel:
    """A system whose workers' speeds follow the linear profile of ``timing.speed_profile`` (from 1 down to
    ``1/spread``; :func:`hgc.timing.speed_profile`), exactly as a config with these keys would give:
    compute from ``COMPUTE_FAMILIES[compute]``, exponential overheads (mean ``overhead_mean`` s) and
    exponential edge→master links (mean ``edge_uplink_mean`` s)."""
    from hgc.timing import parse_timing  # noqa: PLC0415

    counts = [int(workers)] * n_edges if isinstance(workers, (int, np.integer)) else [int(w) for w in workers]
    raw = {"worker": {"compute": COMPUTE_FAMILIES[compute],
                      "overhead": {"dist": "exponential", "mean": overhead_mean}},
           "edge": {"uplink": {"dist": "exponential", "mean": edge_uplink_mean}},
           "speed_profile": {"spread": float(spread), "across": across}}
    return parse_timing(raw, Topology(tuple(counts)))
