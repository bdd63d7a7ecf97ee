"""Coefficient constructions for one layer: ``B`` (nodes × partitions × chunks) decodable from any ``n - s`` rows.

**Reduction.** With reduction ``ℓ`` every partial gradient ``g_k`` is cut into ``ℓ`` equal chunks
``g_k^(1..ℓ)`` and node ``i`` sends the single chunk-length vector ``Σ_{k,c} B[i,k,c] g_k^(c)`` (``1/ℓ``
of a gradient). From any ``n - s`` nodes the decoder finds weights ``A`` (``ℓ × n``) with
``Σ_i A[c',i] B[i,k,c] = [c = c']`` for every ``k``: output ``c'`` is then ``Σ_k g_k^(c')`` and the ``ℓ``
outputs laid end to end are the full gradient (Ye & Abbe, 2018). This needs every partition on at least
``s + ℓ`` nodes. ``ℓ = 1`` is classical gradient coding and every construction below is then exactly the
one-vector code. Coefficient arrays have shape ``(n, A, ℓ)`` (``A`` atoms, see :func:`atoms`).

Every construction takes a support (boolean membership matrix: which node holds which partition, every
partition on at least ``s+ℓ`` nodes) and returns real coefficients on it:

``fractional_repetition`` (``ℓ = 1``)
    0/1 entries; needs the supports to be identical or disjoint (classes of nodes sharing one block,
    each class of at least ``s+1`` nodes). Decoding takes one responder per class: exact.
``null_space`` (``ℓ = 1``)
    random null-space construction for cyclic supports (Tandon et al., 2017): draw ``H`` with
    ``H·1 = 0`` and give every row its support and entries in ``null(H)``. Needs each node to hold at
    least ``A - (n - s) + 1`` of the ``A`` atoms (true for cyclic supports, where ``A = n``).
``polynomial``
    for arbitrary supports: node ``i`` evaluates ``Σ_k g_k p_k(x_i)`` where ``p_k`` is the monic
    polynomial of degree ``n-s-1`` vanishing at the nodes that do not hold ``k``; any ``n-s`` values
    determine the leading coefficient ``Σ_k g_k``. Chebyshev points on ``[-2, 2]`` (capacity 1).
    With ``ℓ > 1``: ``p_{k,c} = R_k h_{k,c}`` where ``R_k`` is monic of degree ``n-s-ℓ`` vanishing at
    the non-holders and ``h_{k,c}`` has degree ``ℓ-1``, chosen so that the ``ℓ`` leading coefficients of
    ``p_{k,c}`` are the unit vector ``e_c`` (a unit lower-triangular Toeplitz solve); any ``n-s`` values
    determine the ``ℓ`` leading coefficients ``Σ_k g_k^(c)``.
``polynomial_equispaced``
    the same with equispaced points on ``[-2, 2]``. For cyclic supports it is usually the
    best-conditioned real construction we have (an order of magnitude or more below Chebyshev points,
    whose clustered ends put a node's co-holders very close together).
``gaussian``
    for arbitrary supports: ``B = V P`` with ``V`` a Gaussian ``n × (n-s)`` matrix and column ``p_k``
    solving ``V_Z p_k = 0`` on the non-holders ``Z`` and ``c^T p_k = 1``; any ``n-s`` rows give
    ``a^T = c^T V_S^{-1}``. The polynomial construction is the special case ``V`` = Vandermonde. With
    ``ℓ > 1`` the last ``ℓ`` coordinates play the role of ``c``: ``P_k`` (``(n-s) × ℓ``) solves
    ``V_Z P_k = 0`` and ``C^T P_k = I``.

Nodes with identical supports (e.g. ``g = gcd(n, s+1) > 1`` nodes per arc in the proportional
placement) get identical rows, built as a code on the ``n/g`` groups with the tolerance ``(s+1)/g - 1``
(:func:`node_groups`; with reduction the groups must still cover every atom ``s_groups + ℓ`` times): the same load, far better conditioning, and the decoder uses one responder per
group. Rows are scaled to max-abs 1 (free: the decoder rescales its weights). ``construction="auto"``
takes fractional repetition whenever the supports allow it (and ``ℓ = 1``) and otherwise the applicable construction
with the smallest worst-case condition number ``κ`` (see :mod:`hgc.codes.decoding`) on a probe of
straggler patterns (all patterns when there are at most :data:`PROBE_EXHAUSTIVE`, else a seeded sample
of :data:`PROBE_SAMPLE`, where random constructions must win by :data:`RANDOM_TAIL_MARGIN`); a
construction that fails a probe pattern is never chosen while another passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import comb
from typing import Callable

import numpy as np

from hgc.codes.decoding import DEFAULT_RTOL, Decoding, PolynomialDecoder, decode_layer
from hgc.errors import ConfigError, UndecodableError
from hgc.rng import Stream, stream

CONSTRUCTIONS = ("fractional_repetition", "null_space", "polynomial", "polynomial_equispaced", "gaussian")
PROBE_EXHAUSTIVE = 2000   # auto-selection checks every straggler pattern up to this many
PROBE_SAMPLE = 500        # ... else this many seeded random ones
RANDOM_TAIL_MARGIN = 30.0
"""On a sampled probe a random construction must beat the deterministic ones by this factor in κ.

