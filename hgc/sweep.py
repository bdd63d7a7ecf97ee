"""Parameter sweeps (``hgc sweep``): sweep files, point expansion, per-point seeds, a resumable store.

A *sweep file* names a base config (a path or an inline mapping), a ``grid`` of dotted config
keys to lists of values (cartesian product) and optional ``zip`` keys varied together. Every combination is
a :class:`SweepPoint`: the base config with those values set, validated like any config *before anything
runs*.

Seeds. A point's seed is derived from the base config's seed and the point's **swept values** — never from
its position in a work queue — so the numbers do not depend on the executor, the number of jobs, the
order of completion or on which points were already done::

    digest   = SHA-256(canonical JSON of {dotted key: value} for the point)
    key_ints = the first 16 bytes of ``digest`` as four big-endian uint32
    seed     = seed_sequence(base_seed, Stream.SWEEP, *key_ints).generate_state(1)[0]

(adding a point to a grid, or reordering the grid's keys, leaves every other point's seed unchanged).

Resuming. Each finished point is persisted atomically under ``DIR/points/<store key>.csv`` (its summary
rows with the swept keys in front) followed by ``DIR/points/<store key>.json`` (parameters, timing; its
presence marks the point done). The store key hashes the point's resolved config (seed included), the
analyses and the hgc version, so a rerun skips exactly the points whose results would be identical and
recomputes any point whose config — or the hgc version — changed. ``sweep.csv`` is assembled from the
persisted files, in grid order, so it is the same bytes whether the points ran in one go or across
interrupted runs.

Interruption (Ctrl-C, SIGTERM). A point is persisted only when its run finished: a point whose Monte Carlo
run was cut short raises instead of returning (see :func:`run_point`), so the resume recomputes it.
:func:`run_sweep` then writes ``sweep.csv`` from the finished points, labelled partial in
``metadata.json`` (``"interrupted": true``, ``"complete": false``, ``"pending"``), and raises
:class:`~hgc.errors.Interrupted` carrying the :class:`SweepRun`.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from hgc import __version__
from hgc.config import TOP_LEVEL_KEYS, ExperimentConfig, config_from_mapping, read_yaml, set_dotted
from hgc.errors import ConfigError, Interrupted
from hgc.interrupts import deferred_interrupts
from hgc.output import atomic_write_text, csv_text, run_metadata, write_csv, write_json, write_yaml
from hgc.progress import NO_PROGRESS, ProgressFactory
from hgc.rng import Stream, seed_sequence
from hgc.validation import as_list, as_mapping, as_name, check_keys, describe, join, suggestion

SWEEP_KEYS = ("name", "description", "base", "grid", "zip", "analyses")
ANALYSES = ("simulate", "optimize")
POINTS_DIR = "points"


# ----------------------------------------------------------------------------------------------------
# Sweep files


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep file.

    ``grid`` and ``zip`` map dotted config keys (``"timing.edge.process.p"``) to their value lists, in file
    order; ``base_raw`` is the base config mapping, ``base_dir`` the directory its relative trace paths are
    resolved against, ``base_source`` the base config file (``None`` when inline).
    """

    name: str
    base_raw: Mapping[str, Any]
    grid: dict[str, list[Any]]
    zip: dict[str, list[Any]]
    analyses: tuple[str, ...] = ("simulate",)
    source: Path | None = None
    base_source: Path | None = None
    base_dir: Path | None = None
    description: str = ""

    @property
    def swept_keys(self) -> list[str]:
        """The dotted keys that vary, as they appear as the first columns of ``sweep.csv``."""
        return list(self.grid) + list(self.zip)

    def to_mapping(self) -> dict[str, Any]:
        """The sweep as run, with the base config inlined (for ``sweep.resolved.yaml``)."""
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        out["base"] = copy.deepcopy(dict(self.base_raw))
        out["grid"] = copy.deepcopy(self.grid)
        if self.zip:
            out["zip"] = copy.deepcopy(self.zip)
        out["analyses"] = list(self.analyses)
        return out


