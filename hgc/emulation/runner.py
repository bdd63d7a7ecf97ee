"""``hgc emulate`` as a library call: every scheme of a config trained for real on a Dask cluster.

:func:`emulate` loads the config's ``train:`` data and model, resolves the schemes as ``hgc simulate`` and
``hgc train`` do, builds each scheme's code (the same codes, partitions and seeds as ``hgc train``) and
its :class:`~hgc.emulation.plan.ProtocolPlan`, draws every node's delays once from
``stream(seed, Stream.EMULATE)`` (one draw per node per iteration, shared by all schemes), and runs full-batch
coded gradient descent with :class:`~hgc.emulation.protocol.SchemeSession`: one scheme after another on
the same cluster, the same ``--kill`` faults in each.

**Measured against predicted.** For every iteration the simulator's :class:`~hgc.simulation.CompiledStrategy`
evaluates the *same* draws: ``predicted_time`` is what the model says that iteration takes (times the time
scale). The summary also carries ``simulated_mean``, the mean that ``hgc simulate`` reports for the same
config and seed (its own Monte Carlo draws, times the time scale).

**Warm-up.** Before its measured iterations each scheme runs one iteration with zero delays and the
initial parameters, not recorded: it opens connections and fills caches, so iteration 1 measures the
protocol rather than start-up.

**Undecodable iterations.** The master gives up when every call it waits for has ended without
enough messages (``lost``: processes were killed) or at its deadline (``timeout``: nodes failed silently,
as ``timing.failures`` says); the deadline is :data:`DEADLINE_FACTOR` times the scaled time at which it would
have heard from every participating node had none failed, plus :data:`DEADLINE_SLACK` seconds. Such an
iteration is not applied (the parameters stay), as in ``hgc train``.
"""

from __future__ import annotations

import math
import os
import time
import warnings as warnings_module
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import pandas as pd

from hgc.codes import GradientCode
from hgc.config import ExperimentConfig
from hgc.emulation.cluster import RESTART_TIMEOUT, EmulationCluster, default_processes
from hgc.emulation.faults import Kill
from hgc.emulation.plan import ProtocolPlan, ScheduledDelays, protocol_plan, scheduled_delays
from hgc.emulation.protocol import STATUS_OK, IterationOutcome, SchemeSession
from hgc.errors import ConfigError
from hgc.experiment import resolve_schemes
from hgc.output import atomic_write_text, integer_columns, run_metadata, write_csv, write_json, write_yaml
from hgc.progress import ProgressBar, ProgressFactory, chunk_progress, progress_bar
from hgc.rng import Stream, stream
from hgc.schemes import ResolveContext, Resolved, Strategy
from hgc.schemes.base import PARAMETER_COLUMNS
from hgc.simulation import CompiledStrategy, DelaySample, run_strategies, sample_delays
from hgc.training.datasets import Dataset, load_dataset
from hgc.training.models import LinearModel, make_model
from hgc.training.trainer import GRADIENT_GUARD, PartitionedData, choose_partitions, wait_for_all

if TYPE_CHECKING:
    from hgc.emulation.calibration import Calibration

DEADLINE_FACTOR = 1.5
DEADLINE_SLACK = 1.0   # seconds
STATUS_INEXACT = "inexact"

HISTORY_COLUMNS = ["scheme", "label", "iteration", "time", "predicted_time", "decoded", "status", "rel_error",
                   "loss", "test_accuracy", "worker_stragglers", "edge_stragglers", "killed", "dispatch",
                   "collect", "deliver", "compute", "overruns"]
SUMMARY_COLUMNS = ["scheme", "label", *PARAMETER_COLUMNS, "edges", "workers", "load", "load_min", "partitions",
                   "iterations", "decoded", "lost", "measured_mean", "measured_sem", "measured_p50", "measured_p95",
                   "measured_max", "predicted_mean", "simulated_mean", "ratio", "overhead_per_iteration",
                   "dispatch", "collect", "deliver", "max_rel_error", "final_loss", "time_scale", "seed", "partial",
                   "spec_label"]
"""Columns of ``emulate_summary.csv`` (see ``docs/emulate.md``)."""


