"""Delay distributions of the timing model (SPEC §3): sampling, CDF, quantiles and means.

Every distribution is an immutable value object with the same small interface:

* ``sample(rng, shape)`` draws from a :class:`numpy.random.Generator` (vectorised, one call per array);
* ``cdf(t)`` and ``ppf(q)`` evaluate the CDF and quantile function element-wise (the analytic evaluator
  works on a time grid with them);
* ``mean`` is the expectation in seconds (``inf`` where it does not exist, e.g. Pareto with shape <= 1);
* ``scaled(c)`` is the distribution of ``c * X`` (load scaling and ``speed`` factors);
* ``spec()`` is the YAML mapping that recreates it (written into resolved configs).

Equal distributions compare equal and hash alike, so the simulator can draw every group of nodes that
share one distribution in a single call.

Parametric families sample with NumPy's own generators and take CDFs and quantiles from
:mod:`scipy.stats` (a well-tested implementation of each family rather than hand-written formulas).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from scipy import stats

from hgc.errors import ConfigError
from hgc.limits import MAX_DELAY, check_delay
from hgc.traces import load_trace
from hgc.validation import as_float, as_mapping, as_probability, check_keys, describe, join, suggestion

Shape = int | tuple[int, ...]


class Distribution(ABC):
    """A distribution of a non-negative delay, in seconds."""

    @abstractmethod
    def sample(self, rng: np.random.Generator, shape: Shape) -> np.ndarray:
        """Draw an array of ``shape`` independent delays (float64 seconds)."""

    @abstractmethod
    def cdf(self, t: np.ndarray | float) -> np.ndarray:
        """``P(X <= t)`` element-wise."""

    @abstractmethod
    def ppf(self, q: np.ndarray | float) -> np.ndarray:
        """Smallest ``t`` with ``P(X <= t) >= q``, element-wise, for ``q`` in [0, 1]."""

    @property
    @abstractmethod
    def mean(self) -> float:
        """Expectation in seconds (``inf`` if it does not exist)."""

    @abstractmethod
    def scaled(self, factor: float) -> "Distribution":
        """The distribution of ``factor * X`` for ``factor > 0``."""

    @abstractmethod
    def spec(self) -> dict[str, Any]:
        """A config mapping (``{"dist": ...}``) that describes this distribution."""

    @property
    def is_constant(self) -> bool:
        """True for a point mass (never needs random draws)."""
        return False

    @property
    def is_zero(self) -> bool:
        """True for the point mass at 0 (the default of every optional delay)."""
        return False

    @property
    def lower(self) -> float:
        """Smallest possible value (the ``ppf`` at 0)."""
        return float(self.ppf(0.0))


@dataclass(frozen=True)
class Constant(Distribution):
    """A fixed delay of ``value`` seconds."""

    value: float

    def sample(self, rng: np.random.Generator, shape: Shape) -> np.ndarray:
        return np.full(shape, self.value)

    def cdf(self, t: np.ndarray | float) -> np.ndarray:
        return (np.asarray(t, dtype=float) >= self.value).astype(float)

    def ppf(self, q: np.ndarray | float) -> np.ndarray:
        return np.full(np.shape(q), self.value)

    @property
    def mean(self) -> float:
        return self.value

    def scaled(self, factor: float) -> "Constant":
        return Constant(self.value * factor)

    def spec(self) -> dict[str, Any]:
        return {"dist": "constant", "value": self.value}

    @property
    def is_constant(self) -> bool:
        return True

    @property
    def is_zero(self) -> bool:
        return self.value == 0.0


ZERO = Constant(0.0)


def _standard_pareto(rng: np.random.Generator, shape_param: float, size: Shape) -> np.ndarray:
    return rng.pareto(shape_param, size) + 1.0  # NumPy draws the Lomax form (x >= 0)


# family -> (scipy.stats distribution, standard sampler with shape parameter)
_STANDARD_SAMPLERS: dict[str, tuple[Any, Callable[[np.random.Generator, float | None, Shape], np.ndarray]]] = {
    "expon": (stats.expon, lambda rng, a, size: rng.standard_exponential(size)),
    "uniform": (stats.uniform, lambda rng, a, size: rng.random(size)),
    "gamma": (stats.gamma, lambda rng, a, size: rng.standard_gamma(a, size)),
    "lognorm": (stats.lognorm, lambda rng, a, size: np.exp(a * rng.standard_normal(size))),
    "weibull_min": (stats.weibull_min, lambda rng, a, size: rng.weibull(a, size)),
    "pareto": (stats.pareto, _standard_pareto),
}


@dataclass(frozen=True)
class LocationScale(Distribution):
    """``loc + scale * S`` where ``S`` is a standard member of a scipy.stats family.

    ``name`` and ``params`` remember how the user wrote it, for :meth:`spec`.
    """

    family: str
    shape: float | None
    loc: float
    scale: float
    name: str = field(compare=False)
    params: tuple[tuple[str, float], ...] = field(compare=False)

    @cached_property
    def _frozen(self) -> Any:
        family = _STANDARD_SAMPLERS[self.family][0]
        args = () if self.shape is None else (self.shape,)
        return family(*args, loc=self.loc, scale=self.scale)

    def sample(self, rng: np.random.Generator, shape: Shape) -> np.ndarray:
        draw = _STANDARD_SAMPLERS[self.family][1](rng, self.shape, shape)
        if self.scale != 1.0:
            draw *= self.scale
        if self.loc != 0.0:
            draw += self.loc
        return draw

    def cdf(self, t: np.ndarray | float) -> np.ndarray:
        return self._frozen.cdf(t)

    def ppf(self, q: np.ndarray | float) -> np.ndarray:
        return self._frozen.ppf(q)

    @property
    def mean(self) -> float:
        return float(self._frozen.mean())

    def scaled(self, factor: float) -> "LocationScale":
        params = tuple((k, v * factor if k in _SCALE_PARAMS else v) for k, v in self.params)
        if self.name == "lognormal":
            params = (("mu", dict(self.params)["mu"] + math.log(factor)), ("sigma", dict(self.params)["sigma"]))
        return LocationScale(self.family, self.shape, self.loc * factor, self.scale * factor,
                             self.name, params)

    def spec(self) -> dict[str, Any]:
        return {"dist": self.name, **dict(self.params)}


_SCALE_PARAMS = {"mean", "shift", "scale", "low", "high"}


@dataclass(frozen=True)
class Bimodal(Distribution):
    """With probability ``p`` a draw from ``slow``, otherwise from ``fast``."""

    p: float
    fast: Distribution
    slow: Distribution

    def sample(self, rng: np.random.Generator, shape: Shape) -> np.ndarray:
        out = np.array(self.fast.sample(rng, shape), dtype=float)
        is_slow = rng.random(shape) < self.p
        n_slow = int(np.count_nonzero(is_slow))
        if n_slow:
            out[is_slow] = self.slow.sample(rng, n_slow)
        return out

    def cdf(self, t: np.ndarray | float) -> np.ndarray:
        return (1.0 - self.p) * self.fast.cdf(t) + self.p * self.slow.cdf(t)

    def ppf(self, q: np.ndarray | float) -> np.ndarray:
        return _invert_cdf(self, q, self.fast, self.slow)

    @property
    def mean(self) -> float:
        return (1.0 - self.p) * self.fast.mean + self.p * self.slow.mean

    def scaled(self, factor: float) -> "Bimodal":
        return Bimodal(self.p, self.fast.scaled(factor), self.slow.scaled(factor))

    def spec(self) -> dict[str, Any]:
        return {"dist": "bimodal", "p": self.p, "fast": self.fast.spec(), "slow": self.slow.spec()}

    @property
    def is_constant(self) -> bool:
        return (self.p == 0.0 and self.fast.is_constant) or (self.p == 1.0 and self.slow.is_constant)

    @property
    def is_zero(self) -> bool:
        return (self.p == 0.0 and self.fast.is_zero) or (self.p == 1.0 and self.slow.is_zero)


def _invert_cdf(dist: Distribution, q: np.ndarray | float, *parts: Distribution) -> np.ndarray:
    """Quantiles of a mixture by vectorised bisection between its components' quantiles."""
    q = np.asarray(q, dtype=float)
    lows = np.min([np.asarray(p.ppf(q), dtype=float) for p in parts], axis=0)
    highs = np.max([np.asarray(p.ppf(q), dtype=float) for p in parts], axis=0)
    lo, hi = np.array(lows, dtype=float), np.array(highs, dtype=float)
    hi = np.where(dist.cdf(lo) >= q, lo, hi)  # an atom at the lower bracket
    finite = np.isfinite(hi)
    for _ in range(200):
        mid = np.where(finite, 0.5 * (lo + hi), np.maximum(2.0 * lo, lo + 1.0))
        below = dist.cdf(mid) < q
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
        finite = finite | ~below
        if np.all(finite & (hi - lo <= 1e-13 * np.maximum(1.0, np.abs(hi)))):
            break
    return hi