def with_base_values(sweep: SweepConfig, values: Mapping[str, Any], *, origin: str = "command line") -> SweepConfig:
    """The sweep with dotted keys set in its base config for every point (like grid keys with one value).
    A key that the grid also sweeps is refused (the grid would overwrite it)."""
    if not values:
        return sweep
    base = copy.deepcopy(dict(sweep.base_raw))
    for key, value in values.items():
        if any(key == k or key.startswith(k + ".") or k.startswith(key + ".") for k in sweep.swept_keys):
            raise ConfigError("is swept by the grid of this sweep file; set it there", key, origin)
        try:
            set_dotted(base, key, value)
        except ConfigError as err:
            raise ConfigError(err.message, err.key, origin) from None
    return replace(sweep, base_raw=base)


def load_sweep(path: str | Path) -> SweepConfig:
    """Read and validate the sweep file at ``path`` (errors name the file and the key)."""
    path = Path(path)
    raw = read_yaml(path)
    try:
        return sweep_from_mapping(raw, source=path)
    except ConfigError as err:
        raise err.with_source(path) from None


def _check_dotted_key(key: Any, where: str) -> str:
    if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"expected a dotted config key such as 'timing.edge.process.p', got {describe(key)}",
                          where)
    head = key.split(".")[0]
    if head not in TOP_LEVEL_KEYS:
        raise ConfigError(f"unknown config key '{head}'{suggestion(head, TOP_LEVEL_KEYS)} "
                          f"(allowed: {', '.join(TOP_LEVEL_KEYS)})", join(where, key))
    if head == "name":
        raise ConfigError("the name cannot be swept (all points share the sweep's output directory)",
                          join(where, key))
    return key


def _value_list(value: Any, key: str) -> list[Any]:
    values = as_list(value, key)
    if not values:
        raise ConfigError("expected a non-empty list of values", key)
    for i, item in enumerate(values):
        if isinstance(item, float) and not math.isfinite(item):
            raise ConfigError(f"must be finite, got {item}", join(key, i))
    canon = [_canonical(v) for v in values]
    if len(set(canon)) != len(canon):
        raise ConfigError("lists a value twice", key)
    return values


def sweep_from_mapping(raw: Any, *, source: Path | None = None) -> SweepConfig:
    """Validate a sweep mapping (as read from YAML); ``source`` is the sweep file (relative ``base``
    paths and inline trace paths are resolved against its directory)."""
    if raw is None:
        raise ConfigError("the sweep file is empty", source=source)
    raw = as_mapping(raw, "")
    if "base" not in raw and ("topology" in raw or "timing" in raw):
        raise ConfigError("this is an experiment config (it has topology:/timing:), not a sweep file; run it with "
                          "'hgc simulate', or write a sweep file whose base: is this file", source=source)
    check_keys(raw, "", SWEEP_KEYS, ("base",))
    here = Path(source).parent if source is not None else Path(".")
    name = as_name(raw.get("name", Path(source).stem if source is not None else "sweep"), "name")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"expected a string, got {describe(description)}", "description")

    base = raw["base"]
    if isinstance(base, str):
        base_source = Path(base) if Path(base).is_absolute() else here / base
        try:
            base_raw = read_yaml(base_source)
        except ConfigError as err:
            raise ConfigError(f"{base_source}: {err.message}", "base") from None
        if not isinstance(base_raw, Mapping):
            raise ConfigError(f"{base_source}: expected a config mapping, got {describe(base_raw)}", "base")
        base_dir = base_source.parent
    elif isinstance(base, Mapping):
        base_raw, base_source, base_dir = base, None, here
    else:
        raise ConfigError(f"expected a config file path or an inline config mapping, got {describe(base)}",
                          "base")

    grid_raw = as_mapping(raw.get("grid", {}) or {}, "grid")
    grid = {_check_dotted_key(k, "grid"): _value_list(v, join("grid", k)) for k, v in grid_raw.items()}
    zip_raw = as_mapping(raw.get("zip", {}) or {}, "zip")
    zipped = {_check_dotted_key(k, "zip"): _value_list(v, join("zip", k)) for k, v in zip_raw.items()}
    lengths = {k: len(v) for k, v in zipped.items()}
    if len(set(lengths.values())) > 1:
        raise ConfigError("zipped keys need lists of equal length, got "
                          + ", ".join(f"{k}: {n}" for k, n in lengths.items()), "zip")
    keys = list(grid) + list(zipped)
    for key in zipped:
        if key in grid:
            raise ConfigError("is in both grid and zip", join("zip", key))
    for a, b in itertools.permutations(keys, 2):
        if b.startswith(a + "."):
            raise ConfigError(f"overlaps the swept key '{a}'", join("zip" if b in zipped else "grid", b))

    analyses_raw = as_list(raw.get("analyses", ["simulate"]), "analyses", allow_scalar=True)
    for i, item in enumerate(analyses_raw):
        if item not in ANALYSES:
            raise ConfigError(f"unknown analysis {describe(item)}{suggestion(str(item), ANALYSES)} "
                              f"(allowed: {', '.join(ANALYSES)})", join("analyses", i))
    if "simulate" not in analyses_raw:
        raise ConfigError("must include 'simulate' (sweep.csv holds the simulated summaries)", "analyses")
    analyses = tuple(a for a in ANALYSES if a in analyses_raw)
    return SweepConfig(name=name, base_raw=copy.deepcopy(dict(base_raw)), grid=grid, zip=zipped,
                       analyses=analyses, source=Path(source) if source is not None else None,
                       base_source=base_source, base_dir=base_dir, description=description)