@dataclass
class SchemeRun:
    """One scheme as emulated: its resolution, code, plan, delays, predictions and outcomes so far."""

    resolved: Resolved
    code: GradientCode
    plan: ProtocolPlan
    delays: ScheduledDelays
    predicted: np.ndarray          # (T,) seconds, scaled; inf where the model says undecodable
    deadline: np.ndarray           # (T,) seconds after which the master gives up
    simulated_mean: float          # `hgc simulate` mean for the config and seed, scaled (NaN if not run)
    rows: list[dict] = field(default_factory=list)
    warm_up_seconds: float = math.nan
    placement_seconds: float = math.nan
    data_bytes: int = 0            # training rows placed on the worker processes
    complete: bool = False

    @property
    def label(self) -> str:
        return self.resolved.label

    @property
    def strategy(self) -> Strategy:
        return self.resolved.strategy


@dataclass
class EmulationResult:
    """What ``hgc emulate`` measured: ``history`` (``emulate.csv``), ``summary`` (``emulate_summary.csv``),
    the runs, fault events, cluster facts, run facts and, with ``calibrate``, the fitted platform costs."""

    history: pd.DataFrame
    summary: pd.DataFrame
    runs: list[SchemeRun]
    events: list[dict]
    cluster: dict
    dataset: Dataset
    seed: int
    iterations: int
    time_scale: float
    seconds: float
    interrupted: bool
    warnings: list[str]
    load_average: tuple[float, float]  # 1-minute load average at the start and at the end
    config: ExperimentConfig           # as run (seed and iteration overrides applied)
    sample: DelaySample                # the delay draws of every node (before the time scale)
    kills: tuple[Kill, ...] = ()
    calibration: "Calibration | None" = None

    def calibration_text(self) -> str | None:
        """The ``calibration.yaml`` snippet (``None`` without a calibration)."""
        if self.calibration is None:
            return None
        from hgc.emulation.calibration import config_snippet  # noqa: PLC0415 - only with --calibrate

        return config_snippet(self.calibration, self.config)

    def write(self, out_dir: Path) -> list[Path]:
        """``emulate.csv``, ``emulate_summary.csv``, ``config.resolved.yaml``, ``metadata.json`` and, with a
        calibration, ``calibration.yaml`` under ``out_dir``."""
        out_dir = Path(out_dir)
        data = self.dataset
        paths = [write_csv(self.history, out_dir / "emulate.csv"),
                 write_csv(self.summary, out_dir / "emulate_summary.csv"),
                 write_yaml(self.config.resolved(), out_dir / "config.resolved.yaml")]
        text = self.calibration_text()
        if text is not None:
            paths.append(atomic_write_text(out_dir / "calibration.yaml", text))
        paths.append(write_json(run_metadata(
            "emulate", seed=self.seed, iterations=self.iterations, time_scale=self.time_scale,
            seconds=round(self.seconds, 3), interrupted=self.interrupted, complete=not self.interrupted,
            warnings=self.warnings, load_average={"start": self.load_average[0], "end": self.load_average[1]},
            dataset={"name": data.name, "task": data.task, "train_rows": data.n_train, "test_rows": data.n_test,
                     "features": data.n_features - 1, "classes": data.n_classes},
            cluster=self.cluster, kills=[k.text for k in self.kills], fault_events=self.events,
            calibration=self.calibration.as_dict() if self.calibration is not None else None,
            strategies=[{"label": run.label, "spec_label": run.resolved.spec.label, "kind": run.strategy.kind,
                         "edges": list(run.strategy.edges), "workers": [list(w) for w in run.strategy.workers],
                         **run.strategy.columns(), "load": run.strategy.load, "partitions": run.code.n_partitions,
                         "chunks": run.plan.n_chunks, "construction": run.code.construction,
                         "note": run.resolved.note, "placement_seconds": round(run.placement_seconds, 3),
                         "data_bytes": run.data_bytes, "warm_up_seconds": round(run.warm_up_seconds, 3),
                         "complete": run.complete}
                        for run in self.runs],
        ), out_dir / "metadata.json"))
        return paths


def _load_average() -> float:
    try:
        return float(os.getloadavg()[0])
    except OSError:
        return math.nan


