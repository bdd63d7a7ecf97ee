"""The :class:`Distribution` base class: one interface for every delay distribution, generic defaults.

A delay distribution describes a non-negative random time in seconds. The interface follows
``scipy.stats.rv_continuous``: a base class with generic numeric defaults that each family overrides
with closed forms where it has them.

* ``sample(rng, shape)`` — draws (float64 seconds) from a :class:`numpy.random.Generator`;
* ``cdf(t)``, ``ppf(q)`` — distribution and quantile functions, element-wise;
* ``stop_loss(x) = E[(X - x)^+]`` and ``integrated_cdf(x) = ∫_{-∞}^x P(X <= u) du`` (seconds) — what the
  analytic evaluator needs to discretise a delay on a grid without losing mass or mean;
* ``mean`` (seconds, ``inf`` when it does not exist), ``lower`` (the support's lower end);
* ``scaled(c)`` — the distribution of ``c·X`` (load scaling, ``speed`` factors);
* ``spec()`` — the config mapping that recreates it;
* ``leaves()`` — the distribution as a mixture of non-mixture parts, and ``vector_key`` — which leaves can
  be evaluated together in one vectorised call (same family and shape).

Each family also declares its config parameters (:class:`Param`), which drive validation and the
documentation table; :func:`hgc.distributions.parse_distribution` reads them.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Hashable, Mapping

import numpy as np

Shape = int | tuple[int, ...]
ArrayLike = np.ndarray | float

PARAM_CHECKS = ("seconds", "positive", "real", "probability", "distribution", "path", "column")
"""How a parameter value is validated: seconds (a number >= 0), positive (> 0), real (any finite number),
probability (in [0, 1]), distribution (a nested distribution), path (a file name), column (a CSV column)."""


@dataclass(frozen=True)
class Param:
    """One config parameter of a family: its name, how it is checked, what it means (for the docs)."""

    name: str
    check: str
    meaning: str
    required: bool = True
    minimum: float | None = None
    maximum: float | None = None

    def __post_init__(self) -> None:
        if self.check not in PARAM_CHECKS:
            raise ValueError(f"unknown parameter check {self.check!r}")


def bisect_quantiles(cdf: Callable[[np.ndarray], np.ndarray], q: float | np.ndarray, lo: np.ndarray,
                     hi: np.ndarray, *, exact_atoms: bool = True) -> np.ndarray:
    """Smallest ``t`` with ``cdf(t) >= q`` for each entry, by vectorised bisection in ``[lo, hi]``.

    ``cdf`` maps an array of times (one per entry) to probabilities; ``lo``/``hi`` bracket the answer
    (``hi`` may be ``inf``: it is then found by doubling). Stops at a relative width of ``1e-13``.
    Used for mixtures, whose quantile has no closed form. With ``exact_atoms`` an answer equal to
    ``lo`` (an atom at the lower bracket) is returned exactly; otherwise it is bisected to within the
    tolerance like any other value (the analytic evaluator's grids were calibrated that way).
    """
    q = np.broadcast_to(np.asarray(q, dtype=float), np.shape(lo))
    lo = np.array(lo, dtype=float)
    hi = np.array(hi, dtype=float)
    at_lower = cdf(lo) >= q
    if exact_atoms:
        hi = np.where(at_lower, lo, hi)
    else:
        lo = np.where(at_lower, lo - 1e-300, lo)
    finite = np.isfinite(hi)
    for _ in range(200):
        mid = np.where(finite, 0.5 * (lo + hi), np.maximum(2.0 * lo, lo + 1.0))
        below = cdf(mid) < q
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        finite = finite | ~below
        if np.all(finite & (hi - lo <= 1e-13 * np.maximum(1.0, np.abs(hi)))):
            break
    return hi


class Distribution(ABC):
    """A distribution of a non-negative delay, in seconds (see the module docstring)."""

    config_name: ClassVar[str] = ""
    """The ``dist:`` name in configs (empty for distributions that cannot be written directly)."""
    parameters: ClassVar[tuple[Param, ...]] = ()
    """The family's config parameters."""
    exactly_one_of: ClassVar[tuple[tuple[str, ...], ...]] = ()
    """Groups of parameters of which exactly one must be given (e.g. ``rate`` or ``mean``)."""
    description: ClassVar[str] = ""
    """One line for the documentation table."""

    # -- construction from a config ----------------------------------------------------------------
    @classmethod
    def from_config(cls, values: Mapping[str, Any], key: str, base_dir: Path | None) -> "Distribution":
        """Build from validated parameter ``values`` (checked per :attr:`parameters`); ``key`` is the
        config key path for error messages, ``base_dir`` resolves relative file names."""
        raise NotImplementedError(f"{cls.__name__} cannot be built from a config")

    # -- the interface every family implements -----------------------------------------------------
    @abstractmethod
    def sample(self, rng: np.random.Generator, shape: Shape) -> np.ndarray:
        """Draw an array of ``shape`` independent delays (float64 seconds)."""

    @abstractmethod
    def cdf(self, t: ArrayLike) -> np.ndarray:
        """``P(X <= t)`` element-wise."""

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

    # -- generic defaults ----------------------------------------------------------------------------
    def ppf(self, q: ArrayLike) -> np.ndarray:
        """Smallest ``t`` with ``P(X <= t) >= q``, element-wise, for ``q`` in [0, 1] (generic: bisection)."""
        q = np.asarray(q, dtype=float)
        flat = q.reshape(-1)
        start = np.zeros(flat.shape)
        out = bisect_quantiles(lambda t: np.asarray(self.cdf(t), dtype=float), flat, start, np.full(flat.shape, np.inf))
        return out.reshape(q.shape)

    @property
    def lower(self) -> float:
        """Smallest possible value in seconds (the ``ppf`` at 0)."""
        return float(self.ppf(0.0))

    def integrated_cdf(self, x: ArrayLike) -> np.ndarray:
        """``∫_{-∞}^x P(X <= u) du`` in seconds, element-wise (generic: trapezoidal rule on a fine grid)."""
        x = np.asarray(x, dtype=float)
        low = self.lower
        grid = np.linspace(low, max(low, float(np.max(x))), 20001)
        values = np.asarray(self.cdf(grid), dtype=float)
        cumulative = np.concatenate([[0.0], np.cumsum(np.diff(grid) * 0.5 * (values[1:] + values[:-1]))])
        return np.interp(x, grid, cumulative, left=0.0)

    def stop_loss(self, x: ArrayLike) -> np.ndarray:
        """``E[(X - x)^+] = ∫_x^∞ P(X > u) du`` in seconds, element-wise; needs a finite mean. Families
        override it with closed forms that stay accurate far in the tail."""
        x = np.asarray(x, dtype=float)
        return self.mean - x + self.integrated_cdf(x)

    @property
    def is_constant(self) -> bool:
        """True for a point mass (never needs random draws)."""
        return False

    @property
    def is_zero(self) -> bool:
        """True for the point mass at 0 (the default of every optional delay)."""
        return False

    def leaves(self, weight: float = 1.0) -> list[tuple[float, "Distribution"]]:
        """This distribution as a mixture ``[(weight, leaf), ...]`` of non-mixture distributions."""
        return [(weight, self)]

    @property
    def vector_key(self) -> Hashable | None:
        """Leaves with equal keys share one vectorised standard form (see :class:`StandardFamily`);
        ``None``: evaluate this distribution on its own."""
        return None


def finite_or_inf(value: float) -> float:
    """``value`` as a float, with NaN (an undefined moment) turned into ``inf``."""
    return value if not math.isnan(value) else math.inf