# ----------------------------------------------------------------------------------------------------
# Points


def _canonical(value: Any) -> str:
    """Canonical JSON (sorted keys, no spaces) — the identity of a value for keys and seeds."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def point_seed(base_seed: int, params: Mapping[str, Any]) -> int:
    """The seed of the point with swept values ``params`` (see the module docstring)."""
    digest = hashlib.sha256(_canonical(dict(params)).encode()).digest()
    key_ints = [int.from_bytes(digest[i:i + 4], "big") for i in range(0, 16, 4)]
    return int(seed_sequence(base_seed, Stream.SWEEP, *key_ints).generate_state(1)[0])


@dataclass(frozen=True)
class SweepPoint:
    """One combination of swept values: ``index`` is its position in grid order, ``params`` the swept
    values by dotted key, ``raw`` the full config mapping that runs (seed already derived), ``store_key`` the
    name of its persisted files."""

    index: int
    params: dict[str, Any]
    raw: dict[str, Any]
    config: ExperimentConfig = field(repr=False, compare=False)
    store_key: str = ""

    @property
    def label(self) -> str:
        """``key=value, key=value`` — how the point is named in messages."""
        return ", ".join(f"{k}={_canonical(v)}" for k, v in self.params.items())


def grid_combinations(sweep: SweepConfig) -> list[dict[str, Any]]:
    """Every point's swept values, in grid order: the cartesian product of the grid keys in file order
    (the last key varies fastest), with the zipped keys as one more, innermost, axis."""
    axes: list[list[dict[str, Any]]] = [[{key: v} for v in values] for key, values in sweep.grid.items()]
    if sweep.zip:
        n = len(next(iter(sweep.zip.values())))
        axes.append([{key: values[i] for key, values in sweep.zip.items()} for i in range(n)])
    combos = []
    for parts in itertools.product(*axes):
        params: dict[str, Any] = {}
        for part in parts:
            params.update(part)
        combos.append(params)
    return combos


def store_key(config: ExperimentConfig, analyses: Sequence[str]) -> str:
    """Hex key of a point's persisted files: SHA-256 of its resolved config, analyses and hgc version."""
    identity = {"hgc_version": __version__, "analyses": sorted(analyses), "config": config.resolved()}
    return hashlib.sha256(_canonical(identity).encode()).hexdigest()[:24]