@dataclass(frozen=True, eq=False)
class Empirical(Distribution):
    """Resampling of measured delays (a trace), scaled by ``factor``; step CDF.

    ``source`` and ``column`` identify the trace (equality and hashing use them, not the values).
    """

    values: np.ndarray
    source: str
    column: str
    factor: float = 1.0

    @cached_property
    def _sorted(self) -> np.ndarray:
        return np.sort(self.values) * self.factor

    def sample(self, rng: np.random.Generator, shape: Shape) -> np.ndarray:
        picks = self.values[rng.integers(0, self.values.size, shape)]
        return picks * self.factor if self.factor != 1.0 else picks

    def cdf(self, t: np.ndarray | float) -> np.ndarray:
        return np.searchsorted(self._sorted, np.asarray(t, dtype=float), side="right") / self.values.size

    def ppf(self, q: np.ndarray | float) -> np.ndarray:
        index = np.ceil(np.asarray(q, dtype=float) * self.values.size).astype(int) - 1
        return self._sorted[np.clip(index, 0, self.values.size - 1)]

    @property
    def mean(self) -> float:
        return float(self.values.mean() * self.factor)

    def scaled(self, factor: float) -> "Empirical":
        return Empirical(self.values, self.source, self.column, self.factor * factor)

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"dist": "empirical", "file": self.source, "column": self.column}
        if self.factor != 1.0:
            spec["scale"] = self.factor
        return spec

    def _key(self) -> tuple[str, str, float]:
        return (self.source, self.column, self.factor)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Empirical) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


