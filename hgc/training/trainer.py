"""Coded full-batch gradient descent on real data (``hgc train``), exact recovery checked every iteration.

For every scheme of a config, every iteration ``t``:

1. **Who responds.** The delays of all nodes for iterations ``1..T`` are drawn once from
   ``stream(seed, Stream.TRAIN_DELAYS)`` with :func:`hgc.simulation.sample_delays` — the same block for
   every scheme (common random numbers). :meth:`CompiledStrategy.responders` gives the iteration time and
   which workers/edges the master uses.
2. **Real coded messages.** The current residuals ``R`` give all ``K`` partial gradients ``G_k = X_k^T R_k``
   in one batched matrix product over padded partitions; responding worker ``w`` sends its coded
   message ``code.encode(G)[w]`` (the code its scheme builds, as in ``hgc verify``; a code with shorter
   messages sends ``1/L`` of a gradient: chunks of the zero-padded partial gradients).
3. **Decoding.** The code's decoder (edges, then master) gives per-worker weights ``(L, N)`` for the
   responding set; decoded = ``code.combine(weights, messages)``, the ``L`` decoded chunks end to end. It
   is compared with the true data gradient ``X^T R`` computed directly
   from all training rows: ``grad_rel_error = ||decoded - true|| / ||true||``.
4. **Update.** ``W ← W - lr (decoded / rows + l2 W)``; the simulated clock advances by the iteration time.

**Undecodable iterations are reported, never trained on.** An iteration is *not* applied (``decoded`` is
``False``, the model is unchanged, ``status`` says why) when the simulator finds more stragglers/failures
than the scheme tolerates (``too_many_stragglers``), when the decoder refuses the responding set
(``decoder_refused``), or when the decoded gradient is further than :data:`GRADIENT_GUARD` from the true
one (``inexact``; a safety net that a correct code never triggers). Such an iteration still costs time:
the master gives up at its **timeout**, the moment it would have heard from *every* participating node
had none failed (the same scheme's nodes and loads, waiting for all of them, on the same delays with the
failures removed).

**Partitions.** ``K`` is ``data.partitions`` when given (it must suit every scheme). Otherwise one common
``K`` — the least common multiple of every scheme's smallest valid ``K`` — when that is at most the
number of training rows; else each scheme uses its own smallest ``K`` (a warning says so). Partitions
are contiguous blocks of the (already shuffled) training rows whose sizes differ by at most one. The full
gradient is the same whatever ``K``: partitions only split the sum.

**Loss.** Each row of the history describes the model *after* that iteration's update (iteration 0 =
the initial model ``W = 0`` at time 0): mean training loss + L2 term, train/test accuracy, test loss.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from hgc.codes import GradientCode
from hgc.config import ExperimentConfig
from hgc.errors import ConfigError
from hgc.experiment import resolve_schemes
from hgc.rng import Stream, stream
from hgc.output import integer_columns, run_metadata, write_csv, write_json, write_yaml
from hgc.progress import ProgressFactory, progress_bar
from hgc.schemes import BASELINE, ResolveContext, Resolved, Strategy, baseline_spec
from hgc.schemes.base import PARAMETER_COLUMNS
from hgc.simulation import CompiledStrategy, DelaySample, sample_delays
from hgc.training.datasets import Dataset, load_dataset
from hgc.training.models import LinearModel, make_model

GRADIENT_GUARD = 1e-6
"""Largest relative gradient error accepted for an update; above it the iteration is rejected."""

HISTORY_COLUMNS = ["label", "scheme", "iteration", "sim_time", "iteration_time", "decoded", "status",
                   "workers_used", "edges_used", "loss", "train_accuracy", "test_accuracy", "test_loss",
                   "grad_rel_error"]
SUMMARY_COLUMNS = ["label", "scheme", "iterations", "sim_time_total", "effective_time", "time_to_target",
                   "speedup_to_target",
                   "max_grad_rel_error", "undecodable_iterations", "target_loss", "final_loss",
                   "final_test_accuracy", "mean_iteration_time", "s_e", "s_w", "s", "reduction_e", "reduction_w",
                   "reduction", "edges", "workers", "load",
                   "partitions", "construction"]

STATUS_INITIAL = "initial"
STATUS_OK = "ok"
STATUS_STRAGGLERS = "too_many_stragglers"
STATUS_REFUSED = "decoder_refused"
STATUS_INEXACT = "inexact"


# ----------------------------------------------------------------------------------------------------
# Partitioned data: all K partial gradients in one batched product

@dataclass(frozen=True)
class PartitionedData:
    """Training rows split into ``K`` contiguous partitions, zero-padded to equal length.

    ``XT_pad`` is ``(K, d, rows_max)``: partition ``k``'s rows transposed, zero columns as padding, so
    ``XT_pad @ R_pad`` is every partial gradient ``X_k^T R_k`` at once (padding contributes zero).
    ``slot[r]`` is row ``r``'s position in the flattened ``(K * rows_max)`` padded layout.
    """

    n_partitions: int
    rows_max: int
    XT_pad: np.ndarray
    slot: np.ndarray
    sizes: np.ndarray

    @classmethod
    def build(cls, X: np.ndarray, n_partitions: int) -> "PartitionedData":
        rows, d = X.shape
        K = int(n_partitions)
        if not 1 <= K <= rows:
            raise ConfigError(f"K={K} partitions need 1 <= K <= {rows} training rows", "data.partitions")
        sizes = np.full(K, rows // K, dtype=np.intp)
        sizes[: rows % K] += 1
        rows_max = int(sizes.max())
        part = np.repeat(np.arange(K), sizes)
        position = np.arange(rows) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        slot = part * rows_max + position
        X_pad = np.zeros((K * rows_max, d))
        X_pad[slot] = X
        XT_pad = np.ascontiguousarray(X_pad.reshape(K, rows_max, d).transpose(0, 2, 1))
        return cls(K, rows_max, XT_pad, slot, sizes)

    def partial_gradients(self, R: np.ndarray) -> np.ndarray:
        """``(K, d * c)``: row ``k`` is ``vec(X_k^T R_k)`` for residuals ``R`` ``(rows, c)``."""
        c = R.shape[1]
        R_pad = np.zeros((self.n_partitions * self.rows_max, c))
        R_pad[self.slot] = R
        G = np.matmul(self.XT_pad, R_pad.reshape(self.n_partitions, self.rows_max, c))
        return G.reshape(self.n_partitions, -1)


# ----------------------------------------------------------------------------------------------------
# Who responds in each iteration

@dataclass(frozen=True)
class ResponseSchedule:
    """Per iteration (``T`` rows): iteration time ``finish`` (s, ``inf`` = the master could not decode),
    ``worker_used`` ``(T, N)`` / ``edge_used`` ``(T, n)`` over the code's workers/edges, and ``charged``:
    the simulated seconds the iteration costs (``finish``, or the timeout when ``finish`` is infinite)."""

    finish: np.ndarray
    worker_used: np.ndarray
    edge_used: np.ndarray
    charged: np.ndarray

    @property
    def iterations(self) -> int:
        return int(self.finish.shape[0])


def wait_for_all(strategy: Strategy) -> Strategy:
    """The same nodes and loads with every tolerance 0: the master waits for every participating node."""
    return strategy.scheme.wait_for_all(strategy)


def response_schedule(strategy: Strategy, config: ExperimentConfig, sample: DelaySample) -> ResponseSchedule:
    """Which workers/edges the master uses in each sampled iteration, and what each iteration costs."""
    compiled = CompiledStrategy(strategy, config.timing)
    finish, worker_used, edge_used = compiled.responders(sample)
    charged = np.asarray(finish, dtype=float).copy()
    lost = ~np.isfinite(charged)
    if lost.any():
        healthy = replace(sample, worker_failed=None, edge_failed=None)
        timeout, _ = CompiledStrategy(wait_for_all(strategy), config.timing).iteration_times(healthy)
        charged[lost] = timeout[lost]
    finite = np.isfinite(finish)
    return ResponseSchedule(np.asarray(finish, dtype=float), np.asarray(worker_used, bool) & finite[:, None],
                            np.asarray(edge_used, bool) & finite[:, None], charged)


# ----------------------------------------------------------------------------------------------------
# One scheme's coded gradient descent

@dataclass
class Trajectory:
    """Per-row arrays of one scheme's run (row 0 = initial model, row ``t`` = after iteration ``t``)."""

    iteration_time: np.ndarray
    decoded: list
    status: list[str]
    workers_used: np.ndarray
    edges_used: np.ndarray
    loss: np.ndarray
    train_accuracy: np.ndarray
    test_accuracy: np.ndarray
    test_loss: np.ndarray
    grad_rel_error: np.ndarray
    weights: np.ndarray  # final parameters

    @property
    def sim_time(self) -> np.ndarray:
        return np.cumsum(self.iteration_time)