def prepare_runs(config: ExperimentConfig, data: Dataset, iterations: int, time_scale: float,
                 deadline_slack: float = DEADLINE_SLACK, progress: ProgressFactory | None = None,
                 monte_carlo: bool = True) -> tuple[list[SchemeRun], DelaySample, list[str]]:
    """Resolve, build and predict every scheme of ``config`` (no cluster needed).

    The codes are those of ``hgc train`` (the scheme's own builder, the same partitions and seed);
    ``monte_carlo`` also runs ``hgc simulate``'s Monte Carlo for ``simulated_mean`` (else NaN).
    """
    resolved = resolve_schemes(config, ResolveContext(config.timing, config.seed, progress))
    strategies = [r.strategy for r in resolved]
    ks, warning = choose_partitions(strategies, config.data.partitions, data.n_train)
    sample = sample_delays(config.timing, stream(config.seed, Stream.EMULATE), iterations).materialized()
    healthy = replace(sample, worker_failed=None, edge_failed=None)
    means = [math.nan] * len(strategies)
    if monte_carlo:
        run = run_strategies(config.timing, strategies, seed=config.seed, trials=config.trials,
                             progress=chunk_progress(progress, "simulate", config.trials))
        means = [stats.mean_time for stats in run.statistics]
    runs = []
    for r, K, mean in zip(resolved, ks, means):
        st = r.strategy
        code = st.scheme.build_code(st, partitions=K, rng=stream(config.seed, Stream.CODES))
        plan = protocol_plan(st, code)
        predicted, _ = CompiledStrategy(st, config.timing).iteration_times(sample)
        everyone, _ = CompiledStrategy(wait_for_all(st), config.timing).iteration_times(healthy)
        runs.append(SchemeRun(r, code, plan, scheduled_delays(st, sample, config.timing, time_scale),
                              predicted * time_scale, DEADLINE_FACTOR * everyone * time_scale + deadline_slack,
                              mean * time_scale))
    return runs, sample, [warning] if warning else []


def check_time_scale(time_scale: float) -> None:
    """A :class:`ConfigError` on ``time-scale`` unless it is a positive finite number."""
    if not (math.isfinite(time_scale) and time_scale > 0):
        raise ConfigError(f"must be a positive finite number of seconds per model second, got {time_scale}",
                          "time-scale")


def emulate(config: ExperimentConfig, *, iterations: int | None = None, seed: int | None = None,
            time_scale: float = 1.0, scheduler: str | None = None, processes: int | None = None,
            kills: Sequence[Kill] = (), deadline_slack: float = DEADLINE_SLACK,
            restart_timeout: float = RESTART_TIMEOUT, progress: ProgressFactory | None = None,
            calibrate: bool = False) -> EmulationResult:
    """Emulate every scheme of ``config`` on a Dask cluster (see the module docstring).

    ``iterations``/``seed`` override the config; ``time_scale`` multiplies every drawn delay (seconds);
    ``scheduler`` is an existing scheduler's address, else a local cluster of ``processes`` worker processes
    is started (default: see :func:`~hgc.emulation.cluster.default_processes`; one per node and a spare when
    there are ``kills``); ``kills`` are the process kills to inject, and a killed process's nodes move to
    another process if it is not back within ``restart_timeout`` seconds; ``progress`` draws one bar over
    schemes × iterations; ``calibrate`` fits the platform's costs (:mod:`hgc.emulation.calibration`).
    Ctrl-C or SIGTERM stops the run and returns the finished iterations, flagged ``interrupted`` (the
    scheme cut short is marked ``partial``); before the first iteration finished it propagates.
    """
    started = time.perf_counter()
    load_before = _load_average()
    check_time_scale(time_scale)
    config = config.with_overrides(seed=seed)
    if iterations is not None:
        config = config.with_values({"train.iterations": int(iterations)})
    T = int(config.train.iterations)
    data = load_dataset(config.train, config.seed)
    model = make_model(config.train.model, data.n_features, data.n_classes, config.train.l2)
    runs, sample, warnings = prepare_runs(config, data, T, time_scale, deadline_slack, progress)
    kills_at: dict[int, list[Kill]] = {}
    for kill in kills:
        kills_at.setdefault(kill.iteration, []).append(kill)

    events: list[dict] = []
    interrupted = False
    cluster_facts: dict = {}
    partitioned: dict[int, PartitionedData] = {}
    try:
        with warnings_module.catch_warnings(), EmulationCluster(config.topology, scheduler=scheduler,
                                                                 processes=processes,
                                                                 one_per_node=bool(kills)) as cluster, \
                progress_bar(progress, len(runs) * T, f"emulate {len(runs)} schemes", "iteration") as bar:
            # an edge that learns of its workers after the master released them makes the scheduler warn
            warnings_module.filterwarnings("ignore", message=r"Client .* desires key", category=UserWarning)
            cluster_facts = cluster.describe()
            for run in runs:
                K = run.code.n_partitions
                if K not in partitioned:
                    partitioned[K] = PartitionedData.build(data.X_train, K)
                bar.set_postfix_str(run.label)
                _run_scheme(run, cluster, data, model, config.train.learning_rate, partitioned[K], kills_at, events,
                            bar, restart_timeout)
    except KeyboardInterrupt:
        interrupted = True
    finished = [run for run in runs if run.rows]
    if interrupted and not finished:
        raise KeyboardInterrupt
    history = pd.DataFrame([row for run in finished for row in run.rows], columns=HISTORY_COLUMNS)
    history["decoded"] = history["decoded"].astype(bool)
    summary = pd.DataFrame([summary_row(run, time_scale, config.seed) for run in finished], columns=SUMMARY_COLUMNS)
    integer_columns(summary, PARAMETER_COLUMNS)
    if interrupted:
        done = sum(run.complete for run in runs)
        warnings.append(f"interrupted: {done} of {len(runs)} schemes complete; the iterations finished so far "
                        "are written and the scheme cut short is marked partial")
    calibration = None
    if calibrate and interrupted:   # a fit to part of the run would be saved as if it were the platform's
        warnings.append("--calibrate: no calibration.yaml, the run was interrupted before it finished")
    elif calibrate:
        from hgc.emulation.calibration import fit_platform  # noqa: PLC0415 - only with --calibrate

        calibration = fit_platform(finished, config.timing, sample, time_scale)
    return EmulationResult(history, summary, runs, events, cluster_facts, data, config.seed, T, time_scale,
                           time.perf_counter() - started, interrupted, warnings, (load_before, _load_average()),
                           config, sample, tuple(kills), calibration)