# ----------------------------------------------------------------------------------------------------
# Parsing from config mappings

def _rate_or_mean(spec: Mapping[str, Any], key: str) -> float:
    """The mean of an exponential given as ``rate`` (1/s) or ``mean`` (s), exactly one of them."""
    if ("rate" in spec) == ("mean" in spec):
        raise ConfigError("give exactly one of 'rate' (per second) or 'mean' (seconds)", key)
    if "rate" in spec:
        return 1.0 / as_float(spec["rate"], join(key, "rate"), positive=True)
    return as_float(spec["mean"], join(key, "mean"), positive=True)


def _location_scale(name: str, family: str, shape: float | None, loc: float, scale: float,
                    params: Mapping[str, float]) -> LocationScale:
    return LocationScale(family, shape, loc, scale, name, tuple(params.items()))


def _parse_constant(spec: Mapping[str, Any], key: str, base_dir: Path | None) -> Distribution:
    return Constant(as_float(spec["value"], join(key, "value"), minimum=0.0))


def _parse_exponential(spec: Mapping[str, Any], key: str, base_dir: Path | None) -> Distribution:
    mean = _rate_or_mean(spec, key)
    return _location_scale("exponential", "expon", None, 0.0, mean, {"mean": mean})


def _parse_shifted_exponential(spec: Mapping[str, Any], key: str, base_dir: Path | None) -> Distribution:
    shift = as_float(spec["shift"], join(key, "shift"), minimum=0.0)
    mean = _rate_or_mean(spec, key)
    return _location_scale("shifted_exponential", "expon", None, shift, mean, {"shift": shift, "mean": mean})


def _parse_uniform(spec: Mapping[str, Any], key: str, base_dir: Path | None) -> Distribution:
    low = as_float(spec["low"], join(key, "low"), minimum=0.0)
    high = as_float(spec["high"], join(key, "high"))
    if high <= low:
        raise ConfigError(f"must be > low ({low:g}), got {high:g}", join(key, "high"))
    return _location_scale("uniform", "uniform", None, low, high - low, {"low": low, "high": high})


def _shape_scale_parser(name: str, family: str) -> Callable[[Mapping[str, Any], str, Path | None], Distribution]:
    """Parser of a family given by ``shape`` and ``scale`` (gamma, Weibull, Pareto)."""

    def parse(spec: Mapping[str, Any], key: str, base_dir: Path | None) -> Distribution:
        shape = as_float(spec["shape"], join(key, "shape"), positive=True)
        scale = as_float(spec["scale"], join(key, "scale"), positive=True)
        return _location_scale(name, family, shape, 0.0, scale, {"shape": shape, "scale": scale})

    return parse


