"""The timing model (docs/model.md), resolved to one distribution per node.

A worker ``w`` of edge ``i`` holding a fraction ``load`` of the dataset delivers its message to the edge at
``C_w = load * X_w + Y_w + U_w + b_w * length`` seconds: ``X_w`` is its time to process the *whole* dataset
(already divided by its ``speed``), ``Y_w`` a load-independent overhead, ``U_w`` its uplink latency and
``b_w`` (``worker_per_vector``) the seconds its link needs per full-length gradient vector, charged in
proportion to the message's length (a fraction of a vector). Edge ``i`` adds ``P_i`` (processing / edge
straggling) and ``V_i`` (edge→master latency) once per iteration and ``per_vector[i]`` seconds per
full-length vector it sends to the master. Nodes fail (never report in an
iteration) independently with probabilities ``worker_failure`` and ``edge_failure``.

An optional ``speed_profile`` gives the workers a linear profile of speed factors (one number to sweep
for "how heterogeneous is the system"): see :func:`speed_profile`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hgc.distributions import ZERO, Distribution, parse_distribution
from hgc.errors import ConfigError
from hgc.limits import MAX_DELAY, MAX_SPEED, MIN_SPEED
from hgc.topology import Topology
from hgc.validation import as_float, as_int, as_list, as_mapping, as_probability, check_keys, describe, join

WORKER_KEYS = ("compute", "overhead", "uplink", "per_vector")
EDGE_KEYS = ("process", "uplink", "per_vector")
PROFILE_ACROSS = ("system", "edges")
"""``speed_profile.across``: one profile over all workers (edge by edge), or the same profile in every edge."""
MAX_SPREAD = 1e6


@dataclass(frozen=True)
class TimingModel:
    """Per-node delay distributions (seconds) of one system, workers in edge-major order."""

    topology: Topology
    worker_compute: tuple[Distribution, ...]
    worker_overhead: tuple[Distribution, ...]
    worker_uplink: tuple[Distribution, ...]
    edge_process: tuple[Distribution, ...]
    edge_uplink: tuple[Distribution, ...]
    per_vector: tuple[float, ...]
    worker_failure: float = 0.0
    edge_failure: float = 0.0
    worker_per_vector: tuple[float, ...] | None = None
    warnings: tuple[str, ...] = field(default=(), compare=False)
    """Settings that are valid but have no effect (e.g. a speed factor on a zero delay)."""

    def __post_init__(self) -> None:
        n, big_n = self.topology.n_edges, self.topology.n_workers
        if self.worker_per_vector is not None and len(self.worker_per_vector) != big_n:
            raise ValueError(f"worker_per_vector: expected {big_n} entries, got {len(self.worker_per_vector)}")
        for name in ("worker_compute", "worker_overhead", "worker_uplink"):
            if len(getattr(self, name)) != big_n:
                raise ValueError(f"{name}: expected {big_n} distributions, got {len(getattr(self, name))}")
        for name in ("edge_process", "edge_uplink", "per_vector"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name}: expected {n} entries, got {len(getattr(self, name))}")

    @classmethod
    def homogeneous(cls, topology: Topology, compute: Distribution, *, overhead: Distribution = ZERO,
                    uplink: Distribution = ZERO, edge_process: Distribution = ZERO,
                    edge_uplink: Distribution = ZERO, per_vector: float = 0.0,
                    worker_failure: float = 0.0, edge_failure: float = 0.0,
                    worker_per_vector: float = 0.0) -> "TimingModel":
        """The same distributions for every worker and every edge."""
        big_n, n = topology.n_workers, topology.n_edges
        return cls(topology, (compute,) * big_n, (overhead,) * big_n, (uplink,) * big_n,
                   (edge_process,) * n, (edge_uplink,) * n, (float(per_vector),) * n,
                   worker_failure, edge_failure,
                   (float(worker_per_vector),) * big_n if worker_per_vector else None)

    def restrict(self, edges: Sequence[int], workers: Sequence[Sequence[int]]) -> "TimingModel":
        """The model of a sub-system: the listed ``edges`` and, for each, the listed worker positions.

        ``workers[j]`` are positions (0-based, inside edge ``edges[j]``) of the participating workers.
        """
        topo = self.topology
        global_workers = [int(topo.offsets[e]) + int(p) for e, ps in zip(edges, workers) for p in ps]
        pick_w = lambda dists: tuple(dists[w] for w in global_workers)  # noqa: E731
        pick_e = lambda values: tuple(values[e] for e in edges)  # noqa: E731
        return replace(
            self, topology=Topology(tuple(len(ps) for ps in workers)),
            worker_compute=pick_w(self.worker_compute), worker_overhead=pick_w(self.worker_overhead),
            worker_uplink=pick_w(self.worker_uplink), edge_process=pick_e(self.edge_process),
            edge_uplink=pick_e(self.edge_uplink), per_vector=pick_e(self.per_vector),
            worker_per_vector=None if self.worker_per_vector is None else pick_w(self.worker_per_vector))

    @property
    def per_vector_array(self) -> np.ndarray:
        """Seconds per full-length vector on each edge's link to the master, shape ``(n,)``."""
        return np.asarray(self.per_vector, dtype=float)

    @property
    def worker_per_vector_array(self) -> np.ndarray:
        """Seconds per full-length vector on each worker's link to its edge, shape ``(N,)``."""
        if self.worker_per_vector is None:
            return np.zeros(self.topology.n_workers)
        return np.asarray(self.worker_per_vector, dtype=float)


