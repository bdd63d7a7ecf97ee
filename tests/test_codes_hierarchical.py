"""Whole codes: encoding, decoding weights, responder descriptions, undecodable sets."""

import numpy as np
import pytest

from hgc.codes import FlatCode, HierarchicalCode, build_code, edge_mask, worker_load, worker_mask
from hgc.errors import ConfigError, UndecodableError, UnreachableBoundError

WORKERS = (5, 5, 3, 6)


@pytest.fixture(scope="module")
def hgc_code() -> HierarchicalCode:
    return build_code("hgc", WORKERS, s_e=1, s_w=1, rng=np.random.default_rng(0))


@pytest.fixture(scope="module")
def gradients() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((19, 7))


def test_shapes_numbering_and_load(hgc_code):
    code = hgc_code
    assert code.encoding.shape == (19, code.n_partitions, 1) and code.n_chunks == 1
    assert code.worker_edge.tolist() == [0] * 5 + [1] * 5 + [2] * 3 + [3] * 6
    assert code.load == worker_load("hgc", WORKERS, s_e=1, s_w=1) == 4 / 19
    held = (code.encoding[:, :, 0] != 0).sum(axis=1)
    assert (held == code.load * code.n_partitions).all()
    assert ((code.encoding[:, :, 0] != 0) <= code.membership).all()
    assert (code.worker_loads == code.load).all()
    assert code.worker_message_length == code.edge_message_length == 1
    assert code.describe()["K"] == code.n_partitions


def test_hgc_decodes_with_one_edge_and_one_worker_per_edge_missing(hgc_code, gradients):
    code = hgc_code
    G = gradients[:code.n_partitions]
    messages = code.encode(G)
    responded = np.ones(19, bool)
    responded[[0, 7, 10, 15]] = False                  # one straggler in edges 0, 1, 2, 3
    for down in range(4):
        edges = [i for i in range(4) if i != down]
        g = code.decode(responded, messages, edges=edges)
        np.testing.assert_allclose(g, G.sum(axis=0), rtol=0, atol=1e-12)
        w = code.decoding_weights(responded, edges)
        assert w.shape == (1, 19)
        assert (w[:, code.worker_edge == down] == 0).all() and (w[:, ~responded] == 0).all()
        np.testing.assert_allclose(code.combine(w, messages), G.sum(axis=0), atol=1e-12)


def test_non_responders_messages_are_never_read(hgc_code, gradients):
    code = hgc_code
    G = gradients[:code.n_partitions]
    messages = code.encode(G)
    responded = np.ones(19, bool)
    responded[[1, 6]] = False
    messages[[1, 6]] = np.nan
    messages[code.worker_edge == 3] = np.nan
    g = code.decode(responded, messages, edges=[0, 1, 2])
    np.testing.assert_allclose(g, G.sum(axis=0), atol=1e-12)


def test_too_many_stragglers_raise_with_an_explanation(hgc_code, gradients):
    code = hgc_code
    messages = code.encode(gradients[:code.n_partitions])
    with pytest.raises(UndecodableError, match="2 of 4 edges can report, the master needs any 3"):
        code.decode(None, messages, edges=[0, 1])
    responded = np.ones(19, bool)
    responded[[0, 1]] = False                          # edge 0 loses two workers (s_w = 1)
    with pytest.raises(UndecodableError, match="edge 0: 3 of 5 workers responded, needs 4"):
        code.decode(responded, messages, edges=[0, 1, 2])
    # ... but if the master can do without edge 0, the gradient is still exact
    g = code.decode(responded, messages, edges=[0, 1, 2, 3])
    np.testing.assert_allclose(g, gradients[:code.n_partitions].sum(axis=0), atol=1e-12)


def test_responder_descriptions_agree(hgc_code):
    code = hgc_code
    mask = np.ones(19, bool)
    mask[[0, 7]] = False
    per_edge_masks = [mask[:5], mask[5:10], mask[10:13], mask[13:]]
    per_edge_indices = [[1, 2, 3, 4], [0, 1, 3, 4], [0, 1, 2], {0, 1, 2, 3, 4, 5}]
    global_indices = np.flatnonzero(mask)
    reference = code.decoding_weights(mask, np.array([True, True, False, True]))
    for workers in (per_edge_masks, per_edge_indices, global_indices):
        for edges in ([0, 1, 3], np.array([True, True, False, True]), (0, 1, 3)):
            np.testing.assert_array_equal(code.decoding_weights(workers, edges), reference)
    assert worker_mask(WORKERS, None).all() and edge_mask(4, None).all()
    with pytest.raises(ValueError, match="length 19"):
        worker_mask(WORKERS, np.ones(18, bool))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        edge_mask(4, [4])