def _parse_lognormal(spec: Mapping[str, Any], key: str, base_dir: Path | None) -> Distribution:
    mu = as_float(spec["mu"], join(key, "mu"), minimum=-700.0, maximum=round(math.log(MAX_DELAY), 4))
    sigma = as_float(spec["sigma"], join(key, "sigma"), positive=True)
    return _location_scale("lognormal", "lognorm", sigma, 0.0, math.exp(mu), {"mu": mu, "sigma": sigma})


def _parse_bimodal(spec: Mapping[str, Any], key: str, base_dir: Path | None) -> Distribution:
    p = as_probability(spec["p"], join(key, "p"))
    fast = parse_distribution(spec["fast"], join(key, "fast"), base_dir)
    slow = parse_distribution(spec["slow"], join(key, "slow"), base_dir)
    return Bimodal(p, fast, slow)


def _parse_empirical(spec: Mapping[str, Any], key: str, base_dir: Path | None) -> Distribution:
    file_name = spec["file"]
    if not isinstance(file_name, str) or not file_name:
        raise ConfigError(f"expected a file path, got {describe(file_name)}", join(key, "file"))
    column = spec["column"]
    if not isinstance(column, str) or not column:
        raise ConfigError(f"expected a column name, got {describe(column)}", join(key, "column"))
    path = Path(file_name)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    values = load_trace(path, column, join(key, "file"))
    dist = Empirical(values, str(path.resolve()), column)
    if "scale" in spec:
        dist = dist.scaled(as_float(spec["scale"], join(key, "scale"), positive=True))
    return dist


# name -> (parser, required keys, optional keys)
_FAMILIES: dict[str, tuple[Callable[[Mapping[str, Any], str, Path | None], Distribution], tuple[str, ...], tuple[str, ...]]] = {
    "constant": (_parse_constant, ("value",), ()),
    "exponential": (_parse_exponential, (), ("rate", "mean")),
    "shifted_exponential": (_parse_shifted_exponential, ("shift",), ("rate", "mean")),
    "uniform": (_parse_uniform, ("low", "high"), ()),
    "gamma": (_shape_scale_parser("gamma", "gamma"), ("shape", "scale"), ()),
    "lognormal": (_parse_lognormal, ("mu", "sigma"), ()),
    "weibull": (_shape_scale_parser("weibull", "weibull_min"), ("shape", "scale"), ()),
    "pareto": (_shape_scale_parser("pareto", "pareto"), ("shape", "scale"), ()),
    "bimodal": (_parse_bimodal, ("p", "fast", "slow"), ()),
    "empirical": (_parse_empirical, ("file", "column"), ("scale",)),
}

DISTRIBUTION_NAMES = tuple(_FAMILIES)


def parse_distribution(spec: Any, key: str, base_dir: Path | None = None) -> Distribution:
    """Build a distribution from its config form.

    ``spec`` is a mapping with ``dist`` and that family's parameters (SPEC §8), or a bare number meaning
    a constant delay in seconds. ``base_dir`` resolves relative trace-file paths.
    """
    if not isinstance(spec, Mapping):
        if isinstance(spec, (int, float)) and not isinstance(spec, bool):
            constant = Constant(as_float(spec, key, minimum=0.0))
            check_delay(constant, key)
            return constant
        raise ConfigError(f"expected a distribution mapping such as {{dist: exponential, mean: 1.0}} "
                          f"or a number of seconds, got {describe(spec)}", key)
    spec = as_mapping(spec, key)
    if "dist" not in spec:
        raise ConfigError(f"missing required key 'dist' (one of: {', '.join(DISTRIBUTION_NAMES)})", key)
    name = spec["dist"]
    if not isinstance(name, str):
        raise ConfigError(f"expected a distribution name (one of: {', '.join(DISTRIBUTION_NAMES)}), "
                          f"got {describe(name)}", join(key, "dist"))
    if name not in _FAMILIES:
        raise ConfigError(f"unknown distribution {describe(name)}{suggestion(str(name), DISTRIBUTION_NAMES)} "
                          f"(one of: {', '.join(DISTRIBUTION_NAMES)})", join(key, "dist"))
    parser, required, optional = _FAMILIES[name]
    check_keys(spec, key, ("dist", *required, *optional), required)
    dist = parser(spec, key, base_dir)
    check_delay(dist, key)
    return dist
