"""Emulation without a cluster: the scheme adapter decodes exactly, the delays fed to the nodes are the
simulator's, ``--kill`` specifications are checked, and the node coroutines wait, decode and relay as the
model says."""

from __future__ import annotations

import asyncio
import copy
import math
import time
from fractions import Fraction

import numpy as np
import pytest

from hgc.codes import build_code
from hgc.config import config_from_mapping
from hgc.emulation.cluster import Node, assign, default_processes, topology_nodes
from hgc.emulation.faults import parse_kill, parse_kills
from hgc.emulation.nodes import EdgeNode, WorkerData, WorkerNode, coded_message, release
from hgc.emulation.plan import (EdgeLayerDecoder, EndToEndDecoder, FixedDecoder, MasterLayerDecoder, combine,
                                protocol_plan, scheduled_delays)
from hgc.emulation.protocol import worker_data
from hgc.errors import ConfigError
from hgc.experiment import resolve_schemes
from hgc.rng import Stream, stream
from hgc.schemes import Plan, Resolved, Scheme, Strategy, make_strategy, registry
from hgc.schemes.hgc import HGC_SCHEME
from hgc.simulation import CompiledStrategy, kth_smallest, sample_delays
from hgc.topology import Topology
from hgc.training import PartitionedData, load_dataset, make_model

BASE = {
    "name": "emu",
    "seed": 4,
    "trials": 2000,
    "topology": {"edges": 3, "workers": [3, 3, 2]},
    "timing": {
        "worker": {"compute": {"dist": "shifted_exponential", "shift": 1.0, "rate": 2.0},
                   "overhead": {"dist": "exponential", "mean": 0.05},
                   "uplink": {"dist": "constant", "value": 0.002}, "per_vector": 0.04},
        "edge": {"process": {"dist": "exponential", "mean": 0.1}, "uplink": {"dist": "exponential", "mean": 0.05},
                 "per_vector": 0.03},
        "failures": {"worker": 0.1, "edge": 0.05},
        "overrides": [{"edges": [2], "worker": {"speed": 0.5}}, {"edges": [1], "edge": {"per_vector": 0.08}},
                      {"edges": [0], "workers": [1], "worker": {"per_vector": 0.1}}],
    },
    "schemes": ["uncoded", {"scheme": "flat_gc", "s": 2}, {"scheme": "hgc", "s_e": 1, "s_w": 1},
                {"scheme": "hgc", "s_e": 1, "s_w": 1, "allocation": "speed"}, "hgc_jncss", "hgc_hetero"],
    "train": {"dataset": "synthetic_classification", "samples": 240, "features": 5, "classes": 3,
              "iterations": 4},
}


def config(**changes):
    raw = copy.deepcopy(BASE)
    raw.update(changes)
    return config_from_mapping(raw)


def strategies(topology: Topology) -> list[Strategy]:
    """Every kind of protocol: uncoded, relaying (with and without shorter messages), two-layer codes with
    node subsets, per-edge tolerances, reductions and unbalanced shares."""
    third, half = Fraction(1, 3), Fraction(1, 2)
    return [make_strategy("uncoded", topology),
            make_strategy("flat_gc", topology, s=2),
            make_strategy("flat_gc", topology, s=1, reduction=2),
            make_strategy("hgc", topology, s_e=1, s_w=1),
            make_strategy("hgc", topology, s_e=0, s_w=1),
            make_strategy("hgc", topology, s_e=0, s_w=1, edges=(0, 2), workers=((0, 1, 2), (0, 1))),
            make_strategy("hgc", topology, s_e=1, s_w=(1, 2, 0)),
            make_strategy("hgc", topology, s_e=0, s_w=1, reduction_e=2),
            make_strategy("hgc", topology, s_e=0, s_w=(1, 1, 0), reduction_w=2),
            make_strategy("hgc", topology, s_e=1, s_w=1, edge_shares=(1, 2 * third, third),
                          worker_shares=((1, half, half), (half, 1, half), (1, 1)))]