def coded_descent(data: Dataset, model: LinearModel, partitioned: PartitionedData, code: GradientCode,
                  schedule: ResponseSchedule, learning_rate: float,
                  on_iteration: Callable[[int], object] | None = None) -> Trajectory:
    """Run ``schedule.iterations`` iterations of coded gradient descent (see the module docstring).

    ``code`` must be built on ``partitioned.n_partitions`` partitions and on the workers/edges that the
    columns of ``schedule.worker_used`` / ``edge_used`` describe.
    """
    if code.n_partitions != partitioned.n_partitions:
        raise ValueError(f"code has K={code.n_partitions}, data has K={partitioned.n_partitions}")
    T = schedule.iterations
    finite = np.isfinite(schedule.finish)
    decoding = code.decode_batch(schedule.worker_used, schedule.edge_used)
    worker_edge = code.worker_edge
    X, y, X_test, y_test = data.X_train, data.y_train, data.X_test, data.y_test
    rows = data.n_train

    loss, train_acc, test_acc, test_loss, err = (np.full(T + 1, np.nan) for _ in range(5))
    workers_used = np.zeros(T + 1, dtype=np.int64)
    edges_used = np.zeros(T + 1, dtype=np.int64)
    decoded: list = [pd.NA]
    status = [STATUS_INITIAL]

    W = model.init()
    scores, test_scores = X @ W, X_test @ W

    def record(t: int) -> None:
        loss[t] = model.loss(scores, y, W)
        train_acc[t] = model.accuracy(scores, y)
        test_acc[t] = model.accuracy(test_scores, y_test)
        test_loss[t] = model.loss(test_scores, y_test, W)

    record(0)
    for t in range(T):
        if on_iteration is not None:
            on_iteration(1)
        row = t + 1
        R = model.residual(scores, y)
        heard = schedule.worker_used[t] & schedule.edge_used[t][worker_edge]
        workers_used[row] = int(heard.sum())
        edges_used[row] = int(schedule.edge_used[t].sum())
        weights = decoding.weights[t]                                   # (L, N): one row per message chunk
        if not finite[t]:
            state = STATUS_STRAGGLERS
        elif not decoding.ok[t] or np.any(weights[:, ~heard]):
            state = STATUS_REFUSED
        else:
            G = partitioned.partial_gradients(R)                       # (K, d*c), real partial gradients
            messages = code.encode(G, workers=heard)                    # responding workers' coded vectors
            g_hat = code.combine(weights[:, heard], messages, G.shape[1]).reshape(W.shape)  # decoded gradient
            g_true = X.T @ R                                            # checked against all rows directly
            err[row] = float(np.linalg.norm(g_hat - g_true) / max(np.linalg.norm(g_true), np.finfo(float).tiny))
            state = STATUS_OK if err[row] <= GRADIENT_GUARD else STATUS_INEXACT
            if state == STATUS_OK:
                W = W - learning_rate * (g_hat / rows + model.regulariser_gradient(W))
                scores, test_scores = X @ W, X_test @ W
        decoded.append(state == STATUS_OK)
        status.append(state)
        record(row)
    iteration_time = np.concatenate([[0.0], schedule.charged])
    return Trajectory(iteration_time, decoded, status, workers_used, edges_used, loss, train_acc, test_acc,
                      test_loss, err, W)


