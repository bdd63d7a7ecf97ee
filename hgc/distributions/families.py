"""The parametric delay families: a point mass and location-scale families of a standard member.

Every family is one class. A location-scale family (:class:`StandardFamily`) says how its *standard*
member (``loc = 0``, ``scale = 1``, one optional shape parameter) is sampled and what its CDF, quantile,
stop-loss transform, integrated CDF and mean are — in closed form, with :mod:`scipy.special` where a special
function is needed — and the base class turns those into the distribution of ``loc + scale · S``. The
analytic evaluator evaluates many members of one family at once through the same static functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Hashable, Mapping

import numpy as np

from hgc.distributions.base import ArrayLike, Distribution, Param, Shape
from hgc.errors import ConfigError
from hgc.limits import MAX_DELAY


class _LazySpecial:
    """``scipy.special``, imported on first use: it costs about half a second of start-up, and a
    simulation of exponential or constant delays never needs it."""

    def __getattr__(self, name: str) -> Any:
        from scipy import special  # noqa: PLC0415 - deferred on purpose (see the class docstring)

        return getattr(special, name)


special = _LazySpecial()


def _a(shape: float | None) -> float:
    """The shape parameter of a family that has one (``None`` only for families without)."""
    if shape is None:
        raise TypeError("this family needs a shape parameter")
    return shape


@dataclass(frozen=True)
class Constant(Distribution):
    """A fixed delay of ``value`` seconds."""

    value: float

    config_name: ClassVar[str] = "constant"
    parameters: ClassVar[tuple[Param, ...]] = (Param("value", "seconds", "the delay (s)"),)
    description: ClassVar[str] = "a fixed delay; a bare number in a config means the same"

    @classmethod
    def from_config(cls, values: Mapping[str, Any], key: str, base_dir: Path | None) -> "Constant":
        return cls(float(values["value"]))

    def sample(self, rng: np.random.Generator, shape: Shape) -> np.ndarray:
        return np.full(shape, self.value)

    def cdf(self, t: ArrayLike) -> np.ndarray:
        return (np.asarray(t, dtype=float) >= self.value).astype(float)

    def ppf(self, q: ArrayLike) -> np.ndarray:
        return np.full(np.shape(q), self.value)

    def stop_loss(self, x: ArrayLike) -> np.ndarray:
        return np.maximum(self.value - np.asarray(x, dtype=float), 0.0)

    def integrated_cdf(self, x: ArrayLike) -> np.ndarray:
        return np.maximum(np.asarray(x, dtype=float) - self.value, 0.0)

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


@dataclass(frozen=True, eq=False)
class StandardFamily(Distribution):
    """``loc + scale · S`` where ``S`` is the family's standard member with shape parameter ``shape``.

    Subclasses implement the ``standard_*`` static functions (argument ``z`` is in standard units) and
    :meth:`from_config`; ``user_params`` remembers how the config wrote the distribution (for
    :meth:`spec`). Equality and hashing use the family, shape, location and scale only, so aliases
    (``exponential`` and ``shifted_exponential``) of one distribution compare equal.
    """

    shape: float | None
    loc: float
    scale: float
    user_params: tuple[tuple[str, float], ...] = field(default=(), compare=False)

    standard_lower: ClassVar[float] = 0.0
    standard_upper: ClassVar[float] = math.inf
    scaling_params: ClassVar[frozenset[str]] = frozenset()
    """User parameters that are times (multiplied by ``c`` in :meth:`scaled`)."""

    # -- the standard member (override) ------------------------------------------------------------
    @staticmethod
    def standard_sample(rng: np.random.Generator, shape: float | None, size: Shape) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def standard_cdf(shape: float | None, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def standard_ppf(shape: float | None, q: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def standard_integrated_cdf(shape: float | None, z: np.ndarray) -> np.ndarray:
        """``∫_{-∞}^z F(u) du = z F(z) - E[S; S <= z]``."""
        raise NotImplementedError

    @staticmethod
    def standard_stop_loss(shape: float | None, z: np.ndarray) -> np.ndarray:
        """``E[(S - z)^+]``, small in the tail so that its second differences do not cancel."""
        raise NotImplementedError

    @staticmethod
    def standard_mean(shape: float | None) -> float:
        raise NotImplementedError

    @classmethod
    def standard(cls) -> type["StandardFamily"]:
        """The class that defines the standard member (shared by aliases)."""
        for klass in cls.__mro__:
            if "standard_cdf" in vars(klass):
                return klass
        raise TypeError(f"{cls.__name__} defines no standard member")

    # -- the distribution of loc + scale · S ---------------------------------------------------------
    def _z(self, t: ArrayLike) -> np.ndarray:
        return (np.asarray(t, dtype=float) - self.loc) / self.scale

    def sample(self, rng: np.random.Generator, shape: Shape) -> np.ndarray:
        draw = self.standard_sample(rng, self.shape, shape)
        if self.scale != 1.0:
            draw *= self.scale
        if self.loc != 0.0:
            draw += self.loc
        return draw

    def cdf(self, t: ArrayLike) -> np.ndarray:
        return self.standard_cdf(self.shape, self._z(t))

    def ppf(self, q: ArrayLike) -> np.ndarray:
        q = np.asarray(q, dtype=float)
        inner = np.clip(q, 0.0, 1.0)
        with np.errstate(divide="ignore", over="ignore"):
            values = self.standard_ppf(self.shape, np.where((inner > 0) & (inner < 1), inner, 0.5))
        values = values * self.scale + self.loc
        values = np.where(inner <= 0.0, self.standard_lower * self.scale + self.loc, values)
        values = np.where(inner >= 1.0, self.standard_upper * self.scale + self.loc, values)
        return values if values.ndim else np.asarray(float(values))

    def stop_loss(self, x: ArrayLike) -> np.ndarray:
        return self.scale * self.standard_stop_loss(self.shape, self._z(x))

    def integrated_cdf(self, x: ArrayLike) -> np.ndarray:
        return self.scale * self.standard_integrated_cdf(self.shape, self._z(x))

    @property
    def mean(self) -> float:
        return self.loc + self.scale * self.standard_mean(self.shape)

    @property
    def lower(self) -> float:
        return self.standard_lower * self.scale + self.loc

    def scaled(self, factor: float) -> "StandardFamily":
        params = tuple((k, v * factor if k in self.scaling_params else v) for k, v in self.user_params)
        return replace(self, loc=self.loc * factor, scale=self.scale * factor, user_params=params)

    def spec(self) -> dict[str, Any]:
        return {"dist": self.config_name, **dict(self.user_params)}

    @property
    def vector_key(self) -> Hashable:
        return (self.standard(), self.shape)

    def _identity(self) -> tuple[Any, ...]:
        return (self.standard(), self.shape, self.loc, self.scale)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StandardFamily) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())


def _mean_of(values: Mapping[str, Any]) -> float:
    """The mean (s) of an exponential part given as ``rate`` (1/s) or ``mean`` (s)."""
    return 1.0 / float(values["rate"]) if "rate" in values else float(values["mean"])


@dataclass(frozen=True, eq=False)
class Exponential(StandardFamily):
    """Exponential delay with the given mean (or rate = 1/mean)."""

    config_name: ClassVar[str] = "exponential"
    parameters: ClassVar[tuple[Param, ...]] = (
        Param("rate", "positive", "events per second (1/mean)", required=False),
        Param("mean", "positive", "mean delay (s)", required=False))
    exactly_one_of: ClassVar[tuple[tuple[str, ...], ...]] = (("rate", "mean"),)
    description: ClassVar[str] = "memoryless delay"
    scaling_params: ClassVar[frozenset[str]] = frozenset({"mean", "shift"})

    @classmethod
    def from_config(cls, values: Mapping[str, Any], key: str, base_dir: Path | None) -> "Exponential":
        mean = _mean_of(values)
        return cls(None, 0.0, mean, (("mean", mean),))

    @staticmethod
    def standard_sample(rng: np.random.Generator, shape: float | None, size: Shape) -> np.ndarray:
        return rng.standard_exponential(size)

    @staticmethod
    def standard_cdf(shape: float | None, z: np.ndarray) -> np.ndarray:
        return -np.expm1(-np.maximum(z, 0.0))

    @staticmethod
    def standard_ppf(shape: float | None, q: np.ndarray) -> np.ndarray:
        return -special.log1p(-q)

    @staticmethod
    def standard_integrated_cdf(shape: float | None, z: np.ndarray) -> np.ndarray:
        zz = np.maximum(z, 0.0)
        return zz + np.expm1(-zz)

    @staticmethod
    def standard_stop_loss(shape: float | None, z: np.ndarray) -> np.ndarray:
        return np.where(z > 0.0, np.exp(-np.maximum(z, 0.0)), 1.0 - z)

    @staticmethod
    def standard_mean(shape: float | None) -> float:
        return 1.0


@dataclass(frozen=True, eq=False)
class ShiftedExponential(Exponential):
    """A constant shift plus an exponential delay (the classical straggler model)."""

    config_name: ClassVar[str] = "shifted_exponential"
    parameters: ClassVar[tuple[Param, ...]] = (
        Param("shift", "seconds", "minimum delay (s)"),
        Param("rate", "positive", "rate of the exponential part (1/s)", required=False),
        Param("mean", "positive", "mean of the exponential part (s)", required=False))
    description: ClassVar[str] = "shift + exponential"

    @classmethod
    def from_config(cls, values: Mapping[str, Any], key: str, base_dir: Path | None) -> "ShiftedExponential":
        shift, mean = float(values["shift"]), _mean_of(values)
        return cls(None, shift, mean, (("shift", shift), ("mean", mean)))


@dataclass(frozen=True, eq=False)
class Uniform(StandardFamily):
    """Uniform delay between ``low`` and ``high`` seconds."""

    config_name: ClassVar[str] = "uniform"
    parameters: ClassVar[tuple[Param, ...]] = (Param("low", "seconds", "smallest delay (s)"),
                                                Param("high", "seconds", "largest delay (s), > low"))
    description: ClassVar[str] = "uniform on [low, high]"
    standard_upper: ClassVar[float] = 1.0
    scaling_params: ClassVar[frozenset[str]] = frozenset({"low", "high"})

    @classmethod
    def from_config(cls, values: Mapping[str, Any], key: str, base_dir: Path | None) -> "Uniform":
        low, high = float(values["low"]), float(values["high"])
        if high <= low:
            raise ConfigError(f"must be > low ({low:g}), got {high:g}", f"{key}.high")
        return cls(None, low, high - low, (("low", low), ("high", high)))

    @staticmethod
    def standard_sample(rng: np.random.Generator, shape: float | None, size: Shape) -> np.ndarray:
        return rng.random(size)

    @staticmethod
    def standard_cdf(shape: float | None, z: np.ndarray) -> np.ndarray:
        return np.clip(z, 0.0, 1.0)

    @staticmethod
    def standard_ppf(shape: float | None, q: np.ndarray) -> np.ndarray:
        return np.asarray(q, dtype=float)

    @staticmethod
    def standard_integrated_cdf(shape: float | None, z: np.ndarray) -> np.ndarray:
        return np.where(z <= 0.0, 0.0, np.where(z < 1.0, 0.5 * z * z, z - 0.5))

    @staticmethod
    def standard_stop_loss(shape: float | None, z: np.ndarray) -> np.ndarray:
        return np.where(z <= 0.0, 0.5 - z, np.where(z < 1.0, 0.5 * (1.0 - z) ** 2, 0.0))

    @staticmethod
    def standard_mean(shape: float | None) -> float:
        return 0.5


class _ShapeScale(StandardFamily):
    """Families written ``{shape, scale}`` in configs (gamma, Weibull, Pareto)."""

    parameters: ClassVar[tuple[Param, ...]] = (Param("shape", "positive", "shape parameter"),
                                                Param("scale", "positive", "scale (s)"))
    scaling_params: ClassVar[frozenset[str]] = frozenset({"scale"})

    @classmethod
    def from_config(cls, values: Mapping[str, Any], key: str, base_dir: Path | None) -> "_ShapeScale":
        shape, scale = float(values["shape"]), float(values["scale"])
        return cls(shape, 0.0, scale, (("shape", shape), ("scale", scale)))


@dataclass(frozen=True, eq=False)
class Gamma(_ShapeScale):
    """Gamma delay: mean ``shape · scale``; shape 1 is exponential."""

    config_name: ClassVar[str] = "gamma"
    description: ClassVar[str] = "mean shape·scale"

    @staticmethod
    def standard_sample(rng: np.random.Generator, shape: float | None, size: Shape) -> np.ndarray:
        return rng.standard_gamma(_a(shape), size)

    @staticmethod
    def standard_cdf(shape: float | None, z: np.ndarray) -> np.ndarray:
        return special.gammainc(_a(shape), np.maximum(z, 0.0))

    @staticmethod
    def standard_ppf(shape: float | None, q: np.ndarray) -> np.ndarray:
        return special.gammaincinv(_a(shape), q)

    @staticmethod
    def standard_integrated_cdf(shape: float | None, z: np.ndarray) -> np.ndarray:
        a, zz = _a(shape), np.maximum(z, 0.0)
        return zz * special.gammainc(a, zz) - a * special.gammainc(a + 1.0, zz)

    @staticmethod
    def standard_stop_loss(shape: float | None, z: np.ndarray) -> np.ndarray:
        a, zz = _a(shape), np.maximum(z, 0.0)
        return np.where(z > 0.0, a * special.gammaincc(a + 1.0, zz) - zz * special.gammaincc(a, zz), a - z)

    @staticmethod
    def standard_mean(shape: float | None) -> float:
        return _a(shape)


@dataclass(frozen=True, eq=False)
class LogNormal(StandardFamily):
    """``exp(N(mu, sigma²))`` seconds (``mu``, ``sigma`` of the underlying normal)."""

    config_name: ClassVar[str] = "lognormal"
    parameters: ClassVar[tuple[Param, ...]] = (Param("mu", "real", "mean of log(delay / 1 s)", minimum=-700.0,
                                                      maximum=round(math.log(MAX_DELAY), 4)),
                                                Param("sigma", "positive", "standard deviation of log(delay)"))
    description: ClassVar[str] = "heavy right tail"

    @classmethod
    def from_config(cls, values: Mapping[str, Any], key: str, base_dir: Path | None) -> "LogNormal":
        mu, sigma = float(values["mu"]), float(values["sigma"])
        return cls(sigma, 0.0, math.exp(mu), (("mu", mu), ("sigma", sigma)))

    def scaled(self, factor: float) -> "LogNormal":
        params = dict(self.user_params)
        return replace(self, loc=self.loc * factor, scale=self.scale * factor,
                       user_params=(("mu", params["mu"] + math.log(factor)), ("sigma", params["sigma"])))

    @staticmethod
    def standard_sample(rng: np.random.Generator, shape: float | None, size: Shape) -> np.ndarray:
        return np.exp(_a(shape) * rng.standard_normal(size))

    @staticmethod
    def standard_cdf(shape: float | None, z: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return special.ndtr(np.log(np.maximum(z, 0.0)) / _a(shape))

    @staticmethod
    def standard_ppf(shape: float | None, q: np.ndarray) -> np.ndarray:
        return np.exp(_a(shape) * special.ndtri(q))

    @staticmethod
    def standard_integrated_cdf(shape: float | None, z: np.ndarray) -> np.ndarray:
        s = _a(shape)
        zz = np.maximum(z, 1e-300)
        log_z = np.log(zz)
        value = zz * special.ndtr(log_z / s) - math.exp(0.5 * s * s) * special.ndtr(log_z / s - s)
        return np.where(z > 0.0, value, 0.0)

    @staticmethod
    def standard_stop_loss(shape: float | None, z: np.ndarray) -> np.ndarray:
        s = _a(shape)
        zz = np.maximum(z, 1e-300)
        log_z = np.log(zz)
        value = math.exp(0.5 * s * s) * special.ndtr(s - log_z / s) - zz * special.ndtr(-log_z / s)
        return np.where(z > 0.0, value, math.exp(0.5 * s * s) - z)

    @staticmethod
    def standard_mean(shape: float | None) -> float:
        return math.exp(0.5 * _a(shape) ** 2)


@dataclass(frozen=True, eq=False)
class Weibull(_ShapeScale):
    """Weibull delay: ``scale · E^(1/shape)`` with ``E`` standard exponential."""

    config_name: ClassVar[str] = "weibull"
    description: ClassVar[str] = "shape < 1: heavy tail, > 1: light tail"

    @staticmethod
    def standard_sample(rng: np.random.Generator, shape: float | None, size: Shape) -> np.ndarray:
        return rng.weibull(_a(shape), size)

    @staticmethod
    def standard_cdf(shape: float | None, z: np.ndarray) -> np.ndarray:
        return -np.expm1(-np.maximum(z, 0.0) ** _a(shape))

    @staticmethod
    def standard_ppf(shape: float | None, q: np.ndarray) -> np.ndarray:
        return np.asarray(pow(-special.log1p(-q), 1.0 / _a(shape)))

    @staticmethod
    def standard_integrated_cdf(shape: float | None, z: np.ndarray) -> np.ndarray:
        c = _a(shape)
        zz = np.maximum(z, 0.0)
        g = 1.0 + 1.0 / c
        return zz * -np.expm1(-zz ** c) - special.gamma(g) * special.gammainc(g, zz ** c)

    @staticmethod
    def standard_stop_loss(shape: float | None, z: np.ndarray) -> np.ndarray:
        c = _a(shape)
        zz = np.maximum(z, 0.0)
        g = 1.0 + 1.0 / c
        value = special.gamma(g) * special.gammaincc(g, zz ** c) - zz * np.exp(-zz ** c)
        return np.where(z > 0.0, value, special.gamma(g) - z)

    @staticmethod
    def standard_mean(shape: float | None) -> float:
        return float(special.gamma(1.0 + 1.0 / _a(shape)))


@dataclass(frozen=True, eq=False)
class Pareto(_ShapeScale):
    """Pareto delay with minimum ``scale`` and tail index ``shape`` (infinite mean for shape <= 1)."""

    config_name: ClassVar[str] = "pareto"
    parameters: ClassVar[tuple[Param, ...]] = (Param("shape", "positive", "tail index"),
                                                Param("scale", "positive", "minimum delay (s)"))
    description: ClassVar[str] = "power-law tail, minimum = scale"
    standard_lower: ClassVar[float] = 1.0

    @staticmethod
    def standard_sample(rng: np.random.Generator, shape: float | None, size: Shape) -> np.ndarray:
        return rng.pareto(_a(shape), size) + 1.0  # NumPy draws the Lomax form (x >= 0)

    @staticmethod
    def standard_cdf(shape: float | None, z: np.ndarray) -> np.ndarray:
        b = _a(shape)
        return np.where(z >= 1.0, -np.expm1(-b * np.log(np.maximum(z, 1.0))), 0.0)

    @staticmethod
    def standard_ppf(shape: float | None, q: np.ndarray) -> np.ndarray:
        return np.asarray(pow(1 - q, -1.0 / _a(shape)))

    @staticmethod
    def standard_integrated_cdf(shape: float | None, z: np.ndarray) -> np.ndarray:
        b = _a(shape)
        zz = np.maximum(z, 1.0)
        partial = np.log(zz) if b == 1.0 else b / (b - 1.0) * -np.expm1((1.0 - b) * np.log(zz))
        return np.where(z > 1.0, zz * -np.expm1(-b * np.log(zz)) - partial, 0.0)

    @staticmethod
    def standard_stop_loss(shape: float | None, z: np.ndarray) -> np.ndarray:
        b = _a(shape)
        mean = b / (b - 1.0)
        zz = np.maximum(z, 1.0)
        return np.where(z > 1.0, np.exp((1.0 - b) * np.log(zz)) / (b - 1.0), mean - z)

    @staticmethod
    def standard_mean(shape: float | None) -> float:
        b = _a(shape)
        return b / (b - 1.0) if b > 1.0 else math.inf
