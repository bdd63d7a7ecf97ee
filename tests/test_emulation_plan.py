"""Emulation without a cluster: the scheme adapter decodes exactly, the delays fed to the nodes are the
simulator's, ``--kill`` specifications are checked, and the node coroutines wait, decode and relay as the
model says."""

from __future__ import annotations

import asyncio
import copy
import math
import time

import numpy as np
import pytest

from hgc.codes import build_code
from hgc.config import config_from_mapping
from hgc.emulation.cluster import Node, assign, default_processes, topology_nodes
from hgc.emulation.faults import parse_kill, parse_kills
from hgc.emulation.nodes import EdgeNode, WorkerData, WorkerNode, coded_message, release
from hgc.emulation.plan import LayerDecoder, SumDecoder, protocol_plan, scheduled_delays
from hgc.errors import ConfigError
from hgc.rng import Stream, stream
from hgc.schemes import Strategy, make_strategy
from hgc.simulation import CompiledStrategy, kth_smallest, sample_delays
from hgc.topology import Topology
from hgc.training import PartitionedData, load_dataset, make_model
from hgc.training.trainer import participating_counts

BASE = {
    "name": "emu",
    "seed": 4,
    "trials": 2000,
    "topology": {"edges": 3, "workers": [3, 3, 2]},
    "timing": {
        "worker": {"compute": {"dist": "shifted_exponential", "shift": 1.0, "rate": 2.0},
                   "overhead": {"dist": "exponential", "mean": 0.05},
                   "uplink": {"dist": "constant", "value": 0.002}},
        "edge": {"process": {"dist": "exponential", "mean": 0.1}, "uplink": {"dist": "exponential", "mean": 0.05},
                 "per_vector": 0.03},
        "failures": {"worker": 0.1, "edge": 0.05},
        "overrides": [{"edges": [2], "worker": {"speed": 0.5}}, {"edges": [1], "edge": {"per_vector": 0.08}}],
    },
    "schemes": ["uncoded", {"scheme": "flat_gc", "s": 2}, {"scheme": "hgc", "s_e": 1, "s_w": 1}],
    "train": {"dataset": "synthetic_classification", "samples": 240, "features": 5, "classes": 3,
              "iterations": 4},
}


def config(**changes):
    raw = copy.deepcopy(BASE)
    raw.update(changes)
    return config_from_mapping(raw)


def strategies(topology: Topology) -> list[Strategy]:
    subset = Strategy("hgc", (0, 2), ((0, 1, 2), (0, 1)), 0.0, s_e=0, s_w=1)   # JNCSS-like: edge 1 left out
    subset = make_strategy("hgc", topology, s_e=0, s_w=1, edges=subset.edges, workers=subset.workers)
    return [make_strategy("uncoded", topology), make_strategy("flat_gc", topology, s=2),
            make_strategy("hgc", topology, s_e=1, s_w=1), make_strategy("hgc", topology, s_e=0, s_w=1), subset]


def code_for(strategy: Strategy):
    return build_code(strategy.kind, participating_counts(strategy), s=strategy.s, s_e=strategy.s_e,
                      s_w=strategy.s_w, rng=stream(0, Stream.CODES))


# ----------------------------------------------------------------------------------------------------
# The adapter

@pytest.mark.parametrize("index", range(5))
def test_plan_decodes_the_full_gradient_from_any_admissible_arrival_order(index):
    topology = config().topology
    strategy = strategies(topology)[index]
    code = code_for(strategy)
    plan = protocol_plan(strategy, code)
    rng = np.random.default_rng(index)
    G = rng.standard_normal((code.n_partitions, 7))
    messages = plan.encoding @ G
    for _ in range(25):
        if plan.relay:
            rows = rng.permutation(plan.n_workers)[:plan.master_wait]   # the first N - s relayed messages
            mask = np.zeros(plan.n_workers, bool)
            mask[rows] = True
            weights = plan.master_decoder.weights(mask)
            decoded = weights @ messages
        else:
            vectors = {}
            for j, role in enumerate(plan.edges):
                local = rng.permutation(len(role.rows))[:role.wait_for]   # the edge's fastest workers
                mask = np.zeros(len(role.rows), bool)
                mask[local] = True
                weights = role.decoder.weights(mask)
                vectors[j] = weights @ messages[list(role.rows)]
            first = rng.permutation(len(plan.edges))[:plan.master_wait]
            mask = np.zeros(len(plan.edges), bool)
            mask[first] = True
            weights = plan.master_decoder.weights(mask)
            decoded = sum(weights[j] * vectors[j] for j in first)
        np.testing.assert_allclose(decoded, G.sum(axis=0), rtol=1e-9, atol=1e-9)