Random codes have heavy-tailed κ over responder sets (a few nearly singular ones), so a sample
underestimates their worst case far more than that of the polynomial codes: on N = 40 flat codes a
10× probe advantage of a random code still ended ~10× *worse* over 20 000 patterns."""
RANDOM_CONSTRUCTIONS = ("null_space", "gaussian")


# ----------------------------------------------------------------------------------------------------
# Supports
# ----------------------------------------------------------------------------------------------------

def atoms(membership: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group partitions held by exactly the same nodes.

    Returns ``(atom_of, atom_membership)``: ``atom_of[k]`` is partition ``k``'s atom and
    ``atom_membership`` ``(n, A)`` says which node holds which atom. Coefficients only need to be
    chosen per atom (identical columns), which keeps every solve ``n × A`` with ``A <= n`` for arc
    placements.
    """
    M = np.asarray(membership, dtype=bool)
    cols, atom_of = np.unique(M.T, axis=0, return_inverse=True)
    return atom_of.reshape(-1), cols.T.copy()


def fr_classes(atom_membership: np.ndarray, s: int) -> np.ndarray | None:
    """Node classes if the supports form a fractional repetition structure with classes ``>= s+1``.

    That is: any two nodes' supports are identical or disjoint, every class (nodes with one support)
    holds exactly one atom, and has at least ``s+1`` members. Returns ``None`` otherwise.
    """
    M = np.asarray(atom_membership, dtype=bool)
    if not (M.sum(axis=1) == 1).all():
        return None
    classes = M.argmax(axis=1)
    counts = np.bincount(classes, minlength=M.shape[1])
    if (counts < s + 1).any():
        return None
    return classes


def _check_support(M: np.ndarray, s: int, reduction: int = 1) -> None:
    n = M.shape[0]
    if reduction < 1:
        raise ConfigError(f"must be an integer >= 1, got {reduction!r}", "reduction")
    if not 0 <= s < n:
        raise ConfigError(f"must satisfy 0 <= s < n = {n}, got {s}", "s")
    copies = s + reduction
    if copies > n:
        raise ConfigError(f"s + reduction = {copies} exceeds the {n} nodes", "reduction")
    cover = M.sum(axis=0)
    if cover.min() < copies:
        k = int(cover.argmin())
        label = "s+1" if reduction == 1 else "s+reduction"
        raise ConfigError(f"every partition must lie on at least {label} = {copies} nodes; atom {k} lies on "
                          f"{int(cover[k])}", "placement")


