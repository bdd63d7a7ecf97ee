"""Linear models trained by ``hgc train``: softmax (multinomial logistic) and least squares, both with L2.

Both are written so that the gradient of the summed data loss is ``X^T R`` for a *residual* matrix ``R``
that depends on each row only through that row (``R = softmax(XW) - onehot(y)`` or ``R = Xw - y``). The
gradient over partition ``k`` is therefore ``X_k^T R_k``, and all ``K`` partial gradients are one batched
matrix product (see :mod:`hgc.training.trainer`).

Conventions (both models):

* parameters ``W`` have shape ``(d, c)`` with ``d`` = features + 1 (bias last) and ``c`` = classes
  (``c = 1`` for least squares); training starts from ``W = 0``;
* loss = mean data loss over the rows + ``(l2 / 2) ||W without the bias row||²``;
* gradient of that loss = ``X^T R / rows + l2 · W`` (bias row not regularised). Only the data term
  ``X^T R`` is distributed and coded; the master adds the regulariser, which it can compute itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp


@dataclass(frozen=True)
class LinearModel:
    """Shared part of the two models: shapes and the L2 term. ``l2`` is the regularisation strength."""

    n_features: int     # d, including the bias column
    n_outputs: int      # c
    l2: float

    def init(self) -> np.ndarray:
        """Initial parameters: zeros, ``(d, c)``."""
        return np.zeros((self.n_features, self.n_outputs))

    def _reg_mask(self) -> np.ndarray:
        mask = np.ones((self.n_features, 1))
        mask[-1] = 0.0
        return mask

    def regulariser(self, W: np.ndarray) -> float:
        """``(l2/2) ||W||²`` over the non-bias rows."""
        return 0.5 * self.l2 * float(np.sum((W[:-1]) ** 2))

    def regulariser_gradient(self, W: np.ndarray) -> np.ndarray:
        """``l2 · W`` with the bias row zeroed."""
        return self.l2 * W * self._reg_mask()

    # to be provided by subclasses -----------------------------------------------------------------
    def residual(self, scores: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``R`` with ``∇_W Σ_rows loss = X^T R`` given ``scores = X W``."""
        raise NotImplementedError

    def data_loss(self, scores: np.ndarray, y: np.ndarray) -> float:
        """Mean data loss over the rows given ``scores = X W``."""
        raise NotImplementedError

    def accuracy(self, scores: np.ndarray, y: np.ndarray) -> float:
        """Fraction of rows classified correctly (NaN for regression or no rows)."""
        return float("nan")

    def loss(self, scores: np.ndarray, y: np.ndarray, W: np.ndarray) -> float:
        """Mean data loss + L2 term (NaN when there are no rows)."""
        if scores.shape[0] == 0:
            return float("nan")
        return self.data_loss(scores, y) + self.regulariser(W)


@dataclass(frozen=True)
class SoftmaxModel(LinearModel):
    """Multinomial logistic regression: cross-entropy of ``softmax(XW)`` against the class index."""

    def residual(self, scores: np.ndarray, y: np.ndarray) -> np.ndarray:
        shifted = scores - scores.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        probs /= probs.sum(axis=1, keepdims=True)
        probs[np.arange(y.size), y] -= 1.0
        return probs

    def data_loss(self, scores: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(logsumexp(scores, axis=1) - scores[np.arange(y.size), y]))

    def accuracy(self, scores: np.ndarray, y: np.ndarray) -> float:
        if y.size == 0:
            return float("nan")
        return float(np.mean(np.argmax(scores, axis=1) == y))


@dataclass(frozen=True)
class LeastSquaresModel(LinearModel):
    """Linear regression: data loss ``(1/2)(x·w - y)²`` per row (accuracy is not defined: NaN)."""

    def residual(self, scores: np.ndarray, y: np.ndarray) -> np.ndarray:
        return scores - y[:, None]

    def data_loss(self, scores: np.ndarray, y: np.ndarray) -> float:
        return float(0.5 * np.mean((scores[:, 0] - y) ** 2))


def make_model(name: str, n_features: int, n_classes: int, l2: float) -> LinearModel:
    """``softmax`` (``n_classes`` outputs) or ``least_squares`` (one output)."""
    if name == "softmax":
        return SoftmaxModel(n_features, n_classes, l2)
    if name == "least_squares":
        return LeastSquaresModel(n_features, 1, l2)
    raise ValueError(f"unknown model {name!r}")