def expand_points(sweep: SweepConfig) -> list[SweepPoint]:
    """Every point of ``sweep``, validated. An invalid point is a :class:`ConfigError` naming the sweep file,
    the point's parameters and the offending key."""
    base_seed = sweep.base_raw.get("seed", 0)
    points = []
    for index, params in enumerate(grid_combinations(sweep)):
        where = f"point {index} ({', '.join(f'{k}={_canonical(v)}' for k, v in params.items())})"
        raw = copy.deepcopy(dict(sweep.base_raw))
        try:
            for key, value in params.items():
                set_dotted(raw, key, value)
            seed = raw.get("seed", base_seed)
            if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                raise ConfigError(f"expected an integer >= 0, got {describe(seed)}", "seed")
            raw["seed"] = point_seed(seed, params)
            config = config_from_mapping(raw, source=sweep.base_source, default_name=sweep.name,
                                         base_dir=sweep.base_dir)
        except ConfigError as err:
            message = f"{err.key}: {err.message}" if err.key else err.message
            raise ConfigError(message, where, sweep.source) from None
        points.append(SweepPoint(index, params, dict(config.raw), config, store_key(config, sweep.analyses)))
    return points


# ----------------------------------------------------------------------------------------------------
# Running one point (executed in worker processes: top-level and picklable)


@dataclass(frozen=True)
class PointTask:
    """What a worker needs to run one point: plain, picklable data only."""

    index: int
    store_key: str
    params: dict[str, Any]
    raw: dict[str, Any]
    base_dir: str | None
    analyses: tuple[str, ...]


@dataclass
class PointOutcome:
    """A point's result: its tables (``summary`` with the swept keys in front; ``optimize`` if asked) and
    wall-clock ``seconds``, or ``error`` (one line) and ``traceback`` when it raised."""

    index: int
    store_key: str
    params: dict[str, Any]
    seconds: float
    summary: pd.DataFrame | None = None
    optimize: pd.DataFrame | None = None
    error: str | None = None
    traceback: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _with_params(table: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    front = pd.DataFrame({key: [_cell(value)] * len(table) for key, value in params.items()},
                         index=table.index)
    return pd.concat([front, table], axis=1)


def _cell(value: Any) -> Any:
    """A swept value as a CSV cell: scalars as they are, lists and mappings as canonical JSON."""
    return _canonical(value) if isinstance(value, (list, dict, tuple)) else value


def run_point(task: PointTask) -> PointOutcome:
    """Run simulate (and optimize, if asked) for one point. Never raises for a failing point: the error
    and traceback come back in the outcome so one bad point does not stop the others."""
    from hgc.experiment import simulate  # noqa: PLC0415 - keeps worker start-up light

    start = time.perf_counter()
    try:
        config = config_from_mapping(task.raw, default_name=str(task.raw.get("name", "sweep")),
                                     base_dir=Path(task.base_dir) if task.base_dir else None)
        result = simulate(config)
        if result.run.interrupted:  # a partial point is never returned as finished
            raise Interrupted(f"point {task.index} interrupted after {result.run.trials_done} trials")
        summary = _with_params(result.summary, task.params)
        optimize = None
        if "optimize" in task.analyses:
            from hgc.optimize import optimize_table  # noqa: PLC0415 - keeps worker start-up light

            optimize = _with_params(optimize_table(config, include_timings=False), task.params)  # reproducible bytes
        return PointOutcome(task.index, task.store_key, task.params, time.perf_counter() - start,
                            summary=summary, optimize=optimize)
    except Exception as err:  # noqa: BLE001 - reported per point, the sweep goes on
        message = err.one_line() if isinstance(err, ConfigError) else f"{type(err).__name__}: {err}"
        return PointOutcome(task.index, task.store_key, task.params, time.perf_counter() - start,
                            error=message.replace("\n", " "), traceback=traceback.format_exc())


def point_task(point: SweepPoint, sweep: SweepConfig) -> PointTask:
    return PointTask(point.index, point.store_key, point.params, point.raw,
                     str(sweep.base_dir) if sweep.base_dir is not None else None, sweep.analyses)


# ----------------------------------------------------------------------------------------------------
# The resumable store


class PointStore:
    """Finished points under ``out_dir/points/``: ``<key>.csv`` (+ ``<key>.optimize.csv``) written first,
    then ``<key>.json`` as the completion marker — each atomically, so a killed run leaves every point
    either complete or absent."""

    def __init__(self, out_dir: Path):
        self.dir = Path(out_dir) / POINTS_DIR

    def _path(self, key: str, suffix: str) -> Path:
        return self.dir / f"{key}{suffix}"

    def remove_stale_temporaries(self) -> None:
        """Delete temporary files a killed run left half-written (never a finished point's files)."""
        if self.dir.is_dir():
            for tmp in self.dir.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)

    def is_done(self, key: str) -> bool:
        return self._path(key, ".json").is_file() and self._path(key, ".csv").is_file()

    def save(self, outcome: PointOutcome) -> None:
        """Persist a successful point (tables first, marker last)."""
        assert outcome.summary is not None
        write_csv(outcome.summary, self._path(outcome.store_key, ".csv"))
        if outcome.optimize is not None:
            write_csv(outcome.optimize, self._path(outcome.store_key, ".optimize.csv"))
        write_json({"index": outcome.index, "params": outcome.params, "seconds": round(outcome.seconds, 4),
                    "hgc_version": __version__}, self._path(outcome.store_key, ".json"))

    def info(self, key: str) -> dict[str, Any]:
        return json.loads(self._path(key, ".json").read_text())

    def table_text(self, key: str, suffix: str = ".csv") -> pd.DataFrame:
        """A persisted table read back *as text* (every cell a string), so reassembling never reformats."""
        return pd.read_csv(self._path(key, suffix), dtype=str, keep_default_na=False)


