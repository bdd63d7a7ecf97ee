"""Datasets for ``hgc train`` (the ``train:`` section): the bundled handwritten digits and seeded synthetic sets.

Every dataset comes back as a :class:`Dataset`: a train/test split of standardised features with a
constant bias column appended, and targets (class indices for classification, real values for
regression). All randomness (synthetic draws, the split) comes from ``stream(seed, Stream.TRAIN_DATA)``,
so a config and seed fix the data exactly. Nothing is downloaded: the digits are the 1,797 8×8 images
that scikit-learn ships with its source.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hgc.config import TrainConfig
from hgc.errors import ConfigError
from hgc.rng import Stream, stream

TASKS = {"digits": "classification", "synthetic_classification": "classification",
         "synthetic_regression": "regression"}
REGRESSION_NOISE = 0.1      # standard deviation of the additive noise of synthetic_regression
CLASS_SEPARATION = 2.0      # scale of the true weights of synthetic_classification (higher = easier)


@dataclass(frozen=True)
class Dataset:
    """A train/test split ready for a linear model.

    ``X_*`` are ``(rows, features + 1)``: features standardised with the *training* mean and standard
    deviation (constant features left at 0), then a bias column of ones last. ``y_*`` are ``int`` class
    indices (classification) or ``float`` targets (regression). ``n_classes`` is 0 for regression.
    """

    name: str
    task: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def n_train(self) -> int:
        return int(self.X_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.X_test.shape[0])

    @property
    def n_features(self) -> int:
        """Columns of ``X`` including the bias column."""
        return int(self.X_train.shape[1])


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X.astype(float), y.astype(np.int64)


def synthetic_classification(rng: np.random.Generator, samples: int, features: int,
                             classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Draws from a multinomial-logit model: ``X ~ N(0, I)``, ``y = argmax(X W* + b* + Gumbel noise)``,
    so softmax regression is the correctly specified model."""
    X = rng.standard_normal((samples, features))
    W = rng.standard_normal((features, classes)) * (CLASS_SEPARATION / np.sqrt(features))
    b = rng.standard_normal(classes) * 0.5
    y = np.argmax(X @ W + b + rng.gumbel(size=(samples, classes)), axis=1)
    return X, y.astype(np.int64)


def synthetic_regression(rng: np.random.Generator, samples: int, features: int) -> tuple[np.ndarray, np.ndarray]:
    """Linear model with Gaussian noise: ``X ~ N(0, I)``, ``y = X w* + b* + 0.1 ε``, ``w* ~ N(0, I/features)``."""
    X = rng.standard_normal((samples, features))
    w = rng.standard_normal(features) / np.sqrt(features)
    b = rng.standard_normal()
    y = X @ w + b + REGRESSION_NOISE * rng.standard_normal(samples)
    return X, y


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std[std == 0] = 1.0
    bias = lambda a: np.hstack([a, np.ones((a.shape[0], 1))])  # noqa: E731
    return bias((train - mean) / std), bias((test - mean) / std)


def load_dataset(cfg: TrainConfig, seed: int) -> Dataset:
    """The dataset named by ``cfg.dataset``, split with ``cfg.test_fraction`` of the rows held out.

    Synthetic sets use ``cfg.samples``, ``cfg.features`` (and ``cfg.classes``); the digits ignore them.
    The split is a seeded random permutation; the test set gets ``round(test_fraction * rows)`` rows.
    """
    rng = stream(seed, Stream.TRAIN_DATA)
    if cfg.dataset == "digits":
        X, y = _digits()
    elif cfg.dataset == "synthetic_classification":
        X, y = synthetic_classification(rng, cfg.samples, cfg.features, cfg.classes)
    elif cfg.dataset == "synthetic_regression":
        X, y = synthetic_regression(rng, cfg.samples, cfg.features)
    else:  # validated by hgc.config; kept for library callers
        raise ConfigError(f"unknown dataset {cfg.dataset!r}", "train.dataset")
    rows = X.shape[0]
    n_test = int(round(cfg.test_fraction * rows))
    if rows - n_test < 1:
        raise ConfigError(f"no training rows left with test_fraction {cfg.test_fraction} of {rows} rows",
                          "train.test_fraction")
    order = rng.permutation(rows)
    test, train = order[:n_test], order[n_test:]
    X_train, X_test = _standardise(X[train], X[test])
    task = TASKS[cfg.dataset]
    if task == "regression":
        n_classes = 0
    else:  # every class the generator can produce, even one absent from a small sample
        n_classes = cfg.classes if cfg.dataset == "synthetic_classification" else int(y.max()) + 1
    return Dataset(cfg.dataset, task, X_train, y[train], X_test, y[test], n_classes)