def code_for(strategy: Strategy, partitions: int | None = None):
    return strategy.scheme.build_code(strategy, partitions=partitions, rng=stream(0, Stream.CODES))


def run_protocol(plan, messages: np.ndarray, rng: np.random.Generator, dim: int) -> np.ndarray:
    """The master's gradient when the edges' and the master's arrivals come in a random admissible order."""
    if plan.relay:
        first = rng.permutation(plan.n_workers)[:plan.master_wait]       # the first N - s relayed messages
        mask = np.zeros(plan.n_workers, bool)
        mask[first] = True
        return combine(plan.master_decoder.weights(mask)[:, first], messages[first])[:dim]
    vectors = {}
    for j, role in enumerate(plan.edges):
        local = rng.permutation(len(role.rows))[:role.wait_for]          # the edge's fastest workers
        mask = np.zeros(len(role.rows), bool)
        mask[local] = True
        vectors[j] = combine(role.decoder.weights(mask)[:, local], messages[[role.rows[i] for i in local]])
    first = rng.permutation(len(plan.edges))[:plan.master_wait]
    mask = np.zeros(len(plan.edges), bool)
    mask[first] = True
    return combine(plan.master_decoder.weights(mask)[:, first], np.stack([vectors[j] for j in first]))[:dim]


# ----------------------------------------------------------------------------------------------------
# The adapter