# ----------------------------------------------------------------------------------------------------
# Speed profiles

def speed_profile(topology: Topology, spread: float, across: str = "system") -> np.ndarray:
    """Per worker (edge-major order), the speed factor of a linear profile from 1 down to ``1/spread``.

    ``across="system"``: the ``N`` workers in edge-major order get speeds evenly spaced from 1 (worker 0
    of edge 0) to ``1/spread`` (the last worker of the last edge), so later edges are slower;
    ``across="edges"``: inside every edge its ``m_i`` workers are spaced from 1 to ``1/spread`` (every edge
    has the same mix). A single worker gets speed 1. ``spread = 1`` gives all ones.
    """
    if across not in PROFILE_ACROSS:
        raise ValueError(f"across must be one of {PROFILE_ACROSS}, got {across!r}")
    if across == "system":
        big_n = topology.n_workers
        position = np.arange(big_n) / max(big_n - 1, 1)
    else:
        sizes = np.asarray(topology.workers, dtype=np.intp)
        local = np.arange(topology.n_workers) - np.repeat(np.asarray(topology.offsets[:-1]), sizes)
        position = local / np.maximum(np.repeat(sizes, sizes) - 1, 1)
    return 1.0 - (1.0 - 1.0 / float(spread)) * position


def _parse_profile(raw: Any, key: str, topology: Topology) -> np.ndarray:
    """The ``timing.speed_profile`` mapping as per-worker speed factors."""
    raw = as_mapping(raw, key)
    check_keys(raw, key, ("spread", "across"), ("spread",))
    spread = as_float(raw["spread"], join(key, "spread"), minimum=1.0, maximum=MAX_SPREAD)
    across = raw.get("across", "system")
    if across not in PROFILE_ACROSS:
        raise ConfigError(f"expected one of {', '.join(PROFILE_ACROSS)}, got {describe(across)}", join(key, "across"))
    return speed_profile(topology, spread, across)


# ----------------------------------------------------------------------------------------------------
# Parsing the `timing:` section

def _parse_node(raw: Any, key: str, keys: tuple[str, ...], base_dir: Path | None,
                allow_speed: bool) -> dict[str, Any]:
    """The distributions (and ``speed``/``per_vector`` numbers) given in one worker or edge mapping."""
    raw = as_mapping(raw, key)
    allowed = keys + (("speed",) if allow_speed else ())
    check_keys(raw, key, allowed)
    parsed: dict[str, Any] = {}
    for name, value in raw.items():
        if name == "speed":
            parsed[name] = as_float(value, join(key, name), minimum=MIN_SPEED, maximum=MAX_SPEED)
        elif name == "per_vector":
            parsed[name] = as_float(value, join(key, name), minimum=0.0, maximum=MAX_DELAY)
        else:
            parsed[name] = parse_distribution(value, join(key, name), base_dir)
    return parsed


def _indices(raw: Any, key: str, upper: int, what: str) -> list[int]:
    values = as_list(raw, key, allow_scalar=True)
    out = []
    for j, value in enumerate(values):
        index = as_int(value, join(key, j), minimum=0)
        if index >= upper:
            raise ConfigError(f"{what} index {index} out of range (there are {upper})", join(key, j))
        out.append(index)
    return out