def _run_scheme(run: SchemeRun, cluster: EmulationCluster, data: Dataset, model: LinearModel, learning_rate: float,
                partitioned: PartitionedData, kills_at: dict[int, list[Kill]], events: list[dict],
                bar: ProgressBar, restart_timeout: float) -> None:
    """Place one scheme's data, warm up, and run its iterations, appending to ``run.rows`` as they finish."""
    clock = time.perf_counter()
    cluster.reassign(restart_timeout)
    session = SchemeSession(cluster, run.plan, data.X_train, data.y_train, partitioned.sizes, model)
    run.placement_seconds = time.perf_counter() - clock
    run.data_bytes = session.data_bytes
    try:
        W = model.init()
        clock = time.perf_counter()
        zeros_w, zeros_e = np.zeros(run.plan.n_workers), np.zeros(len(run.plan.edges))
        session.iterate(W, zeros_w, zeros_e, zeros_e, deadline=60.0)
        run.warm_up_seconds = time.perf_counter() - clock
        X, y = data.X_train, data.y_train
        scores, test_scores = X @ W, data.X_test @ W
        for t in range(run.delays.iterations):
            kills = kills_at.get(t + 1, [])
            hosts = sorted({cluster.placement[k.node] for k in kills})
            lost = {host: cluster.nodes_on(host) for host in hosts}
            pids = {host: cluster.kill(host) for host in hosts}   # before the iteration: lost for all of it
            down = frozenset(node for nodes in lost.values() for node in nodes)
            outcome = session.iterate(W, run.delays.worker[t], run.delays.edge[t], run.delays.per_vector,
                                      float(run.deadline[t]), down)
            R = model.residual(scores, y)
            status, error = outcome.status, math.nan
            if outcome.status == STATUS_OK:
                assert outcome.gradient is not None
                g_hat = outcome.gradient[:W.size].reshape(W.shape)
                g_true = X.T @ R                      # checked against all training rows directly
                error = float(np.linalg.norm(g_hat - g_true)
                              / max(float(np.linalg.norm(g_true)), np.finfo(float).tiny))
                if error <= GRADIENT_GUARD:
                    W = W - learning_rate * (g_hat / data.n_train + model.regulariser_gradient(W))
                    scores, test_scores = X @ W, data.X_test @ W
                else:
                    status = STATUS_INEXACT
            killed = sorted({n.label for nodes in lost.values() for n in nodes})
            run.rows.append(history_row(run, t, outcome, status, error, model.loss(scores, y, W),
                                        model.accuracy(test_scores, data.y_test), killed))
            bar.update(1)
            for host, nodes in lost.items():
                target, seconds = cluster.restore(host, restart_timeout)
                session.place(set(nodes))
                events.append({"scheme": run.label, "iteration": t + 1,
                               "kill": [k.text for k in kills if k.node in nodes], "process": host,
                               "pid": pids[host],
                               "nodes_lost": [n.label for n in nodes], "restored_on": target,
                               "restore_seconds": round(seconds, 3)})
        run.complete = True
    finally:
        session.close()


