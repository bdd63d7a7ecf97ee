"""Fitting the platform's costs from an emulated run (``hgc emulate --calibrate``).

The emulation's measured iteration times exceed the model's prediction by what the platform adds:
dispatching tasks, notifying the edge and the master, moving messages between processes. Two timing keys
of the model can absorb it:

* a constant ``o`` (seconds) added to every worker's message (``timing.worker.overhead``): every worker's
  arrival moves by ``o``, and so does the iteration time, exactly, for every scheme;
* ``b`` (seconds) added to ``timing.edge.per_vector``, the edge → master link's time per full-length
  vector (a message of ``1/ℓ`` of a vector pays ``b/ℓ``, as the model charges it): a decoding edge's one
  vector moves by a constant, so for decoding schemes ``b`` is (nearly) indistinguishable from ``o``; a
  relaying edge pays it once per message it forwards, so relayed schemes (flat GC) tell them apart.

The worker → edge link (``timing.worker.per_vector``) is not fitted: it delays every worker's message by a
constant per scheme, which ``o`` already absorbs.

:func:`fit_platform` minimises the squared difference between the measured time and the simulator's
time on the same draws, over the decoded iterations of all schemes: for each ``b`` on a grid the best ``o``
is the mean remaining difference (clipped at 0); ``b`` is then refined around the best grid point. Without
a relaying scheme only ``o`` is fitted. Both are in *real* seconds; divided by the run's time scale they are
config seconds, which is what :func:`calibration_yaml` writes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import yaml

from hgc.config import ExperimentConfig
from hgc.distributions import ZERO, Distribution, parse_distribution
from hgc.simulation import CompiledStrategy, DelaySample
from hgc.timing import TimingModel

if TYPE_CHECKING:
    from hgc.emulation.runner import SchemeRun

GRID_POINTS = 41


@dataclass(frozen=True)
class Calibration:
    """Fitted platform costs (real seconds) and how well the model then matches the run.

    ``overhead``: constant added to every worker's message; ``per_vector``: added per vector an edge
    sends (``None`` if it could not be told apart from ``overhead``: no relaying scheme in the run);
    ``rmse_before`` / ``rmse_after``: root mean square of measured − predicted over the ``iterations``
    decoded iterations used, before and after adding the fitted costs.
    """

    overhead: float
    per_vector: float | None
    rmse_before: float
    rmse_after: float
    iterations: int
    time_scale: float

    def as_dict(self) -> dict[str, Any]:
        return {"overhead": self.overhead, "per_vector": self.per_vector, "rmse_before": self.rmse_before,
                "rmse_after": self.rmse_after, "iterations": self.iterations, "time_scale": self.time_scale}


def _with_per_vector(model: TimingModel, extra: float) -> TimingModel:
    return replace(model, per_vector=tuple(p + extra for p in model.per_vector))


def fit_platform(runs: Sequence["SchemeRun"], model: TimingModel, sample: DelaySample, time_scale: float) -> Calibration:
    """Least-squares ``overhead`` and ``per_vector`` (real seconds) for the decoded iterations of ``runs``
    (see the module docstring). ``sample`` must be the run's delay draws (``Stream.EMULATE``)."""
    picks, measured = [], []
    for run in runs:
        times = np.array([row["time"] for row in run.rows], dtype=float)
        ok = np.array([bool(row["decoded"]) for row in run.rows], dtype=bool)
        keep = ok & np.isfinite(run.predicted[:len(run.rows)])
        picks.append((run, np.flatnonzero(keep)))
        measured.append(times[keep])
    y = np.concatenate(measured) if measured else np.zeros(0)
    if y.size == 0:
        return Calibration(math.nan, None, math.nan, math.nan, 0, time_scale)

    def model_times(b: float) -> np.ndarray:
        timing = _with_per_vector(model, b / time_scale) if b else model
        parts = [CompiledStrategy(run.strategy, timing).iteration_times(sample)[0][index] * time_scale
                 for run, index in picks]
        return np.concatenate(parts)

    def fit(b: float) -> tuple[float, float]:
        rest = y - model_times(b)
        o = max(0.0, float(rest.mean()))
        return o, float(np.sqrt(np.mean((rest - o) ** 2)))

    before = float(np.sqrt(np.mean((y - model_times(0.0)) ** 2)))
    relayed = any(run.plan.relay and index.size for run, index in picks)
    if not relayed:
        o, after = fit(0.0)
        return Calibration(o, None, before, after, int(y.size), time_scale)
    upper = max(float(np.max(y - model_times(0.0))), 0.0)
    grid = np.linspace(0.0, upper, GRID_POINTS)
    errors = [fit(b)[1] for b in grid]
    best = int(np.argmin(errors))
    step = grid[1] - grid[0] if upper > 0 else 0.0
    fine = np.linspace(max(0.0, grid[best] - step), grid[best] + step, GRID_POINTS)
    b = float(fine[int(np.argmin([fit(v)[1] for v in fine]))])
    o, after = fit(b)
    return Calibration(o, b, before, after, int(y.size), time_scale)