def test_plan_roles_follow_the_strategy():
    topology = config().topology
    uncoded, flat, hgc, inner, subset = (protocol_plan(st, code_for(st)) for st in strategies(topology))
    assert [r.wait_for for r in uncoded.edges] == [3, 3, 2] and uncoded.master_wait == 3
    assert isinstance(uncoded.master_decoder, SumDecoder)
    assert all(r.relay for r in flat.edges) and flat.master_wait == 8 - 2
    assert [r.wait_for for r in hgc.edges] == [2, 2, 1] and hgc.master_wait == 2
    assert isinstance(hgc.master_decoder, LayerDecoder)
    assert inner.master_wait == 3
    assert [r.edge for r in subset.edges] == [0, 2] and subset.master_wait == 2
    assert subset.worker_nodes() == [(0, 0), (0, 1), (0, 2), (2, 0), (2, 1)]
    assert SumDecoder(3).weights(np.array([True, False, True])) is None   # uncoded needs everyone


def test_a_scheme_without_protocol_is_refused():
    topology = config().topology
    st = make_strategy("hgc", topology, s_e=1, s_w=1)
    with pytest.raises(ValueError, match="no emulation protocol"):
        protocol_plan(Strategy("mystery", st.edges, st.workers, st.load), code_for(st))
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
        delays = scheduled_delays(plan, sample, cfg.timing, scale)
        expected, _ = CompiledStrategy(strategy, cfg.timing).iteration_times(sample)
        got = protocol_times(plan, delays)
        assert np.array_equal(np.isinf(got), np.isinf(expected)), strategy.kind
        finite = np.isfinite(expected)
        np.testing.assert_allclose(got[finite], scale * expected[finite], rtol=1e-12)
        assert np.isinf(delays.worker).any() and np.isinf(delays.edge).any()   # silent failures


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
        assert info.value.key == "--kill"


# ----------------------------------------------------------------------------------------------------
# The node coroutines, with in-process workers

def test_worker_message_is_its_coded_combination_of_partial_gradients():
    cfg = config()
    data = load_dataset(cfg.train, cfg.seed)
    model = make_model("softmax", data.n_features, data.n_classes, 1e-3)
    strategy = make_strategy("hgc", cfg.topology, s_e=1, s_w=1)
    code = code_for(strategy)
    parts = PartitionedData.build(data.X_train, code.n_partitions)
    W = np.random.default_rng(2).standard_normal((data.n_features, data.n_classes)) * 0.1
    G = parts.partial_gradients(model.residual(data.X_train @ W, data.y_train))
    starts = np.concatenate([[0], np.cumsum(parts.sizes)])
    for w in range(code.n_workers):
        held = code.holdings(w)
        rows = np.concatenate([np.arange(starts[k], starts[k + 1]) for k in held])
        worker = WorkerData(data.X_train[rows], data.y_train[rows], np.repeat(code.encoding[w, held],
                                                                                parts.sizes[held]), model)
        np.testing.assert_allclose(coded_message(worker, W).reshape(-1), code.encoding[w] @ G, rtol=1e-10,
                                   atol=1e-10)


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
                                              np.full(4, float(j + 1)), model)), j in lost) for j in range(n)]


def run(coro):
    return asyncio.run(coro)


def test_decoding_edge_uses_its_fastest_workers_and_waits_out_every_delay():
    code = build_code("hgc", [3, 3], s_e=0, s_w=1)
    edge = EdgeNode(0, LayerDecoder(code.worker_layers[0]))
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
    edge = EdgeNode(0, SumDecoder(3))

    async def scenario():
        await edge.bind(small_workers(3, lost=(0,)))
        return await edge.aggregate(np.ones((2, 1)), [0.0, 0.0, 0.0], 3, 0.0, "tok-b")

    message = run(scenario())
    assert message is not None and message.vector is None


def test_release_ends_every_wait_including_silent_failures():
    edge = EdgeNode(0, SumDecoder(2))

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