def _equilibrate(B: np.ndarray) -> np.ndarray:
    """Rows scaled to max-abs 1 (over all atoms and chunks); 2-D input is one chunk."""
    flat = B.reshape(B.shape[0], -1)
    scale = np.abs(flat).max(axis=1, keepdims=True)
    return (flat / np.where(scale > 0, scale, 1.0)).reshape(B.shape)


def _one_chunk_only(name: str, reduction: int) -> None:
    if reduction != 1:
        raise ConfigError(f"the {name} construction sends one full vector per node; with reduction "
                          f"{reduction} use polynomial, polynomial_equispaced or gaussian", "construction")


# ----------------------------------------------------------------------------------------------------
# The constructions (all on atom supports; results have shape (n, A, reduction))
# ----------------------------------------------------------------------------------------------------

def fractional_repetition_coefficients(atom_membership: np.ndarray, s: int, reduction: int = 1) -> np.ndarray:
    """0/1 coefficients: the support itself. Requires a fractional-repetition structure and ``ℓ = 1``."""
    M = np.asarray(atom_membership, dtype=bool)
    _check_support(M, s, reduction)
    _one_chunk_only("fractional_repetition", reduction)
    if fr_classes(M, s) is None:
        raise ConfigError("fractional repetition needs node supports that are identical or disjoint, in "
                          f"classes of at least s+1 = {s + 1} nodes; these supports are not", "construction")
    return M.astype(float)[:, :, None]


def null_space_coefficients(atom_membership: np.ndarray, s: int, rng: np.random.Generator,
                            reduction: int = 1) -> np.ndarray:
    """Random null-space construction (cyclic supports, ``ℓ = 1``): rows with the given supports inside ``null(H)``.

    ``H`` is ``(A - (n-s)) × A`` Gaussian with zero row sums, so ``null(H)`` has dimension ``n-s`` and
    contains ``1``; generic rows in it make any ``n-s`` of them a basis of ``null(H)``.
    """
    M = np.asarray(atom_membership, dtype=bool)
    _check_support(M, s, reduction)
    _one_chunk_only("null_space", reduction)
    n, A = M.shape
    r = n - s
    if A < r:
        raise ConfigError(f"the null-space construction needs at least n-s = {r} atoms, found {A}", "construction")
    h = A - r
    support = M.sum(axis=1)
    if support.min() < h + 1:
        raise ConfigError(f"the null-space construction needs every node to hold at least {h + 1} atoms; "
                          f"node {int(support.argmin())} holds {int(support.min())}", "construction")
    H = rng.standard_normal((h, A))
    H -= H.mean(axis=1, keepdims=True)
    B = np.zeros((n, A))
    for i in range(n):
        cols = np.flatnonzero(M[i])
        if h == 0:
            basis = np.eye(cols.size)
        else:
            _, sv, vt = np.linalg.svd(H[:, cols])
            basis = vt[h:].T                                   # null space of H restricted to the support
        B[i, cols] = basis @ rng.standard_normal(basis.shape[1]) if basis.shape[1] > 1 else basis[:, 0]
    return _equilibrate(B)[:, :, None]


def chebyshev_points(n: int) -> np.ndarray:
    """``n`` Chebyshev points of the first kind on ``[-2, 2]`` (an interval of logarithmic capacity 1)."""
    return 2.0 * np.cos((2 * np.arange(n) + 1) * np.pi / (2 * n))


def equispaced_points(n: int) -> np.ndarray:
    """``n`` equispaced points on ``[-2, 2]`` (one point, 0, when ``n = 1``)."""
    return np.linspace(-2.0, 2.0, n) if n > 1 else np.zeros(1)


