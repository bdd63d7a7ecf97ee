"""Two-component mixtures: a usually-fast node that is sometimes slow (``bimodal``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np

from hgc.distributions.base import ArrayLike, Distribution, Param, Shape, bisect_quantiles


@dataclass(frozen=True)
class Bimodal(Distribution):
    """With probability ``p`` a draw from ``slow``, otherwise from ``fast``."""

    p: float
    fast: Distribution
    slow: Distribution

    config_name: ClassVar[str] = "bimodal"
    parameters: ClassVar[tuple[Param, ...]] = (
        Param("p", "probability", "probability of a draw from slow"),
        Param("fast", "distribution", "the usual delay (a distribution or a number of seconds)"),
        Param("slow", "distribution", "the delay when slow"))
    description: ClassVar[str] = "mixture: slow with probability p, else fast"

    @classmethod
    def from_config(cls, values: Mapping[str, Any], key: str, base_dir: Path | None) -> "Bimodal":
        return cls(float(values["p"]), values["fast"], values["slow"])

    def sample(self, rng: np.random.Generator, shape: Shape) -> np.ndarray:
        out = np.array(self.fast.sample(rng, shape), dtype=float)
        is_slow = rng.random(shape) < self.p
        n_slow = int(np.count_nonzero(is_slow))
        if n_slow:
            out[is_slow] = self.slow.sample(rng, n_slow)
        return out

    def cdf(self, t: ArrayLike) -> np.ndarray:
        return (1.0 - self.p) * self.fast.cdf(t) + self.p * self.slow.cdf(t)

    def ppf(self, q: ArrayLike) -> np.ndarray:
        q = np.asarray(q, dtype=float)
        flat = q.reshape(-1)
        parts = [np.asarray(part.ppf(flat), dtype=float).reshape(-1) for part in (self.fast, self.slow)]
        lo, hi = np.minimum(*parts), np.maximum(*parts)
        out = np.where(flat > 0.0, bisect_quantiles(lambda t: self.cdf(t), flat, lo, hi), lo)
        return out.reshape(q.shape)

    def stop_loss(self, x: ArrayLike) -> np.ndarray:
        return (1.0 - self.p) * self.fast.stop_loss(x) + self.p * self.slow.stop_loss(x)

    def integrated_cdf(self, x: ArrayLike) -> np.ndarray:
        return (1.0 - self.p) * self.fast.integrated_cdf(x) + self.p * self.slow.integrated_cdf(x)

    @property
    def mean(self) -> float:
        return (1.0 - self.p) * self.fast.mean + self.p * self.slow.mean

    @property
    def lower(self) -> float:
        parts = ([self.fast.lower] if self.p < 1.0 else []) + ([self.slow.lower] if self.p > 0.0 else [])
        return float(min(parts))

    def scaled(self, factor: float) -> "Bimodal":
        return Bimodal(self.p, self.fast.scaled(factor), self.slow.scaled(factor))

    def spec(self) -> dict[str, Any]:
        return {"dist": "bimodal", "p": self.p, "fast": self.fast.spec(), "slow": self.slow.spec()}

    def leaves(self, weight: float = 1.0) -> list[tuple[float, Distribution]]:
        out: list[tuple[float, Distribution]] = []
        if self.p < 1.0:
            out += self.fast.leaves(weight * (1.0 - self.p))
        if self.p > 0.0:
            out += self.slow.leaves(weight * self.p)
        return out

    @property
    def is_constant(self) -> bool:
        return (self.p == 0.0 and self.fast.is_constant) or (self.p == 1.0 and self.slow.is_constant)

    @property
    def is_zero(self) -> bool:
        return (self.p == 0.0 and self.fast.is_zero) or (self.p == 1.0 and self.slow.is_zero)