def history_row(run: SchemeRun, t: int, outcome: IterationOutcome, status: str, error: float, loss: float,
                accuracy: float, killed: list[str]) -> dict:
    """One ``emulate.csv`` row."""
    participating_edges = len(run.plan.edges)
    return {
        "scheme": run.resolved.spec.kind, "label": run.label, "iteration": t + 1, "time": outcome.time,
        "predicted_time": float(run.predicted[t]), "decoded": status == STATUS_OK, "status": status,
        "rel_error": error, "loss": loss, "test_accuracy": accuracy,
        "worker_stragglers": int(run.plan.n_workers - outcome.workers_used.sum()) if status == STATUS_OK else pd.NA,
        "edge_stragglers": int(participating_edges - outcome.edges_used.sum()) if status == STATUS_OK else pd.NA,
        "killed": ";".join(killed), "dispatch": outcome.dispatch, "collect": outcome.collect,
        "deliver": outcome.deliver, "compute": outcome.compute, "overruns": outcome.overruns,
    }


def summary_row(run: SchemeRun, time_scale: float, seed: int) -> dict[str, Any]:
    """One ``emulate_summary.csv`` row (times over the decoded iterations; see the module docstring)."""
    rows = pd.DataFrame(run.rows, columns=HISTORY_COLUMNS)
    ok = rows[rows["decoded"].astype(bool)]
    measured = ok["time"].to_numpy(float)
    predicted = ok["predicted_time"].to_numpy(float)
    paired = np.isfinite(predicted)
    st = run.strategy

    def stat(values: np.ndarray, fn: Callable[[np.ndarray], float]) -> float:
        return float(fn(values)) if values.size else math.nan

    measured_mean = stat(measured, np.mean)
    predicted_mean = stat(predicted[paired], np.mean)
    errors = rows["rel_error"].to_numpy(float)
    return {
        "scheme": run.resolved.spec.kind, "label": run.label, **st.columns(),
        "edges": st.n_edges, "workers": st.n_workers, "load": st.load, "load_min": float(st.loads.min()),
        "partitions": run.code.n_partitions, "iterations": len(rows), "decoded": len(ok), "lost": len(rows) - len(ok),
        "measured_mean": measured_mean,
        "measured_sem": float(measured.std(ddof=1) / math.sqrt(measured.size)) if measured.size > 1 else math.nan,
        "measured_p50": stat(measured, np.median), "measured_p95": stat(measured, lambda v: np.quantile(v, 0.95)),
        "measured_max": stat(measured, np.max), "predicted_mean": predicted_mean,
        "simulated_mean": run.simulated_mean,
        "ratio": stat(measured[paired], np.mean) / predicted_mean if paired.any() and predicted_mean > 0 else math.nan,
        "overhead_per_iteration": stat(measured[paired] - predicted[paired], np.mean),
        "dispatch": stat(ok["dispatch"].to_numpy(float), np.nanmean),
        "collect": stat(ok["collect"].to_numpy(float), np.nanmean),
        "deliver": stat(ok["deliver"].to_numpy(float), np.nanmean),
        "max_rel_error": float(np.nanmax(errors)) if np.isfinite(errors).any() else math.nan,
        "final_loss": float(rows["loss"].iloc[-1]) if len(rows) else math.nan,
        "time_scale": time_scale, "seed": seed, "partial": not run.complete, "spec_label": run.resolved.spec.label,
    }


def local_processes(config: ExperimentConfig, processes: int | None, scheduler: str | None, kills: Sequence[Kill]) -> int | None:
    """Worker processes a local cluster would start (``None`` with an existing ``scheduler``)."""
    if scheduler:
        return None
    return processes or default_processes(config.topology, one_per_node=bool(kills))
