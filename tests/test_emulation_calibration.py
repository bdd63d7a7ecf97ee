"""--calibrate: the fit recovers platform costs planted in synthetic measurements, and the YAML snippet
is a valid config fragment that carries them."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest
import yaml

from hgc.config import config_from_mapping
from hgc.distributions import parse_distribution
from hgc.emulation.calibration import Calibration, calibration_yaml, config_snippet, fit_platform
from hgc.emulation.runner import prepare_runs
from hgc.simulation import CompiledStrategy
from hgc.training import load_dataset

RAW = {
    "name": "cal", "seed": 2, "trials": 2000,
    "topology": {"edges": 2, "workers": 3},
    "timing": {"worker": {"compute": {"dist": "shifted_exponential", "shift": 1.0, "rate": 2.0},
                          "overhead": {"dist": "exponential", "mean": 0.02}},
               "edge": {"uplink": {"dist": "exponential", "mean": 0.05}, "per_vector": 0.01}},
    "schemes": ["uncoded", {"scheme": "flat_gc", "s": 1}, {"scheme": "hgc", "s_e": 1, "s_w": 1}],
    "train": {"dataset": "synthetic_regression", "samples": 120, "features": 3, "iterations": 30},
}
SCALE = 0.5


def planted(runs, sample, model, overhead: float, per_vector: float) -> None:
    """Fill each run's rows with the times the model gives when the platform adds ``overhead`` to every
    worker and ``per_vector`` to every vector (real seconds), every iteration decoded."""
    timing = replace(model, per_vector=tuple(p + per_vector / SCALE for p in model.per_vector))
    for run in runs:
        times = CompiledStrategy(run.strategy, timing).iteration_times(sample)[0] * SCALE + overhead
        run.rows = [{"time": t, "decoded": True} for t in times]


@pytest.fixture(scope="module")
def prepared():
    cfg = config_from_mapping(copy.deepcopy(RAW))
    runs, sample, _ = prepare_runs(cfg, load_dataset(cfg.train, cfg.seed), 30, SCALE)
    return cfg, runs, sample


def test_fit_recovers_overhead_and_per_vector_with_a_relaying_scheme(prepared):
    cfg, runs, sample = prepared
    planted(runs, sample, cfg.timing, overhead=0.03, per_vector=0.004)
    fit = fit_platform(runs, cfg.timing, sample, SCALE)
    assert fit.iterations == 90
    assert fit.overhead == pytest.approx(0.03, abs=2e-3)
    assert fit.per_vector == pytest.approx(0.004, abs=1e-3)
    assert fit.rmse_after < 1e-3 < fit.rmse_before


def test_decoding_schemes_alone_fit_only_the_overhead(prepared):
    cfg, runs, sample = prepared
    decoding = [run for run in runs if not run.plan.relay]
    planted(decoding, sample, cfg.timing, overhead=0.05, per_vector=0.0)
    fit = fit_platform(decoding, cfg.timing, sample, SCALE)
    assert fit.per_vector is None
    assert fit.overhead == pytest.approx(0.05, abs=1e-9)
    assert fit.rmse_after == pytest.approx(0.0, abs=1e-9)


def test_snippet_adds_the_costs_in_config_seconds_and_parses(prepared):
    cfg = prepared[0]
    text = config_snippet(Calibration(0.03, 0.004, 0.1, 0.01, 90, SCALE), cfg)
    timing = yaml.safe_load(text)["timing"]
    assert timing["worker"]["overhead"] == {"dist": "shifted_exponential", "shift": 0.06, "mean": 0.02}
    assert timing["edge"]["per_vector"] == pytest.approx(0.01 + 0.008)
    merged = copy.deepcopy(RAW)
    merged["timing"]["worker"].update(timing["worker"])
    merged["timing"]["edge"].update(timing["edge"])
    config_from_mapping(merged)    # a valid config


@pytest.mark.parametrize("overhead, uplink, key, expected", [
    ({"dist": "constant", "value": 0.01}, 0.0, "overhead", {"dist": "constant", "value": 0.03}),
    ({"dist": "uniform", "low": 0.0, "high": 0.1}, 0.0, "overhead", {"dist": "uniform", "low": 0.02, "high": 0.12}),
    ({"dist": "gamma", "shape": 2.0, "scale": 0.01}, 0.001, "uplink", {"dist": "constant", "value": 0.021}),
])
def test_snippet_puts_the_constant_where_the_family_can_take_it(overhead, uplink, key, expected):
    text = calibration_yaml(Calibration(0.02, None, 0.1, 0.01, 10, 1.0), parse_distribution(overhead, "o"),
                            parse_distribution(uplink, "u"), 0.0)
    timing = yaml.safe_load(text)["timing"]
    assert timing["worker"] == {key: expected}
    assert "edge" not in timing and "not identifiable" in text


def test_nothing_decoded_gives_no_fit(prepared):
    cfg, runs, sample = prepared
    for run in runs:
        run.rows = [{"time": 1.0, "decoded": False}]
    fit = fit_platform(runs, cfg.timing, sample, SCALE)
    assert fit.iterations == 0 and np.isnan(fit.overhead)