# ----------------------------------------------------------------------------------------------------
# A whole config

@dataclass
class SchemeRun:
    """One scheme as trained: its resolution, the code and the trajectory."""

    resolved: Resolved
    code: GradientCode
    trajectory: Trajectory
    listed: bool = True   # False for the uncoded baseline added only for speed-ups

    @property
    def label(self) -> str:
        return self.resolved.label

    @property
    def strategy(self) -> Strategy:
        return self.resolved.strategy


@dataclass
class TrainResult:
    """What ``hgc train`` computes: the per-iteration ``history`` (``train.csv``), the per-scheme
    ``summary`` (``train_summary.csv``), the runs, warnings for the user and run facts."""

    history: pd.DataFrame
    summary: pd.DataFrame
    runs: list[SchemeRun]
    dataset: Dataset
    target_loss: float
    seed: int
    iterations: int
    seconds: float
    warnings: list[str] = field(default_factory=list)
    interrupted: bool = False      # Ctrl-C: only the schemes finished before it are in the tables
    config: ExperimentConfig | None = None

    def write(self, out_dir: Path) -> list[Path]:
        """``train.csv``, ``train_summary.csv``, ``config.resolved.yaml`` and ``metadata.json`` under ``out_dir``."""
        out_dir = Path(out_dir)
        data = self.dataset
        paths = [write_csv(self.history, out_dir / "train.csv"), write_csv(self.summary, out_dir / "train_summary.csv")]
        if self.config is not None:
            paths.append(write_yaml(self.config.resolved(), out_dir / "config.resolved.yaml"))
        paths.append(write_json(run_metadata(
            "train", seed=self.seed, iterations=self.iterations, seconds=round(self.seconds, 3),
            dataset={"name": data.name, "task": data.task, "train_rows": data.n_train, "test_rows": data.n_test,
                     "features": data.n_features - 1, "classes": data.n_classes},
            target_loss=self.target_loss, warnings=self.warnings, interrupted=self.interrupted,
            complete=not self.interrupted,
            strategies=[{"label": run.label, "spec_label": run.resolved.spec.label, "kind": run.strategy.kind,
                         "listed": run.listed, "edges": list(run.strategy.edges),
                         "workers": [list(w) for w in run.strategy.workers], **run.strategy.columns(),
                         "load": run.strategy.load, "partitions": run.code.n_partitions,
                         "construction": run.code.construction, "note": run.resolved.note}
                        for run in self.runs],
        ), out_dir / "metadata.json"))
        return paths


