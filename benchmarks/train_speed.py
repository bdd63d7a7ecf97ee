"""Wall-clock cost of ``hgc train``: 200 iterations x 4 schemes on the digits (configs/train-digits.yaml).

Run: ``python benchmarks/train_speed.py [--iterations 200] [--repeats 3]``. Prints the best-of-``repeats``
seconds of the whole :func:`hgc.training.train` call (data loading, scheme resolution with pilot runs for
``auto`` tolerances, code construction, delay sampling, coded descent) and of the coded descent alone.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from hgc.config import load_config
from hgc.rng import Stream, stream
from hgc.simulation import sample_delays
from hgc.training import PartitionedData, coded_descent, load_dataset, make_model, response_schedule, train
from hgc.training.trainer import choose_partitions, participating_counts, resolve_training_schemes

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "train-digits.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = load_config(CONFIG)

    totals = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = train(config, iterations=args.iterations)
        totals.append(time.perf_counter() - start)
    schemes = len(result.summary)

    # the coded descent alone (everything but loading / resolution / code construction)
    from hgc.codes import build_code

    data = load_dataset(config.train, config.seed)
    model = make_model(config.train.model, data.n_features, data.n_classes, config.train.l2)
    resolved, _ = resolve_training_schemes(config)
    ks, _ = choose_partitions([r.strategy for r in resolved], config.data.partitions, data.n_train)
    sample = sample_delays(config.timing, stream(config.seed, Stream.TRAIN_DELAYS), args.iterations)
    prepared = []
    for r, K in zip(resolved, ks):
        st = r.strategy
        code = build_code(st.kind, participating_counts(st), s=st.s, s_e=st.s_e, s_w=st.s_w, partitions=K)
        prepared.append((code, PartitionedData.build(data.X_train, K), response_schedule(st, config, sample)))
    loops = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for code, parts, schedule in prepared:
            coded_descent(data, model, parts, code, schedule, config.train.learning_rate)
        loops.append(time.perf_counter() - start)

    print(f"digits: {data.n_train} training rows, {data.n_features} features (with bias), {data.n_classes} classes")
    print(f"{args.iterations} iterations x {schemes} schemes, best of {args.repeats}:")
    print(f"  hgc.training.train (everything):  {min(totals):.2f} s   (runs: {np.round(totals, 2).tolist()})")
    print(f"  coded descent only:                {min(loops):.2f} s   "
          f"({1e3 * min(loops) / (args.iterations * schemes):.2f} ms per scheme-iteration)")


if __name__ == "__main__":
    main()
