"""Seeded random streams.

Every random number hgc draws comes from a :class:`numpy.random.Generator` built by :func:`stream`
from the run's single integer seed plus a *stream key* naming what it is for (and, for chunked work,
the chunk index). Results therefore depend on the seed alone, never on how work is split across
chunks, processes or executors.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Stream(IntEnum):
    """Purposes of independent random streams derived from one seed."""

    SIMULATION = 0      # Monte Carlo delays, one child per chunk of trials
    PILOT = 1           # pilot runs that choose `auto` tolerances (independent of the reported run)
    CODES = 2           # random code constructions
    VERIFY = 3          # random partial gradients and sampled straggler patterns in `hgc verify`
    TRAIN_DATA = 4      # synthetic datasets and train/test splits
    TRAIN_DELAYS = 5    # delays sampled during `hgc train`
    OPTIMIZE = 6        # Monte Carlo checks run by `hgc optimize`
    SWEEP = 7           # per-point seeds of a sweep
    EMULATE = 8         # node delays injected by `hgc emulate` (one draw per node per iteration)


def seed_sequence(seed: int, *key: int) -> np.random.SeedSequence:
    """The :class:`~numpy.random.SeedSequence` for ``seed`` and the stream path ``key``."""
    return np.random.SeedSequence(entropy=int(seed), spawn_key=tuple(int(k) for k in key))


def stream(seed: int, *key: int) -> np.random.Generator:
    """An independent generator for ``seed`` and the stream path ``key`` (e.g. ``Stream.SIMULATION, chunk``)."""
    return np.random.Generator(np.random.PCG64(seed_sequence(seed, *key)))