def participating_counts(strategy: Strategy) -> list[int]:
    """Worker counts of the participating edges (the order of :meth:`CompiledStrategy.responders`' columns)."""
    return list(strategy.worker_counts)


def _smallest_k(strategy: Strategy) -> int:
    return strategy.scheme.smallest_partitions(strategy)


def choose_partitions(strategies: Sequence[Strategy], requested: int | None, rows: int) -> tuple[list[int], str]:
    """``K`` for each strategy and a warning (empty if none); see the module docstring for the rule."""
    if requested is not None:
        if requested > rows:
            raise ConfigError(f"must be at most the {rows} training rows, got {requested}", "data.partitions")
        return [int(requested)] * len(strategies), ""
    smallest = [_smallest_k(st) for st in strategies]
    common = math.lcm(*smallest)
    if common <= rows:
        return [common] * len(strategies), ""
    for st, k in zip(strategies, smallest):
        if k > rows:
            raise ConfigError(f"{st.kind} needs at least K={k} partitions but there are only {rows} training rows",
                              "train")
    return smallest, (f"no common K for all schemes within the {rows} training rows (lcm {common}); "
                      f"each scheme uses its own smallest K: {smallest}")


def resolve_training_schemes(config: ExperimentConfig, progress: ProgressFactory | None = None
                             ) -> tuple[list[Resolved], list[str]]:
    """Concrete strategies of the config's schemes (``auto`` and ``hgc_jncss`` resolved as ``hgc simulate``
    resolves them), and warnings (none at present; kept for the run metadata)."""
    return resolve_schemes(config, ResolveContext(config.timing, config.seed, progress)), []


TARGET_FRACTION = 0.99
"""The default target loss is reached when this fraction of the worst run's loss decrease is done."""


def default_target(losses: Sequence[np.ndarray]) -> float:
    """The loss every run reaches: 99 % of the way from the initial loss to the worst final loss (the
    worst final loss itself is often reached only by rounding, which would time noise)."""
    initial = float(losses[0][0])
    worst = float(max(loss[-1] for loss in losses))
    return worst + (1.0 - TARGET_FRACTION) * (initial - worst) if initial > worst else worst


def time_to_target(sim_time: np.ndarray, loss: np.ndarray, target: float) -> float:
    """Simulated seconds at the first row whose loss is at most ``target`` (NaN if never)."""
    hit = np.flatnonzero(loss <= target)
    return float(sim_time[hit[0]]) if hit.size else float("nan")