def assemble(points: Iterable[SweepPoint], store: PointStore, suffix: str = ".csv") -> pd.DataFrame | None:
    """The persisted tables of the finished ``points``, concatenated in grid order (cells as text)."""
    tables = [store.table_text(p.store_key, suffix) for p in points
              if store.is_done(p.store_key) and store._path(p.store_key, suffix).is_file()]
    return pd.concat(tables, ignore_index=True) if tables else None


def write_table_text(table: pd.DataFrame, path: Path) -> Path:
    """Write a table of text cells (as returned by :func:`assemble`) atomically, byte for byte."""
    return atomic_write_text(path, csv_text(table))


def failures_table(outcomes: Iterable[PointOutcome]) -> pd.DataFrame:
    """One row per failed point: index, parameters (canonical JSON), store key, error message."""
    rows = [{"point": o.index, "params": _canonical(o.params), "key": o.store_key, "error": o.error}
            for o in sorted(outcomes, key=lambda o: o.index)]
    return pd.DataFrame(rows, columns=["point", "params", "key", "error"])


# ----------------------------------------------------------------------------------------------------
# A whole sweep


@dataclass
class SweepRun:
    """What :func:`run_sweep` did: points in grid order, which were resumed / computed / failed, where the
    tables went and how long it took (``seconds``: wall clock of this invocation)."""

    points: list[SweepPoint]
    resumed: list[int]
    computed: list[PointOutcome]
    failed: list[PointOutcome]
    out_dir: Path
    seconds: float
    written: list[Path] = field(default_factory=list)
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted

    @property
    def pending(self) -> int:
        """Points neither finished (now or before) nor failed: those an interrupt left undone."""
        return len(self.points) - len(self.resumed) - len(self.computed) - len(self.failed)