def _leading_unit_factors(roots: np.ndarray, x: np.ndarray, reduction: int) -> np.ndarray:
    """Values ``h_c(x_i)`` ``(n, ℓ)`` of the degree-``(ℓ-1)`` polynomials making the ``ℓ`` leading
    coefficients of ``R h_c`` equal to ``e_c``, for the monic ``R`` with the given roots."""
    coeffs = np.poly(roots) if roots.size else np.ones(1)          # R's coefficients, leading first
    top = np.zeros(reduction)
    top[:min(reduction, coeffs.size)] = coeffs[:reduction]
    T = np.zeros((reduction, reduction))
    for d in range(reduction):                                     # leading coefficients of R h = T @ h
        T[d:, d] = top[:reduction - d]
    H = np.linalg.solve(T, np.eye(reduction))                      # unit lower triangular: exact structure
    powers = x[:, None] ** np.arange(reduction - 1, -1, -1)[None, :]
    return powers @ H


def _polynomial_values(M: np.ndarray, s: int, x: np.ndarray, reduction: int,
                       at: np.ndarray | None = None) -> np.ndarray:
    """Unscaled values ``p_{k,c}(y)`` ``(len(y), A, ℓ)`` of the construction's polynomials at the points
    ``y = at`` (default: the nodes' points ``x``, where the roots are set to exact zeros)."""
    n, A = M.shape
    y = x if at is None else at
    n_roots = n - s - reduction
    diff = y[:, None] - x[None, :]                            # diff[i, j] = y_i - x_j
    values_all = np.zeros((y.size, A, reduction))
    for k in range(A):
        zeros = np.flatnonzero(~M[:, k])
        holders = np.flatnonzero(M[:, k])
        extra = n_roots - zeros.size
        roots = np.concatenate([zeros, holders[holders.size - extra:]]) if extra > 0 else zeros
        values = np.prod(diff[:, roots], axis=1) if roots.size else 1.0
        if reduction == 1:
            values_all[:, k, 0] = values
        else:
            values_all[:, k, :] = np.asarray(values)[..., None] * _leading_unit_factors(x[roots], y, reduction)
            if at is None:
                values_all[roots, k, :] = 0.0
    return values_all


def polynomial_coefficients(atom_membership: np.ndarray, s: int, points: np.ndarray | None = None,
                            reduction: int = 1) -> np.ndarray:
    """Monic-polynomial construction on arbitrary supports (docs/model.md §4.2), evaluated at Chebyshev points.

    ``p_k`` vanishes at every node that does not hold atom ``k``; if that is fewer than ``n-s-ℓ``
    nodes, the remaining roots are put at the last holders (their coefficient becomes 0). With
    ``ℓ > 1`` see the module docstring: the decoder reads the ``ℓ`` leading coefficients.
    """
    M = np.asarray(atom_membership, dtype=bool)
    _check_support(M, s, reduction)
    x = chebyshev_points(M.shape[0]) if points is None else np.asarray(points, dtype=float)
    return _equilibrate(_polynomial_values(M, s, x, reduction))


def polynomial_decoder(atom_membership: np.ndarray, s: int, points: np.ndarray | None = None,
                       reduction: int = 1, group_of: np.ndarray | None = None) -> PolynomialDecoder | None:
    """The closed-form decoder of :func:`polynomial_coefficients` with the same arguments (``group_of``:
    the point of every node when the code is used on node groups), or ``None`` when its weights would
    not be unique.

    The weights from ``r = n - s`` responders are unique exactly when the polynomials ``p_{k,c}`` span
    all polynomials of degree ``< r`` (then every ``r`` rows of the coefficients are linearly
    independent). That is checked once, on their values at ``r`` Chebyshev points of ``[-2, 2]`` (a
    well-conditioned representation of that space), columns scaled to max-abs 1.
    """
    M = np.asarray(atom_membership, dtype=bool)
    _check_support(M, s, reduction)
    n = M.shape[0]
    x = chebyshev_points(n) if points is None else np.asarray(points, dtype=float)
    r = n - s
    if np.unique(x).size != n:
        return None
    probe = _polynomial_values(M, s, x, reduction, at=chebyshev_points(r)).reshape(r, -1)
    size = np.abs(probe).max(axis=0)
    probe = probe[:, size > 0] / size[size > 0]
    if probe.shape[1] < r or np.linalg.matrix_rank(probe) < r:
        return None
    scales = np.abs(_polynomial_values(M, s, x, reduction).reshape(n, -1)).max(axis=1)
    return PolynomialDecoder(x, scales, r, reduction, None if group_of is None else np.asarray(group_of))


