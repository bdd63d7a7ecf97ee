"""Config semantics: defaults, overrides in order, speed, resolved config round trip."""

from __future__ import annotations

import pytest
import yaml

from hgc.config import config_from_mapping, load_config
from hgc.distributions import Constant
from hgc.errors import ConfigError

BASE = {
    "topology": {"edges": 3, "workers": 2},
    "timing": {"worker": {"compute": {"dist": "exponential", "mean": 1.0}}},
}


def with_timing(**timing):
    return {**BASE, "timing": {**BASE["timing"], **timing}}


def test_defaults():
    config = config_from_mapping(BASE, default_name="x")
    assert (config.name, config.seed, config.trials) == ("x", 0, 100_000)
    assert config.topology.workers == (2, 2, 2)
    assert all(d == Constant(0.0) for d in config.timing.worker_overhead + config.timing.edge_uplink)
    assert config.timing.per_vector == (0.0, 0.0, 0.0)
    assert [s.kind for s in config.schemes] == ["uncoded", "flat_gc", "hgc"]


def test_overrides_apply_in_order_to_the_selected_nodes():
    config = config_from_mapping(with_timing(overrides=[
        {"edges": [1], "worker": {"speed": 2.0}},
        {"edges": [1], "workers": [0], "worker": {"compute": {"dist": "constant", "value": 4.0}}},
        {"edge": {"per_vector": 0.5}},
        {"edges": [2], "edge": {"process": 0.25, "speed": 0.5}},
    ]))
    compute = config.timing.worker_compute
    assert compute[0].mean == pytest.approx(1.0) and compute[1].mean == pytest.approx(1.0)
    # edge 1: its workers are twice as fast; worker 0 then gets a constant 4 s at that speed
    assert compute[2] == Constant(2.0)
    assert compute[3].mean == pytest.approx(0.5)
    assert config.timing.per_vector == (0.5, 0.5, 0.5)
    assert config.timing.edge_process[2] == Constant(0.5)  # 0.25 s at half speed
    assert config.timing.edge_process[0] == Constant(0.0)


def test_workers_override_needs_worker_mapping_and_valid_positions():
    with pytest.raises(ConfigError) as info:
        config_from_mapping(with_timing(overrides=[{"edges": [0], "workers": [2], "worker": {"speed": 2}}]))
    assert info.value.key == "timing.overrides[0].workers[0]"
    with pytest.raises(ConfigError) as info:
        config_from_mapping(with_timing(overrides=[{"workers": [0], "edge": {"per_vector": 1}}]))
    assert info.value.key == "timing.overrides[0].workers"
    with pytest.raises(ConfigError, match="needs a 'worker' or an 'edge'"):
        config_from_mapping(with_timing(overrides=[{"edges": [0]}]))


def test_yaml_style_numbers_and_failures():
    raw = with_timing(failures={"worker": "1e-3"})
    assert config_from_mapping(raw).timing.worker_failure == pytest.approx(1e-3)
    with pytest.raises(ConfigError, match="no iteration ever completes"):
        config_from_mapping(with_timing(failures={"edge": 1.0}))


def test_resolved_config_round_trips(tmp_path):
    trace = tmp_path / "trace.csv"
    trace.write_text("s\n1.0\n2.0\n")
    raw = {**BASE, "timing": {"worker": {"compute": {"dist": "empirical", "file": "trace.csv", "column": "s"}}},
           "schemes": ["uncoded", {"scheme": "hgc", "s_e": 1, "s_w": "auto"}]}
    source = tmp_path / "c.yaml"
    source.write_text(yaml.safe_dump(raw))
    config = load_config(source)
    resolved = config.resolved()
    assert resolved["topology"] == {"edges": 3, "workers": [2, 2, 2]}
    assert resolved["timing"]["worker"]["compute"]["file"] == str(trace.resolve())
    elsewhere = tmp_path / "sub"
    elsewhere.mkdir()
    (elsewhere / "r.yaml").write_text(yaml.safe_dump(resolved))
    again = load_config(elsewhere / "r.yaml")
    assert again.schemes == config.schemes and again.timing == config.timing and again.seed == config.seed