def parse_timing(raw: Any, topology: Topology, key: str = "timing",
                 base_dir: Path | None = None) -> TimingModel:
    """Resolve the ``timing:`` section (defaults, then overrides in order) to per-node distributions."""
    raw = as_mapping(raw if raw is not None else {}, key)
    check_keys(raw, key, ("worker", "edge", "failures", "overrides", "speed_profile"), ("worker",))
    worker = _parse_node(raw["worker"], join(key, "worker"), WORKER_KEYS, base_dir, allow_speed=True)
    if "compute" not in worker:
        raise ConfigError("missing required key 'compute' (whole-dataset compute time distribution)",
                          join(key, "worker"))
    edge = _parse_node(raw.get("edge", {}), join(key, "edge"), EDGE_KEYS, base_dir, allow_speed=True)

    big_n, n = topology.n_workers, topology.n_edges
    worker_fields = [{"compute": worker["compute"], "overhead": worker.get("overhead", ZERO),
                      "uplink": worker.get("uplink", ZERO), "per_vector": worker.get("per_vector", 0.0),
                      "speed": worker.get("speed", 1.0)}
                     for _ in range(big_n)]
    edge_fields = [{"process": edge.get("process", ZERO), "uplink": edge.get("uplink", ZERO),
                    "per_vector": edge.get("per_vector", 0.0), "speed": edge.get("speed", 1.0)}
                   for _ in range(n)]

    overrides_key = join(key, "overrides")
    for j, override in enumerate(as_list(raw.get("overrides", []), overrides_key)):
        okey = join(overrides_key, j)
        override = as_mapping(override, okey)
        check_keys(override, okey, ("edges", "workers", "worker", "edge"))
        if "worker" not in override and "edge" not in override:
            raise ConfigError("an override needs a 'worker' or an 'edge' mapping", okey)
        edges = _indices(override["edges"], join(okey, "edges"), n, "edge") if "edges" in override \
            else list(range(n))
        if "worker" in override:
            values = _parse_node(override["worker"], join(okey, "worker"), WORKER_KEYS, base_dir, True)
            for e in edges:
                positions = (_indices(override["workers"], join(okey, "workers"), topology.workers[e],
                                      f"worker (edge {e} has {topology.workers[e]} workers;)")
                             if "workers" in override else range(topology.workers[e]))
                for p in positions:
                    worker_fields[int(topology.offsets[e]) + p].update(values)
                    if "speed" in values:
                        worker_fields[int(topology.offsets[e]) + p]["speed_key"] = join(join(okey, "worker"), "speed")
        elif "workers" in override:
            raise ConfigError("'workers' selects workers, so it needs a 'worker' mapping", join(okey, "workers"))
        if "edge" in override:
            values = _parse_node(override["edge"], join(okey, "edge"), EDGE_KEYS, base_dir, True)
            for e in edges:
                edge_fields[e].update(values)
                if "speed" in values:
                    edge_fields[e]["speed_key"] = join(join(okey, "edge"), "speed")

    if "speed_profile" in raw:
        profile = _parse_profile(raw["speed_profile"], join(key, "speed_profile"), topology)
        for node, factor in zip(worker_fields, profile.tolist()):
            if factor != 1.0:
                node["speed"] = node["speed"] * factor
                node.setdefault("speed_key", join(join(key, "speed_profile"), "spread"))
                if node["speed"] < MIN_SPEED:
                    raise ConfigError(f"with the speed factors of 'worker'/'overrides' some worker's speed would "
                                      f"be {node['speed']:.3g} < {MIN_SPEED:g}", join(key, "speed_profile"))

    failures = as_mapping(raw.get("failures", {}), join(key, "failures"))
    check_keys(failures, join(key, "failures"), ("worker", "edge"))
    worker_failure = as_probability(failures.get("worker", 0.0), join(key, "failures.worker"))
    edge_failure = as_probability(failures.get("edge", 0.0), join(key, "failures.edge"))
    if worker_failure >= 1.0 or edge_failure >= 1.0:
        raise ConfigError("a failure probability of 1 means no iteration ever completes; use < 1",
                          join(key, "failures"))

    warnings = []
    for fields, delay, what in ((worker_fields, "compute", "worker compute time"),
                                (edge_fields, "process", "edge processing delay")):
        idle = {f.get("speed_key", join(key, "worker.speed" if delay == "compute" else "edge.speed"))
                for f in fields if f["speed"] != 1.0 and f[delay].is_zero}
        warnings += [f"{k}: has no effect: the {what} it divides is 0" for k in sorted(idle)]
    worker_per_vector = tuple(float(f["per_vector"]) for f in worker_fields)
    return TimingModel(
        topology=topology,
        worker_compute=tuple(_speed_scaled(f["compute"], f["speed"]) for f in worker_fields),
        worker_overhead=tuple(f["overhead"] for f in worker_fields),
        worker_uplink=tuple(f["uplink"] for f in worker_fields),
        edge_process=tuple(_speed_scaled(f["process"], f["speed"]) for f in edge_fields),
        edge_uplink=tuple(f["uplink"] for f in edge_fields),
        per_vector=tuple(float(f["per_vector"]) for f in edge_fields),
        worker_failure=worker_failure, edge_failure=edge_failure,
        worker_per_vector=worker_per_vector if any(worker_per_vector) else None,
        warnings=tuple(warnings),
    )


def _speed_scaled(dist: Distribution, speed: float) -> Distribution:
    """A node ``speed`` times faster takes ``1/speed`` of the time."""
    return dist if speed == 1.0 else dist.scaled(1.0 / speed)