def gaussian_coefficients(atom_membership: np.ndarray, s: int, rng: np.random.Generator,
                          reduction: int = 1) -> np.ndarray:
    """``B = V P`` with Gaussian ``V`` (``n × (n-s)``); ``P_k`` kills the non-holders of atom ``k`` and
    maps onto the last ``ℓ`` coordinates as the identity."""
    M = np.asarray(atom_membership, dtype=bool)
    _check_support(M, s, reduction)
    n, A = M.shape
    r = n - s
    V = rng.standard_normal((n, r))
    if reduction == 1:
        c = np.zeros(r)
        c[-1] = 1.0
        B = np.zeros((n, A))
        for k in range(A):
            zeros = np.flatnonzero(~M[:, k])
            system = np.vstack([V[zeros], c[None, :]])
            rhs = np.zeros(zeros.size + 1)
            rhs[-1] = 1.0
            p = np.linalg.lstsq(system, rhs, rcond=None)[0]
            B[:, k] = V @ p
            B[zeros, k] = 0.0
        return _equilibrate(B)[:, :, None]
    C = np.zeros((reduction, r))
    C[:, r - reduction:] = np.eye(reduction)
    B3 = np.zeros((n, A, reduction))
    for k in range(A):
        zeros = np.flatnonzero(~M[:, k])
        system = np.vstack([V[zeros], C])
        rhs = np.zeros((zeros.size + reduction, reduction))
        rhs[zeros.size:] = np.eye(reduction)
        P = np.linalg.lstsq(system, rhs, rcond=None)[0]
        B3[:, k, :] = V @ P
        B3[zeros, k, :] = 0.0
    return _equilibrate(B3)


# ----------------------------------------------------------------------------------------------------
# One layer of a code
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class LayerCode:
    """One layer: ``n`` nodes, ``K`` partitions, tolerance ``s``, reduction ``ℓ``, coefficients on the supports.

    Attributes
    ----------
    membership: ``(n, K)`` boolean support.
    s: designed number of stragglers.
    construction: name of the coefficient construction (one of :data:`CONSTRUCTIONS`).
    atom_of: ``(K,)`` atom of each partition; ``atom_coefficients``: ``(n, A, ℓ)`` coefficients per atom
        and chunk.
    classes: node classes for fractional-repetition decoding, else ``None``.
    groups: node groups sharing identical coefficients (:func:`node_groups`), else ``None``.
    probe_cond: worst condition number ``κ`` on the probe patterns of ``auto`` (``nan`` if not probed).
    reduction: ``ℓ``: node messages are ``1/ℓ`` of a vector; decoding gives ``ℓ`` chunk sums.
    closed_form: closed-form decoder of a polynomial construction (:func:`polynomial_decoder`), else ``None``.
    """

    membership: np.ndarray
    s: int
    construction: str
    atom_of: np.ndarray
    atom_coefficients: np.ndarray
    classes: np.ndarray | None = None
    probe_cond: float = float("nan")
    rtol: float = DEFAULT_RTOL
    groups: np.ndarray | None = None
    reduction: int = 1
    closed_form: PolynomialDecoder | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def n_nodes(self) -> int:
        return self.membership.shape[0]

    @property
    def n_partitions(self) -> int:
        return self.membership.shape[1]

    @property
    def coefficients(self) -> np.ndarray:
        """``(n, K, ℓ)`` coefficients: node ``i`` sends ``Σ_{k,c} B[i,k,c] g_k^(c)``."""
        if "B" not in self._cache:
            self._cache["B"] = self.atom_coefficients[:, self.atom_of, :]
        return self._cache["B"]

    def decode_batch(self, masks: np.ndarray) -> Decoding:
        """Decode a batch of responder masks ``(P, n)``; see :func:`hgc.codes.decoding.decode_layer`
        (weights ``(P, ℓ, n)``)."""
        return decode_layer(self.atom_coefficients, masks, classes=self.classes, groups=self.groups, rtol=self.rtol,
                            closed_form=self.closed_form)

    def decoding_weights(self, mask: np.ndarray) -> np.ndarray:
        """Weights ``(ℓ, n)`` with ``Σ_i weights[c', i] B[i, k, c] = [c = c']`` from the responders in ``mask``.

        Raises :class:`~hgc.errors.UndecodableError` when the residual exceeds ``rtol``.
        """
        mask = np.asarray(mask, dtype=bool)
        result = self.decode_batch(mask[None])
        if not result.ok[0]:
            raise UndecodableError(f"{int(mask.sum())} of {self.n_nodes} nodes responded (the code needs any "
                                   f"{self.n_nodes - self.s}); decoding residual {result.residual[0]:.3g} "
                                   f"> {self.rtol:g}")
        return result.weights[0]