def train(config: ExperimentConfig, *, iterations: int | None = None, seed: int | None = None,
          progress: ProgressFactory | None = None) -> TrainResult:
    """Coded gradient descent of every scheme of ``config`` (``iterations``/``seed`` override the config).

    An uncoded run is always made (on the same delays) for ``speedup_to_target``; it appears in the
    outputs only when the config lists ``uncoded``. ``progress`` draws one bar over schemes × iterations.
    """
    started = time.perf_counter()
    config = config.with_overrides(seed=seed)
    if iterations is not None:
        config = config.with_values({"train.iterations": int(iterations)})
    cfg = config.train
    T = int(cfg.iterations)
    data = load_dataset(cfg, config.seed)
    model = make_model(cfg.model, data.n_features, data.n_classes, cfg.l2)

    resolved, warnings = resolve_training_schemes(config, progress)
    listed = [True] * len(resolved)
    if not any(r.spec.kind == BASELINE for r in resolved):
        spec = baseline_spec()
        resolved.append(Resolved(spec, spec.scheme.resolve(spec, ResolveContext(config.timing, config.seed)).strategy,
                                       "baseline for speed-ups"))
        listed.append(False)
    strategies = [r.strategy for r in resolved]
    ks, warning = choose_partitions(strategies, config.data.partitions, data.n_train)
    if warning:
        warnings.append(warning)

    sample = sample_delays(config.timing, stream(config.seed, Stream.TRAIN_DELAYS), T)
    partitioned: dict[int, PartitionedData] = {}
    runs, interrupted = [], False
    try:
        with progress_bar(progress, len(resolved) * T, f"train {len(resolved)} schemes", "iteration") as bar:
            for r, K, is_listed in zip(resolved, ks, listed):
                st = r.strategy
                bar.set_postfix_str(r.label)
                code = st.scheme.build_code(st, partitions=K, rng=stream(config.seed, Stream.CODES))
                if K not in partitioned:
                    partitioned[K] = PartitionedData.build(data.X_train, K)
                schedule = response_schedule(st, config, sample)
                trajectory = coded_descent(data, model, partitioned[K], code, schedule, cfg.learning_rate,
                                           on_iteration=bar.update)
                runs.append(SchemeRun(r, code, trajectory, is_listed))
    except KeyboardInterrupt:
        if not any(run.listed for run in runs):
            raise
        interrupted = True
        warnings.append(f"interrupted: {sum(run.listed for run in runs)} of {sum(listed)} schemes finished")

    target = cfg.target_loss
    if target is None:
        target = default_target([run.trajectory.loss for run in runs])
    history = pd.concat([history_frame(run) for run in runs if run.listed], ignore_index=True)
    baseline = next((run for run in runs if run.resolved.spec.kind == BASELINE), None)
    base_ttt = (time_to_target(baseline.trajectory.sim_time, baseline.trajectory.loss, target)
                if baseline is not None else float("nan"))
    summary = pd.DataFrame([summary_row(run, target, base_ttt) for run in runs if run.listed],
                           columns=SUMMARY_COLUMNS)
    integer_columns(summary, PARAMETER_COLUMNS)
    return TrainResult(history, summary, runs, data, target, config.seed, T, time.perf_counter() - started,
                       warnings, interrupted, config)


def history_frame(run: SchemeRun) -> pd.DataFrame:
    """``train.csv`` rows of one scheme."""
    tr = run.trajectory
    rows = len(tr.loss)
    frame = pd.DataFrame({
        "label": [run.label] * rows, "scheme": [run.strategy.kind] * rows,
        "iteration": np.arange(rows), "sim_time": tr.sim_time, "iteration_time": tr.iteration_time,
        "decoded": pd.array(tr.decoded, dtype="boolean"), "status": tr.status,
        "workers_used": tr.workers_used, "edges_used": tr.edges_used,
        "loss": tr.loss, "train_accuracy": tr.train_accuracy, "test_accuracy": tr.test_accuracy,
        "test_loss": tr.test_loss, "grad_rel_error": tr.grad_rel_error,
    })
    return frame[HISTORY_COLUMNS]


def summary_row(run: SchemeRun, target: float, baseline_time: float) -> dict[str, object]:
    """One ``train_summary.csv`` row."""
    tr, st = run.trajectory, run.strategy
    ttt = time_to_target(tr.sim_time, tr.loss, target)
    errors = tr.grad_rel_error[1:]
    finite_errors = errors[np.isfinite(errors)]
    undecodable = sum(1 for s in tr.status[1:] if s != STATUS_OK)
    successes = len(tr.status) - 1 - undecodable
    speedup = baseline_time / ttt if np.isfinite(ttt) and ttt > 0 and np.isfinite(baseline_time) else float("nan")
    return {
        "label": run.label, "scheme": st.kind, "iterations": len(tr.loss) - 1,
        "sim_time_total": float(tr.sim_time[-1]),
        "effective_time": float(tr.sim_time[-1]) / successes if successes else float("nan"),
        "time_to_target": ttt, "speedup_to_target": speedup,
        "max_grad_rel_error": float(finite_errors.max()) if finite_errors.size else float("nan"),
        "undecodable_iterations": undecodable, "target_loss": target, "final_loss": float(tr.loss[-1]),
        "final_test_accuracy": float(tr.test_accuracy[-1]),
        "mean_iteration_time": float(tr.iteration_time[1:].mean()),
        **st.columns(),
        "edges": len(participating_counts(st)), "workers": st.n_workers, "load": st.load,
        "partitions": run.code.n_partitions, "construction": run.code.construction,
    }
