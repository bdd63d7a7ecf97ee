"""Whole codes over a master / edge / worker topology: flat GC, uncoded, and the two-layer HGC.

**Messages in chunks.** A code cuts every partial gradient (length ``d``, zero-padded to a multiple of
``L``) into ``L = code.n_chunks`` equal chunks; each worker sends ONE vector of ``ceil(d/L)`` numbers
(``code.worker_message_length = 1/L`` of a gradient). ``L = 1`` for classical codes, ``L = ℓ`` for flat GC
with reduction ``ℓ`` and ``L = ℓ_e ℓ_w`` for HGC with reductions ``(ℓ_e, ℓ_w)`` (an edge's message is
``ℓ_w`` chunks: ``1/ℓ_e`` of a gradient; see :mod:`hgc.codes.allocation`).

Every code exposes the same surface (see :class:`GradientCode`):

* ``encoding`` ``(N, K, L)``: worker ``w`` sends ``Σ_{k,c} encoding[w, k, c] G_k^(c)``; workers are numbered
  edge by edge (edge 0's workers first), ``worker_edge[w]`` is the edge of worker ``w``;
* ``encode(G)``: all workers' messages ``(N, ceil(d/L))`` from the partial gradients ``G`` ``(K, d)``;
* ``decode_batch(worker_masks, edge_masks=None)``: weights ``(P, L, N)`` for ``P`` patterns at once, with
  residual, condition number and ``ok`` per pattern — never raising, never hiding a failure;
* ``combine(weights, messages, dim)``: the full gradient(s) from weights ``(..., L, N)`` and messages;
* ``decoding_weights(workers, edges=None)`` ``(L, N)`` and ``decode(workers, messages, edges=None)``: one
  responder set, :class:`~hgc.errors.UndecodableError` if it cannot give the gradient exactly;
* per-layer pieces for an emulator (HGC): ``edge_encode``, ``decode_edge`` / ``edge_decoding`` (an edge
  decodes the vector it forwards from its own workers' messages) and ``decode_master`` /
  ``master_decoding`` (the master decodes from the edges' messages);
* loads and message lengths: ``worker_loads`` ``(N,)``, ``load`` (the largest), ``worker_message_length``,
  ``edge_message_length`` (exact fractions of one gradient vector).

**Responders.** ``workers`` says which workers' messages arrived at their edge: a boolean mask of
length ``N``, an integer array of global worker indices, or a list with one entry per edge (a boolean
mask of length ``m_i`` or local worker indices). ``edges`` says which edges reported to the master: a
boolean mask of length ``n``, integer indices, or ``None`` for all edges.

* ``hgc``: an edge that reports decodes its message from its responding workers (an edge whose workers
  are too few to decode counts as not reporting); the master decodes from the reporting edges. Edges
  and workers with a zero share hold nothing and are never needed.
* ``flat_gc``: edges only relay, so a worker counts iff it responded and its edge reports; the master
  decodes from any ``N - s`` of those.
* ``uncoded``: every worker and every edge is needed.

Pass exactly the set you waited for (e.g. each edge's fastest ``m_i - s_w`` workers): with more
responders the weights are the minimum-norm solution over all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Sequence

import numpy as np

from hgc.codes.allocation import ShareSpec
from hgc.codes.constructions import LayerCode, build_layer
from hgc.codes.decoding import DEFAULT_RTOL, Decoding, condition_numbers, residuals
from hgc.codes.placement import (ArcPlacement, HierarchicalPlacement, _check_workers, _tolerances,
                                 make_placement)
from hgc.errors import ConfigError, UndecodableError
from hgc.rng import Stream, stream

Responders = Any
"""Boolean mask, integer indices, or a per-edge list of masks / local indices (see module docstring)."""


# ----------------------------------------------------------------------------------------------------
# Responder descriptions
# ----------------------------------------------------------------------------------------------------

def worker_mask(workers: Sequence[int], responders: Responders) -> np.ndarray:
    """Boolean mask ``(N,)`` over all workers from any accepted responder description.

    ``None`` means every worker responded.
    """
    counts = tuple(int(m) for m in workers)
    N = sum(counts)
    if responders is None:
        return np.ones(N, dtype=bool)
    if isinstance(responders, (list, tuple)) and len(responders) == len(counts) and any(
            np.ndim(r) > 0 or isinstance(r, (set, frozenset)) for r in responders):
        parts = [_local_mask(m, r, f"edge {i}") for i, (m, r) in enumerate(zip(counts, responders))]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)
    return _local_mask(N, responders, "workers")


def edge_mask(n_edges: int, edges: Responders) -> np.ndarray:
    """Boolean mask ``(n,)`` of reporting edges; ``None`` means all."""
    if edges is None:
        return np.ones(n_edges, dtype=bool)
    return _local_mask(n_edges, edges, "edges")


def _local_mask(size: int, spec: Any, what: str) -> np.ndarray:
    if isinstance(spec, (set, frozenset)):
        spec = sorted(spec)
    arr = np.asarray(spec)
    if arr.dtype == bool:
        if arr.shape != (size,):
            raise ValueError(f"{what}: expected a boolean mask of length {size}, got shape {arr.shape}")
        return arr.copy()
    if arr.size == 0:
        return np.zeros(size, dtype=bool)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{what}: expected a boolean mask of length {size} or integer indices, got {spec!r}")
    if arr.min() < 0 or arr.max() >= size:
        raise ValueError(f"{what}: indices must be in [0, {size}), got {arr.tolist()}")
    out = np.zeros(size, dtype=bool)
    out[arr] = True
    return out


def _unique_rows(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a boolean matrix and the inverse map (fast path: rows packed into integers)."""
    if masks.shape[1] <= 62:
        keys = masks.astype(np.int64) @ (np.int64(1) << np.arange(masks.shape[1], dtype=np.int64))
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        return masks[first], inverse.reshape(-1)
    uniq, inverse = np.unique(masks, axis=0, return_inverse=True)
    return uniq, inverse.reshape(-1)


