"""Distributions: parsing, sampling against their own CDF and mean, scaling, errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from hgc.distributions import Bimodal, Constant, parse_distribution
from hgc.errors import ConfigError
from hgc.rng import stream

SPECS = [
    {"dist": "constant", "value": 0.25},
    {"dist": "exponential", "rate": 2.0},
    {"dist": "exponential", "mean": 0.5},
    {"dist": "shifted_exponential", "shift": 1.0, "rate": 2.0},
    {"dist": "uniform", "low": 0.5, "high": 1.5},
    {"dist": "gamma", "shape": 2.0, "scale": 0.3},
    {"dist": "lognormal", "mu": 0.0, "sigma": 0.5},
    {"dist": "weibull", "shape": 1.5, "scale": 2.0},
    {"dist": "pareto", "shape": 3.0, "scale": 1.0},
    {"dist": "bimodal", "p": 0.1, "fast": {"dist": "constant", "value": 1.0},
     "slow": {"dist": "constant", "value": 100.0}},
    {"dist": "bimodal", "p": 0.3, "fast": {"dist": "exponential", "mean": 1.0},
     "slow": {"dist": "uniform", "low": 5.0, "high": 6.0}},
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s["dist"])
def test_samples_follow_cdf_and_mean(spec):
    dist = parse_distribution(spec, "x")
    draws = dist.sample(stream(5), 100_000)
    assert draws.shape == (100_000,)
    assert draws.mean() == pytest.approx(dist.mean, rel=0.02, abs=1e-12)
    if not dist.is_constant:
        # Kolmogorov distance between the sample and the CDF
        grid = np.quantile(draws, np.linspace(0.01, 0.99, 99))
        empirical = np.searchsorted(np.sort(draws), grid, side="right") / draws.size
        assert np.max(np.abs(empirical - dist.cdf(grid))) < 0.01


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s["dist"])
def test_scaling_multiplies_values(spec):
    dist = parse_distribution(spec, "x")
    doubled = dist.scaled(2.0)
    assert doubled.mean == pytest.approx(2.0 * dist.mean)
    q = np.array([0.05, 0.5, 0.95])
    assert np.allclose(doubled.ppf(q), 2.0 * dist.ppf(q))
    assert parse_distribution(doubled.spec(), "x") == doubled


def test_closed_forms_of_families():
    assert parse_distribution({"dist": "exponential", "rate": 4.0}, "x").cdf(0.5) == pytest.approx(1 - np.exp(-2))
    shifted = parse_distribution({"dist": "shifted_exponential", "shift": 1.0, "mean": 2.0}, "x")
    assert shifted.cdf(0.99) == 0.0 and shifted.cdf(3.0) == pytest.approx(1 - np.exp(-1))
    pareto = parse_distribution({"dist": "pareto", "shape": 2.0, "scale": 3.0}, "x")
    assert pareto.cdf(6.0) == pytest.approx(1 - (3 / 6) ** 2) and pareto.mean == pytest.approx(6.0)
    lognormal = parse_distribution({"dist": "lognormal", "mu": 1.0, "sigma": 0.5}, "x")
    assert lognormal.mean == pytest.approx(np.exp(1.0 + 0.125))
    assert lognormal.cdf(2.0) == pytest.approx(stats.norm.cdf((np.log(2.0) - 1.0) / 0.5))


def test_bimodal_quantiles_and_atoms():
    dist = Bimodal(0.1, Constant(1.0), Constant(100.0))
    assert dist.ppf(np.array([0.5, 0.9, 0.91])).tolist() == [1.0, 1.0, 100.0]
    assert dist.cdf(np.array([0.5, 1.0, 99.0, 100.0])).tolist() == [0.0, 0.9, 0.9, 1.0]


def test_empirical_trace(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("a,b\n1,0.5\n2,1.5\n3,2.5\n4,3.5\n")
    dist = parse_distribution({"dist": "empirical", "file": "t.csv", "column": "b"}, "x", tmp_path)
    assert dist.mean == pytest.approx(2.0)
    assert dist.cdf(np.array([0.4, 0.5, 2.0, 3.5])).tolist() == [0.0, 0.25, 0.5, 1.0]
    assert set(np.unique(dist.sample(stream(1), 1000))) == {0.5, 1.5, 2.5, 3.5}
    assert dist.scaled(2).ppf(0.5) == pytest.approx(3.0)


@pytest.mark.parametrize("spec, key, fragment", [
    ({"dist": "exponentail", "rate": 1}, "x.dist", "did you mean 'exponential'"),
    ({"dist": "exponential", "rate": -1}, "x.rate", "must be > 0"),
    ({"dist": "exponential", "rate": 1, "mean": 1}, "x", "exactly one of"),
    ({"dist": "exponential", "rat": 1}, "x.rat", "did you mean 'rate'"),
    ({"dist": "uniform", "low": 2, "high": 1}, "x.high", "must be > low"),
    ({"dist": "gamma", "shape": "two", "scale": 1}, "x.shape", "expected a number"),
    ({"dist": "bimodal", "p": 1.5, "fast": 0, "slow": 1}, "x.p", "must be <= 1"),
    ({"dist": "bimodal", "p": 0.5, "fast": 0, "slow": {"dist": "constant"}}, "x.slow", "missing required key 'value'"),
    ({"dist": "empirical", "file": "missing.csv", "column": "a"}, "x.file", "trace file not found"),
    ("fast", "x", "expected a distribution mapping"),
])
def test_bad_specs_name_the_key(spec, key, fragment, tmp_path):
    with pytest.raises(ConfigError) as info:
        parse_distribution(spec, "x", tmp_path)
    assert info.value.key == key
    assert fragment in info.value.message


def test_bad_trace_contents(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("seconds\n1.0\noops\n")
    with pytest.raises(ConfigError, match="line 3"):
        parse_distribution({"dist": "empirical", "file": "t.csv", "column": "seconds"}, "x", tmp_path)
    with pytest.raises(ConfigError, match="did you mean 'seconds'") as info:
        parse_distribution({"dist": "empirical", "file": "t.csv", "column": "second"}, "x", tmp_path)
    assert info.value.key == "x.column"