@pytest.mark.parametrize("index", range(10))
def test_plan_decodes_the_full_gradient_from_any_admissible_arrival_order(index):
    topology = config().topology
    strategy = strategies(topology)[index]
    code = code_for(strategy)
    plan = protocol_plan(strategy, code)
    rng = np.random.default_rng(index)
    G = rng.standard_normal((code.n_partitions, 7))                      # 7 numbers: chunks need padding
    messages = code.encode(G)
    assert messages.shape == (code.n_workers, -(-7 // code.n_chunks))
    for _ in range(25):
        np.testing.assert_allclose(run_protocol(plan, messages, rng, 7), G.sum(axis=0), rtol=1e-9, atol=1e-9)


def test_resolved_schemes_of_a_config_decode_too():
    """auto searches (hgc_jncss, hgc_hetero with its unbalanced shares, allocation: speed) give plans whose
    decoders are exact."""
    cfg = config()
    rng = np.random.default_rng(5)
    hetero = None
    for resolved in resolve_schemes(cfg):
        code = code_for(resolved.strategy)
        plan = protocol_plan(resolved.strategy, code)
        G = rng.standard_normal((code.n_partitions, 5))
        for _ in range(10):
            np.testing.assert_allclose(run_protocol(plan, code.encode(G), rng, 5), G.sum(axis=0), atol=1e-9)
        if resolved.spec.get("allocation") == "speed":
            hetero = resolved.strategy
    assert hetero is not None and hetero.worker_loads is not None                # really unbalanced


def test_plan_roles_follow_the_strategys_order_statistic_plan():
    topology = config().topology
    plans = [protocol_plan(st, code_for(st)) for st in strategies(topology)]
    uncoded, flat, short_flat, hgc, inner, subset, per_edge, reduced_e, reduced_w, unbalanced = plans
    assert [r.wait_for for r in uncoded.edges] == [3, 3, 2] and uncoded.master_wait == 3
    assert isinstance(uncoded.master_decoder, FixedDecoder) and isinstance(uncoded.edges[0].decoder, FixedDecoder)
    assert all(r.relay for r in flat.edges) and flat.master_wait == 8 - 2
    assert isinstance(flat.master_decoder, EndToEndDecoder) and short_flat.n_chunks == 2
    assert [r.wait_for for r in hgc.edges] == [2, 2, 1] and hgc.master_wait == 2
    assert isinstance(hgc.master_decoder, MasterLayerDecoder) and isinstance(hgc.edges[2].decoder, EdgeLayerDecoder)
    assert inner.master_wait == 3
    assert [r.edge for r in subset.edges] == [0, 2] and subset.master_wait == 2
    assert subset.worker_nodes() == [(0, 0), (0, 1), (0, 2), (2, 0), (2, 1)]
    assert [r.wait_for for r in per_edge.edges] == [2, 1, 2]                # m_i - s_w[i]
    assert (reduced_e.n_chunks, reduced_w.n_chunks) == (2, 2)
    assert [r.wait_for for r in unbalanced.edges] == [2, 2, 1]
    for plan, st in zip(plans, strategies(topology)):
        if not plan.relay:
            assert tuple(r.wait_for for r in plan.edges) == st.plan.edge_wait
        assert plan.master_wait == st.plan.master_wait
    assert FixedDecoder(np.ones((1, 3))).weights(np.array([True, False, True])) is None   # everyone needed


class OneLayerThatWaitsForSome(Scheme):
    """A test scheme whose edges decode from some workers with a one-layer code: no protocol exists."""

    name = "one_layer_partial_test"

    def resolve(self, spec, context):
        return Resolved(spec, make_strategy("flat_gc", context.model.topology, s=1))

    def plan(self, strategy):
        return Plan(edge_wait=tuple(m - 1 for m in strategy.worker_counts), master_wait=strategy.n_edges)

    def build_code(self, strategy, *, partitions=None, rng=None, rtol=None):
        return build_code("flat_gc", strategy.worker_counts, s=1)


class FirstEdgeWins(Scheme):
    """A test scheme that is HGC with another plan: the master takes the first of the edges (as in
    tests/test_architecture.py). The emulation runs it with no change anywhere."""

    name = "first_edge_wins_test"

    def resolve(self, spec, context):
        topology = context.model.topology
        return Resolved(spec, HGC_SCHEME.strategy(topology, s_e=topology.n_edges - 1, s_w=0))

    def plan(self, strategy):
        return Plan(edge_wait=strategy.worker_counts, master_wait=1)

    def build_code(self, strategy, *, partitions=None, rng=None, rtol=None):
        return HGC_SCHEME.build_code(strategy, partitions=partitions, rng=rng, rtol=rtol)


@pytest.fixture
def plugins():
    schemes = [OneLayerThatWaitsForSome(), FirstEdgeWins()]
    for scheme in schemes:
        registry.register(scheme)
    yield schemes
    for scheme in schemes:
        registry.unregister(scheme.name)


def test_a_new_scheme_runs_through_its_plan_and_a_plan_the_code_cannot_serve_is_refused(plugins):
    topology = Topology((2, 2, 2))
    partial, first = plugins
    st = HGC_SCHEME.strategy(topology, s_e=2, s_w=0)
    strategy = Strategy(first.name, st.edges, st.workers, st.load, st.params)
    plan = protocol_plan(strategy, code_for(strategy))
    assert plan.master_wait == 1 and [r.wait_for for r in plan.edges] == [2, 2, 2]
    code = code_for(strategy)
    G = np.random.default_rng(0).standard_normal((code.n_partitions, 4))
    np.testing.assert_allclose(run_protocol(plan, code.encode(G), np.random.default_rng(1), 4), G.sum(axis=0),
                               atol=1e-9)
    flat = make_strategy("flat_gc", topology, s=1)
    refused = Strategy(partial.name, flat.edges, flat.workers, flat.load, flat.params)
    with pytest.raises(ValueError, match="no emulation protocol"):
        protocol_plan(refused, build_code("flat_gc", [2, 2, 2], s=1))


def test_a_code_built_on_other_nodes_is_refused():
    st = make_strategy("hgc", config().topology, s_e=1, s_w=1)
    with pytest.raises(ValueError, match="code built on"):
        protocol_plan(st, build_code("hgc", [3, 3, 3], s_e=1, s_w=1))


# ----------------------------------------------------------------------------------------------------
# The delays each node takes are the simulator's

def protocol_times(plan, delays) -> np.ndarray:
    """Iteration times of the protocol run on the nodes' delays, computed independently of the simulator:
    decoding edges send at their ``wait_for``-th worker plus their delay; relaying edges forward in arrival
    order, ``per_vector`` apart; the master finishes at its ``master_wait``-th arrival."""
    times = []
    for t in range(delays.iterations):
        arrivals = []
        for j, role in enumerate(plan.edges):
            workers = np.sort(delays.worker[t, list(role.rows)])
            if role.relay:
                free = -math.inf
                for w in workers:
                    free = max(w, free) + delays.per_vector[j]
                    arrivals.append(free + delays.edge[t, j])
            else:
                arrivals.append(workers[role.wait_for - 1] + delays.edge[t, j])
        arrivals = np.sort(arrivals)
        times.append(arrivals[plan.master_wait - 1])
    return np.array(times)


@pytest.mark.parametrize("scale", [1.0, 0.25])
def test_node_delays_reproduce_the_simulators_iteration_times(scale):
    cfg = config()
    sample = sample_delays(cfg.timing, stream(cfg.seed, Stream.EMULATE), 400)
    assert sample.worker_failed is not None and sample.worker_failed.any() and sample.edge_failed.any()
    for strategy in strategies(cfg.topology):
        plan = protocol_plan(strategy, code_for(strategy))
        delays = scheduled_delays(strategy, sample, cfg.timing, scale)
        expected, _ = CompiledStrategy(strategy, cfg.timing).iteration_times(sample)
        got = protocol_times(plan, delays)
        assert np.array_equal(np.isinf(got), np.isinf(expected)), strategy
        finite = np.isfinite(expected)
        np.testing.assert_allclose(got[finite], scale * expected[finite], rtol=1e-12)
        assert np.isinf(delays.worker).any() and np.isinf(delays.edge).any()   # silent failures


def test_message_lengths_and_loads_are_charged_as_the_model_says():
    """A worker's delay is load·X + Y + U + its link's per-vector time × 1/(ℓ_e ℓ_w); a decoding edge adds
    its per-vector time × 1/ℓ_e, a relaying edge charges per_vector × 1/ℓ per forwarded message."""
    cfg = config(timing={"worker": {"compute": {"dist": "constant", "value": 2.0}, "per_vector": 0.4},
                         "edge": {"per_vector": 0.6}})
    sample = sample_delays(cfg.timing, stream(1, Stream.EMULATE), 3)
    third, half = Fraction(1, 3), Fraction(1, 2)
    unbalanced = make_strategy("hgc", cfg.topology, s_e=1, s_w=1, reduction_e=1, edge_shares=(1, 2 * third, third),
                               worker_shares=((1, half, half), (half, 1, half), (1, 1)))
    reduced = make_strategy("hgc", cfg.topology, s_e=0, s_w=1, reduction_e=2)
    relay = make_strategy("flat_gc", cfg.topology, s=1, reduction=2)
    d = scheduled_delays(unbalanced, sample, cfg.timing, 1.0)
    np.testing.assert_allclose(d.worker[0], 2.0 * unbalanced.loads + 0.4)
    np.testing.assert_allclose(d.edge[0], 0.6)
    d = scheduled_delays(reduced, sample, cfg.timing, 1.0)
    np.testing.assert_allclose(d.worker[0], 2.0 * reduced.load + 0.4 / 2)
    np.testing.assert_allclose(d.edge[0], 0.6 / 2)
    d = scheduled_delays(relay, sample, cfg.timing, 0.5)
    np.testing.assert_allclose(d.worker[0], 0.5 * (2.0 * relay.load + 0.4 / 2))
    np.testing.assert_allclose(d.edge[0], 0.0)
    np.testing.assert_allclose(d.per_vector, 0.5 * 0.6 / 2)


def test_kth_smallest_agrees_with_the_reference_order_statistic():
    values = np.random.default_rng(1).random((5, 50))
    assert np.array_equal(kth_smallest(values, 2, axis=0), np.sort(values, axis=0)[1])


# ----------------------------------------------------------------------------------------------------
# Placement and --kill

def test_placement_spreads_nodes_round_robin_and_one_per_node():
    topology = Topology((3, 2))
    nodes = topology_nodes(topology)
    assert [n.label for n in nodes] == ["0.0", "0.1", "0.2", "1.0", "1.1", "e0", "e1"]
    assert sorted(nodes) == nodes
    one_each = assign(topology, [str(k) for k in range(7)])
    assert len(set(one_each.values())) == 7
    two = assign(topology, ["a", "b"])
    assert [two[n] for n in nodes] == ["a", "b", "a", "b", "a", "b", "a"]
    assert default_processes(topology, one_per_node=True) == 8   # one per node and a spare
    assert 1 <= default_processes(topology) <= 7


def test_kill_specifications():
    topology = Topology((3, 2))
    assert parse_kill("1.1@3", topology, 5).node == Node(1, 1)
    assert parse_kill(" 0 @ 1 ", topology, 5).node == Node(0)
    assert [k.text for k in parse_kills(["1.0@4", "0.2@2"], topology, 5)] == ["0.2@2", "1.0@4"]
    for text, needle in [("1.2", "expected EDGE.WORKER@ITERATION"), ("a.b@c", "expected"),
                         ("2.0@1", "edge 2 out of range"), ("1.2@1", "worker 2 out of range"),
                         ("0.0@0", "iteration 0 out of range"), ("0.0@6", "iteration 6 out of range")]:
        with pytest.raises(ConfigError, match=needle) as info:
            parse_kill(text, topology, 5)
        assert info.value.key == "kill"


# ----------------------------------------------------------------------------------------------------
# The node coroutines, with in-process workers

@pytest.mark.parametrize("index", [0, 1, 2, 7, 8, 9])
def test_worker_message_is_the_codes_message_for_the_real_partial_gradients(index):
    """What a worker computes on its own rows is row ``w`` of ``code.encode(G)`` for the real partial
    gradients ``G`` (chunked for shorter messages), for softmax and least squares."""
    cfg = config()
    data = load_dataset(cfg.train, cfg.seed)
    strategy = strategies(cfg.topology)[index]
    code = code_for(strategy)
    plan = protocol_plan(strategy, code)
    parts = PartitionedData.build(data.X_train, code.n_partitions)
    for model, y in ((make_model("softmax", data.n_features, data.n_classes, 1e-3), data.y_train),
                     (make_model("least_squares", data.n_features, 0, 0.0), data.y_train.astype(float))):
        W = np.random.default_rng(2).standard_normal((data.n_features, model.n_outputs)) * 0.1
        G = parts.partial_gradients(model.residual(data.X_train @ W, y))
        expected = code.encode(G)
        for w, held in enumerate(worker_data(plan, data.X_train, y, parts.sizes, model)):
            np.testing.assert_allclose(coded_message(held, W), expected[w], rtol=1e-10, atol=1e-10)
        assert sum(h.X.shape[0] for h in worker_data(plan, data.X_train, y, parts.sizes, model)) == \
            pytest.approx(data.n_train * code.worker_loads.sum(), abs=code.n_workers)


class LocalWorker:
    """A worker node called in-process (stands in for an actor handle)."""

    def __init__(self, node: WorkerNode, lost: bool = False):
        self.node, self.lost = node, lost

    async def compute(self, W, delay, token):
        if self.lost:
            raise OSError("Unable to contact Actor's worker")
        return await self.node.compute(W, delay, token)


def small_workers(n: int, lost: tuple[int, ...] = ()) -> list[LocalWorker]:
    model = make_model("least_squares", 2, 0, 0.0)
    rng = np.random.default_rng(0)
    return [LocalWorker(WorkerNode(WorkerData(rng.standard_normal((4, 2)), rng.standard_normal(4),
                                              np.full((4, 1), float(j + 1)), model)), j in lost) for j in range(n)]


def run(coro):
    return asyncio.run(coro)


def test_decoding_edge_uses_its_fastest_workers_and_waits_out_every_delay():
    code = build_code("hgc", [3, 3], s_e=0, s_w=1)
    edge = EdgeNode(0, EdgeLayerDecoder(code, 0))
    workers = small_workers(3)

    async def scenario():
        await edge.bind(workers)
        started = time.perf_counter()
        message = await edge.aggregate(np.ones((2, 1)), [0.06, 0.01, 0.03], 2, 0.02, "tok-a")
        return message, time.perf_counter() - started

    message, elapsed = run(scenario())
    assert message.used == (1, 2)                        # the two fastest of three
    assert elapsed >= 0.03 + 0.02                        # the 2nd fastest worker, then the edge's own delay
    assert message.finished >= message.collected
    assert all(finished - started >= delay - 1e-3 for (started, finished, _), delay
               in zip(message.workers, [0.01, 0.03]))


def test_edge_without_enough_live_workers_answers_without_a_vector_at_once():
    edge = EdgeNode(0, FixedDecoder(np.ones((1, 3))))

    async def scenario():
        await edge.bind(small_workers(3, lost=(0,)))
        return await edge.aggregate(np.ones((2, 1)), [0.0, 0.0, 0.0], 3, 0.0, "tok-b")

    message = run(scenario())
    assert message is not None and message.vector is None


def test_release_ends_every_wait_including_silent_failures():
    edge = EdgeNode(0, FixedDecoder(np.ones((1, 2))))

    async def scenario():
        await edge.bind(small_workers(2))
        call = asyncio.ensure_future(edge.aggregate(np.ones((2, 1)), [math.inf, 0.0], 2, 0.0, "tok-c"))
        await asyncio.sleep(0.05)
        assert not call.done()                     # a silently failed worker never answers
        await release("tok-c")
        return await asyncio.wait_for(call, 5.0)

    assert run(scenario()) is None


def test_relaying_edge_forwards_first_come_first_served_one_vector_at_a_time():
    edge = EdgeNode(0, None)
    per_vector, delay = 0.04, 0.01

    async def scenario():
        await edge.bind(small_workers(3))
        W = np.ones((2, 1))
        calls = [edge.forward(W, [0.02, 0.0, 0.01], per_vector, delay, "tok-d", k) for k in range(3)]
        return await asyncio.gather(*calls)

    messages = run(scenario())
    assert [m.worker for m in messages] == [1, 2, 0]          # arrival order at the edge
    first = messages[0].arrived
    for k, message in enumerate(messages):                     # the link sends one vector at a time:
        assert message.finished - first >= (k + 1) * per_vector + delay - 2e-3   # k-th leaves >= (k+1) slots


def test_dry_run_prints_the_models_time_on_the_drawn_delays_and_writes_nothing(tmp_path, cli, monkeypatch):
    import yaml

    raw = copy.deepcopy(BASE)
    raw["timing"].pop("failures")
    raw["schemes"] = raw["schemes"][:3] + ["hgc_jncss"]          # equal shares: 240 rows are enough
    path = tmp_path / "emu.yaml"
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(tmp_path)
    result = cli("emulate", path, "--dry-run", "--time-scale", "0.5", "--iterations", "3", "--jobs", "3")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emu.yaml"]            # nothing written, no results/
    cfg = config_from_mapping(raw)
    sample = sample_delays(cfg.timing, stream(cfg.seed, Stream.EMULATE), 3)
    total = 0.0
    for r in resolve_schemes(cfg):
        times, _ = CompiledStrategy(r.strategy, cfg.timing).iteration_times(sample)
        assert np.isfinite(times).all()
        total += float(times.sum()) * 0.5
        assert r.label in result.output
    from hgc.planning import _seconds_text

    assert f"{_seconds_text(total)} the model's time on the drawn delays" in result.output
    assert "4 schemes x 3 iterations on a local cluster of 3 processes" in result.output
    assert "not estimated (on top): cluster start-up" in result.output