# ----------------------------------------------------------------------------------------------------
# Chunked vectors
# ----------------------------------------------------------------------------------------------------

def chunk_length(dim: int, n_chunks: int) -> int:
    """Numbers per message: ``ceil(dim / n_chunks)`` (gradients are zero-padded to ``n_chunks`` times it)."""
    return -(-int(dim) // int(n_chunks))


def split_chunks(partial_gradients: np.ndarray, n_chunks: int) -> np.ndarray:
    """``(K, L, c)``: every row of ``(K, d...)`` flattened, zero-padded to ``L c`` and cut into ``L`` chunks."""
    G = np.asarray(partial_gradients, dtype=float)
    flat = G.reshape(G.shape[0], -1)
    c = chunk_length(flat.shape[1], n_chunks)
    if c * n_chunks != flat.shape[1]:
        flat = np.concatenate([flat, np.zeros((flat.shape[0], c * n_chunks - flat.shape[1]))], axis=1)
    return flat.reshape(flat.shape[0], n_chunks, c)


# ----------------------------------------------------------------------------------------------------
# Codes
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class GradientCode:
    """Common surface of every code; see the module docstring for chunks and responder conventions.

    Attributes
    ----------
    kind: ``"uncoded"``, ``"flat_gc"`` or ``"hgc"``.
    workers: ``m_i`` per edge.
    encoding: ``(N, K, L)`` encoding tensor (a 2-D ``(N, K)`` array is accepted as ``L = 1``).
    rtol: largest accepted decoding residual (≈ relative gradient error).
    """

    kind: str
    workers: tuple[int, ...]
    encoding: np.ndarray
    rtol: float
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if np.ndim(self.encoding) == 2:
            object.__setattr__(self, "encoding", np.asarray(self.encoding)[:, :, None])

    # --- shape ---------------------------------------------------------------------------------
    @property
    def n_edges(self) -> int:
        return len(self.workers)

    @property
    def n_workers(self) -> int:
        return sum(self.workers)

    @property
    def n_partitions(self) -> int:
        """``K``: number of data partitions."""
        return self.encoding.shape[1]

    @property
    def n_chunks(self) -> int:
        """``L``: chunks per gradient; each worker message is one chunk long."""
        return self.encoding.shape[2]

    @property
    def worker_edge(self) -> np.ndarray:
        """``(N,)`` edge index of every worker."""
        return np.repeat(np.arange(self.n_edges), self.workers)

    @property
    def worker_loads(self) -> np.ndarray:
        """``(N,)`` fraction of the dataset each worker holds (exact fractions, as float)."""
        raise NotImplementedError

    @property
    def load(self) -> float:
        """The largest worker load (fraction of the dataset): ``D/K`` of every worker for balanced codes."""
        return float(self.worker_loads.max())

    @property
    def worker_message_length(self) -> Fraction:
        """Length of one worker message as a fraction of a gradient vector: ``1/L``."""
        return Fraction(1, self.n_chunks)

    @property
    def edge_message_length(self) -> Fraction:
        """Length of one edge → master message as a fraction of a gradient vector (flat codes relay
        every worker message unchanged: this is the length of one relayed message)."""
        raise NotImplementedError

    @property
    def construction(self) -> str:
        raise NotImplementedError

    def holdings(self, worker: int) -> np.ndarray:
        """Partitions held by global worker index ``worker``."""
        return np.flatnonzero(self.membership[worker])

    @property
    def membership(self) -> np.ndarray:
        """``(N, K)`` boolean: which worker holds which partition (nonzero or not, it is stored there)."""
        raise NotImplementedError

    @property
    def tolerances(self) -> dict[str, Any]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Plain summary: kind, tolerances, K, load, message lengths, construction."""
        return {"scheme": self.kind, **self.tolerances, "K": self.n_partitions, "load": self.load,
                "worker_message": str(self.worker_message_length), "edge_message": str(self.edge_message_length),
                "construction": self.construction}

    # --- encoding / decoding ---------------------------------------------------------------------
    def encode(self, partial_gradients: np.ndarray, workers: np.ndarray | None = None) -> np.ndarray:
        """Workers' messages ``(N, ceil(d/L))`` from the partial gradients ``(K, d)``.

        ``workers`` (boolean mask or indices) restricts the result to those workers' rows. With ``L = 1``
        trailing dimensions are kept: ``(K, dim...)`` gives ``(N, dim...)``.
        """
        G = np.asarray(partial_gradients, dtype=float)
        encoding = self.encoding if workers is None else self.encoding[workers]
        if self.n_chunks == 1:
            return np.tensordot(encoding[:, :, 0], G, axes=1)
        chunks = split_chunks(G, self.n_chunks)
        return np.dot(encoding.reshape(encoding.shape[0], -1), chunks.reshape(-1, chunks.shape[2]))

    def combine(self, weights: np.ndarray, messages: np.ndarray, dim: int | None = None) -> np.ndarray:
        """Decoded gradient(s) ``(..., dim)`` from weights ``(..., L, N)`` and messages ``(N, c)``.

        Chunk ``c'`` is ``weights[..., c', :] @ messages``; the chunks laid end to end (and cut to ``dim``,
        default all ``L c`` numbers) are the gradient. Rows of non-responders must be finite or unused.
        """
        weights = np.asarray(weights, dtype=float)
        msgs = np.asarray(messages, dtype=float)
        lead = weights.shape[:-2]
        L, N = weights.shape[-2:]
        flat_msgs = msgs.reshape(N, -1)
        out = (weights.reshape(-1, N) @ flat_msgs).reshape(*lead, L * flat_msgs.shape[1])
        return out if dim is None else out[..., :dim]

    def decode_batch(self, worker_masks: np.ndarray, edge_masks: np.ndarray | None = None) -> Decoding:
        """Decode ``P`` patterns: ``worker_masks`` ``(P, N)``, ``edge_masks`` ``(P, n)`` or ``None`` (all edges).

        Returns a :class:`~hgc.codes.decoding.Decoding` with weights ``(P, L, N)``; ``ok`` marks the
        patterns whose end-to-end residual (every chunk of every partition) is within ``rtol``.
        """
        raise NotImplementedError

    def decoding_weights(self, workers: Responders = None, edges: Responders = None) -> np.ndarray:
        """Per-worker weights ``(L, N)``: ``combine(weights, messages)`` is the full gradient.

        Raises :class:`~hgc.errors.UndecodableError` if this responder set cannot give it exactly.
        """
        w = worker_mask(self.workers, workers)
        e = edge_mask(self.n_edges, edges)
        result = self.decode_batch(w[None], e[None])
        if not result.ok[0]:
            raise UndecodableError(self._explain(w, e, float(result.residual[0])))
        return result.weights[0]

    def decode(self, workers: Responders, messages: np.ndarray, edges: Responders = None,
               dim: int | None = None) -> np.ndarray:
        """The full gradient from the messages of the responders (other rows are never read).

        ``messages`` ``(N, c...)``; the result has ``L c`` numbers (cut to ``dim`` if given); with ``L = 1``
        the trailing shape of the messages is kept.
        """
        weights = self.decoding_weights(workers, edges)
        used = np.flatnonzero(weights.any(axis=0))
        msgs = np.asarray(messages, dtype=float)[used]
        if self.n_chunks == 1:
            return np.tensordot(weights[0, used], msgs, axes=1)
        out = (weights[:, used] @ msgs.reshape(used.size, -1)).reshape(-1)
        return out if dim is None else out[:dim]

    def _explain(self, workers: np.ndarray, edges: np.ndarray, residual: float) -> str:
        raise NotImplementedError

    def _atoms(self) -> np.ndarray:
        """Distinct partitions of the encoding (identical columns merged), as ``(N, A, L)``."""
        if "atoms" not in self._cache:
            N, K, L = self.encoding.shape
            if L == 1:
                self._cache["atoms"] = np.unique(self.encoding[:, :, 0].T, axis=0).T[:, :, None]
            else:
                rows = np.unique(self.encoding.transpose(1, 0, 2).reshape(K, N * L), axis=0)
                self._cache["atoms"] = rows.reshape(-1, N, L).transpose(1, 0, 2)
        return self._cache["atoms"]

    def _end_to_end(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """End-to-end residuals and condition numbers for weights ``(P, L, N)`` (on distinct partitions)."""
        columns = self._atoms()
        return residuals(weights, columns), condition_numbers(weights, columns)


@dataclass(frozen=True, eq=False)
class FlatCode(GradientCode):
    """Flat gradient coding over all ``N`` workers (edges relay); ``uncoded`` is the case ``s = 0``.

    With ``reduction = ℓ`` every partition lies on ``s + ℓ`` workers and each worker sends ``1/ℓ`` of a
    gradient (Ye & Abbe 2018); the master decodes from any ``N - s``.
    """

    s: int = 0
    placement: ArcPlacement | None = None
    layer: LayerCode | None = None

    @property
    def _layer(self) -> LayerCode:
        assert self.layer is not None, "a FlatCode needs its layer"
        return self.layer

    @property
    def _placed(self) -> ArcPlacement:
        assert self.placement is not None, "a FlatCode needs its placement"
        return self.placement

    @property
    def reduction(self) -> int:
        return self._layer.reduction

    @property
    def worker_loads(self) -> np.ndarray:
        placed = self._placed
        return np.array([float(placed.load(i)) for i in range(placed.n_nodes)])

    @property
    def load(self) -> float:
        return float(self._placed.load(0))

    @property
    def edge_message_length(self) -> Fraction:
        return Fraction(1, self.n_chunks)

    @property
    def construction(self) -> str:
        return self._layer.construction

    @property
    def membership(self) -> np.ndarray:
        return self._layer.membership

    @property
    def tolerances(self) -> dict[str, Any]:
        return {"s": self.s if self.kind == "flat_gc" else None, "s_e": None, "s_w": None}

    def decode_batch(self, worker_masks: np.ndarray, edge_masks: np.ndarray | None = None) -> Decoding:
        masks = np.atleast_2d(np.asarray(worker_masks, dtype=bool))
        if edge_masks is not None:
            masks = masks & np.atleast_2d(np.asarray(edge_masks, dtype=bool))[:, self.worker_edge]
        uniq, inverse = _unique_rows(masks)
        return self._layer.decode_batch(uniq)[inverse]

    def _explain(self, workers: np.ndarray, edges: np.ndarray, residual: float) -> str:
        heard = workers & edges[self.worker_edge]
        need = self.n_workers - self.s
        lost = int((workers & ~edges[self.worker_edge]).sum())
        relay = f" ({lost} responded but their edge did not report)" if lost else ""
        return (f"{self.kind}: {int(heard.sum())} of {self.n_workers} worker messages reached the master{relay}; "
                f"the code needs any {need} (s={self.s}); decoding residual {residual:.3g} > {self.rtol:g}")


@dataclass(frozen=True, eq=False)
class HierarchicalCode(GradientCode):
    """The two-layer code (docs/model.md §4): an edge-layer code ``B`` and one worker-layer code ``C_i`` per edge.

    Classically (``ℓ_e = ℓ_w = 1``) worker ``j`` of edge ``i`` sends ``Σ_{k ∈ P_i} C_i[j, k] B[i, k] g_k``;
    edge ``i`` recovers ``f_i = Σ_k B[i,k] g_k`` from any ``m_i - s_w[i]`` of its workers; the master
    recovers ``g`` from any ``n - s_e`` edges.

    With reductions, edge ``i`` must forward ``y_i = Σ_k Σ_{c1} B[i,k,c1] g_k^(c1)`` (``ℓ_e`` chunks per
    partial gradient, ``y_i`` of length ``1/ℓ_e``): a gradient-coding problem inside the edge whose
    "partial gradients" are the contributions ``z_{i,k} = Σ_{c1} B[i,k,c1] g_k^(c1)``. The worker layer
    cuts each into ``ℓ_w`` sub-chunks, so worker ``j`` sends ``Σ_k Σ_{c1,c2} C_i[j,k,c2] B[i,k,c1]
    g_k^(c1,c2)`` (length ``1/(ℓ_e ℓ_w)``), the edge decodes the ``ℓ_w`` sub-chunks of ``y_i`` and the
    master decodes the ``ℓ_e`` chunks of ``g``. Gradient chunk ``(c1, c2)`` is number ``c1 ℓ_w + c2``.

    ``edge_layer`` is built on the edges with a positive share (``active_edges``); ``worker_layers[i]``
    on edge ``i``'s workers with a positive share (``None`` for an edge with share 0).
    """

    s_e: int = 0
    s_w: int | tuple[int, ...] = 0
    placement: HierarchicalPlacement | None = None
    edge_layer: LayerCode | None = None
    worker_layers: tuple[LayerCode | None, ...] = ()

    @property
    def _edge(self) -> LayerCode:
        assert self.edge_layer is not None, "a HierarchicalCode needs its edge layer"
        return self.edge_layer

    @property
    def _placed(self) -> HierarchicalPlacement:
        assert self.placement is not None, "a HierarchicalCode needs its placement"
        return self.placement

    @property
    def reduction_e(self) -> int:
        return self._edge.reduction

    @property
    def reduction_w(self) -> int:
        return next(layer.reduction for layer in self.worker_layers if layer is not None)

    @property
    def worker_tolerances(self) -> tuple[int, ...]:
        """``s_w`` of every edge."""
        return self._placed.worker_tolerances

    @property
    def active_edges(self) -> np.ndarray:
        """Indices of the edges taking part (positive share), in order."""
        return np.array([i for i, layer in enumerate(self.worker_layers) if layer is not None], dtype=np.intp)

    def active_workers(self, edge: int) -> np.ndarray:
        """Local indices of ``edge``'s workers holding data."""
        return np.flatnonzero(np.asarray(self._placed.inner[edge].lengths) > 0)

    @property
    def worker_loads(self) -> np.ndarray:
        return np.array([float(x) for x in self._placed.worker_loads()])

    @property
    def load(self) -> float:
        return float(self._placed.load())

    @property
    def edge_message_length(self) -> Fraction:
        return Fraction(1, self.reduction_e)

    @property
    def construction(self) -> str:
        inner = sorted({layer.construction for layer in self.worker_layers if layer is not None})
        return f"edge:{self._edge.construction};worker:{'+'.join(inner)}"

    @property
    def membership(self) -> np.ndarray:
        if "membership" not in self._cache:
            self._cache["membership"] = self._placed.membership()
        return self._cache["membership"]

    @property
    def tolerances(self) -> dict[str, Any]:
        return {"s": None, "s_e": self.s_e, "s_w": self.s_w}

    def _offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.workers)])

    def _inner(self, wmasks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inner decoding of every edge: weights ``(P, ℓ_w, N)`` and which edges decoded ``(P, n)``."""
        P = wmasks.shape[0]
        weights = np.zeros((P, self.reduction_w, self.n_workers))
        decoded = np.zeros((P, self.n_edges), dtype=bool)
        offsets = self._offsets()
        for i, layer in enumerate(self.worker_layers):
            if layer is None:
                continue
            cols = offsets[i] + self.active_workers(i)
            uniq, inverse = _unique_rows(wmasks[:, cols])
            d = layer.decode_batch(uniq)
            weights[:, :, cols] = d.weights[inverse]
            decoded[:, i] = d.ok[inverse]
        return weights, decoded

    def _outer(self, reporting: np.ndarray) -> Decoding:
        """Master decoding from the reporting edges ``(P, n)``: weights ``(P, ℓ_e, n)``."""
        active = self.active_edges
        uniq, inverse = _unique_rows(reporting[:, active])
        outer = self._edge.decode_batch(uniq)[inverse]
        if active.size == self.n_edges:
            return outer
        weights = np.zeros((reporting.shape[0], self.reduction_e, self.n_edges))
        weights[:, :, active] = outer.weights
        return Decoding(weights, outer.residual, outer.cond, outer.ok)

    def decode_batch(self, worker_masks: np.ndarray, edge_masks: np.ndarray | None = None) -> Decoding:
        wmasks = np.atleast_2d(np.asarray(worker_masks, dtype=bool))
        P = wmasks.shape[0]
        emasks = (np.ones((P, self.n_edges), dtype=bool) if edge_masks is None
                  else np.atleast_2d(np.asarray(edge_masks, dtype=bool)))
        inner_weights, decoded = self._inner(wmasks)
        outer = self._outer(emasks & decoded)
        ell_e, ell_w = self.reduction_e, self.reduction_w
        if ell_e == 1 and ell_w == 1:
            weights = (inner_weights[:, 0] * outer.weights[:, 0][:, self.worker_edge])[:, None, :]
        else:
            weights = (outer.weights[:, :, None, self.worker_edge] * inner_weights[:, None, :, :]).reshape(
                P, ell_e * ell_w, self.n_workers)
        res, cond = self._end_to_end(weights)
        ok = outer.ok & (res <= self.rtol)
        return Decoding(weights, res, np.where(ok, cond, np.inf), ok)

    # --- one layer at a time (the emulator's view) -------------------------------------------------
    def edge_encode(self, partial_gradients: np.ndarray) -> np.ndarray:
        """The vector every edge must forward, ``(n, ℓ_w c)`` (zeros for edges with share 0)."""
        chunks = split_chunks(partial_gradients, self.n_chunks)           # (K, ℓ_e ℓ_w, c)
        K, _, c = chunks.shape
        by_edge_chunk = chunks.reshape(K, self.reduction_e, self.reduction_w * c)
        out = np.zeros((self.n_edges, self.reduction_w * c))
        active = self.active_edges
        B = self._edge.coefficients                                        # (n_active, K, ℓ_e)
        out[active] = np.dot(B.reshape(active.size, -1), by_edge_chunk.reshape(K * self.reduction_e, -1))
        return out

    def edge_decoding(self, edge: int, worker_masks: np.ndarray) -> Decoding:
        """Decode edge ``edge``'s forwarded vector for ``P`` masks ``(P, m_i)`` of its own workers:
        weights ``(P, ℓ_w, m_i)``; sub-chunk ``c2`` of the forwarded vector is ``weights[c2] @ messages``."""
        layer = self.worker_layers[edge]
        masks = np.atleast_2d(np.asarray(worker_masks, dtype=bool))
        if layer is None:
            raise ValueError(f"edge {edge} has share 0: it forwards nothing")
        active = self.active_workers(edge)
        d = layer.decode_batch(masks[:, active])
        weights = np.zeros((masks.shape[0], layer.reduction, self.workers[edge]))
        weights[:, :, active] = d.weights
        return Decoding(weights, d.residual, d.cond, d.ok)

    def decode_edge(self, edge: int, workers: Responders, messages: np.ndarray) -> np.ndarray:
        """Edge ``edge``'s forwarded vector ``(ℓ_w c,)`` from its workers' messages ``(m_i, c)``.

        ``workers``: boolean mask of length ``m_i`` or local indices of the responders. Raises
        :class:`~hgc.errors.UndecodableError` when they are too few (or the residual is too large).
        """
        m = self.workers[edge]
        mask = _local_mask(m, workers, f"edge {edge}")
        d = self.edge_decoding(edge, mask[None])
        if not d.ok[0]:
            need = m - self.worker_tolerances[edge]
            raise UndecodableError(f"edge {edge}: {int(mask.sum())} of {m} workers responded, needs {need}; "
                                   f"decoding residual {d.residual[0]:.3g} > {self.rtol:g}")
        used = np.flatnonzero(mask)
        return (d.weights[0][:, used] @ np.asarray(messages, dtype=float)[used]).reshape(-1)

    def master_decoding(self, edge_masks: np.ndarray) -> Decoding:
        """Master decoding for ``P`` masks ``(P, n)`` of reporting edges: weights ``(P, ℓ_e, n)``; chunk
        ``c1`` of the gradient is ``weights[c1] @ edge_messages``."""
        return self._outer(np.atleast_2d(np.asarray(edge_masks, dtype=bool)))

    def decode_master(self, edges: Responders, edge_messages: np.ndarray, dim: int | None = None) -> np.ndarray:
        """The full gradient from the edges' forwarded vectors ``(n, ℓ_w c)`` (rows of other edges unread)."""
        mask = edge_mask(self.n_edges, edges)
        d = self.master_decoding(mask[None])
        if not d.ok[0]:
            raise UndecodableError(f"hgc(s_e={self.s_e}): {int(mask[self.active_edges].sum())} of "
                                   f"{self.active_edges.size} edges reported, the master needs any "
                                   f"{self.active_edges.size - self.s_e}; decoding residual {d.residual[0]:.3g} "
                                   f"> {self.rtol:g}")
        used = np.flatnonzero(mask)
        out = (d.weights[0][:, used] @ np.asarray(edge_messages, dtype=float)[used]).reshape(-1)
        return out if dim is None else out[:dim]

    def _explain(self, workers: np.ndarray, edges: np.ndarray, residual: float) -> str:
        offsets = self._offsets()
        tol = self.worker_tolerances
        notes, reporting = [], 0
        active = set(self.active_edges.tolist())
        for i, m in enumerate(self.workers):
            if not edges[i] or i not in active:
                continue
            got = int(workers[offsets[i]:offsets[i + 1]].sum())
            if got < m - tol[i]:
                notes.append(f"edge {i}: {got} of {m} workers responded, needs {m - tol[i]}")
            else:
                reporting += 1
        detail = ("; " + "; ".join(notes)) if notes else ""
        n_active = len(active)
        return (f"hgc(s_e={self.s_e}, s_w={_show(self.s_w)}): {reporting} of {n_active} edges can report, the "
                f"master needs any {n_active - self.s_e}{detail}; decoding residual {residual:.3g} > {self.rtol:g}")


def _show(s_w: object) -> str:
    return str(list(s_w)) if isinstance(s_w, tuple) else str(s_w)


# ----------------------------------------------------------------------------------------------------
# Building codes
# ----------------------------------------------------------------------------------------------------

def build_code(kind: str, workers: Sequence[int], *, s: int | None = None, s_e: int | None = None,
               s_w: int | Sequence[int] | None = None, partitions: int | None = None,
               construction: str | tuple[str, str] = "auto", placement: str = "proportional",
               rng: np.random.Generator | None = None, rtol: float = DEFAULT_RTOL, reduction: int = 1,
               reduction_e: int = 1, reduction_w: int = 1, edge_shares: ShareSpec = None,
               worker_shares: Sequence[object] | None = None) -> GradientCode:
    """Build the code of scheme ``kind`` on ``workers`` (``m_i`` per edge).

    Parameters
    ----------
    kind: ``"uncoded"``, ``"flat_gc"`` (needs ``s``) or ``"hgc"`` (needs ``s_e`` and ``s_w``; ``s_w`` an int
        or one value per edge).
    partitions: number of partitions ``K``; default the smallest valid one
        (:func:`~hgc.codes.placement.smallest_partitions`).
    construction: ``"auto"`` or one of :data:`~hgc.codes.constructions.CONSTRUCTIONS`; for ``hgc`` also
        a pair ``(edge_layer, worker_layer)``.
    placement: layout of the flat code / of each edge's worker layer (the edge layer is always the
        proportional placement): ``"proportional"``, ``"cyclic"`` or ``"fractional_repetition"``.
    rng: drives random constructions; default a fixed seed (``hgc.rng.stream(0, Stream.CODES)``).
    rtol: largest accepted decoding residual.
    reduction: ``flat_gc`` messages of ``1/ℓ`` of a gradient.
    reduction_e, reduction_w: ``hgc`` edge messages of ``1/ℓ_e``, worker messages of ``1/(ℓ_e ℓ_w)``.
    edge_shares, worker_shares: the ``hgc`` allocation (:func:`hgc.codes.allocation.hgc_allocation`).

    Raises :class:`~hgc.errors.UnreachableBoundError` for inadmissible tolerances and
    :class:`~hgc.errors.ConfigError` for an invalid ``K``, allocation or construction.
    """
    rng = rng if rng is not None else stream(0, Stream.CODES)
    workers = _check_workers(workers)
    s, s_e, s_w = _tolerances(kind, workers, s, s_e, s_w)
    placed = make_placement(kind, workers, s=s, s_e=s_e, s_w=s_w, partitions=partitions, placement=placement,
                            reduction=reduction, reduction_e=reduction_e, reduction_w=reduction_w,
                            edge_shares=edge_shares, worker_shares=worker_shares)
    if kind != "hgc":
        which = "fractional_repetition" if kind == "uncoded" else construction
        if not isinstance(which, str):
            raise ConfigError(f"flat codes take one construction name, got {construction!r}", "construction")
        assert isinstance(placed, ArcPlacement)
        layer = build_layer(placed.membership(), s, which, rng=rng, rtol=rtol, reduction=reduction)
        return FlatCode(kind, workers, layer.coefficients, rtol, s=s, placement=placed, layer=layer)

    assert isinstance(placed, HierarchicalPlacement)
    edge_c, worker_c = (construction, construction) if isinstance(construction, str) else construction
    alloc = placed.allocation
    assert alloc is not None
    active = [i for i, length in enumerate(placed.edge.lengths) if length > 0]
    edge_layer = build_layer(placed.edge.membership()[active], s_e, edge_c, rng=rng, rtol=rtol,
                             reduction=reduction_e)
    cache: dict[tuple, LayerCode] = {}
    worker_layers: list[LayerCode | None] = []
    for i, m in enumerate(workers):
        inner = placed.inner[i]
        if placed.edge.lengths[i] == 0:
            worker_layers.append(None)
            continue
        key = (m, inner.n_partitions, inner.starts, inner.lengths, alloc.s_w[i])
        if key not in cache:
            used = [j for j in range(m) if inner.lengths[j] > 0]
            cache[key] = build_layer(inner.membership()[used], alloc.s_w[i], worker_c, rng=rng, rtol=rtol,
                                     reduction=reduction_w)
        worker_layers.append(cache[key])
    K = placed.n_partitions
    L = reduction_e * reduction_w
    encoding = np.zeros((sum(workers), K, L))
    B = edge_layer.coefficients                                          # (n_active, K, ℓ_e)
    offsets = np.concatenate([[0], np.cumsum(workers)])
    for position, i in enumerate(active):
        inner_layer = worker_layers[i]
        assert inner_layer is not None
        arc = placed.edge.holdings(i)
        rows = offsets[i] + np.flatnonzero(np.asarray(placed.inner[i].lengths) > 0)
        C = inner_layer.coefficients                                           # (m_active, |arc|, ℓ_w)
        if L == 1:
            encoding[rows[:, None], arc[None, :], 0] = C[:, :, 0] * B[position, arc, 0][None, :]
        else:
            block = C[:, :, None, :] * B[position, arc, :][None, :, :, None]   # (m, |arc|, ℓ_e, ℓ_w)
            encoding[rows[:, None], arc[None, :], :] = block.reshape(rows.size, arc.size, L)
    return HierarchicalCode("hgc", workers, encoding, rtol, s_e=s_e, s_w=placed.s_w, placement=placed,
                            edge_layer=edge_layer, worker_layers=tuple(worker_layers))
