"""Whole codes over a master / edge / worker topology: flat GC, uncoded, and the two-layer HGC.

Every code exposes the same surface (see :class:`GradientCode`):

* ``encoding`` ``(N, K)``: worker ``w`` sends ``encoding[w] @ partial_gradients`` (``partial_gradients``
  is ``K × dim``); workers are numbered edge by edge (edge 0's workers first), ``worker_edge[w]`` is
  the edge of worker ``w``;
* ``decoding_weights(workers, edges=None)`` ``(N,)``: ``weights @ messages`` is the full gradient for
  that responder set, or :class:`~hgc.errors.UndecodableError`;
* ``decode(workers, messages, edges=None)``: the full gradient;
* ``decode_batch(worker_masks, edge_masks=None)``: the same for ``P`` patterns at once, never raising.

**Responders.** ``workers`` says which workers' messages arrived at their edge: a boolean mask of
length ``N``, an integer array of global worker indices, or a list with one entry per edge (a boolean
mask of length ``m_i`` or local worker indices). ``edges`` says which edges reported to the master: a
boolean mask of length ``n``, integer indices, or ``None`` for all edges.

* ``hgc``: an edge that reports decodes its ``f_i`` from its responding workers (an edge whose workers
  are too few to decode counts as not reporting); the master decodes from the reporting edges.
* ``flat_gc``: edges only relay, so a worker counts iff it responded and its edge reports; the master
  decodes from any ``N - s`` of those.
* ``uncoded``: every worker and every edge is needed.

Pass exactly the set you waited for (e.g. each edge's fastest ``m_i - s_w`` workers): with more
responders the weights are the minimum-norm solution over all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from hgc.codes.constructions import LayerCode, build_layer
from hgc.codes.decoding import DEFAULT_RTOL, Decoding, condition_numbers, residuals
from hgc.codes.placement import (ArcPlacement, HierarchicalPlacement, _check_workers, _tolerances,
                                 make_placement)
from hgc.errors import ConfigError, UndecodableError

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
# Codes
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class GradientCode:
    """Common surface of every code; see the module docstring for the responder conventions.

    Attributes
    ----------
    kind: ``"uncoded"``, ``"flat_gc"`` or ``"hgc"``.
    workers: ``m_i`` per edge.
    encoding: ``(N, K)`` encoding matrix.
    rtol: largest accepted decoding residual (≈ relative gradient error).
    """

    kind: str
    workers: tuple[int, ...]
    encoding: np.ndarray
    rtol: float
    _cache: dict = field(default_factory=dict, repr=False)

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
    def worker_edge(self) -> np.ndarray:
        """``(N,)`` edge index of every worker."""
        return np.repeat(np.arange(self.n_edges), self.workers)

    @property
    def load(self) -> float:
        """Fraction of the dataset each worker holds (``D/K``, the same for every worker)."""
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
    def tolerances(self) -> dict[str, int | None]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Plain summary: kind, tolerances, K, load, construction."""
        return {"scheme": self.kind, **self.tolerances, "K": self.n_partitions, "load": self.load,
                "construction": self.construction}

    # --- encoding / decoding ---------------------------------------------------------------------
    def encode(self, partial_gradients: np.ndarray) -> np.ndarray:
        """All workers' messages ``(N, dim...)`` from the partial gradients ``(K, dim...)``."""
        return np.tensordot(self.encoding, np.asarray(partial_gradients, dtype=float), axes=1)

    def decode_batch(self, worker_masks: np.ndarray, edge_masks: np.ndarray | None = None) -> Decoding:
        """Decode ``P`` patterns: ``worker_masks`` ``(P, N)``, ``edge_masks`` ``(P, n)`` or ``None`` (all edges).

        Returns a :class:`~hgc.codes.decoding.Decoding` with weights ``(P, N)``; ``ok`` marks the
        patterns whose end-to-end residual ``max_k |(weights @ encoding)_k - 1|`` is within ``rtol``.
        """
        raise NotImplementedError

    def decoding_weights(self, workers: Responders = None, edges: Responders = None) -> np.ndarray:
        """Per-worker weights ``(N,)`` such that ``weights @ messages`` is the full gradient.

        Raises :class:`~hgc.errors.UndecodableError` if this responder set cannot give it exactly.
        """
        w = worker_mask(self.workers, workers)
        e = edge_mask(self.n_edges, edges)
        result = self.decode_batch(w[None], e[None])
        if not result.ok[0]:
            raise UndecodableError(self._explain(w, e, float(result.residual[0])))
        return result.weights[0]

    def decode(self, workers: Responders, messages: np.ndarray, edges: Responders = None) -> np.ndarray:
        """The full gradient from the messages ``(N, dim...)`` of the responders (other rows are ignored)."""
        weights = self.decoding_weights(workers, edges)
        used = np.flatnonzero(weights)
        return np.tensordot(weights[used], np.asarray(messages, dtype=float)[used], axes=1)

    def _explain(self, workers: np.ndarray, edges: np.ndarray, residual: float) -> str:
        raise NotImplementedError

    def _end_to_end(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """End-to-end residuals and condition numbers for weights ``(P, N)`` (on distinct encoding columns)."""
        if "atoms" not in self._cache:
            self._cache["atoms"] = np.unique(self.encoding.T, axis=0).T
        columns = self._cache["atoms"]
        return residuals(weights, columns), condition_numbers(weights, columns)


@dataclass(frozen=True, eq=False)
class FlatCode(GradientCode):
    """Flat gradient coding over all ``N`` workers (edges relay); ``uncoded`` is the case ``s = 0``."""

    s: int = 0
    placement: ArcPlacement | None = None
    layer: LayerCode | None = None

    @property
    def load(self) -> float:
        return float(self.placement.load(0))

    @property
    def construction(self) -> str:
        return self.layer.construction

    @property
    def membership(self) -> np.ndarray:
        return self.layer.membership

    @property
    def tolerances(self) -> dict[str, int | None]:
        return {"s": self.s if self.kind == "flat_gc" else None, "s_e": None, "s_w": None}

    def decode_batch(self, worker_masks: np.ndarray, edge_masks: np.ndarray | None = None) -> Decoding:
        masks = np.atleast_2d(np.asarray(worker_masks, dtype=bool))
        if edge_masks is not None:
            masks = masks & np.atleast_2d(np.asarray(edge_masks, dtype=bool))[:, self.worker_edge]
        uniq, inverse = _unique_rows(masks)
        d = self.layer.decode_batch(uniq)
        return Decoding(d.weights[inverse], d.residual[inverse], d.cond[inverse], d.ok[inverse])

    def _explain(self, workers: np.ndarray, edges: np.ndarray, residual: float) -> str:
        heard = workers & edges[self.worker_edge]
        need = self.n_workers - self.s
        lost = int((workers & ~edges[self.worker_edge]).sum())
        relay = f" ({lost} responded but their edge did not report)" if lost else ""
        return (f"{self.kind}: {int(heard.sum())} of {self.n_workers} worker messages reached the master{relay}; "
                f"the code needs any {need} (s={self.s}); decoding residual {residual:.3g} > {self.rtol:g}")


@dataclass(frozen=True, eq=False)
class HierarchicalCode(GradientCode):
    """The two-layer code of SPEC §2: an edge-layer code ``B`` and one worker-layer code ``C_i`` per edge.

    Worker ``j`` of edge ``i`` sends ``Σ_{k ∈ P_i} C_i[j, k] B[i, k] g_k``; edge ``i`` recovers
    ``f_i = Σ_k B[i,k] g_k`` from any ``m_i - s_w`` of its workers; the master recovers ``g`` from any
    ``n - s_e`` edges.
    """

    s_e: int = 0
    s_w: int = 0
    placement: HierarchicalPlacement | None = None
    edge_layer: LayerCode | None = None
    worker_layers: tuple[LayerCode, ...] = ()

    @property
    def load(self) -> float:
        return float(self.placement.load())

    @property
    def construction(self) -> str:
        inner = sorted({layer.construction for layer in self.worker_layers})
        return f"edge:{self.edge_layer.construction};worker:{'+'.join(inner)}"

    @property
    def membership(self) -> np.ndarray:
        if "membership" not in self._cache:
            self._cache["membership"] = self.placement.membership()
        return self._cache["membership"]

    @property
    def tolerances(self) -> dict[str, int | None]:
        return {"s": None, "s_e": self.s_e, "s_w": self.s_w}

    def decode_batch(self, worker_masks: np.ndarray, edge_masks: np.ndarray | None = None) -> Decoding:
        wmasks = np.atleast_2d(np.asarray(worker_masks, dtype=bool))
        P = wmasks.shape[0]
        emasks = (np.ones((P, self.n_edges), dtype=bool) if edge_masks is None
                  else np.atleast_2d(np.asarray(edge_masks, dtype=bool)))
        inner_weights = np.zeros((P, self.n_workers))
        reporting = emasks.copy()
        offsets = np.concatenate([[0], np.cumsum(self.workers)])
        for i, layer in enumerate(self.worker_layers):
            lo, hi = offsets[i], offsets[i + 1]
            uniq, inverse = _unique_rows(wmasks[:, lo:hi])
            d = layer.decode_batch(uniq)
            inner_weights[:, lo:hi] = d.weights[inverse]
            reporting[:, i] &= d.ok[inverse]
        uniq, inverse = _unique_rows(reporting)
        outer = self.edge_layer.decode_batch(uniq)
        edge_weights = outer.weights[inverse]
        weights = inner_weights * edge_weights[:, self.worker_edge]
        res, cond = self._end_to_end(weights)
        ok = outer.ok[inverse] & (res <= self.rtol)
        return Decoding(weights, res, np.where(ok, cond, np.inf), ok)

    def _explain(self, workers: np.ndarray, edges: np.ndarray, residual: float) -> str:
        offsets = np.concatenate([[0], np.cumsum(self.workers)])
        notes, reporting = [], 0
        for i, m in enumerate(self.workers):
            if not edges[i]:
                continue
            got = int(workers[offsets[i]:offsets[i + 1]].sum())
            if got < m - self.s_w:
                notes.append(f"edge {i}: {got} of {m} workers responded, needs {m - self.s_w}")
            else:
                reporting += 1
        detail = ("; " + "; ".join(notes)) if notes else ""
        return (f"hgc(s_e={self.s_e}, s_w={self.s_w}): {reporting} of {self.n_edges} edges can report, the master "
                f"needs any {self.n_edges - self.s_e}{detail}; decoding residual {residual:.3g} > {self.rtol:g}")


# ----------------------------------------------------------------------------------------------------
# Building codes
# ----------------------------------------------------------------------------------------------------

def build_code(kind: str, workers: Sequence[int], *, s: int | None = None, s_e: int | None = None,
               s_w: int | None = None, partitions: int | None = None,
               construction: str | tuple[str, str] = "auto", placement: str = "proportional",
               rng: np.random.Generator | None = None, rtol: float = DEFAULT_RTOL) -> GradientCode:
    """Build the code of scheme ``kind`` on ``workers`` (``m_i`` per edge).

    Parameters
    ----------
    kind: ``"uncoded"``, ``"flat_gc"`` (needs ``s``) or ``"hgc"`` (needs ``s_e`` and ``s_w``).
    partitions: number of partitions ``K``; default the smallest valid one
        (:func:`~hgc.codes.placement.smallest_partitions`).
    construction: ``"auto"`` or one of :data:`~hgc.codes.constructions.CONSTRUCTIONS`; for ``hgc`` also
        a pair ``(edge_layer, worker_layer)``.
    placement: layout of the flat code / of each edge's worker layer (the edge layer is always the
        proportional cyclic placement): ``"proportional"``, ``"cyclic"`` or ``"fractional_repetition"``.
    rng: drives random constructions; default a fixed seed (``hgc.rng.stream(0, Stream.CODES)``).
    rtol: largest accepted decoding residual.

    Raises :class:`~hgc.errors.UnreachableBoundError` for inadmissible tolerances and
    :class:`~hgc.errors.ConfigError` for an invalid ``K`` or construction.
    """
    from hgc.rng import Stream, stream

    rng = rng if rng is not None else stream(0, Stream.CODES)
    workers = _check_workers(workers)
    s, s_e, s_w = _tolerances(kind, workers, s, s_e, s_w)
    placed = make_placement(kind, workers, s=s, s_e=s_e, s_w=s_w, partitions=partitions, placement=placement)
    if kind != "hgc":
        which = "fractional_repetition" if kind == "uncoded" else construction
        if not isinstance(which, str):
            raise ConfigError(f"flat codes take one construction name, got {construction!r}", "construction")
        layer = build_layer(placed.membership(), s, which, rng=rng, rtol=rtol)
        return FlatCode(kind, workers, layer.coefficients, rtol, s=s, placement=placed, layer=layer)

    edge_c, worker_c = (construction, construction) if isinstance(construction, str) else construction
    edge_layer = build_layer(placed.edge.membership(), s_e, edge_c, rng=rng, rtol=rtol)
    cache: dict[tuple[int, int], LayerCode] = {}
    worker_layers = []
    for i, m in enumerate(workers):
        key = (m, placed.inner[i].n_partitions)
        if key not in cache:
            cache[key] = build_layer(placed.inner[i].membership(), s_w, worker_c, rng=rng, rtol=rtol)
        worker_layers.append(cache[key])
    K = placed.n_partitions
    encoding = np.zeros((sum(workers), K))
    B = edge_layer.coefficients
    row = 0
    for i, (m, layer) in enumerate(zip(workers, worker_layers)):
        arc = placed.edge.holdings(i)
        encoding[row:row + m, arc] = layer.coefficients * B[i, arc][None, :]
        row += m
    return HierarchicalCode("hgc", workers, encoding, rtol, s_e=s_e, s_w=s_w, placement=placed,
                            edge_layer=edge_layer, worker_layers=tuple(worker_layers))