def straggler_patterns(n: int, s: int, rng: np.random.Generator | None, limit: int) -> tuple[np.ndarray, bool]:
    """Responder masks ``(P, n)`` with exactly ``s`` stragglers: all ``C(n, s)`` of them if at most
    ``limit``, else ``limit`` seeded random ones. Returns ``(masks, exhaustive)``."""
    total = comb(n, s)
    if total <= limit:
        from itertools import chain, combinations

        k = min(s, n - s)            # enumerate the smaller side: responders' sets in reverse order are the
        chosen = np.fromiter(chain.from_iterable(combinations(range(n), k)), dtype=np.intp, count=total * k)
        if k == s:
            masks = np.ones((total, n), dtype=bool)
            masks[np.repeat(np.arange(total), k), chosen] = False
        else:                        # complements of the stragglers' sets in lexicographic order
            masks = np.zeros((total, n), dtype=bool)
            masks[np.repeat(np.arange(total), k), chosen.reshape(total, k)[::-1].reshape(-1)] = True
        return masks, True
    if rng is None:
        raise ValueError("sampling straggler patterns needs a random generator")
    masks = np.ones((limit, n), dtype=bool)
    stragglers = random_subsets(rng, limit, n, s)
    masks[np.arange(limit)[:, None], stragglers] = False
    return masks, False


def random_subsets(rng: np.random.Generator, count: int, n: int, k: int) -> np.ndarray:
    """``(count, k)`` indices: in each row a uniformly random ``k``-subset of ``range(n)`` (the ``k``
    smallest of ``n`` uniform draws, in no particular order: only the set is meaningful)."""
    keys = rng.random((count, n))
    if k == 0:
        return np.empty((count, 0), dtype=np.intp)
    if k >= n:
        return np.broadcast_to(np.arange(n), (count, n)).copy()
    return np.argpartition(keys, k - 1, axis=1)[:, :k]


Builder = Callable[[np.ndarray, int, int], np.ndarray]


POLYNOMIAL_POINTS: dict[str, Callable[[int], np.ndarray]] = {
    "polynomial": chebyshev_points, "polynomial_equispaced": equispaced_points}
"""Evaluation points of the polynomial constructions (they have closed-form decoders)."""


def _builders(rng: np.random.Generator) -> dict[str, Builder]:
    return {
        "fractional_repetition": fractional_repetition_coefficients,
        "null_space": lambda M, s, ell: null_space_coefficients(M, s, rng, ell),
        "polynomial": lambda M, s, ell: polynomial_coefficients(M, s, None, ell),
        "polynomial_equispaced": lambda M, s, ell: polynomial_coefficients(M, s, equispaced_points(M.shape[0]), ell),
        "gaussian": lambda M, s, ell: gaussian_coefficients(M, s, rng, ell),
    }