def test_flat_code_relays_and_decodes_from_any_n_minus_s(gradients):
    code = build_code("flat_gc", WORKERS, s=3, rng=np.random.default_rng(0))
    assert isinstance(code, FlatCode) and code.load == 4 / 19
    G = gradients[:code.n_partitions]
    messages = code.encode(G)
    rng = np.random.default_rng(2)
    for _ in range(20):
        responded = np.ones(19, bool)
        responded[rng.choice(19, 3, replace=False)] = False
        np.testing.assert_allclose(code.decode(responded, messages), G.sum(axis=0), atol=1e-11)
    # edge 2 (3 workers) down: its relayed messages are lost, which is exactly s = 3 stragglers
    np.testing.assert_allclose(code.decode(None, messages, edges=[0, 1, 3]), G.sum(axis=0), atol=1e-11)
    with pytest.raises(UndecodableError, match="3 responded but their edge did not report"):
        code.decode(np.arange(1, 19), messages, edges=[0, 1, 3])


def test_uncoded_needs_everyone(gradients):
    code = build_code("uncoded", WORKERS)
    assert code.construction == "fractional_repetition" and code.load == 1 / 19
    np.testing.assert_array_equal(code.encoding[:, :, 0], np.eye(19))
    messages = code.encode(gradients)
    np.testing.assert_allclose(code.decode(None, messages), gradients.sum(axis=0), rtol=0, atol=1e-14)
    with pytest.raises(UndecodableError):
        code.decode(np.arange(18), messages)
    with pytest.raises(UndecodableError):
        code.decode(None, messages, edges=[0, 1, 2])


def test_special_cases_of_hgc():
    inside = build_code("hgc", (4, 4, 4), s_e=0, s_w=1)              # gradient coding inside each edge
    assert inside.edge_layer.construction == "fractional_repetition" and inside.load == 2 / 12
    replicate = build_code("hgc", (4, 4, 4), s_e=2, s_w=0)           # replication across edges
    assert replicate.construction == "edge:fractional_repetition;worker:fractional_repetition"
    assert replicate.load == 3 / 12


def test_build_code_validation():
    with pytest.raises(UnreachableBoundError, match="s_e <= 0"):
        build_code("hgc", (2, 2, 9), s_e=1, s_w=0)
    with pytest.raises(ConfigError, match="needs both"):
        build_code("hgc", WORKERS, s_e=1)
    with pytest.raises(ConfigError, match="needs the tolerance s"):
        build_code("flat_gc", WORKERS)
    with pytest.raises(ConfigError) as err:
        build_code("hgc", WORKERS, s_e=1, s_w=1, partitions=40)
    assert err.value.key == "data.partitions"
    with pytest.raises(ConfigError, match="topology.workers\\[1\\]: must be >= 1"):
        build_code("uncoded", [3, 0])
    code = build_code("hgc", WORKERS, s_e=1, s_w=1, partitions=38, construction=("polynomial", "gaussian"))
    assert code.n_partitions == 38 and code.edge_layer.construction == "polynomial"
    assert {layer.construction for layer in code.worker_layers} <= {"gaussian"}


def test_codes_are_deterministic_for_a_seed():
    a = build_code("hgc", WORKERS, s_e=2, s_w=2, construction="gaussian", rng=np.random.default_rng(9))
    b = build_code("hgc", WORKERS, s_e=2, s_w=2, construction="gaussian", rng=np.random.default_rng(9))
    assert np.array_equal(a.encoding, b.encoding)
    assert np.array_equal(build_code("flat_gc", WORKERS, s=7).encoding, build_code("flat_gc", WORKERS, s=7).encoding)


def test_decode_batch_matches_single_decoding(hgc_code):
    code = hgc_code
    rng = np.random.default_rng(4)
    wm = rng.random((50, 19)) > 0.15
    em = rng.random((50, 4)) > 0.2
    batch = code.decode_batch(wm, em)
    for p in range(50):
        if batch.ok[p]:
            np.testing.assert_allclose(code.decoding_weights(wm[p], em[p]), batch.weights[p])
        else:
            with pytest.raises(UndecodableError):
                code.decoding_weights(wm[p], em[p])
    assert batch.ok.any() and not batch.ok.all()


def test_corrupted_encoding_is_caught_by_the_end_to_end_residual(hgc_code):
    code = hgc_code
    broken = HierarchicalCode("hgc", code.workers, code.encoding * (1 + 1e-6 * (code.encoding != 0)), code.rtol,
                              s_e=code.s_e, s_w=code.s_w, placement=code.placement, edge_layer=code.edge_layer,
                              worker_layers=code.worker_layers)
    with pytest.raises(UndecodableError, match="residual"):
        broken.decoding_weights(None, None)
