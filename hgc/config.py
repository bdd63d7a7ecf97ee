"""Experiment configs: YAML → validated model objects.

:func:`load_config` reads a file, :func:`config_from_mapping` validates a mapping (sweeps build those);
both return an :class:`ExperimentConfig` or raise :class:`~hgc.errors.ConfigError` naming the file and the
key path of the first problem. Nothing downstream re-validates user input.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from hgc.errors import ConfigError
from hgc.safe_yaml import load_yaml
from hgc.schemes import SchemeSpec, default_schemes, parse_schemes
from hgc.timing import TimingModel, parse_timing
from hgc.topology import Topology, parse_topology
from hgc.limits import MAX_PARTITIONS, check_timing
from hgc.validation import as_float, as_int, as_mapping, as_name, check_keys, describe, join

TOP_LEVEL_KEYS = ("name", "description", "seed", "trials", "topology", "timing", "schemes", "train", "data")
DEFAULT_SEED = 0
DEFAULT_TRIALS = 100_000

DATASETS = ("digits", "synthetic_classification", "synthetic_regression")
MODELS = ("softmax", "least_squares")


@dataclass(frozen=True)
class TrainConfig:
    """The ``train:`` section: full-batch gradient descent on a dataset (used by ``hgc train``)."""

    dataset: str = "digits"
    model: str = "softmax"
    iterations: int = 200
    learning_rate: float = 0.5
    l2: float = 1e-4
    test_fraction: float = 0.2
    target_loss: float | None = None
    samples: int = 2000          # synthetic datasets only
    features: int = 20           # synthetic datasets only
    classes: int = 3             # synthetic_classification only


@dataclass(frozen=True)
class DataConfig:
    """The ``data:`` section: ``partitions`` is K, or ``None`` for the smallest valid K per scheme."""

    partitions: int | None = None


@dataclass(frozen=True)
class ExperimentConfig:
    """A validated experiment: the system, its straggler statistics and the schemes to compare."""

    name: str
    seed: int
    trials: int
    topology: Topology
    timing: TimingModel
    schemes: tuple[SchemeSpec, ...]
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    source: Path | None = None
    base_dir: Path | None = None

    @property
    def warnings(self) -> tuple[str, ...]:
        """Settings that are valid but have no effect, as ``key.path: message`` lines."""
        return self.timing.warnings

    def with_values(self, values: Mapping[str, Any], *, origin: str = "command line") -> "ExperimentConfig":
        """The experiment with dotted config keys set (``{"topology.edges": 8, "trials": 2e4}``), validated
        again as a whole. An error caused by one of the new values is attributed to ``origin``; an error
        the new values cause elsewhere names the file and says which values were set."""
        if not values:
            return self
        raw = copy.deepcopy(dict(self.raw))
        for key, value in values.items():
            try:
                set_dotted(raw, key, value)
            except ConfigError as err:
                raise ConfigError(err.message, err.key, origin) from None
        try:
            return config_from_mapping(raw, source=self.source, default_name=self.name, base_dir=self.base_dir)
        except ConfigError as err:
            if any(err.key == k or err.key.startswith((k + ".", k + "[")) or k.startswith(err.key + ".")
                   for k in values if err.key):
                raise ConfigError(err.message, err.key, origin) from None
            settings = ", ".join(f"{k}={v!r}" for k, v in values.items())
            raise ConfigError(f"{err.message} (with {settings} from the {origin})", err.key, self.source) from None

    def with_overrides(self, *, seed: int | None = None, trials: int | None = None) -> "ExperimentConfig":
        """The same experiment with a different seed and/or number of trials (CLI options)."""
        raw = dict(self.raw)
        if seed is not None:
            raw["seed"] = as_int(seed, "--seed", minimum=0)
        if trials is not None:
            raw["trials"] = as_int(trials, "--trials", minimum=1)
        return replace(self, seed=int(raw["seed"]), trials=int(raw["trials"]), raw=raw)

    def resolved(self) -> dict[str, Any]:
        """The config as run: every default filled in, worker counts listed, trace paths absolute.
        Loading it again gives the same experiment (and the same results for the same seed)."""
        raw = copy.deepcopy(dict(self.raw))
        out: dict[str, Any] = {"name": self.name}
        if "description" in raw:
            out["description"] = raw["description"]
        out["seed"], out["trials"] = self.seed, self.trials
        out["topology"] = {"edges": self.topology.n_edges, "workers": list(self.topology.workers)}
        timing = dict(raw.get("timing") or {})
        timing["worker"] = _with_defaults(timing.get("worker"), WORKER_DEFAULTS)
        timing["edge"] = _with_defaults(timing.get("edge"), EDGE_DEFAULTS)
        timing["failures"] = {"worker": self.timing.worker_failure, "edge": self.timing.edge_failure}
        timing.setdefault("overrides", [])
        out["timing"] = timing
        out["schemes"] = [spec.to_config() for spec in self.schemes]
        out["train"] = {name: getattr(self.train, name) for name in TrainConfig.__dataclass_fields__}
        out["data"] = {"partitions": self.data.partitions}
        base_dir = self.base_dir or (self.source.parent if self.source is not None else None)
        if base_dir is not None:
            _absolute_trace_paths(out["timing"], base_dir)
        return out


WORKER_DEFAULTS: dict[str, Any] = {"overhead": 0.0, "uplink": 0.0, "per_vector": 0.0}
"""Defaults of the optional worker delays (seconds), as written into resolved configs."""
EDGE_DEFAULTS: dict[str, Any] = {"process": 0.0, "uplink": 0.0, "per_vector": 0.0}
"""Defaults of the edge delays (seconds), as written into resolved configs."""


def _with_defaults(given: Any, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` (a mapping or nothing) followed by the defaults of the keys it does not set."""
    out = dict(given or {})
    out.update({k: v for k, v in defaults.items() if k not in out})
    return out


