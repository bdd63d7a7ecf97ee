"""The architecture's promises: scheme kinds are modules behind one protocol, named nowhere else; a new
scheme is one module plus one registry entry; distribution families drive validation and docs."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hgc.schemes import registry
from hgc.schemes.base import Plan, Resolved, Scheme
from hgc.schemes.hgc import HGC_SCHEME

PACKAGE = Path(__file__).resolve().parents[1] / "hgc"
CONSUMERS = ["simulation.py", "analytic", "optimizer", "verify.py", "training", "experiment.py", "optimize.py",
             "sweep.py", "emulation"]


def string_constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_scheme_kinds_are_named_only_in_the_schemes_package(consumer):
    kinds = set(registry.scheme_names())
    target = PACKAGE / consumer
    files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
    found = [(f.name, line, value) for f in files for line, value in string_constants(f) if value in kinds]
    assert not found, f"scheme kinds matched by name outside hgc/schemes: {found}"


class EdgeReplication(Scheme):
    """A test scheme: every edge holds the whole dataset split among its workers (s_w = 0) and the master
    takes the first edge (the plan is what differs from HGC)."""

    name = "edge_replication_test"

    def resolve(self, spec, context):
        topology = context.model.topology
        s_e = topology.n_edges - 1
        return Resolved(spec, HGC_SCHEME.strategy(topology, s_e=s_e, s_w=0))

    def plan(self, strategy):
        return Plan(edge_wait=strategy.worker_counts, master_wait=1)

    def build_code(self, strategy, *, partitions=None, rng=None, rtol=None):
        return HGC_SCHEME.build_code(strategy, partitions=partitions, rng=rng, rtol=rtol)


@pytest.fixture
def plugin():
    scheme = EdgeReplication()
    registry.register(scheme)
    yield scheme
    registry.unregister(scheme.name)


def test_a_new_scheme_is_one_class_and_one_registration(plugin, write_config, cli, tmp_path):
    config = write_config("""
        name: plugin
        seed: 3
        trials: 3000
        topology: {edges: 2, workers: 3}
        timing:
          worker: {compute: {dist: exponential, mean: 1.0}}
        schemes: [uncoded, edge_replication_test]
        train: {iterations: 5}
    """)
    for verb, table in (("simulate", "summary.csv"), ("verify", "verify.csv"), ("train", "train_summary.csv")):
        out = tmp_path / verb
        result = cli(verb, config, "--out", out, "--quiet")
        assert result.exit_code == 0, result.output
        rows = pd.read_csv(out / table)
        assert (rows.iloc[:, :2].astype(str) == "edge_replication_test").any().any() or \
            rows.astype(str).apply(lambda c: c.str.contains("edge_replication_test")).any().any()
    summary = pd.read_csv(tmp_path / "simulate" / "summary.csv").set_index("scheme")
    # the master takes the faster of two edges, each waiting for all 3 workers at load 1/3:
    # E[max of 3 Exp(1)] / 3 = H_3 / 3, and the minimum over two edges is smaller
    assert summary.loc["edge_replication_test", "mean_time"] < (1 + 1 / 2 + 1 / 3) / 3
    assert summary.loc["edge_replication_test", "load"] == pytest.approx(1 / 3)
    train = pd.read_csv(tmp_path / "train" / "train_summary.csv")
    assert (train.max_grad_rel_error.dropna() <= 1e-8).all()


def test_the_distribution_table_in_the_readme_is_generated_from_the_schemas():
    from hgc.distributions import distribution_table

    readme = (PACKAGE.parent / "README.md").read_text()
    assert distribution_table() in readme


def test_every_family_round_trips_through_its_spec():
    from hgc.distributions import FAMILIES, parse_distribution

    examples = {
        "constant": {"value": 0.5}, "exponential": {"rate": 2.0}, "shifted_exponential": {"shift": 1.0, "mean": 0.5},
        "uniform": {"low": 0.1, "high": 0.4}, "gamma": {"shape": 2.0, "scale": 0.3},
        "lognormal": {"mu": -1.0, "sigma": 0.5}, "weibull": {"shape": 1.5, "scale": 0.2},
        "pareto": {"shape": 3.0, "scale": 0.1}, "bimodal": {"p": 0.1, "fast": 0.1, "slow": {"dist": "constant", "value": 2}},
    }
    assert set(examples) | {"empirical"} == set(FAMILIES)
    for name, params in examples.items():
        d = parse_distribution({"dist": name, **params}, "x")
        again = parse_distribution(d.spec(), "x")
        assert again == d and again.spec() == d.spec()
        doubled = d.scaled(2.0)
        q = np.array([0.1, 0.5, 0.9])
        assert np.allclose(doubled.ppf(q), 2 * d.ppf(q)) and doubled.mean == pytest.approx(2 * d.mean)
        assert parse_distribution(doubled.spec(), "x") == doubled
