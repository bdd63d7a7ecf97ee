"""Dry runs: what a command would do, decided and estimated without doing it.

``plan_<verb>(...)`` (:func:`plan_simulate`, :func:`plan_optimize`, :func:`plan_verify`, :func:`plan_train`,
:func:`plan_sweep`, :func:`plan_plot`, :func:`plan_emulate`) validates like the real run — the same loaders, the same checks of
:mod:`hgc.limits`, the same refusals — and returns a :class:`RunPlan`: the schemes as they will run
(``auto`` values as "chosen at run time by ..."), the system and the amount of work (trials, passes,
straggler patterns, iterations, sweep points, the optimizer's rows and exhaustive search spaces), the
output directory and the files that would be written there, and estimates of memory and wall time.
``plan.text()`` is what ``--dry-run`` prints. Nothing is written: no output directory, no result file.

**Memory** is the same arithmetic the run uses, on top of this process's own peak (the interpreter and
libraries, measured): the simulator's pass sizing (:func:`hgc.simulation.plan_passes`), the code and
training estimates of :mod:`hgc.limits`; the plan also states each estimated limit and how close the run is.

**Time** is calibrated: a small timed run of the work that grows with the run's size — one Monte Carlo
pass of the run's strategies, a batch of straggler patterns of one of its codes, a few training
iterations — on this machine, extrapolated linearly, plus the start-up measured on the way (compiled
kernels, the dataset). Strategies that a search chooses at run time are timed as uncoded stand-ins on all
nodes (the same number of strategies on the same system), and the searches themselves (``auto`` values,
the optimizer's rows) are listed but not timed: running them would be the run. A :class:`Calibration` with
another ``clock`` makes the estimates deterministic (tests).

**Limits.** A run above an estimated limit (:mod:`hgc.limits`) is *planned* all the same, with the limit it
would hit in the plan and in :attr:`RunPlan.refusal`, the error the real run stops with (the command line
prints the plan, then that error, and exits with status 2); with ``allow_large`` the plan notes the limit
and the run would go ahead. Hard limits and invalid input raise :class:`~hgc.errors.ConfigError` at once,
as in the real run.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from hgc import limits
from hgc.errors import ConfigError

if TYPE_CHECKING:
    from hgc.config import ExperimentConfig
    from hgc.schemes import SchemeSpec, Strategy
    from hgc.sweep import SweepConfig
    from hgc.timing import TimingModel

RESULTS_DIR = Path("results")
"""Where results go without ``--out``: ``results/<name>/`` relative to the working directory."""

WARMUP_TRIALS = 64
"""Trials of the untimed-as-work first Monte Carlo call (it loads the compiled kernels: the start-up)."""
CALIBRATION_PATTERNS = 2048
"""Straggler patterns decoded to time one code (at most; fewer when the code has fewer)."""
CALIBRATION_ITERATIONS = 3
"""Training iterations timed for one scheme."""

SIMULATE_FILES = ("summary.csv", "quantiles.csv", "config.resolved.yaml", "metadata.json")
OPTIMIZE_FILES = ("optimize.csv", "config.resolved.yaml", "metadata.json")
VERIFY_FILES = ("verify.csv", "config.resolved.yaml", "metadata.json")
TRAIN_FILES = ("train.csv", "train_summary.csv", "config.resolved.yaml", "metadata.json")
EMULATE_FILES = ("emulate.csv", "emulate_summary.csv", "config.resolved.yaml", "metadata.json")
"""The files each command writes into its output directory (``tests/test_dry_run.py`` checks them
against real runs)."""


# ----------------------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True)
class Estimate:
    """One term of an estimate: ``value`` of ``what`` (seconds or bytes; ``None`` when it is not
    estimated) and ``basis``, how it was obtained."""

    what: str
    value: float | None
    basis: str = ""


@dataclass(frozen=True)
class Calibration:
    """How a plan times its small calibration runs: ``clock`` (seconds; inject another to make estimates
    deterministic) and ``enabled`` (``False``: no calibration run, no time estimate)."""

    clock: Callable[[], float] = time.perf_counter
    enabled: bool = True

    def time(self, work: Callable[[], object]) -> float:
        """Seconds ``work()`` takes by :attr:`clock`."""
        started = self.clock()
        work()
        return max(0.0, self.clock() - started)


def _calibration(calibration: Calibration | bool | None) -> Calibration:
    if isinstance(calibration, Calibration):
        return calibration
    return Calibration(enabled=calibration is not False)


@dataclass
class RunPlan:
    """What a command would do (see the module docstring).

    ``facts`` holds the plan's numbers by name (``edges``, ``workers``, ``trials``, ``passes``,
    ``patterns``, ``points``, ``search_space``, ``working_bytes``, ``limit_memory_bytes``, ...; which ones
    depends on the command); ``details`` the command's own lines (heading, text); ``memory`` and ``time``
    the estimate terms; ``limits`` one line per estimated limit; ``refusal`` the error the real run would
    stop with (``None`` if it would run).
    """

    verb: str
    name: str
    source: str | None = None
    schemes: list[tuple[str, str]] = field(default_factory=list)
    details: list[tuple[str, str]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    out_dir: Path | None = None
    files: list[str] = field(default_factory=list)
    memory: list[Estimate] = field(default_factory=list)
    time: list[Estimate] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    refusal: ConfigError | None = None

    @property
    def seconds(self) -> float | None:
        """Estimated wall time (seconds) of the terms that are estimated; ``None`` if none is."""
        known = [t.value for t in self.time if t.value is not None]
        return float(sum(known)) if known else None

    @property
    def peak_bytes(self) -> int | None:
        """Estimated peak memory (bytes): the sum of the memory terms; ``None`` if there are none."""
        known = [m.value for m in self.memory if m.value is not None]
        return int(sum(known)) if known else None

    def text(self, width: int | None = None) -> str:
        """The plan as ``--dry-run`` prints it, wrapped to ``width`` columns (default: the terminal's)."""
        width = max(60, width or shutil.get_terminal_size((100, 24)).columns)
        what = f" of {self.source}" if self.source else ""
        lines = [f"hgc {self.verb}: dry run{what} (nothing is written)"]
        rows: list[tuple[str, str, int]] = []     # heading, text, indent of continuation lines
        if self.schemes:
            labels = max(len(label) for label, _ in self.schemes)
            for i, (label, how) in enumerate(self.schemes):
                rows.append(("schemes" if i == 0 else "", f"{label.ljust(labels)}  {how}".rstrip(), labels + 2))
        rows += [(heading, text, 2) for heading, text in self.details]
        if self.out_dir is not None:
            rows.append(("output", _output_text(self), 2))
        if self.memory:
            rows.append(("memory", _sum_text(self.memory, _bytes_text), 2))
        rows += [("limits" if i == 0 else "", line, 2) for i, line in enumerate(self.limits)]
        if self.time:
            rows.append(("time", _sum_text(self.time, _seconds_text), 2))
            missing = [f"{t.what} ({t.basis})" if t.basis else t.what for t in self.time if t.value is None]
            if missing:
                rows.append(("", "not estimated (on top): " + "; ".join(missing), 2))
        rows += [("note" if i == 0 else "", note, 2) for i, note in enumerate(self.notes)]
        if self.refusal is not None:
            rows.append(("REFUSED", f"the real run stops here: {self.refusal.message} (exit status 2)", 2))
        head = max(len(h) for h, _, _ in rows) + 2 if rows else 0
        for heading, text, hang in rows:
            lines += textwrap.wrap(text, width, initial_indent=heading.ljust(head),
                                   subsequent_indent=" " * (head + min(hang, width // 2)),
                                   break_on_hyphens=False, break_long_words=False) or [heading]
        return "\n".join(lines)


def _sum_text(parts: Sequence[Estimate], unit: Callable[[float], str]) -> str:
    known = [p for p in parts if p.value is not None]
    if not known:
        return "not estimated"
    terms = [f"{unit(float(p.value or 0.0))} {p.what}" + (f" ({p.basis})" if p.basis else "") for p in known]
    total = sum(float(p.value or 0.0) for p in known)
    bound = "at least " if len(known) < len(parts) else ""    # the terms not estimated come on top
    return f"{bound}~{unit(total)}" + (": " + " + ".join(terms) if len(terms) > 1 else f": {terms[0]}")


def _seconds_text(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.2g} s" if seconds < 1 else f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _bytes_text(n_bytes: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes >= size:
            return f"{n_bytes / size:.3g} {unit}"
    return f"{n_bytes:.0f} B"


def _count(n: float) -> str:
    """An integer with thousands separators, or in scientific notation beyond 10^12."""
    return f"{int(n):,}" if n < 1e12 else f"{n:.3g}"


# ----------------------------------------------------------------------------------------------------
# Pieces every plan uses


def check_output_dir(path: Path) -> str:
    """Whether results could be written to ``path``, checked without creating anything: ``"exists"`` or
    ``"would be created"``; a :class:`ConfigError` (as the real run's) when it could not be written."""
    path = Path(path)
    try:
        if path.exists():
            if not path.is_dir():
                raise ConfigError(f"cannot write results to {path}: it exists and is not a directory")
            if not os.access(path, os.W_OK | os.X_OK):
                raise ConfigError(f"cannot write results to {path}: Permission denied")
            return "exists"
        parent = path.absolute().parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            raise ConfigError(f"cannot write results to {path}: Not a directory")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise ConfigError(f"cannot write results to {path}: Permission denied")
    except ConfigError:
        raise
    except ValueError as err:  # e.g. an embedded NUL in the path
        raise ConfigError(f"cannot write results to {path}: {err}") from None
    return "would be created"


def _output(plan: RunPlan, out_dir: Path | None, files: Sequence[str]) -> None:
    """Set the plan's output directory (default ``results/<name>``) and files, checked as writable."""
    plan.out_dir = Path(out_dir) if out_dir is not None else RESULTS_DIR / plan.name
    plan.files = list(files)
    state = check_output_dir(plan.out_dir)
    replaced = [f for f in files if (plan.out_dir / f).is_file()] if state == "exists" else []
    plan.facts.update(output=state, replaced=replaced)


def _output_text(plan: RunPlan) -> str:
    state = plan.facts.get("output", "")
    replaced = plan.facts.get("replaced", [])
    if replaced:
        state += f"; {len(replaced)} of these files would be replaced"
    return f"{plan.out_dir}{os.sep} ({state}): {', '.join(plan.files)}"


def _source(config: ExperimentConfig) -> str | None:
    return str(config.source) if config.source is not None else None


def scheme_lines(schemes: Sequence[SchemeSpec]) -> list[tuple[str, str]]:
    """``(label as written, how its auto values are chosen)`` per scheme."""
    return [(spec.label, spec.scheme.resolution(spec)) for spec in schemes]


def system_text(config: ExperimentConfig) -> str:
    topo = config.topology
    sizes = topo.workers
    per_edge = f"{sizes[0]} each" if len(set(sizes)) == 1 else ", ".join(map(str, sizes[:12])) + (
        ", ..." if len(sizes) > 12 else "")
    return f"{topo.n_edges} edges, {topo.n_workers} workers ({per_edge})"


def process_bytes() -> int | None:
    """This process's peak resident memory so far (bytes), the interpreter and libraries a run starts
    from; ``None`` where the platform does not say."""
    try:
        import resource  # noqa: PLC0415 - not on every platform
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _base_memory() -> list[Estimate]:
    base = process_bytes()
    return [Estimate("interpreter and libraries", base, "this process")] if base is not None else []


def _apply_limits(plan: RunPlan, check: Callable[[bool], None], allow_large: bool) -> None:
    """Run an estimated-limit check as the real run does. A hard limit (one ``allow_large`` does not lift)
    raises; an estimated limit becomes ``plan.refusal`` (or a note when ``allow_large``)."""
    try:
        check(False)
        return
    except ConfigError as err:
        check(True)     # a hard limit raises here: the real run stops there too, with nothing to plan
        if allow_large:
            message = err.message.removesuffix("; make it smaller or pass --allow-large")
            plan.limits.append(f"above an estimated limit, allowed by --allow-large: {message}")
        elif plan.refusal is None:
            plan.refusal = err


def _strategies(config: ExperimentConfig, baseline_always: bool = True) -> tuple[list[Strategy], list[SchemeSpec]]:
    """The strategies of ``config``'s schemes as far as they are known without a search (schemes chosen
    at run time stand in as the uncoded strategy on all nodes: the same number of strategies on the same
    system), the baseline appended when the run adds it; and the specs a search resolves."""
    from hgc.schemes import BASELINE, ResolveContext, baseline_spec  # noqa: PLC0415

    context = ResolveContext(config.timing, config.seed)
    spec = baseline_spec()
    baseline = spec.scheme.resolve(spec, context).strategy
    strategies: list[Strategy] = []
    searched: list[SchemeSpec] = []
    for spec in config.schemes:
        if spec.scheme.resolution(spec):
            strategies.append(baseline)
            searched.append(spec)
        else:
            strategies.append(spec.scheme.resolve(spec, context).strategy)
    if baseline_always and not any(s.kind == BASELINE for s in config.schemes):
        strategies.append(baseline)
    return strategies, searched


@dataclass(frozen=True)
class MonteCarloSizes:
    """How the simulator cuts a run: stream blocks, passes under the memory budget, working arrays."""

    block_trials: int
    pass_trials: int
    passes: int
    bytes_per_trial: int
    working_bytes: int
    backend: str


def monte_carlo_sizes(model: TimingModel, strategies: Sequence[Strategy], trials: int,
                      memory: int | None = None, backend: str | None = None) -> MonteCarloSizes:
    """The simulator's own sizing of a run of ``trials`` trials (:func:`hgc.simulation.plan_passes`; a
    budget too small raises its :class:`ConfigError`): the working arrays of one pass, in bytes."""
    from hgc.simulation import default_backend, plan_passes, working_bytes_per_trial  # noqa: PLC0415

    nodes = model.topology.n_workers + model.topology.n_edges
    backend = backend or default_backend(int(trials) * nodes * len(strategies))
    block, pass_blocks = plan_passes(model, strategies, memory, backend)
    pass_trials = block * pass_blocks
    blocks = -(-trials // block)
    per_trial = working_bytes_per_trial(model, strategies, backend)
    return MonteCarloSizes(block, pass_trials, -(-blocks // pass_blocks), per_trial,
                           per_trial * min(pass_trials, trials), backend)


def _calibrate_monte_carlo(calibration: Calibration, model: TimingModel, strategies: Sequence[Strategy],
                           sizes: MonteCarloSizes, trials: int, seed: int,
                           memory: int | None) -> tuple[float, float, int] | None:
    """``(start-up seconds, seconds per trial, trials timed)``: a first small run loads the compiled
    kernels (the start-up), then one pass of the run's size is timed."""
    if not calibration.enabled or trials <= 0:
        return None
    from hgc.simulation import run_strategies  # noqa: PLC0415

    sample = min(trials, sizes.pass_trials)

    def run(n: int) -> None:
        run_strategies(model, strategies, seed=seed, trials=n, memory=memory, backend=sizes.backend)

    startup = calibration.time(lambda: run(min(sample, WARMUP_TRIALS)))
    seconds = calibration.time(lambda: run(sample))
    return startup, seconds / sample, sample


def _monte_carlo_limits(plan: RunPlan, config: ExperimentConfig, trials: int) -> None:
    from hgc.simulation import CHUNK_TRIALS  # noqa: PLC0415

    topo = config.topology
    chunk = limits.monte_carlo_bytes(topo, min(trials, CHUNK_TRIALS))
    draws = trials * (topo.n_workers + topo.n_edges)
    plan.facts.update(limit_memory_bytes=chunk, sampled_delays=draws)
    plan.limits.append(f"Monte Carlo chunk ~{_bytes_text(chunk)} of {_bytes_text(limits.MAX_MEMORY_BYTES)}; "
                       f"{draws:.3g} sampled delays of {limits.MAX_SAMPLED_DELAYS:.3g}")


def _searches(specs: Sequence[SchemeSpec], where: str = "") -> Estimate:
    labels = ", ".join(spec.label for spec in specs)
    return Estimate(f"choosing {len(specs)} scheme{'s' if len(specs) > 1 else ''} at run time{where}",
                    None, f"{labels}: searches, not timed")


# ----------------------------------------------------------------------------------------------------
# simulate


def plan_simulate(config: ExperimentConfig, *, trials: int | None = None, seed: int | None = None,
                  out_dir: Path | None = None, memory: int | None = None, allow_large: bool = False,
                  calibration: Calibration | bool | None = None) -> RunPlan:
    """The plan of :func:`hgc.experiment.simulate` (``hgc simulate``) on ``config``; ``trials``/``seed``
    override the config's as there (``trials`` names ``--trials`` in limit messages), ``memory`` is the
    simulator's budget (bytes), ``out_dir`` defaults to ``results/<name>``."""
    calibration = _calibration(calibration)
    config = config.with_overrides(seed=seed, trials=trials)
    n_trials = int(config.trials)
    plan = RunPlan("simulate", config.name, _source(config), scheme_lines(config.schemes))
    _output(plan, out_dir, SIMULATE_FILES)
    _apply_limits(plan, lambda allow: limits.check_run(config, "simulate", trials=trials, allow_large=allow),
                  allow_large)
    strategies, searched = _strategies(config)
    added = len(strategies) - len(config.schemes)
    if added:
        plan.schemes.append(("(uncoded)", "the baseline of the speedup column, simulated on the same draws"))
    sizes = monte_carlo_sizes(config.timing, strategies, n_trials, memory)
    plan.details.append(("system", system_text(config)))
    plan.details.append(("work", f"{_count(n_trials)} trials (seed {config.seed}) of {len(strategies)} strategies on the "
                                 f"same draws: {_plural(sizes.passes, 'pass')} of up to {_count(sizes.pass_trials)} trials "
                                 f"(stream blocks of {sizes.block_trials})"))
    plan.facts.update(edges=config.topology.n_edges, workers=config.topology.n_workers,
                      workers_per_edge=list(config.topology.workers), trials=n_trials, seed=config.seed,
                      strategies=len(strategies), passes=sizes.passes, pass_trials=sizes.pass_trials,
                      block_trials=sizes.block_trials, working_bytes=sizes.working_bytes)
    budget = memory if memory is not None else _default_memory()
    plan.memory = _base_memory() + [Estimate(
        "simulator working arrays", sizes.working_bytes,
        f"passes of {_count(min(sizes.pass_trials, n_trials))} trials; budget {_bytes_text(budget)}")]
    _monte_carlo_limits(plan, config, n_trials)
    measured = _calibrate_monte_carlo(calibration, config.timing, strategies, sizes, n_trials, config.seed, memory)
    if measured is not None:
        startup, per_trial, sample = measured
        plan.facts.update(seconds_per_trial=per_trial)
        plan.time += [Estimate("start-up", startup, "compiled kernels, measured"),
                      Estimate("Monte Carlo", per_trial * n_trials,
                               f"calibrated on {_count(sample)} trials here, linear in trials")]
    if searched:
        plan.time.append(_searches(searched))
    plan.notes.append("with --executor process or dask, the Monte Carlo part divides over the workers")
    return plan


def _default_memory() -> int:
    from hgc.simulation import DEFAULT_MEMORY  # noqa: PLC0415

    return DEFAULT_MEMORY


# ----------------------------------------------------------------------------------------------------
# optimize


def plan_optimize(config: ExperimentConfig, *, method: str = "greedy", trials: int | None = None,
                  seed: int | None = None, out_dir: Path | None = None, allow_large: bool = False,
                  calibration: Calibration | bool | None = None) -> RunPlan:
    """The plan of :func:`hgc.optimize.optimize` (``hgc optimize``): its rows, decided by the same rules
    (:meth:`~hgc.schemes.Scheme.optimize_outline`), with the exhaustive rows' search spaces (the
    ``search_space`` column), and the Monte Carlo check."""
    from hgc.optimizer import METHODS  # noqa: PLC0415
    from hgc.schemes import OptimizeContext, all_schemes  # noqa: PLC0415

    if method not in METHODS:
        raise ConfigError(f"unknown method '{method}' (one of: {', '.join(METHODS)})", "method")
    calibration = _calibration(calibration)
    config = config.with_overrides(seed=seed, trials=trials)
    n_trials = int(config.trials)
    plan = RunPlan("optimize", config.name, _source(config))
    _output(plan, out_dir, OPTIMIZE_FILES)
    _apply_limits(plan, lambda allow: limits.check_run(config, "optimize", trials=trials, allow_large=allow),
                  allow_large)
    context = OptimizeContext(config.timing, config.seed, method=method)
    schemes = all_schemes()
    for scheme in schemes:
        scheme.validate_optimize(context)
    rows = [row for scheme in schemes for row in scheme.optimize_outline(context)]
    labels = max((len(r.label) for r in rows), default=0)
    for i, row in enumerate(rows):
        space = f", {_count(row.space)} candidates" if row.space is not None else ""
        plan.details.append(("rows" if i == 0 else "", f"{row.label.ljust(labels)}  {row.method}{space}: {row.note}"))
    plan.details.insert(0, ("system", system_text(config)))
    spaces = {r.label: r.space for r in rows if r.space is not None}
    plan.facts.update(edges=config.topology.n_edges, workers=config.topology.n_workers, trials=n_trials,
                      seed=config.seed, method=method, rows=[r.label for r in rows], search_space=spaces)

    from hgc.schemes import ResolveContext, baseline_spec  # noqa: PLC0415

    spec = baseline_spec()
    stand_in = spec.scheme.resolve(spec, ResolveContext(config.timing, config.seed)).strategy
    strategies = [stand_in] * len(rows)        # the rows' strategies come from the searches
    sizes = monte_carlo_sizes(config.timing, strategies, n_trials)
    plan.details.append(("work", f"Monte Carlo check of every row: {_count(n_trials)} trials (seed {config.seed}) in "
                                 f"{_plural(sizes.passes, 'pass')} of up to {_count(sizes.pass_trials)} trials"))
    plan.facts.update(strategies=len(rows), passes=sizes.passes, working_bytes=sizes.working_bytes)
    plan.memory = _base_memory() + [Estimate("simulator working arrays", sizes.working_bytes,
                                             f"passes of {_count(min(sizes.pass_trials, n_trials))} trials")]
    _monte_carlo_limits(plan, config, n_trials)
    measured = _calibrate_monte_carlo(calibration, config.timing, strategies, sizes, n_trials, config.seed, None)
    if measured is not None:
        startup, per_trial, sample = measured
        plan.time += [Estimate("start-up", startup, "compiled kernels, measured"),
                      Estimate("Monte Carlo check", per_trial * n_trials,
                               f"calibrated on {_count(sample)} trials here, linear in trials")]
    searched = [r for r in rows if r.method not in ("fixed",)]
    plan.time.append(Estimate(f"the analytic evaluation of {len(rows)} rows and {len(searched)} searches", None,
                              ", ".join(f"{r.label} ({_count(r.space)} candidates)" if r.space is not None else r.label
                                        for r in searched) + ": not timed; they do not grow with trials"))
    return plan


# ----------------------------------------------------------------------------------------------------
# verify


@dataclass(frozen=True)
class CodeWork:
    """One code ``hgc verify`` checks, from sizes alone: the index of its scheme in the config,
    ``workers``, ``partitions`` (K; ``None``: inadmissible, listed without decoding), the number of maximal
    straggler patterns (``count``) and how many are decoded (``patterns``)."""

    scheme: int
    workers: int
    partitions: int | None
    count: int
    patterns: int

    @property
    def exhaustive(self) -> bool:
        return self.count == self.patterns

    @property
    def work(self) -> int:
        """Decoding operations as :mod:`hgc.limits` counts them: patterns × workers × max(workers, K)."""
        return self.patterns * self.workers * max(self.workers, self.partitions or 0)


def verify_codes(config: ExperimentConfig, max_patterns: int, cap: float = math.inf) -> tuple[list[CodeWork], bool]:
    """Every code ``hgc verify`` checks (:meth:`~hgc.schemes.Scheme.verify_work`; node selections in their
    worst case), until the decoding work passes ``cap``; ``(codes, complete)``."""
    out: list[CodeWork] = []
    total = 0
    for index, spec in enumerate(config.schemes):
        for n, smallest, count in spec.scheme.verify_work(spec, config.topology):
            k = (config.data.partitions or smallest) if smallest is not None else None
            code = CodeWork(index, n, k, count, min(count, max_patterns) if k is not None else 0)
            out.append(code)
            total += code.work
            if total > cap:
                return out, False
    return out, True


def plan_verify(config: ExperimentConfig, *, max_patterns: int | None = None, seed: int | None = None,
                out_dir: Path | None = None, allow_large: bool = False,
                calibration: Calibration | bool | None = None) -> RunPlan:
    """The plan of ``hgc verify``: the codes of every scheme, their straggler patterns (all of them when a
    code has at most ``max_patterns``, else that many sampled), code memory, and the time to build and
    decode them, calibrated per scheme on its largest code."""
    from hgc.verify import DEFAULT_PATTERNS  # noqa: PLC0415

    calibration = _calibration(calibration)
    config = config.with_overrides(seed=seed)
    max_patterns = int(max_patterns if max_patterns is not None else DEFAULT_PATTERNS)
    plan = RunPlan("verify", config.name, _source(config), scheme_lines(config.schemes))
    _output(plan, out_dir, VERIFY_FILES)
    _apply_limits(plan, lambda allow: limits.check_run(config, "verify", max_patterns=max_patterns,
                                                       allow_large=allow), allow_large)
    cap = math.inf if allow_large else 2 * limits.MAX_DECODE_WORK
    codes, complete = verify_codes(config, max_patterns, cap)
    plan.details.append(("system", system_text(config)))
    groups: dict[int, list[CodeWork]] = {}
    for code in codes:
        groups.setdefault(code.scheme, []).append(code)
    for i, (index, group) in enumerate(groups.items()):
        skipped = sum(c.partitions is None for c in group)
        sampled = sum(not c.exhaustive for c in group if c.partitions is not None)
        decoded = sum(c.patterns for c in group)
        text = (f"{config.schemes[index].label}: {_plural(len(group), 'code')}, {_plural(decoded, 'pattern')} "
                + (f"({_plural(sampled, 'code')} sampled)" if sampled else "(all of them)")
                + (f"; {skipped} inadmissible, listed without decoding" if skipped else ""))
        plan.details.append(("codes" if i == 0 else "", text))
    if not complete:
        plan.details.append(("", f"... (stopped counting above {cap:.3g} decoding operations)"))
    patterns = sum(c.patterns for c in codes)
    work = sum(c.work for c in codes)
    plan.details.append(("work", f"{_plural(patterns, 'straggler pattern')} decoded over {_plural(len(codes), 'code')} "
                                 f"(at most {_count(max_patterns)} per code; seed {config.seed})"))
    plan.facts.update(edges=config.topology.n_edges, workers=config.topology.n_workers, codes=len(codes),
                      patterns=patterns, max_patterns=max_patterns, decode_work=work)
    admissible = [c for c in codes if c.partitions is not None]
    largest = max((limits.code_bytes(c.workers, int(c.partitions or 0)) for c in admissible), default=0)
    plan.facts.update(limit_memory_bytes=largest)
    plan.memory = _base_memory() + [Estimate("the largest code's matrices", largest, "hgc.limits.code_bytes")]
    plan.limits.append(f"decoding {work:.3g} operations of {limits.MAX_DECODE_WORK:.3g}; largest code "
                       f"~{_bytes_text(largest)} of {_bytes_text(limits.MAX_MEMORY_BYTES)}")
    searched = {i for i, spec in enumerate(config.schemes) if _searched_in_verify(spec, config)}
    rates = _calibrate_verify(calibration, config, groups, searched, max_patterns) if admissible else {}
    if rates:
        fallback = rates[max(rates, key=lambda i: max(c.patterns for c in groups[i]))]
        build = decode = 0.0
        for code in admissible:
            seconds_build, per_op = rates.get(code.scheme, fallback)
            build += seconds_build
            decode += per_op * code.work
        plan.facts.update(seconds_per_operation={config.schemes[i].label: r[1] for i, r in rates.items()})
        what = ", ".join(f"{config.schemes[i].label}" for i in rates)
        plan.time += [Estimate(f"building {_plural(len(admissible), 'code')}", build, f"measured on {what}"),
                      Estimate("decoding", decode, f"calibrated per scheme on up to {CALIBRATION_PATTERNS} patterns of "
                                                   "its largest code, linear in patterns x workers x max(workers, K)")]
    if searched:
        plan.time.append(_searches([config.schemes[i] for i in sorted(searched)]))
        plan.notes.append("the code of a scheme chosen by a search is counted in its worst case (all nodes) and "
                          "timed at the rate of the scheme with the most patterns")
    plan.notes.append("--jobs N spreads a code's pattern batches over N processes")
    return plan


def _plural(n: int, what: str) -> str:
    return f"{_count(n)} {what}{'' if n == 1 else 'es' if what.endswith('s') else 's'}"


def _searched_in_verify(spec: SchemeSpec, config: ExperimentConfig) -> bool:
    """Whether ``hgc verify`` runs a search for ``spec``: it has values chosen at run time and its code
    sizes list one code (every admissible value is checked, without a search, when they list several)."""
    return bool(spec.scheme.resolution(spec)) and len(list(spec.scheme.verify_work(spec, config.topology))) <= 1


def _calibrate_verify(calibration: Calibration, config: ExperimentConfig, groups: dict[int, list[CodeWork]],
                      searched: set[int], max_patterns: int) -> dict[int, tuple[float, float]]:
    """Per scheme index (schemes without a search): ``(seconds to build a code, seconds per decoding
    operation)``, measured on its largest code (up to :data:`CALIBRATION_PATTERNS` patterns of it)."""
    if not calibration.enabled:
        return {}
    from hgc.rng import Stream, stream  # noqa: PLC0415
    from hgc.schemes import ResolveContext  # noqa: PLC0415
    from hgc.verify import check_code, pattern_count  # noqa: PLC0415

    context = ResolveContext(config.timing, config.seed)
    rates: dict[int, tuple[float, float]] = {}
    for index, group in groups.items():
        if index in searched or not any(c.partitions is not None for c in group):
            continue
        spec = config.schemes[index]
        cases = spec.scheme.verify_strategies(spec, context)
        def size(i: int) -> int:      # the code's whole decoding work: the choice does not depend on --patterns
            return group[i].count * group[i].workers * max(group[i].workers, group[i].partitions or 0)

        order = sorted(range(len(group)), key=lambda i: -size(i)) if len(cases) == len(group) else range(len(cases))
        for i in order:
            strategy = cases[i][0]
            if strategy is None:
                continue
            built: list[Any] = []

            def build(strategy: Strategy = strategy) -> None:
                built.append(strategy.scheme.build_code(strategy, partitions=config.data.partitions,
                                                        rng=stream(config.seed, Stream.CODES)))

            try:
                seconds_build = calibration.time(build)
            except ConfigError:
                continue   # verify lists such a code with a note, or stops with this error for a fixed scheme
            code = built[0]
            patterns = min(pattern_count(code), CALIBRATION_PATTERNS)   # a rate: independent of --patterns
            seconds = calibration.time(lambda: check_code(code, max_patterns=patterns,
                                                          rng=stream(config.seed, Stream.VERIFY)))
            rates[index] = (seconds_build, seconds / max(patterns * code.n_workers * max(code.n_workers,
                                                                                        code.n_partitions), 1))
            break
    return rates


# ----------------------------------------------------------------------------------------------------
# train


def plan_train(config: ExperimentConfig, *, iterations: int | None = None, seed: int | None = None,
               out_dir: Path | None = None, allow_large: bool = False,
               calibration: Calibration | bool | None = None) -> RunPlan:
    """The plan of :func:`hgc.training.trainer.train` (``hgc train``): dataset, schemes, iterations,
    memory (:func:`hgc.limits.training_bytes`) and time calibrated on a few iterations of one scheme."""
    calibration = _calibration(calibration)
    config = config.with_overrides(seed=seed)
    if iterations is not None:
        config = config.with_values({"train.iterations": int(iterations)})
    cfg = config.train
    n_iterations = int(cfg.iterations)
    plan = RunPlan("train", config.name, _source(config), scheme_lines(config.schemes))
    _output(plan, out_dir, TRAIN_FILES)
    _apply_limits(plan, lambda allow: limits.check_run(config, "train", iterations=iterations, allow_large=allow),
                  allow_large)
    strategies, searched = _strategies(config)
    if len(strategies) > len(config.schemes):
        plan.schemes.append(("(uncoded)", "the baseline of speedup_to_target, trained on the same delays "
                                          "(not in the tables)"))
    from hgc.training.trainer import choose_partitions  # noqa: PLC0415

    rows, features, outputs = limits.training_sizes(config)
    n_train = rows - int(round(cfg.test_fraction * rows))      # as hgc.training.datasets splits
    # K as the run chooses it, from the schemes known before any search (it raises as the run does)
    known = [i for i, spec in enumerate(config.schemes) if not spec.scheme.resolution(spec)]
    known += list(range(len(config.schemes), len(strategies)))  # the baseline the run adds, if any
    ks, warning = choose_partitions([strategies[i] for i in known], config.data.partitions, n_train)
    if config.data.partitions:
        partitions = f"K = {config.data.partitions}"
    elif warning:
        partitions = "K: each scheme its own smallest valid K (no common K within the training rows)"
    else:
        partitions = f"K = {ks[0]}" + (", or a multiple chosen with the searched schemes" if searched else "")
    plan.details.append(("system", system_text(config)))
    plan.details.append(("data", f"{cfg.dataset}: {_count(rows)} rows x {features} features, {outputs} output"
                                 f"{'s' if outputs > 1 else ''}, {cfg.model} model; {partitions}"))
    plan.details.append(("work", f"{_count(n_iterations)} iterations x {len(strategies)} schemes of coded gradient "
                                 f"descent (seed {config.seed})"))
    memory, _ = limits.training_bytes(config, n_iterations)
    plan.facts.update(edges=config.topology.n_edges, workers=config.topology.n_workers, iterations=n_iterations,
                      schemes=len(strategies), rows=rows, features=features, limit_memory_bytes=memory)
    plan.memory = _base_memory() + [Estimate("delays, dataset and codes", memory, "hgc.limits.training_bytes")]
    work = limits.training_work(config, n_iterations)
    plan.limits.append(f"memory ~{_bytes_text(memory)} of {_bytes_text(limits.MAX_MEMORY_BYTES)}; "
                       f"{work:.3g} multiply-adds of {limits.MAX_TRAIN_WORK:.3g}")
    names = [config.schemes[i].label if i < len(config.schemes) else "uncoded" for i in known]
    measured = _calibrate_training(calibration, config, [strategies[i] for i in known], ks)
    if measured is not None:
        load, setups, rates = measured
        # a scheme chosen by a search is timed at the rate of the costliest scheme known before the run
        costliest = max(rates)
        per_run = sum(rates) + costliest * (len(strategies) - len(known))
        timed = ", ".join(f"{name} (K={k})" for name, k in zip(names, ks))
        plan.time += [Estimate("dataset", load, "loaded here"),
                      Estimate(f"codes and partitions of {len(strategies)} schemes",
                               sum(setups) + max(setups) * (len(strategies) - len(known)), f"measured on {timed}"),
                      Estimate("iterations", per_run * n_iterations,
                               f"calibrated on {CALIBRATION_ITERATIONS} iterations of each of {timed}"
                               + (f", the {len(strategies) - len(known)} searched at the costliest rate"
                                  if len(strategies) > len(known) else "") + "; linear in iterations")]
        plan.facts.update(seconds_per_iteration=dict(zip(names, rates)))
        if searched and not config.data.partitions and not warning:
            plan.notes.append(f"iterations are timed at K = {ks[0]}; when a searched scheme needs a larger common K "
                              "(a multiple), each iteration costs more")
    if searched:
        plan.time.append(_searches(searched))
    return plan


def _calibrate_training(calibration: Calibration, config: ExperimentConfig, strategies: Sequence[Strategy],
                        ks: Sequence[int]) -> tuple[float, list[float], list[float]] | None:
    """``(dataset seconds, code and partition seconds per strategy, seconds per iteration per strategy)``:
    the dataset loaded, then a few iterations of each strategy on its ``K`` partitions."""
    if not calibration.enabled or not strategies:
        return None
    from hgc.rng import Stream, stream  # noqa: PLC0415
    from hgc.simulation import sample_delays  # noqa: PLC0415
    from hgc.training.datasets import load_dataset  # noqa: PLC0415
    from hgc.training.models import make_model  # noqa: PLC0415
    from hgc.training.trainer import PartitionedData, coded_descent, response_schedule  # noqa: PLC0415

    cfg = config.train
    loaded: list[Any] = []
    load = calibration.time(lambda: loaded.append(load_dataset(cfg, config.seed)))
    data = loaded[0]
    model = make_model(cfg.model, data.n_features, data.n_classes, cfg.l2)
    sample = sample_delays(config.timing, stream(config.seed, Stream.TRAIN_DELAYS), CALIBRATION_ITERATIONS)
    setups: list[float] = []
    rates: list[float] = []
    for strategy, k in zip(strategies, ks):
        built: list[Any] = []

        def setup(strategy: Strategy = strategy, k: int = k) -> None:
            built.append(strategy.scheme.build_code(strategy, partitions=k, rng=stream(config.seed, Stream.CODES)))
            built.append(PartitionedData.build(data.X_train, k))

        setups.append(calibration.time(setup))
        code, partitioned = built
        schedule = response_schedule(strategy, config, sample)
        seconds = calibration.time(lambda: coded_descent(data, model, partitioned, code, schedule, cfg.learning_rate))
        rates.append(seconds / CALIBRATION_ITERATIONS)
    return load, setups, rates


# ----------------------------------------------------------------------------------------------------
# emulate


def plan_emulate(config: ExperimentConfig, *, iterations: int | None = None, seed: int | None = None,
                 time_scale: float = 1.0, scheduler: str | None = None, jobs: int | None = None,
                 kills: Sequence[Any] = (), out_dir: Path | None = None, allow_large: bool = False) -> RunPlan:
    """The plan of :func:`hgc.emulation.runner.emulate` (``hgc emulate``): every scheme resolved and built
    as the run builds it, the cluster it would use, and as its time the model's iteration times on the
    emulation's own delay draws (scaled by ``time_scale``; an undecodable iteration lasts until its
    deadline). Cluster start-up and the platform's overhead per iteration come on top and are not
    estimated here (``docs/emulate.md`` reports measured values). No cluster is started."""
    import numpy as np  # noqa: PLC0415

    from hgc.emulation.runner import local_processes, prepare_runs  # noqa: PLC0415
    from hgc.training.datasets import load_dataset  # noqa: PLC0415

    config = config.with_overrides(seed=seed)
    if iterations is not None:
        config = config.with_values({"train.iterations": int(iterations)})
    n_iterations = int(config.train.iterations)
    plan = RunPlan("emulate", config.name, _source(config))
    _output(plan, out_dir, EMULATE_FILES)
    _apply_limits(plan, lambda allow: limits.check_run(config, "emulate", iterations=iterations, allow_large=allow),
                  allow_large)
    if plan.refusal is not None:     # too large to build the codes for a plan
        plan.schemes = scheme_lines(config.schemes)
        return plan
    data = load_dataset(config.train, config.seed)
    runs, _, warnings = prepare_runs(config, data, n_iterations, time_scale, monte_carlo=False)
    total = 0.0
    for run in runs:
        finite = np.isfinite(run.predicted)
        charged = np.where(finite, run.predicted, run.deadline)
        total += float(charged.sum())
        mean = f"{float(run.predicted[finite].mean()):.4g} s" if finite.any() else "never decodes"
        plan.schemes.append((run.label, f"{run.strategy.n_edges} edges, {run.strategy.n_workers} workers, load "
                                        f"{run.strategy.load:.4g}, K = {run.code.n_partitions}; model mean {mean}"
                                        + (f", {int((~finite).sum())} undecodable" if not finite.all() else "")))
    processes = local_processes(config, jobs, scheduler, kills)
    where = f"the Dask cluster at {scheduler}" if scheduler else f"a local cluster of {processes} processes"
    plan.details.append(("system", system_text(config)))
    plan.details.append(("work", f"{len(runs)} schemes x {_count(n_iterations)} iterations on {where} (time scale "
                                 f"{time_scale:g}, seed {config.seed}, {len(kills)} kills)"))
    memory, _ = limits.training_bytes(config, n_iterations)
    plan.memory = _base_memory() + [Estimate("delays, dataset and codes", memory, "hgc.limits.training_bytes")]
    plan.time = [Estimate("the model's time on the drawn delays", total, "the emulation's own draws, scaled"),
                 Estimate("cluster start-up, placement and per-iteration overhead", None,
                          "tens of milliseconds per iteration on a local cluster, see docs/emulate.md")]
    plan.facts.update(edges=config.topology.n_edges, workers=config.topology.n_workers, iterations=n_iterations,
                      schemes=len(runs), processes=processes, model_seconds=total)
    plan.notes += warnings
    return plan


# ----------------------------------------------------------------------------------------------------
# sweep


def plan_sweep(sweep: SweepConfig, *, out_dir: Path | None = None, workers: int = 1, allow_large: bool = False,
               calibration: Calibration | bool | None = None) -> RunPlan:
    """The plan of :func:`hgc.sweep.run_sweep` (``hgc sweep``): the grid, its points (every one validated,
    as the real run does), those already finished under ``out_dir`` (skipped on resume), per-process
    memory, and the time of the pending points' Monte Carlo runs over ``workers`` parallel workers,
    calibrated on one pass of the costliest point and scaled to the others by trials and the simulator's
    bytes per trial."""
    from hgc.sweep import POINTS_DIR, PointStore, expand_points  # noqa: PLC0415

    calibration = _calibration(calibration)
    plan = RunPlan("sweep", sweep.name, str(sweep.source) if sweep.source is not None else None)
    _output(plan, out_dir, ["sweep.csv"] + (["optimize.csv"] if "optimize" in sweep.analyses else [])
            + ["sweep.resolved.yaml", "metadata.json"])
    lengths = [len(values) for values in sweep.grid.values()]
    axes = [f"{key} ({len(values)})" for key, values in sweep.grid.items()]
    if sweep.zip:
        lengths.append(len(next(iter(sweep.zip.values()))))
        axes.append(" + ".join(sweep.zip) + f" (zipped, {lengths[-1]})")
    count = limits.sweep_size(lengths)
    plan.facts.update(points=count, analyses=list(sweep.analyses))
    plan.details.append(("grid", f"{_count(count)} points: " + " x ".join(axes)))
    plan.details.append(("analyses", ", ".join(sweep.analyses)))
    _apply_limits(plan, lambda allow: limits.check_sweep_points(count, allow_large=allow), allow_large)
    if plan.refusal is not None:
        return plan       # the real run stops before expanding the grid
    points = expand_points(sweep)
    for point in points:
        def check(allow: bool, point: Any = point) -> None:
            try:
                limits.check_monte_carlo(point.config.topology, point.config.trials, allow_large=allow)
            except ConfigError as err:
                raise ConfigError(f"{err.key}: {err.message}", f"point {point.index} ({point.label})",
                                  sweep.source) from None
        _apply_limits(plan, check, allow_large)

    store = PointStore(plan.out_dir or RESULTS_DIR / sweep.name)
    pending = [p for p in points if not store.is_done(p.store_key)]
    plan.files.append(f"{POINTS_DIR}/<key>.csv and <key>.json for each of the {len(pending)} points computed")
    trials = [int(p.config.trials) for p in points]
    sizes = [p.config.topology.n_workers for p in points]
    spread = (lambda values: _count(values[0]) if min(values) == max(values)
              else f"{_count(min(values))} to {_count(max(values))}")
    plan.details.append(("points", f"{len(pending)} to compute, {len(points) - len(pending)} already finished under "
                                   f"{plan.out_dir} (skipped); {spread(trials)} trials and {spread(sizes)} workers "
                                   "per point"))
    plan.facts.update(pending=len(pending), done=len(points) - len(pending), trials=sum(trials))

    mc: dict[int, MonteCarloSizes] = {}
    for point in points:
        try:
            mc[point.index] = monte_carlo_sizes(point.config.timing, _stand_ins(point.config),
                                                int(point.config.trials))
        except ConfigError as err:   # a point that fails fails alone; the others run
            plan.notes.append(f"point {point.index} ({point.label}) would fail: {err.one_line()}")
    if not mc:
        return plan
    parallel = max(1, min(workers, len(pending) or 1))
    working = max(s.working_bytes for s in mc.values())
    chunk = max(limits.monte_carlo_bytes(p.config.topology, min(int(p.config.trials), _chunk_trials())) for p in points)
    plan.facts.update(working_bytes=working, limit_memory_bytes=chunk, parallel=parallel)
    plan.memory = _base_memory() + [Estimate("simulator working arrays of the largest point", working, "per process")]
    if parallel > 1:
        plan.notes.append(f"memory is per worker process; {parallel} run at once")
    plan.limits.append(f"Monte Carlo chunk ~{_bytes_text(chunk)} of {_bytes_text(limits.MAX_MEMORY_BYTES)} (largest "
                       f"point); at most {max(t * (p.config.topology.n_workers + p.config.topology.n_edges) for t, p in zip(trials, points)):.3g} "
                       f"sampled delays of {limits.MAX_SAMPLED_DELAYS:.3g} per point")
    todo = [p for p in pending if p.index in mc]
    if calibration.enabled and todo:
        costliest = max(todo, key=lambda p: mc[p.index].bytes_per_trial * int(p.config.trials))
        strategies, _ = _strategies(costliest.config)
        measured = _calibrate_monte_carlo(calibration, costliest.config.timing, strategies, mc[costliest.index],
                                          int(costliest.config.trials), costliest.config.seed, None)
        if measured is not None:
            startup, per_trial, sample = measured
            per_byte_trial = per_trial / mc[costliest.index].bytes_per_trial
            total = sum(per_byte_trial * mc[p.index].bytes_per_trial * int(p.config.trials) for p in todo)
            plan.time += [Estimate("start-up", startup, "compiled kernels, measured"),
                          Estimate(f"Monte Carlo of {len(todo)} points", total / parallel,
                                   f"calibrated on {_count(sample)} trials of point {costliest.index}, scaled by "
                                   f"trials and system size, over {parallel} worker{'s' if parallel > 1 else ''}")]
    searched = sorted({spec.label for p in pending for spec in p.config.schemes if spec.scheme.resolution(spec)})
    if searched:
        plan.time.append(Estimate(f"choosing {len(searched)} schemes at run time at every point", None,
                                  f"{', '.join(searched)}: searches, not timed"))
    if "optimize" in sweep.analyses and pending:
        plan.time.append(Estimate("hgc optimize at every point", None, "its searches and Monte Carlo check, not timed"))
    return plan


def _stand_ins(config: ExperimentConfig) -> list[Strategy]:
    """As many strategies as a simulate run of ``config`` evaluates (the baseline included), each the
    uncoded one: the simulator sizes its passes by their number and the system alone."""
    from hgc.schemes import BASELINE, ResolveContext, baseline_spec  # noqa: PLC0415

    spec = baseline_spec()
    baseline = spec.scheme.resolve(spec, ResolveContext(config.timing, config.seed)).strategy
    listed = any(s.kind == BASELINE for s in config.schemes)
    return [baseline] * (len(config.schemes) + (0 if listed else 1))


def _chunk_trials() -> int:
    from hgc.simulation import CHUNK_TRIALS  # noqa: PLC0415

    return CHUNK_TRIALS


# ----------------------------------------------------------------------------------------------------
# plot


def plan_plot(directory: str | Path) -> RunPlan:
    """The plan of :func:`hgc.plotting.plot_directory` (``hgc plot DIR``): the figures it would draw and
    the CSV files each is drawn from (the files are read and checked as for drawing)."""
    from hgc.plotting import planned_figures  # noqa: PLC0415 - matplotlib only when plotting

    directory = Path(directory)
    planned = planned_figures(directory)
    plan = RunPlan("plot", directory.name, str(directory))
    _output(plan, directory, [p.file for p in planned])
    width = max(len(p.file) for p in planned)
    for i, figure in enumerate(planned):
        plan.details.append(("figures" if i == 0 else "", f"{figure.file.ljust(width)}  from {', '.join(figure.sources)}"))
    plan.facts.update(figures={p.file: list(p.sources) for p in planned})
    return plan