def set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    """Set ``a.b.c`` in nested mappings, creating missing intermediate mappings. A path through a value
    that is not a mapping is a :class:`ConfigError` naming the key."""
    node: Any = raw
    parts = key.split(".")
    if not key or any(not part for part in parts):
        raise ConfigError(f"expected a dotted config key such as 'timing.edge.process.p', got {key!r}", key)
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            if isinstance(child, Mapping):
                child = node[part] = dict(child)
            else:
                where = ".".join(parts[:depth + 1])
                raise ConfigError(f"cannot set '{key}': '{where}' is {describe(child)}, not a mapping", key)
        node = child
    node[parts[-1]] = copy.deepcopy(value)


def _absolute_trace_paths(node: Any, base_dir: Path) -> None:
    if isinstance(node, dict):
        if node.get("dist") == "empirical" and isinstance(node.get("file"), str):
            path = Path(node["file"])
            node["file"] = str(path if path.is_absolute() else (base_dir / path).resolve())
        for value in node.values():
            _absolute_trace_paths(value, base_dir)
    elif isinstance(node, list):
        for value in node:
            _absolute_trace_paths(value, base_dir)


def read_yaml(path: Path) -> Any:
    """Parse a YAML file with the safe loader of :mod:`hgc.safe_yaml` (bounded aliases, nesting and size;
    duplicate keys refused); every problem is a :class:`ConfigError` naming the file and line or key."""
    return load_yaml(path)


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate the experiment config at ``path``."""
    path = Path(path)
    raw = read_yaml(path)
    try:
        return config_from_mapping(raw, source=path, default_name=path.stem)
    except ConfigError as err:
        raise err.with_source(path) from None


def config_from_mapping(raw: Any, *, source: Path | None = None, default_name: str = "experiment",
                        base_dir: Path | None = None) -> ExperimentConfig:
    """Validate a config mapping (as read from YAML). ``base_dir`` resolves trace paths (default: the
    directory of ``source``)."""
    if raw is None:
        raise ConfigError("the config is empty", source=source)
    raw = dict(as_mapping(raw, ""))
    if ("base" in raw or "grid" in raw) and "topology" not in raw:
        raise ConfigError("this is a sweep file (it has base:/grid:), not an experiment config; run it with "
                          "'hgc sweep'", source=source)
    check_keys(raw, "", TOP_LEVEL_KEYS, ("topology", "timing"))
    if base_dir is None and source is not None:
        base_dir = Path(source).parent

    name = as_name(raw.setdefault("name", default_name), "name")
    raw["seed"] = seed = as_int(raw.get("seed", DEFAULT_SEED), "seed", minimum=0)
    raw["trials"] = trials = as_int(raw.get("trials", DEFAULT_TRIALS), "trials", minimum=1)
    if "description" in raw and not isinstance(raw["description"], str):
        raise ConfigError(f"expected a string, got {describe(raw['description'])}", "description")

    topology = parse_topology(raw["topology"])
    timing = parse_timing(raw["timing"], topology, base_dir=base_dir)
    check_timing(timing)
    schemes = parse_schemes(raw["schemes"], "schemes", topology) if "schemes" in raw else default_schemes()
    train = parse_train(raw.get("train", {}), "train")
    data = parse_data(raw.get("data", {}), "data")
    return ExperimentConfig(name=name, seed=seed, trials=trials, topology=topology, timing=timing,
                            schemes=schemes, train=train, data=data, raw=raw,
                            source=Path(source) if source is not None else None,
                            base_dir=Path(base_dir) if base_dir is not None else None)


def parse_train(raw: Any, key: str) -> TrainConfig:
    raw = as_mapping(raw if raw is not None else {}, key)
    defaults = TrainConfig()
    check_keys(raw, key, tuple(TrainConfig.__dataclass_fields__))
    dataset = raw.get("dataset", defaults.dataset)
    if dataset not in DATASETS:
        raise ConfigError(f"expected one of {', '.join(DATASETS)}, got {describe(dataset)}", join(key, "dataset"))
    model = raw.get("model", "least_squares" if dataset == "synthetic_regression" else defaults.model)
    if model not in MODELS:
        raise ConfigError(f"expected one of {', '.join(MODELS)}, got {describe(model)}", join(key, "model"))
    if (model == "least_squares") != (dataset == "synthetic_regression"):
        raise ConfigError(f"model {model} does not fit dataset {dataset} "
                          "(least_squares goes with synthetic_regression, softmax with the classification sets)",
                          join(key, "model"))
    target = raw.get("target_loss")
    return TrainConfig(
        dataset=dataset, model=model,
        iterations=as_int(raw.get("iterations", defaults.iterations), join(key, "iterations"), minimum=1),
        learning_rate=as_float(raw.get("learning_rate", defaults.learning_rate), join(key, "learning_rate"),
                               positive=True),
        l2=as_float(raw.get("l2", defaults.l2), join(key, "l2"), minimum=0.0),
        test_fraction=as_float(raw.get("test_fraction", defaults.test_fraction), join(key, "test_fraction"),
                               minimum=0.0, maximum=0.9),
        target_loss=None if target is None else as_float(target, join(key, "target_loss"), positive=True),
        samples=as_int(raw.get("samples", defaults.samples), join(key, "samples"), minimum=10),
        features=as_int(raw.get("features", defaults.features), join(key, "features"), minimum=1),
        classes=as_int(raw.get("classes", defaults.classes), join(key, "classes"), minimum=2),
    )


def parse_data(raw: Any, key: str) -> DataConfig:
    raw = as_mapping(raw if raw is not None else {}, key)
    check_keys(raw, key, ("partitions",))
    partitions = raw.get("partitions")
    return DataConfig(None if partitions is None
                      else as_int(partitions, join(key, "partitions"), minimum=1, maximum=MAX_PARTITIONS))
