"""Placements and the load arithmetic (docs/model.md §3–§4)."""

from fractions import Fraction

import numpy as np
import pytest

from hgc.codes import (admissible_hgc, check_hgc, cyclic_placement, flat_placement, fractional_repetition_placement,
                       hgc_reachable, hierarchical_placement, max_edge_tolerance, proportional_cyclic_placement,
                       smallest_partitions, worker_load)
from hgc.errors import ConfigError, UnreachableBoundError

TOPOLOGIES = [(5, 5, 3, 6), (4, 4, 4, 4), (1, 2, 3), (7,), (2, 9, 4, 4, 1), (3, 3)]


def distinct_cover(membership: np.ndarray) -> np.ndarray:
    return membership.sum(axis=0)


@pytest.mark.parametrize("workers", TOPOLOGIES)
def test_hgc_load_equals_bound_for_every_admissible_pair(workers):
    total = sum(workers)
    for s_e, s_w in admissible_hgc(workers):
        placed = hierarchical_placement(workers, s_e, s_w)
        M = placed.membership()
        bound = Fraction((s_e + 1) * (s_w + 1), total)
        assert placed.load() == bound
        assert (M.sum(axis=1) == bound * placed.n_partitions).all()         # every worker exactly at the bound
        assert worker_load("hgc", workers, s_e=s_e, s_w=s_w) == float(bound)
        # every partition on s_e+1 distinct edges with s_w+1 copies in each
        edge_cover = placed.edge.membership().sum(axis=0)
        assert (edge_cover == s_e + 1).all()
        assert (M.sum(axis=0) == (s_e + 1) * (s_w + 1)).all()
        offsets = np.cumsum((0,) + workers)
        for i in range(len(workers)):
            copies = M[offsets[i]:offsets[i + 1]].sum(axis=0)
            held = placed.edge.membership()[i]
            assert (copies[held] == s_w + 1).all() and (copies[~held] == 0).all()


def test_proportional_arcs_follow_worker_counts():
    placed = proportional_cyclic_placement([5, 5, 3, 6], 1)
    assert placed.n_partitions == 19
    assert placed.lengths == (10, 10, 6, 12)            # K (s_e+1) m_i / sum m
    assert placed.starts == (0, 10, 1, 7)
    assert (placed.coverage() == 2).all()


def test_smallest_partitions_is_smallest_and_multiples_are_valid():
    workers = (5, 5, 5, 5)
    K = smallest_partitions("hgc", workers, s_e=1, s_w=4)
    assert K == 2                                       # each edge holds one partition, every worker all of it
    for k in range(1, K):
        with pytest.raises(ConfigError):
            hierarchical_placement(workers, 1, 4, k)
    for k in (K, 2 * K, 5 * K):
        assert hierarchical_placement(workers, 1, 4, k).load() == Fraction(2 * 5, 20)
    assert smallest_partitions("flat_gc", [6], s=1) == 3          # fractional repetition
    assert smallest_partitions("flat_gc", [7], s=1) == 7          # cyclic
    assert smallest_partitions("uncoded", [3, 4]) == 7


def test_invalid_partitions_message_names_the_key_and_the_rule():
    with pytest.raises(ConfigError) as err:
        hierarchical_placement((5, 5, 3, 6), 1, 1, 40)
    assert err.value.key == "data.partitions"
    assert "multiple of 19" in err.value.message and "40" in err.value.message
    with pytest.raises(ConfigError, match="multiple of 7"):
        flat_placement([7], 2, 10)


def test_unreachable_bound_is_explained():
    with pytest.raises(UnreachableBoundError) as err:
        worker_load("hgc", [2, 2, 9], s_e=1, s_w=0)
    msg = err.value.message
    assert "edge 2" in msg and "(s_e+1)*m_2 = 18 > sum(m) = 13" in msg and "s_e <= 0" in msg
    assert isinstance(err.value, ConfigError)
    with pytest.raises(UnreachableBoundError, match="s_e=3 .* must be < 3"):
        worker_load("hgc", [2, 2, 2], s_e=3, s_w=0)
    with pytest.raises(UnreachableBoundError, match="edge 1 has only 2 workers"):
        worker_load("hgc", [3, 2, 3], s_e=0, s_w=2)
    with pytest.raises(UnreachableBoundError, match="must be < 5"):
        worker_load("flat_gc", [2, 3], s=5)
    with pytest.raises(ConfigError, match=">= 0"):
        worker_load("flat_gc", [2, 3], s=-1)
    with pytest.raises(ConfigError, match="one of"):
        worker_load("flat", [2, 3], s=1)


@pytest.mark.parametrize("workers", TOPOLOGIES)
def test_reachability_predicate_matches_the_checks(workers):
    admissible = set(admissible_hgc(workers))
    for s_e in range(len(workers) + 1):
        for s_w in range(max(workers) + 1):
            try:
                check_hgc(workers, s_e, s_w)
                ok = True
            except UnreachableBoundError:
                ok = False
            assert hgc_reachable(workers, s_e, s_w) == ok == ((s_e, s_w) in admissible)
    assert max(s_e for s_e, _ in admissible) == max_edge_tolerance(workers)


def test_flat_and_uncoded_loads():
    assert worker_load("uncoded", [5, 5, 3, 6]) == 1 / 19
    for s in range(19):
        assert worker_load("flat_gc", [5, 5, 3, 6], s=s) == (s + 1) / 19


def test_equal_weights_give_fractional_repetition_or_cyclic_structure():
    fr = proportional_cyclic_placement([1] * 6, 2)             # 3 | 6: classes {0,2,4}, {1,3,5}
    M = fr.membership()
    assert fr.n_partitions == 2
    assert (M[0] == M[2]).all() and (M[1] == M[3]).all() and not (M[0] & M[1]).any()
    cyc = proportional_cyclic_placement([1] * 5, 1)              # gcd(5, 2) = 1: a relabelled cyclic code
    assert sorted(map(tuple, np.sort([cyc.holdings(i) for i in range(5)], axis=1).tolist())) == \
        sorted(tuple(sorted(((i + np.arange(2)) % 5).tolist())) for i in range(5))


def test_classical_cyclic_and_fractional_repetition_placements():
    cyc = cyclic_placement(5, 2, 10)
    assert cyc.holdings(4).tolist() == [8, 9, 0, 1, 2, 3]
    assert (cyc.coverage() == 3).all()
    fr = fractional_repetition_placement(6, 1)
    assert fr.n_partitions == 3 and fr.holdings(0).tolist() == fr.holdings(1).tolist() == [0]
    with pytest.raises(ConfigError, match="divide"):
        fractional_repetition_placement(5, 1)
    with pytest.raises(ConfigError, match="equal node weights"):
        hierarchical_placement((3, 3, 2), 0, 0, edge_placement="cyclic")