def run_sweep(sweep: SweepConfig, out_dir: Path, executor: Any, *,
              points: list[SweepPoint] | None = None, progress: ProgressFactory | None = None,
              metadata: Mapping[str, Any] | None = None) -> SweepRun:
    """Run every point of ``sweep`` not already persisted under ``out_dir`` on ``executor`` (an
    :class:`hgc.executors.Executor`), persisting each as it finishes, then write ``sweep.csv`` (grid order),
    ``optimize.csv`` (if asked), ``failures.csv`` (if any point failed), ``sweep.resolved.yaml`` and
    ``metadata.json``.

    ``progress`` draws a bar advanced once per finished point (resumed points count as done).

    On Ctrl-C / SIGTERM the tables of the points finished so far are written, labelled partial, and
    :class:`~hgc.errors.Interrupted` is raised with the :class:`SweepRun` as ``partial``.
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    points = expand_points(sweep) if points is None else points
    store = PointStore(out_dir)
    store.remove_stale_temporaries()
    resumed = [p.index for p in points if store.is_done(p.store_key)]
    todo = [point_task(p, sweep) for p in points if not store.is_done(p.store_key)]
    bar = (progress or NO_PROGRESS)(len(points), f"sweep {sweep.name}", "point")
    bar.update(len(resumed))
    computed: list[PointOutcome] = []
    failed: list[PointOutcome] = []
    interrupted = False
    try:
        for task, outcome, error in executor.run(run_point, todo):
            if isinstance(error, KeyboardInterrupt):
                raise error
            if error is not None:  # the executor itself failed for this task (e.g. a worker died)
                outcome = PointOutcome(task.index, task.store_key, task.params, float("nan"),
                                       error=f"{type(error).__name__}: {error}".replace("\n", " "))
            if outcome.ok:
                with deferred_interrupts():
                    store.save(outcome)
                    computed.append(outcome)
            else:
                failed.append(outcome)
            if bar is not None:
                bar.update(1)
                state = "ok" if outcome.ok else "FAILED"
                bar.set_postfix_str(f"last: point {outcome.index} {state} {outcome.seconds:.2f}s")
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if bar is not None:
            bar.close()

    with deferred_interrupts():  # the summary files describe one state of the store
        run = _write_outputs(sweep, out_dir, points, store, resumed, computed, failed, start, metadata, interrupted)
    if interrupted:
        raise Interrupted(f"sweep interrupted with {run.pending} of {len(points)} points pending", run)
    return run


def _write_outputs(sweep: SweepConfig, out_dir: Path, points: list[SweepPoint], store: PointStore,
                   resumed: list[int], computed: list[PointOutcome], failed: list[PointOutcome], start: float,
                   metadata: Mapping[str, Any] | None, interrupted: bool) -> SweepRun:
    """``sweep.csv``, ``optimize.csv``, ``failures.csv``, ``sweep.resolved.yaml`` and ``metadata.json``."""
    written = []
    summary = assemble(points, store)
    if summary is not None:
        written.append(write_table_text(summary, out_dir / "sweep.csv"))
    elif (out_dir / "sweep.csv").exists():
        (out_dir / "sweep.csv").unlink()  # left by an earlier sweep whose points are not in this grid
    if "optimize" in sweep.analyses:
        optimize = assemble(points, store, ".optimize.csv")
        if optimize is not None:
            written.append(write_table_text(optimize, out_dir / "optimize.csv"))
    failures_path = out_dir / "failures.csv"
    if failed:
        written.append(write_csv(failures_table(failed), failures_path))
    elif failures_path.exists():
        failures_path.unlink()  # a rerun that fixed every failure
    write_yaml(sweep.to_mapping(), out_dir / "sweep.resolved.yaml")

    seconds = time.perf_counter() - start
    timings: list[dict[str, Any]] = []
    for point in points:
        if store.is_done(point.store_key):
            info = store.info(point.store_key)
            status = "resumed" if point.index in resumed else "ok"
            timings.append({"point": point.index, "key": point.store_key, "params": point.params,
                            "status": status, "seconds": info.get("seconds")})
    for outcome in failed:
        timings.append({"point": outcome.index, "key": outcome.store_key, "params": outcome.params,
                        "status": "failed", "seconds": round(outcome.seconds, 4), "error": outcome.error,
                        "traceback": outcome.traceback})
    timings.sort(key=lambda t: int(t["point"]))
    run = SweepRun(points, resumed, computed, failed, out_dir, seconds, written, interrupted)
    write_json(run_metadata(
        "sweep", sweep=sweep.name, source=str(sweep.source) if sweep.source else None,
        points=len(points), resumed=len(resumed), computed=len(computed), failed=len(failed),
        pending=run.pending, interrupted=interrupted, complete=run.pending == 0,
        seconds=round(seconds, 3), swept_keys=sweep.swept_keys, analyses=list(sweep.analyses),
        **(dict(metadata) if metadata else {}), point_timings=timings,
    ), out_dir / "metadata.json")
    return run