def node_groups(atom_membership: np.ndarray, s: int, reduction: int = 1) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Nodes with identical supports, as a smaller code to build coefficients on.

    Returns ``(group_of, group_support, s_groups)`` — each node's group (groups numbered in order of
    first appearance, which keeps cyclic order), the groups' supports ``(G, A)`` and the number of
    groups ``s`` stragglers can silence completely (smallest groups first) — or ``None`` when every
    node is alone in its group or some atom lies on fewer than ``s_groups + ℓ`` groups.

    Any ``s`` stragglers leave at least one responder in all but ``s_groups`` groups, so a code on
    the groups tolerating ``s_groups`` is a code on the nodes tolerating ``s`` (duplicates send the
    same vector). With equal weights and ``g = gcd(n, s+1) > 1`` this turns ``n`` nodes into ``n/g``
    groups with tolerance ``(s+1)/g - 1`` — much better conditioned than the node-level code.
    """
    M = np.asarray(atom_membership, dtype=bool)
    rows, first, inverse = np.unique(M, axis=0, return_index=True, return_inverse=True)
    if rows.shape[0] == M.shape[0]:
        return None
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    group_of = rank[inverse.reshape(-1)]
    support = rows[order]
    sizes = np.bincount(group_of)
    s_groups = int((np.cumsum(np.sort(sizes)) <= s).sum())
    if support.sum(axis=0).min() < s_groups + reduction:
        return None
    return group_of, support, s_groups


def components(atom_membership: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Independent blocks of a support: ``[(nodes, atoms), ...]`` of the connected components of the
    node–atom graph (nodes holding nothing are left out), or ``None`` if there is only one block.

    With reduction ``ℓ > 1`` each block is coded on its own with the layer's tolerance (every atom of a
    block lies on ``s + ℓ`` of the block's nodes): e.g. fractional-repetition supports become one small
    code per class instead of one large, badly conditioned code over all nodes.
    """
    M = np.asarray(atom_membership, dtype=bool)
    n, A = M.shape
    node_label = -np.ones(n, dtype=np.intp)
    label = 0
    for start in range(n):
        if node_label[start] >= 0 or not M[start].any():
            continue
        node_label[start] = label
        frontier = np.array([start])
        while frontier.size:
            cols = M[frontier].any(axis=0)
            reached = M[:, cols].any(axis=1) & (node_label < 0)
            node_label[reached] = label
            frontier = np.flatnonzero(reached)
        label += 1
    if label <= 1:
        return None
    out = []
    for c in range(label):
        nodes = np.flatnonzero(node_label == c)
        out.append((nodes, np.flatnonzero(M[nodes].any(axis=0))))
    return out


def identical_rows(coefficients: np.ndarray) -> np.ndarray | None:
    """Group labels of nodes whose coefficient rows are exactly equal (``None`` if all differ); the
    decoder then uses one responder per group."""
    flat = np.asarray(coefficients).reshape(coefficients.shape[0], -1)
    _, first, inverse = np.unique(flat, axis=0, return_index=True, return_inverse=True)
    if first.size == flat.shape[0]:
        return None
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[inverse.reshape(-1)]


