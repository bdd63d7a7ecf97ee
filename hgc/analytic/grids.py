"""Time grids, convolution on them, and the integral ``E[T] = t_0 + ∫ (1 - F_T)``.

A :class:`Lattice` is a uniform grid; a :class:`Grid` nests several lattices that share their start (fine
steps over the body of ``T``, coarse ones in a long tail). Link delays enter an arrival-time CDF by
convolution with their discretised densities (:mod:`hgc.analytic.compiled`; long explicit kernels by FFT
here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import fft as sp_fft

from hgc.analytic import compiled

def convolve_rows(values: np.ndarray, kernels: np.ndarray, start: int, length: int) -> np.ndarray:
    """``out[r, j] = Σ_k values[r, start + j - k] kernels[r, k]`` (values before index 0 are 0), for
    ``j < length``, by FFT. ``kernels`` has one row per row of ``values`` (or a single row)."""
    size = min(kernels.shape[-1], start + length)   # later kernel entries only meet zeros
    n_fft = sp_fft.next_fast_len(start + length + size - 1, real=True)
    spectrum = sp_fft.rfft(values[:, : start + length], n_fft, axis=1) * sp_fft.rfft(kernels[:, :size], n_fft, axis=1)
    return sp_fft.irfft(spectrum, n_fft, axis=1)[:, start: start + length]


# ----------------------------------------------------------------------------------------------------
# Grids and results

@dataclass(frozen=True)
class Lattice:
    """The uniform time grid ``t_j = start + j * step`` (seconds), ``j = 0 .. points-1``."""

    start: float
    step: float
    points: int

    @property
    def times(self) -> np.ndarray:
        return self.start + self.step * np.arange(self.points)

    @property
    def end(self) -> float:
        return self.start + self.step * (self.points - 1)

    @classmethod
    def spanning(cls, low: float, high: float, points: int) -> "Lattice":
        """``points`` points from ``low`` to ``high`` (a tiny positive step if ``high <= low``)."""
        step = (high - low) / (points - 1) if high > low else 0.0
        step = max(step, 1e-12 * max(1.0, abs(low)))
        return cls(float(low), float(step), int(points))


LEVEL_RATIO = 4.0
"""A finer nested grid is added when the body of ``T`` is this many times shorter than the full range."""


@dataclass(frozen=True)
class Grid:
    """Nested uniform lattices that share their start: level ``i`` spans ``[start, ends[i]]`` with
    ``points`` points; the integral of a function uses level 0 on ``[start, ends[0]]`` and level ``i`` on
    ``[ends[i-1], ends[i]]``. Fine steps where ``T`` has its body, coarse ones in a long tail, at a cost
    proportional to ``levels x points`` (each level is computed independently: convolutions only look
    back in time, so a grid ending early is still exact on its range). Every ``ends[i]`` is a point of
    level ``i + 1`` for any ``points = (base - 1) 2^r + 1``."""

    start: float
    ends: tuple[float, ...]
    points: int

    @classmethod
    def build(cls, start: float, uppers: Sequence[float], points: int) -> "Grid":
        """A grid from ``start`` to ``uppers[-1]`` with an extra level at each (increasing) ``uppers[i]``
        that is ``LEVEL_RATIO`` times closer to ``start`` than the next kept end."""
        top = max(float(uppers[-1]), start)
        ends = [top]
        for upper in reversed(list(uppers[:-1])):
            if upper > start and (upper - start) * LEVEL_RATIO <= ends[0] - start:
                ends.insert(0, float(upper))
        aligned = [ends[-1]]
        for end in reversed(ends[:-1]):   # put each end on the next coarser lattice
            coarse = Lattice.spanning(start, aligned[0], points)
            j = min(points - 1, max(1, math.ceil((end - start) / coarse.step - 1e-9)))
            aligned.insert(0, start + j * coarse.step)
        return cls(float(start), tuple(aligned), int(points))

    def lattices(self, points: int | None = None) -> list[Lattice]:
        n = self.points if points is None else int(points)
        return [Lattice.spanning(self.start, end, n) for end in self.ends]

    def segments(self, lattices: Sequence[Lattice]) -> list[slice]:
        """The index range of each lattice that the integral uses."""
        out, previous = [], self.start
        for lattice in lattices:
            first = int(round((previous - lattice.start) / lattice.step))
            out.append(slice(first, lattice.points))
            previous = lattice.end
        return out


def integrate(cdfs: Sequence[np.ndarray], lattices: Sequence[Lattice], segments: Sequence[slice]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(E[T | decoded], P(decoded), survival at the end)`` from per-level CDF rows (last column: ∞)."""
    parts, decoded, last = integrate_levels(cdfs, lattices, segments)
    mean = np.where(decoded > 0, lattices[0].start + parts.sum(axis=1), np.nan)
    return mean, decoded, last


def integrate_levels(cdfs: Sequence[np.ndarray], lattices: Sequence[Lattice], segments: Sequence[slice]
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(∫ (1 - F_T / F_T(∞)) over each level's segment, P(decoded), survival at the end)``: the first of
    shape ``(plans, levels)`` (seconds), by the trapezoidal rule on each level's lattice."""
    decoded = np.ascontiguousarray(cdfs[-1][:, -1])
    parts = np.zeros((len(decoded), len(cdfs)))
    last = np.zeros(decoded.shape)
    for level, (cdf, lattice, seg) in enumerate(zip(cdfs, lattices, segments)):
        total = np.zeros(decoded.shape)
        compiled.trapezoid_survival(cdf, decoded, int(seg.start), float(lattice.step), total, last)
        parts[:, level] = total
    return parts, decoded, last
