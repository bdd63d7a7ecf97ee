"""The three-tier system: one master, ``n`` edge nodes, ``m_i`` workers under edge ``i``.

Workers are numbered edge by edge (edge 0's workers first); arrays over workers use that order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from hgc.errors import ConfigError
from hgc.limits import MAX_EDGES, MAX_WORKERS, check_topology_size
from hgc.validation import as_int, as_list, as_mapping, check_keys, join


@dataclass(frozen=True)
class Topology:
    """Worker counts per edge, ``workers[i] = m_i >= 1``."""

    workers: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.workers:
            raise ConfigError("need at least one edge", "topology.edges")
        for i, m in enumerate(self.workers):
            if m < 1:
                raise ConfigError(f"must be >= 1, got {m}", f"topology.workers[{i}]")

    @property
    def n_edges(self) -> int:
        return len(self.workers)

    @property
    def n_workers(self) -> int:
        """Total number of workers ``N = m_1 + ... + m_n``."""
        return int(sum(self.workers))

    @cached_property
    def offsets(self) -> np.ndarray:
        """Index of each edge's first worker, plus ``N`` at the end (length ``n + 1``)."""
        return np.concatenate([[0], np.cumsum(self.workers)]).astype(np.intp)

    @cached_property
    def worker_edge(self) -> np.ndarray:
        """Edge index of every worker, shape ``(N,)``."""
        return np.repeat(np.arange(self.n_edges), self.workers)


def parse_topology(raw: Any, key: str = "topology") -> Topology:
    """``{edges: n, workers: m | [m_1, ..., m_n]}`` from a config."""
    raw = as_mapping(raw, key)
    check_keys(raw, key, ("edges", "workers"), ("workers",))
    workers_raw = raw["workers"]
    if isinstance(workers_raw, (list, tuple)):
        items = as_list(workers_raw, join(key, "workers"))
        if len(items) > MAX_EDGES:
            raise ConfigError(f"at most {MAX_EDGES} edges are supported, got {len(items)}", join(key, "workers"))
        workers = tuple(as_int(m, join(join(key, "workers"), i), minimum=1, maximum=MAX_WORKERS)
                        for i, m in enumerate(items))
        if not workers:
            raise ConfigError("expected at least one edge's worker count", join(key, "workers"))
        if "edges" in raw:
            n = as_int(raw["edges"], join(key, "edges"), minimum=1)
            if n != len(workers):
                raise ConfigError(f"{n} edges but {len(workers)} worker counts in topology.workers",
                                  join(key, "edges"))
        check_topology_size(len(workers), workers, key)
        return Topology(workers)
    if "edges" not in raw:
        raise ConfigError("missing required key 'edges' (needed when 'workers' is one number)", key)
    n = as_int(raw["edges"], join(key, "edges"), minimum=1, maximum=MAX_EDGES)
    m = as_int(workers_raw, join(key, "workers"), minimum=1, maximum=MAX_WORKERS)
    check_topology_size(n, m, key)
    return Topology((m,) * n)