def build_layer(membership: np.ndarray, s: int, construction: str = "auto", *,
                rng: np.random.Generator | None = None, rtol: float = DEFAULT_RTOL, reduction: int = 1) -> LayerCode:
    """Coefficients on ``membership`` tolerating any ``s`` stragglers, with messages of ``1/reduction``.

    ``construction`` is one of :data:`CONSTRUCTIONS` or ``"auto"`` (see the module docstring);
    ``rng`` drives the random constructions and the probe sample (default: a fixed seed, so results
    are reproducible). Nodes with identical supports get identical coefficients, built on the groups
    (:func:`node_groups`). Raises :class:`~hgc.errors.ConfigError` (key ``construction``) when an
    explicitly requested construction does not apply to the support or the reduction.
    """
    rng = rng if rng is not None else stream(0, Stream.CODES)
    M = np.asarray(membership, dtype=bool)
    atom_of, M_atoms = atoms(M)
    _check_support(M_atoms, s, reduction)
    classes = fr_classes(M_atoms, s) if reduction == 1 else None
    builders = _builders(rng)
    if construction != "auto" and construction not in builders:
        raise ConfigError(f"must be 'auto' or one of {', '.join(CONSTRUCTIONS)}, got {construction!r}",
                          "construction")
    if construction in ("auto", "fractional_repetition") and classes is not None:
        return LayerCode(M, s, "fractional_repetition", atom_of, M_atoms.astype(float)[:, :, None], classes, 1.0,
                         rtol)
    if construction == "fractional_repetition":
        fractional_repetition_coefficients(M_atoms, s, reduction)   # raises: the supports are not FR-shaped
    groups = node_groups(M_atoms, s, reduction)
    parts = components(M_atoms) if reduction > 1 else None

    def grouped(name: str, support: np.ndarray) -> np.ndarray:
        found = groups if support is M_atoms else node_groups(support, s, reduction)
        if found is None:
            return builders[name](support, s, reduction)
        group_of, group_support, s_groups = found
        return builders[name](group_support, s_groups, reduction)[group_of]

    def coefficients(name: str) -> np.ndarray:
        if parts is None:
            return grouped(name, M_atoms)
        B = np.zeros(M_atoms.shape + (reduction,))
        for nodes, cols in parts:
            B[np.ix_(nodes, cols)] = grouped(name, M_atoms[np.ix_(nodes, cols)])
        return B

    def closed_form(name: str) -> PolynomialDecoder | None:
        if name not in POLYNOMIAL_POINTS or parts is not None:
            return None
        if groups is None:
            return polynomial_decoder(M_atoms, s, POLYNOMIAL_POINTS[name](M_atoms.shape[0]), reduction)
        of, support, s_groups = groups
        return polynomial_decoder(support, s_groups, POLYNOMIAL_POINTS[name](support.shape[0]), reduction, of)

    group_of = None if groups is None else groups[0]
    if parts is not None:
        group_of = None                       # per-component groups: found from the coefficients below
    if construction != "auto":
        B = coefficients(construction)
        return LayerCode(M, s, construction, atom_of, B, None, rtol=rtol,
                         groups=group_of if parts is None else identical_rows(B), reduction=reduction,
                         closed_form=closed_form(construction))

    limit = PROBE_EXHAUSTIVE if comb(M.shape[0], s) <= PROBE_EXHAUSTIVE else PROBE_SAMPLE
    probes, exhaustive = straggler_patterns(M.shape[0], s, rng, limit)
    best: tuple[tuple[int, float, float], LayerCode] | None = None
    for name in ("polynomial_equispaced", "polynomial", "null_space", "gaussian"):
        try:
            B = coefficients(name)
        except ConfigError:
            continue
        if parts is not None:
            group_of = identical_rows(B)
        # the probe decodes with the generic solver: κ ties between constructions (common on small codes)
        # are broken by rounding-level differences, and the choice must not depend on the decoder
        result = decode_layer(B, probes, groups=group_of, rtol=rtol)
        failures = int((~result.ok).sum())
        worst_cond = float(result.cond.max()) if failures == 0 else float("inf")
        margin = RANDOM_TAIL_MARGIN if name in RANDOM_CONSTRUCTIONS and not exhaustive else 1.0
        score = (failures, worst_cond * margin, float(result.residual.max()))
        if best is None or score < best[0]:
            best = (score, LayerCode(M, s, name, atom_of, B, None, worst_cond, rtol, group_of, reduction,
                                     closed_form(name)))
    assert best is not None  # the polynomial and gaussian constructions apply to every valid support
    return best[1]
