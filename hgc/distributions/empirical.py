"""Delays resampled from a measured trace (``empirical``): a step CDF over the recorded values."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np

from hgc.distributions.base import ArrayLike, Distribution, Param, Shape
from hgc.traces import load_trace


@dataclass(frozen=True, eq=False)
class Empirical(Distribution):
    """Resampling of measured delays (a trace), scaled by ``factor``; step CDF.

    ``source`` and ``column`` identify the trace (equality and hashing use them, not the values).
    """

    values: np.ndarray
    source: str
    column: str
    factor: float = 1.0

    config_name: ClassVar[str] = "empirical"
    parameters: ClassVar[tuple[Param, ...]] = (
        Param("file", "path", "CSV trace, relative to the config file"),
        Param("column", "column", "column of delays in seconds"),
        Param("scale", "positive", "factor applied to every value", required=False))
    description: ClassVar[str] = "resampled from a measured trace; step CDF"

    @classmethod
    def from_config(cls, values: Mapping[str, Any], key: str, base_dir: Path | None) -> "Empirical":
        path = Path(values["file"])
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        column = str(values["column"])
        dist = cls(load_trace(path, column, f"{key}.file"), str(path.resolve()), column)
        return dist.scaled(float(values["scale"])) if "scale" in values else dist

    @cached_property
    def _sorted(self) -> np.ndarray:
        return np.sort(self.values) * self.factor

    def sample(self, rng: np.random.Generator, shape: Shape) -> np.ndarray:
        picks = self.values[rng.integers(0, self.values.size, shape)]
        return picks * self.factor if self.factor != 1.0 else picks

    def cdf(self, t: ArrayLike) -> np.ndarray:
        return np.searchsorted(self._sorted, np.asarray(t, dtype=float), side="right") / self.values.size

    def ppf(self, q: ArrayLike) -> np.ndarray:
        index = np.ceil(np.asarray(q, dtype=float) * self.values.size).astype(int) - 1
        return self._sorted[np.clip(index, 0, self.values.size - 1)]

    def stop_loss(self, x: ArrayLike) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        values = np.sort(np.asarray(self.values, dtype=float)) * self.factor
        below = np.searchsorted(values, x, side="right")
        tail_sums = np.concatenate([np.cumsum(values[::-1])[::-1], [0.0]])
        return (tail_sums[below] - (values.size - below) * x) / values.size

    def integrated_cdf(self, x: ArrayLike) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        values = np.sort(np.asarray(self.values, dtype=float)) * self.factor
        below = np.searchsorted(values, x, side="right")
        partial_sums = np.concatenate([[0.0], np.cumsum(values)])
        return (below * x - partial_sums[below]) / values.size

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