# ----------------------------------------------------------------------------------------------------
# The YAML snippet

def _shifted(spec: dict[str, Any], offset: float) -> dict[str, Any] | None:
    """The config form of ``spec`` + a constant ``offset`` seconds, if its family can say it."""
    name = spec.get("dist")
    if name == "constant":
        return {"dist": "constant", "value": spec["value"] + offset}
    if name == "exponential":
        return {"dist": "shifted_exponential", "shift": offset, "mean": spec["mean"]}
    if name == "shifted_exponential":
        return {**spec, "shift": spec["shift"] + offset}
    if name == "uniform":
        return {"dist": "uniform", "low": spec["low"] + offset, "high": spec["high"] + offset}
    return None


def _round(value: float) -> float:
    return float(f"{value:.4g}")


def calibration_yaml(calibration: Calibration, overhead: Distribution, uplink: Distribution,
                     per_vector: float) -> str:
    """A ``timing:`` snippet with the fitted costs added to the base (non-override) keys of a config.

    ``overhead``, ``uplink`` and ``per_vector`` are the config's base ``timing.worker.overhead``,
    ``timing.worker.uplink`` and ``timing.edge.per_vector``. The constant goes into the overhead when its
    family can absorb a shift (constant, exponential, shifted exponential, uniform), else into the uplink
    when that can, else it is only reported in a comment.
    """
    scale = calibration.time_scale
    o = _round(calibration.overhead / scale)
    lines = [f"# hgc emulate --calibrate: platform costs fitted over {calibration.iterations} decoded iterations",
             f"# (real seconds divided by the time scale {scale:g}, i.e. in this config's seconds).",
             f"# RMS of measured - predicted: {calibration.rmse_before:.4g} s before, {calibration.rmse_after:.4g} s "
             "after (real seconds).",
             "# Per-node overrides of these keys are not changed."]
    worker: dict[str, Any] = {}
    shifted = _shifted(overhead.spec(), o)
    if shifted is not None:
        worker["overhead"] = {k: _round(v) if isinstance(v, float) else v for k, v in shifted.items()}
        lines.append(f"# timing.worker.overhead was {overhead.spec()}; + {o:g} s")
    else:
        shifted = _shifted(uplink.spec(), o)
        if shifted is not None:
            worker["uplink"] = {k: _round(v) if isinstance(v, float) else v for k, v in shifted.items()}
            lines.append(f"# the overhead's family cannot absorb a constant: timing.worker.uplink was "
                         f"{uplink.spec()}; + {o:g} s")
        else:
            lines.append(f"# add a constant {o:g} s to every worker's message (neither the overhead nor the uplink "
                         "family can say it)")
    edge: dict[str, Any] = {}
    if calibration.per_vector is None:
        lines.append("# timing.edge.per_vector: not identifiable without a relaying scheme (flat_gc); unchanged")
    else:
        edge["per_vector"] = _round(per_vector + calibration.per_vector / scale)
        lines.append(f"# timing.edge.per_vector was {per_vector:g}; + {calibration.per_vector / scale:.4g} s")
    timing: dict[str, Any] = {}
    if worker:
        timing["worker"] = worker
    if edge:
        timing["edge"] = edge
    body = yaml.safe_dump({"timing": timing}, sort_keys=False) if timing else ""
    return "\n".join(lines) + "\n" + body


def config_snippet(calibration: Calibration, config: ExperimentConfig) -> str:
    """:func:`calibration_yaml` for the base timing keys of ``config`` (as written, before overrides)."""
    timing = config.raw.get("timing") or {}
    worker, edge = timing.get("worker") or {}, timing.get("edge") or {}
    base_dir = config.source.parent if config.source is not None else None

    def dist(section: dict, key: str, where: str) -> Distribution:
        return parse_distribution(section[key], where, base_dir) if key in section else ZERO

    return calibration_yaml(calibration, dist(worker, "overhead", "timing.worker.overhead"),
                            dist(worker, "uplink", "timing.worker.uplink"), float(edge.get("per_vector", 0.0)))
