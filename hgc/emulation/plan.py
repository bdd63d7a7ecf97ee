"""What each emulated node does in one iteration, derived from a scheme's strategy and code.

A :class:`ProtocolPlan` is everything the emulator needs to know about a scheme, and nothing else:
which edges and workers take part, which rows of the code's encoding matrix each worker sends, whether
an edge *decodes* (waits for its fastest ``wait_for`` workers and sends one vector) or *relays* (forwards
every worker message over its link, in arrival order), how many arrivals the master waits for, and the
decoders the edges and the master use. :func:`protocol_plan` is the only place where scheme kinds are
told apart; a new scheme needs a branch there and nothing else in :mod:`hgc.emulation`.

:func:`scheduled_delays` turns the sampled delays of the timing model (:class:`~hgc.simulation.DelaySample`)
into what each node must take in each iteration, with exactly the arithmetic of
:class:`~hgc.simulation.CompiledStrategy`, so the emulation and the simulator's prediction see the same draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from hgc.codes import FlatCode, GradientCode, HierarchicalCode
from hgc.codes.constructions import LayerCode
from hgc.schemes import Strategy
from hgc.simulation import DelaySample
from hgc.timing import TimingModel


class Decoder(Protocol):
    """Combines the messages of a set of responders into the vector the next tier needs."""

    @property
    def size(self) -> int:
        """Number of possible responders."""

    def weights(self, responded: np.ndarray) -> np.ndarray | None:
        """Weights ``(size,)`` (zero for non-responders) for the boolean mask ``responded``, or ``None``
        when these responders cannot give the vector exactly (residual above the code's tolerance)."""


@dataclass(frozen=True)
class LayerDecoder:
    """Decoding by one layer of a gradient code (least squares or fractional repetition, residual checked)."""

    layer: LayerCode

    @property
    def size(self) -> int:
        return self.layer.n_nodes

    def weights(self, responded: np.ndarray) -> np.ndarray | None:
        result = self.layer.decode_batch(np.asarray(responded, dtype=bool)[None])
        return result.weights[0] if bool(result.ok[0]) else None


@dataclass(frozen=True)
class SumDecoder:
    """Uncoded aggregation: the sum of every responder's message; needs all of them."""

    n: int

    @property
    def size(self) -> int:
        return self.n

    def weights(self, responded: np.ndarray) -> np.ndarray | None:
        responded = np.asarray(responded, dtype=bool)
        return np.ones(self.n) if responded.all() else None


@dataclass(frozen=True)
class EdgeRole:
    """One participating edge.

    ``edge`` is its topology index; ``positions`` the topology positions (inside the edge) of its
    participating workers and ``rows`` their rows in the code's encoding matrix, in the same order.
    A decoding edge (``relay`` false) waits for its fastest ``wait_for`` workers and combines their
    messages with ``decoder``; a relaying edge forwards each message and has no decoder.
    """

    edge: int
    positions: tuple[int, ...]
    rows: tuple[int, ...]
    relay: bool
    wait_for: int
    decoder: Decoder | None


@dataclass(frozen=True)
class ProtocolPlan:
    """A scheme as the emulator runs it (see the module docstring).

    ``master_wait`` counts arrivals at the master: edge vectors for decoding edges, worker messages for
    relaying edges. ``master_decoder`` has one responder per plan edge (decoding) or per encoding row
    (relaying). ``encoding`` is the code's ``(workers, K)`` matrix: worker row ``r`` sends
    ``encoding[r] @ partial_gradients``.
    """

    kind: str
    edges: tuple[EdgeRole, ...]
    master_wait: int
    master_decoder: Decoder
    encoding: np.ndarray
    load: float

    @property
    def relay(self) -> bool:
        return any(role.relay for role in self.edges)

    @property
    def n_workers(self) -> int:
        return int(self.encoding.shape[0])

    def worker_nodes(self) -> list[tuple[int, int]]:
        """``(edge, position)`` in the topology of every encoding row, in row order."""
        nodes: list[tuple[int, int]] = [(-1, -1)] * self.n_workers
        for role in self.edges:
            for position, row in zip(role.positions, role.rows):
                nodes[row] = (role.edge, position)
        return nodes


def protocol_plan(strategy: Strategy, code: GradientCode) -> ProtocolPlan:
    """The plan of ``strategy`` run with ``code`` (built on the strategy's participating worker counts).

    This is the one adapter from schemes to the protocol: decoding edges with the inner layer of an HGC
    code (``m_i - s_w`` of ``m_i``), uncoded edges summing all their workers, relaying edges for flat GC;
    the master waits for ``n - s_e`` HGC edges, all uncoded edges, or ``N - s`` relayed messages.
    """
    participating = [(e, ws) for e, ws in zip(strategy.edges, strategy.workers) if ws]
    counts = [len(ws) for _, ws in participating]
    if list(code.workers) != counts:
        raise ValueError(f"code built on {list(code.workers)} workers per edge, strategy has {counts}")
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(int)

    def rows(j: int) -> tuple[int, ...]:
        return tuple(range(int(offsets[j]), int(offsets[j + 1])))

    if strategy.kind == "hgc" and isinstance(code, HierarchicalCode) and code.edge_layer is not None:
        s_w, s_e = int(code.s_w), int(code.s_e)
        roles = tuple(EdgeRole(e, tuple(ws), rows(j), False, len(ws) - s_w, LayerDecoder(code.worker_layers[j]))
                      for j, (e, ws) in enumerate(participating))
        return ProtocolPlan("hgc", roles, len(roles) - s_e, LayerDecoder(code.edge_layer), code.encoding, code.load)
    if strategy.kind == "uncoded":
        roles = tuple(EdgeRole(e, tuple(ws), rows(j), False, len(ws), SumDecoder(len(ws)))
                      for j, (e, ws) in enumerate(participating))
        return ProtocolPlan("uncoded", roles, len(roles), SumDecoder(len(roles)), code.encoding, code.load)
    if strategy.kind == "flat_gc" and isinstance(code, FlatCode) and code.layer is not None:
        roles = tuple(EdgeRole(e, tuple(ws), rows(j), True, 0, None) for j, (e, ws) in enumerate(participating))
        return ProtocolPlan("flat_gc", roles, code.n_workers - int(code.s), LayerDecoder(code.layer),
                            code.encoding, code.load)
    raise ValueError(f"no emulation protocol for scheme kind {strategy.kind!r} with a {type(code).__name__}")


# ----------------------------------------------------------------------------------------------------
# Delays each node must take, from the timing model's draws

@dataclass(frozen=True)
class ScheduledDelays:
    """Seconds (already multiplied by the time scale) per iteration ``t`` and node.

    ``worker[t, r]``: from the start of worker row ``r``'s task until its message leaves
    (``load·X + Y + U``), ``inf`` when the worker fails silently in that iteration. ``edge[t, j]``: what
    plan edge ``j`` adds once it may send (``P + V``, plus ``per_vector`` for a decoding edge's one
    vector), ``inf`` when the edge fails silently. ``per_vector[j]``: link time per relayed message.
    """

    worker: np.ndarray
    edge: np.ndarray
    per_vector: np.ndarray

    @property
    def iterations(self) -> int:
        return int(self.worker.shape[0])


def scheduled_delays(plan: ProtocolPlan, sample: DelaySample, model: TimingModel, scale: float) -> ScheduledDelays:
    """What every node of ``plan`` must take in each of the ``sample.trials`` iterations (see
    :class:`ScheduledDelays`); the same formulas as :class:`~hgc.simulation.CompiledStrategy`."""
    topology = model.topology
    T = sample.trials
    workers = np.array([int(topology.offsets[e]) + p for e, p in plan.worker_nodes()], dtype=np.intp)
    edges = np.array([role.edge for role in plan.edges], dtype=np.intp)

    def rows_of(values: np.ndarray | float, index: np.ndarray) -> np.ndarray:
        if np.isscalar(values):
            return np.full((index.size, T), float(values))  # type: ignore[arg-type]
        return np.asarray(values)[index]

    worker = plan.load * sample.compute[workers] + rows_of(sample.fixed, workers)
    if sample.worker_failed is not None:
        worker[sample.worker_failed[workers]] = np.inf
    beta = model.per_vector_array[edges]
    edge = rows_of(sample.edge_delay, edges) + np.where([role.relay for role in plan.edges], 0.0, beta)[:, None]
    if sample.edge_failed is not None:
        edge[sample.edge_failed[edges]] = np.inf
    return ScheduledDelays(worker.T * scale, edge.T * scale, beta * scale)
