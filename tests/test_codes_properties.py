"""Property tests over random small topologies (n <= 8 edges, m_i <= 8 workers, every admissible tolerance).

* every admissible straggler pattern decodes with relative gradient error <= 1e-9 (all patterns when
  there are at most 1500, else a seeded sample of 1500);
* a pattern with one straggler too many is either refused (UndecodableError) or decoded exactly —
  never silently wrong;
* the code's load is the load bound (docs/model.md §3) and equals :func:`worker_load`.
"""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hgc.codes import admissible_hgc, build_code, worker_load
from hgc.errors import UndecodableError
from hgc.verify import check_code

PATTERNS = 1500
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def hgc_case(draw):
    workers = tuple(draw(st.lists(st.integers(1, 8), min_size=1, max_size=8)))
    s_e, s_w = draw(st.sampled_from(admissible_hgc(workers)))
    construction = draw(st.sampled_from(["auto", "auto", "polynomial_equispaced", "polynomial", "gaussian"]))
    seed = draw(st.integers(0, 2**31 - 1))
    return workers, s_e, s_w, construction, seed


@st.composite
def flat_case(draw):
    workers = tuple(draw(st.lists(st.integers(1, 8), min_size=1, max_size=3)))
    s = draw(st.integers(0, sum(workers) - 1))
    return workers, s, draw(st.integers(0, 2**31 - 1))


def relative_error(code, weights, G):
    g = G.sum(axis=0)
    return np.linalg.norm(code.combine(weights, code.encode(G), G.shape[1]) - g) / np.linalg.norm(g)


@SETTINGS
@given(hgc_case())
def test_hgc_decodes_every_admissible_pattern(case):
    workers, s_e, s_w, construction, seed = case
    code = build_code("hgc", workers, s_e=s_e, s_w=s_w, construction=construction, rng=np.random.default_rng(seed))
    assert Fraction(code.load).limit_denominator(10**6) == Fraction((s_e + 1) * (s_w + 1), sum(workers))
    assert code.load == worker_load("hgc", workers, s_e=s_e, s_w=s_w)
    assert ((code.encoding[:, :, 0] != 0).sum(axis=1) == round(code.load * code.n_partitions)).all()
    check = check_code(code, max_patterns=PATTERNS, rng=np.random.default_rng(seed))
    assert check.wrong == 0, check                      # never a wrong gradient, whatever the construction
    assert check.max_rel_error <= 1e-9, check
    if construction == "gaussian":                     # a random Gaussian code may be ill-conditioned on a few
        assert check.undecodable <= 0.02 * check.patterns, check    # responder sets; it refuses those
    else:
        assert check.undecodable == 0, check


@SETTINGS
@given(hgc_case(), st.data())
def test_hgc_one_straggler_too_many_is_never_decoded_silently_wrong(case, data):
    workers, s_e, s_w, construction, seed = case
    code = build_code("hgc", workers, s_e=s_e, s_w=s_w, construction=construction, rng=np.random.default_rng(seed))
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((code.n_partitions, 6))
    n = len(workers)
    offsets = np.cumsum((0,) + workers)
    for _ in range(8):
        edges = np.ones(n, bool)
        edges[rng.choice(n, size=s_e, replace=False)] = False
        responded = np.ones(code.n_workers, bool)
        for i in np.flatnonzero(edges):
            responded[offsets[i] + rng.choice(workers[i], size=s_w, replace=False)] = False
        if data.draw(st.booleans()):                            # one edge too many
            alive = np.flatnonzero(edges)
            edges[rng.choice(alive)] = False
        else:                                                    # one worker too many in one alive edge
            candidates = [i for i in np.flatnonzero(edges) if responded[offsets[i]:offsets[i + 1]].any()]
            i = rng.choice(candidates)
            alive_workers = np.flatnonzero(responded[offsets[i]:offsets[i + 1]])
            responded[offsets[i] + rng.choice(alive_workers)] = False
        try:
            weights = code.decoding_weights(responded, edges)
        except UndecodableError:
            continue
        assert relative_error(code, weights, G) <= 1e-9
        assert (weights[:, ~responded] == 0).all() and (weights[:, ~edges[code.worker_edge]] == 0).all()


@SETTINGS
@given(flat_case())
def test_flat_codes_decode_every_admissible_pattern_and_refuse_one_more(case):
    workers, s, seed = case
    code = build_code("flat_gc", workers, s=s, rng=np.random.default_rng(seed))
    assert code.load == (s + 1) / sum(workers) == worker_load("flat_gc", workers, s=s)
    check = check_code(code, max_patterns=PATTERNS, rng=np.random.default_rng(seed))
    assert check.failures == 0 and check.max_rel_error <= 1e-9, check
    N = code.n_workers
    if s + 1 < N:
        rng = np.random.default_rng(seed)
        G = rng.standard_normal((code.n_partitions, 6))
        for _ in range(8):
            responded = np.ones(N, bool)
            responded[rng.choice(N, size=s + 1, replace=False)] = False
            try:
                weights = code.decoding_weights(responded)
            except UndecodableError:
                continue
            assert relative_error(code, weights, G) <= 1e-9


@pytest.mark.parametrize("workers", [(8,) * 8, (1, 8, 8, 8, 8, 8, 8, 8), (7, 5, 3, 8, 2, 6)])
def test_largest_small_topologies_every_admissible_pair(workers):
    """Deterministic sweep of the extreme corner the property tests may rarely hit."""
    for s_e, s_w in admissible_hgc(workers):
        code = build_code("hgc", workers, s_e=s_e, s_w=s_w, rng=np.random.default_rng(0))
        check = check_code(code, max_patterns=300, rng=np.random.default_rng(1))
        assert check.failures == 0 and check.max_rel_error <= 1e-9, (s_e, s_w, check)
