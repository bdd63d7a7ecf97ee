"""Analytic evaluation of the iteration time: ``E[T]`` and the CDF of ``T`` without sampling.

* :mod:`~hgc.analytic.order_statistics` — Poisson-binomial order statistics of independent nodes on a grid;
* :mod:`~hgc.analytic.grids` — uniform and nested time grids, convolution, the integral of the survival;
* :mod:`~hgc.analytic.components` — many delay distributions evaluated as arrays, discretised kernels;
* :mod:`~hgc.analytic.compiled` — the inner loops (order statistics, convolution stages) compiled with numba;
* :mod:`~hgc.analytic.evaluator` — :class:`Evaluator`: strategies (through their plans) to ``E[T]``, with an
  estimated error (:func:`~hgc.analytic.evaluator.refinement_error`).
"""

from hgc.analytic.evaluator import (ACCURATE_EPS, SEARCH_EPS, SEARCH_POINTS, Evaluation, Evaluator,
                                    NotAnalyticError, evaluate, expected_time)
from hgc.analytic.grids import Grid, Lattice
from hgc.analytic.order_statistics import order_statistic_cdf

__all__ = [
    "ACCURATE_EPS", "SEARCH_EPS", "SEARCH_POINTS",
    "Evaluation", "Evaluator", "Grid", "Lattice", "NotAnalyticError", "evaluate", "expected_time",
    "order_statistic_cdf",
]
