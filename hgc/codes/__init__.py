"""Gradient codes that really decode: placements, coefficient constructions, decoders, whole codes.

Importing this package needs only NumPy. The pieces, one concept per module:

* :mod:`~hgc.codes.placement` — which partitions each node holds; the load arithmetic of SPEC §1
  (:func:`worker_load`, :func:`hgc_reachable`, :func:`smallest_partitions`);
* :mod:`~hgc.codes.constructions` — coefficients for one layer (fractional repetition, random null
  space, Chebyshev polynomial, Gaussian), chosen automatically by conditioning;
* :mod:`~hgc.codes.decoding` — batched decoders with residual checks;
* :mod:`~hgc.codes.hierarchical` — flat GC, uncoded and the two-layer HGC code (:func:`build_code`).

Example::

    import numpy as np
    from hgc.codes import build_code

    code = build_code("hgc", [5, 5, 3, 6], s_e=1, s_w=1)
    G = np.random.default_rng(0).standard_normal((code.n_partitions, 10))   # partial gradients
    messages = code.encode(G)                                               # (N, 10)
    responded = np.ones(code.n_workers, bool); responded[[0, 7]] = False    # one straggler in edges 0, 1
    g = code.decode(responded, messages, edges=[0, 1, 3])                   # edge 2 straggles
    assert np.allclose(g, G.sum(axis=0))
"""

from hgc.codes.constructions import (CONSTRUCTIONS, LayerCode, atoms, build_layer, chebyshev_points, equispaced_points,
                                     fractional_repetition_coefficients, gaussian_coefficients,
                                     null_space_coefficients, polynomial_coefficients, straggler_patterns)
from hgc.codes.decoding import DEFAULT_RTOL, Decoding, condition_numbers, decode_layer, min_norm_weights
from hgc.codes.hierarchical import (FlatCode, GradientCode, HierarchicalCode, build_code, edge_mask,
                                    worker_mask)
from hgc.codes.placement import (PLACEMENTS, ArcPlacement, HierarchicalPlacement, admissible_hgc, check_hgc,
                                 cyclic_placement, flat_placement, fractional_repetition_placement,
                                 hgc_reachable, hierarchical_placement, make_placement, max_edge_tolerance,
                                 proportional_cyclic_placement, smallest_partitions, worker_load)

__all__ = [
    "CONSTRUCTIONS", "DEFAULT_RTOL", "PLACEMENTS",
    "ArcPlacement", "Decoding", "FlatCode", "GradientCode", "HierarchicalCode", "HierarchicalPlacement",
    "LayerCode",
    "admissible_hgc", "atoms", "build_code", "build_layer", "chebyshev_points", "check_hgc", "equispaced_points",
    "condition_numbers", "cyclic_placement", "decode_layer", "min_norm_weights", "edge_mask", "flat_placement", "fractional_repetition_coefficients",
    "fractional_repetition_placement", "gaussian_coefficients", "hgc_reachable", "hierarchical_placement",
    "make_placement", "max_edge_tolerance", "null_space_coefficients", "polynomial_coefficients",
    "proportional_cyclic_placement", "smallest_partitions", "straggler_patterns", "worker_load", "worker_mask",
]
