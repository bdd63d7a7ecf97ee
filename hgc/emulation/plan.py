"""What each emulated node does in one iteration, read from a strategy's plan and its code.

A :class:`ProtocolPlan` is everything the emulator needs to know about a scheme, and nothing else:
which edges and workers take part, which rows of the code's encoding each worker sends, whether an
edge *decodes* (waits for its fastest ``wait_for`` workers and sends one vector) or *relays* (forwards
every worker message over its link, in arrival order), how many arrivals the master waits for, and the
decoders the edges and the master use. The roles come from the strategy's order-statistic
:class:`~hgc.schemes.Plan` — the same rules the simulator and the analytic evaluator follow — and the
decoders from the code, so a scheme is never told apart by its name:

* relaying edges (``plan.edge_wait is None``): the master decodes the first ``master_wait`` worker messages
  with the code's end-to-end decoder (:meth:`~hgc.codes.GradientCode.decode_batch`);
* decoding edges with a two-layer code (:class:`~hgc.codes.HierarchicalCode`): each edge decodes the
  vector it forwards with its own layer (:meth:`~hgc.codes.HierarchicalCode.edge_decoding`), the master
  decodes the gradient from the edges' vectors (:meth:`~hgc.codes.HierarchicalCode.master_decoding`);
* decoding edges with a one-layer code, when the plan needs every node (uncoded): the code's weights for
  all workers, split by edge — each edge sends its workers' weighted sum, the master adds the edges'.

Every vector is a flat array: a decoder's weights ``(rows, responders)`` times the responders' vectors
``(responders, c)`` give ``rows`` chunks laid end to end (the code's chunk order; see
:mod:`hgc.codes.hierarchical`).

:func:`scheduled_delays` turns the sampled delays of the timing model (:class:`~hgc.simulation.DelaySample`)
into what each node must take in each iteration, with the arithmetic of
:class:`~hgc.simulation.CompiledStrategy` (its loads, worker link times and per-vector link charges), so
the emulation and the simulator's prediction see the same draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from hgc.codes import GradientCode, HierarchicalCode
from hgc.schemes import Strategy
from hgc.simulation import CompiledStrategy, DelaySample
from hgc.timing import TimingModel


class Decoder(Protocol):
    """Combines the vectors of a set of responders into the vector the next tier needs."""

    @property
    def size(self) -> int:
        """Number of possible responders."""

    def weights(self, responded: np.ndarray) -> np.ndarray | None:
        """Weights ``(rows, size)`` (zero for non-responders) for the boolean mask ``responded``, or ``None``
        when these responders cannot give the vector exactly (residual above the code's tolerance)."""


@dataclass(frozen=True)
class EndToEndDecoder:
    """The code's own decoder over all its workers: weights ``(L, N)`` for the gradient's ``L`` chunks
    (the master of a relaying scheme, which receives worker messages)."""

    code: GradientCode

    @property
    def size(self) -> int:
        return self.code.n_workers

    def weights(self, responded: np.ndarray) -> np.ndarray | None:
        result = self.code.decode_batch(np.asarray(responded, dtype=bool)[None])
        return result.weights[0] if bool(result.ok[0]) else None


@dataclass(frozen=True)
class EdgeLayerDecoder:
    """Edge ``edge``'s layer of a two-layer code: weights ``(ℓ_w, m_i)`` for the ``ℓ_w`` sub-chunks of the
    vector it forwards, from its own workers' messages."""

    code: HierarchicalCode
    edge: int

    @property
    def size(self) -> int:
        return self.code.workers[self.edge]

    def weights(self, responded: np.ndarray) -> np.ndarray | None:
        result = self.code.edge_decoding(self.edge, np.asarray(responded, dtype=bool)[None])
        return result.weights[0] if bool(result.ok[0]) else None


@dataclass(frozen=True)
class MasterLayerDecoder:
    """The master's layer of a two-layer code: weights ``(ℓ_e, n)`` for the gradient's ``ℓ_e`` chunks, from
    the edges' forwarded vectors."""

    code: HierarchicalCode

    @property
    def size(self) -> int:
        return self.code.n_edges

    def weights(self, responded: np.ndarray) -> np.ndarray | None:
        result = self.code.master_decoding(np.asarray(responded, dtype=bool)[None])
        return result.weights[0] if bool(result.ok[0]) else None


@dataclass(frozen=True)
class FixedDecoder:
    """Fixed weights ``(rows, size)`` that hold only when every responder is there (a plan that needs
    every node: the weights of one complete pattern, split by edge)."""

    matrix: np.ndarray

    @property
    def size(self) -> int:
        return int(self.matrix.shape[1])

    def weights(self, responded: np.ndarray) -> np.ndarray | None:
        return self.matrix if bool(np.asarray(responded, dtype=bool).all()) else None


@dataclass(frozen=True)
class EdgeRole:
    """One participating edge.

    ``edge`` is its topology index; ``positions`` the topology positions (inside the edge) of its
    participating workers and ``rows`` their rows in the code's encoding, in the same order. A decoding
    edge (``relay`` false) waits for its fastest ``wait_for`` workers and combines their messages with
    ``decoder``; a relaying edge forwards each message and has no decoder.
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
    (relaying). ``encoding`` is the code's ``(N, K, L)`` tensor: worker row ``r`` sends
    ``Σ_{k,c} encoding[r, k, c] G_k^(c)``, one chunk of ``ceil(d/L)`` numbers; ``membership`` ``(N, K)``
    says which partitions each row holds.
    """

    edges: tuple[EdgeRole, ...]
    master_wait: int
    master_decoder: Decoder
    encoding: np.ndarray
    membership: np.ndarray

    @property
    def relay(self) -> bool:
        return any(role.relay for role in self.edges)

    @property
    def n_workers(self) -> int:
        return int(self.encoding.shape[0])

    @property
    def n_chunks(self) -> int:
        """``L``: chunks per gradient; every worker message is one chunk long."""
        return int(self.encoding.shape[2])

    def worker_nodes(self) -> list[tuple[int, int]]:
        """``(edge, position)`` in the topology of every encoding row, in row order."""
        nodes: list[tuple[int, int]] = [(-1, -1)] * self.n_workers
        for role in self.edges:
            for position, row in zip(role.positions, role.rows):
                nodes[row] = (role.edge, position)
        return nodes


def protocol_plan(strategy: Strategy, code: GradientCode) -> ProtocolPlan:
    """The protocol of ``strategy`` run with ``code`` (built on the strategy's participating worker counts).

    Raises :class:`ValueError` when the code does not fit the strategy, or when the plan has decoding edges
    that the code cannot serve (a one-layer code whose plan does not need every node).
    """
    counts = list(strategy.worker_counts)
    if list(code.workers) != counts:
        raise ValueError(f"code built on {list(code.workers)} workers per edge, strategy has {counts}")
    plan = strategy.plan
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(int)
    rows = [tuple(range(int(offsets[j]), int(offsets[j + 1]))) for j in range(len(counts))]
    participating = list(zip(strategy.edges, strategy.workers, rows))

    def roles(wait: list[int], decoders: list[Decoder | None], relay: bool) -> tuple[EdgeRole, ...]:
        return tuple(EdgeRole(int(e), tuple(ws), r, relay, k, d)
                     for (e, ws, r), k, d in zip(participating, wait, decoders))

    membership = np.asarray(code.membership, dtype=bool)
    if plan.edge_wait is None:
        return ProtocolPlan(roles([0] * len(counts), [None] * len(counts), True), int(plan.master_wait),
                            EndToEndDecoder(code), code.encoding, membership)
    wait = [int(k) for k in plan.edge_wait]
    if isinstance(code, HierarchicalCode):
        decoders: list[Decoder | None] = [EdgeLayerDecoder(code, j) for j in range(len(counts))]
        return ProtocolPlan(roles(wait, decoders, False), int(plan.master_wait), MasterLayerDecoder(code),
                            code.encoding, membership)
    if wait == counts and int(plan.master_wait) == len(counts):
        full = code.decoding_weights(None, None)                         # (L, N): every worker responded
        decoders = [FixedDecoder(full[:, list(r)]) for r in rows]
        return ProtocolPlan(roles(wait, decoders, False), len(counts), FixedDecoder(np.ones((1, len(counts)))),
                            code.encoding, membership)
    raise ValueError(f"no emulation protocol for {strategy.kind!r}: its edges decode (waiting for {wait} of "
                     f"{counts} workers, the master for {plan.master_wait} of {len(counts)} edges) but its "
                     f"{type(code).__name__} has no per-edge decoding")


def combine(weights: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """The vector ``weights @ vectors`` laid out flat: chunk ``c'`` is ``weights[c'] @ vectors``."""
    return (np.asarray(weights, dtype=float) @ np.asarray(vectors, dtype=float)).reshape(-1)


# ----------------------------------------------------------------------------------------------------
# Delays each node must take, from the timing model's draws

@dataclass(frozen=True)
class ScheduledDelays:
    """Seconds (already multiplied by the time scale) per iteration ``t`` and node.

    ``worker[t, r]``: from the start of worker row ``r``'s task until its message reaches its edge
    (``load·X + Y + U + worker per_vector × message length``), ``inf`` when the worker fails silently in
    that iteration. ``edge[t, j]``: what plan edge ``j`` adds once it may send (``P + V``, plus its
    per-vector time × its message length for a decoding edge's one vector), ``inf`` when the edge fails
    silently. ``per_vector[j]``: link time per relayed message (per-vector time × message length).
    """

    worker: np.ndarray
    edge: np.ndarray
    per_vector: np.ndarray

    @property
    def iterations(self) -> int:
        return int(self.worker.shape[0])


def scheduled_delays(strategy: Strategy, sample: DelaySample, model: TimingModel, scale: float) -> ScheduledDelays:
    """What every participating node of ``strategy`` must take in each of the ``sample.trials`` iterations
    (see :class:`ScheduledDelays`); the terms of :class:`~hgc.simulation.CompiledStrategy`."""
    sample = sample.materialized()
    compiled = CompiledStrategy(strategy, model)
    T = sample.trials
    workers, edges = compiled.worker_index, compiled.edge_index

    def rows_of(values: np.ndarray | float, index: np.ndarray) -> np.ndarray:
        if np.isscalar(values):
            return np.full((index.size, T), float(values))  # type: ignore[arg-type]
        return np.asarray(values, dtype=float)[index]

    worker = compiled.load * sample.compute[workers] + rows_of(sample.fixed, workers)
    if compiled.worker_link is not None:
        worker = worker + compiled.worker_link
    if sample.worker_failed is not None:
        worker[sample.worker_failed[workers]] = np.inf
    beta = np.asarray(compiled.beta, dtype=float)[:, 0]                # (edges,) seconds per message sent
    edge = rows_of(sample.edge_delay, edges) + (0.0 if compiled.relay else beta[:, None])
    if sample.edge_failed is not None:
        edge[sample.edge_failed[edges]] = np.inf
    return ScheduledDelays(worker.T * scale, edge.T * scale, beta * scale)
