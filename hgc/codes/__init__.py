"""Gradient codes that really decode: placements, coefficient constructions, decoders, whole codes.

Importing this package needs only NumPy. The pieces, one concept per module:

* :mod:`~hgc.codes.allocation` — edge and worker shares, per-edge tolerances, message reductions,
  per-worker loads and message lengths as exact fractions (:func:`hgc_allocation`,
  :func:`quantize_shares`, :func:`load_lower_bound`, :func:`profile_allocation` for unequal load profiles);
* :mod:`~hgc.codes.placement` — which partitions each node holds; the load arithmetic (docs/model.md §3)
  (:func:`worker_load`, :func:`worker_loads`, :func:`message_lengths`, :func:`hgc_reachable`,
  :func:`smallest_partitions`);
* :mod:`~hgc.codes.constructions` — coefficients for one layer (fractional repetition, random null
  space, Chebyshev polynomial, Gaussian), chosen automatically by conditioning;
* :mod:`~hgc.codes.decoding` — batched decoders with residual checks;
* :mod:`~hgc.codes.hierarchical` — flat GC, uncoded and the two-layer HGC code (:func:`build_code`),
  all with one encode / decode surface that covers chunked (shorter) messages.

The theory (load bounds, what the constructions achieve) is in ``docs/theory.md``.

Example::

    import numpy as np
    from hgc.codes import build_code

    code = build_code("hgc", [5, 5, 3, 6], s_e=1, s_w=1)
    G = np.random.default_rng(0).standard_normal((code.n_partitions, 10))   # partial gradients
    messages = code.encode(G)                                               # (N, 10)
    responded = np.ones(code.n_workers, bool); responded[[0, 7]] = False    # one straggler in edges 0, 1
    g = code.decode(responded, messages, edges=[0, 1, 3])                   # edge 2 straggles
    assert np.allclose(g, G.sum(axis=0))

    # shorter messages: edges send 1/2 of a gradient, workers 1/6; per-edge worker tolerances
    short = build_code("hgc", [5, 5, 3, 6], s_e=1, s_w=[1, 2, 0, 1], reduction_e=2, reduction_w=3)
    messages = short.encode(G)                                   # (N, ceil(10/6)) = (N, 2)
    g = short.decode(None, messages, edges=[0, 1, 3], dim=10)    # edge 2 straggles (s_e = 1)
    assert np.allclose(g, G.sum(axis=0))
"""

from hgc.codes.allocation import (MAX_PARTITIONS, Allocation, balanced_edge_shares, hgc_allocation,
                                  edge_capacity, hgc_worker_loads, load_lower_bound, min_max_edge_shares,
                                  per_edge_tolerances, profile_allocation, profile_load_bound, quantize_shares,
                                  waterfill_exact)
from hgc.codes.constructions import (CONSTRUCTIONS, LayerCode, atoms, build_layer, chebyshev_points, equispaced_points,
                                     fractional_repetition_coefficients, gaussian_coefficients,
                                     null_space_coefficients, polynomial_coefficients, random_subsets,
                                     straggler_patterns)
from hgc.codes.decoding import DEFAULT_RTOL, Decoding, condition_numbers, decode_layer, min_norm_weights
from hgc.codes.hierarchical import (FlatCode, GradientCode, HierarchicalCode, build_code, chunk_length, edge_mask,
                                    split_chunks, worker_mask)
from hgc.codes.placement import (PLACEMENTS, ArcPlacement, HierarchicalPlacement, admissible_hgc, check_hgc,
                                 cyclic_placement, flat_placement, fractional_repetition_placement,
                                 hgc_reachable, hierarchical_placement, make_placement, max_edge_tolerance,
                                 message_lengths, proportional_cyclic_placement, share_placement,
                                 smallest_partitions, worker_load, worker_loads)

__all__ = [
    "CONSTRUCTIONS", "DEFAULT_RTOL", "MAX_PARTITIONS", "PLACEMENTS",
    "Allocation", "ArcPlacement", "Decoding", "FlatCode", "GradientCode", "HierarchicalCode",
    "HierarchicalPlacement", "LayerCode",
    "admissible_hgc", "atoms", "balanced_edge_shares", "build_code", "build_layer", "chebyshev_points",
    "check_hgc", "chunk_length", "condition_numbers", "cyclic_placement", "decode_layer", "edge_capacity", "edge_mask",
    "equispaced_points", "flat_placement", "fractional_repetition_coefficients", "fractional_repetition_placement",
    "gaussian_coefficients", "hgc_allocation", "hgc_reachable", "hgc_worker_loads", "hierarchical_placement",
    "load_lower_bound", "make_placement", "max_edge_tolerance", "message_lengths", "min_max_edge_shares",
    "min_norm_weights", "null_space_coefficients", "per_edge_tolerances", "polynomial_coefficients", "profile_allocation", "profile_load_bound",
    "proportional_cyclic_placement", "quantize_shares", "share_placement", "smallest_partitions",
    "random_subsets", "split_chunks", "straggler_patterns", "waterfill_exact", "worker_load", "worker_loads", "worker_mask",
]
