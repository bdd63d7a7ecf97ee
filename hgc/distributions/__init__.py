"""Delay distributions of the timing model: one class per family, parsed from config mappings.

The families (``dist:`` names in configs) are listed in :data:`FAMILIES`; each is one class deriving
from :class:`Distribution` (see :mod:`hgc.distributions.base`), declaring its parameters and owning its
sampling and calculus. :func:`parse_distribution` validates a config mapping against the family's
parameter schema and builds it; :func:`distribution_table` renders the schemas as the documentation table.

Equal distributions compare equal and hash alike, so the simulator can draw every group of nodes that
share one distribution in a single call.

Adding a family: write one class (for a location-scale family, subclass :class:`StandardFamily` and give
the standard member's sampler, CDF, quantile, stop-loss transform, integrated CDF and mean) and list it
in :data:`FAMILIES`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from hgc.distributions.base import PARAM_CHECKS, Distribution, Param, Shape, bisect_quantiles
from hgc.distributions.empirical import Empirical
from hgc.distributions.families import (ZERO, Constant, Exponential, Gamma, LogNormal, Pareto, ShiftedExponential,
                                        StandardFamily, Uniform, Weibull)
from hgc.distributions.mixtures import Bimodal
from hgc.traces import load_trace
from hgc.errors import ConfigError
from hgc.limits import check_delay
from hgc.validation import as_float, as_mapping, as_probability, check_keys, describe, join, suggestion

FAMILIES: dict[str, type[Distribution]] = {
    cls.config_name: cls
    for cls in (Constant, Exponential, ShiftedExponential, Uniform, Gamma, LogNormal, Weibull, Pareto, Bimodal,
                Empirical)
}
"""Every family by its config name, in documentation order."""

DISTRIBUTION_NAMES = tuple(FAMILIES)

__all__ = [
    "DISTRIBUTION_NAMES", "FAMILIES", "PARAM_CHECKS", "ZERO",
    "Bimodal", "Constant", "Distribution", "Empirical", "Exponential", "Gamma", "LogNormal", "Param", "Pareto",
    "Shape", "ShiftedExponential", "StandardFamily", "Uniform", "Weibull",
    "bisect_quantiles", "distribution_table", "load_trace", "parse_distribution",
]


def _check_value(param: Param, value: Any, key: str, base_dir: Path | None) -> Any:
    """A parameter value checked as its schema says."""
    if param.check == "seconds":
        return as_float(value, key, minimum=0.0)
    if param.check == "positive":
        return as_float(value, key, positive=True)
    if param.check == "real":
        return as_float(value, key, minimum=param.minimum, maximum=param.maximum)
    if param.check == "probability":
        return as_probability(value, key)
    if param.check == "distribution":
        return parse_distribution(value, key, base_dir)
    if not isinstance(value, str) or not value:
        what = "a file path" if param.check == "path" else "a column name"
        raise ConfigError(f"expected {what}, got {describe(value)}", key)
    return value


def parse_distribution(spec: Any, key: str, base_dir: Path | None = None) -> Distribution:
    """Build a distribution from its config form.

    ``spec`` is a mapping with ``dist`` and that family's parameters, or a bare number meaning a constant
    delay in seconds. ``base_dir`` resolves relative trace-file paths. Errors name the key path.
    """
    if not isinstance(spec, Mapping):
        if isinstance(spec, (int, float)) and not isinstance(spec, bool):
            constant = Constant(as_float(spec, key, minimum=0.0))
            check_delay(constant, key)
            return constant
        raise ConfigError(f"expected a distribution mapping such as {{dist: exponential, mean: 1.0}} "
                          f"or a number of seconds, got {describe(spec)}", key)
    spec = as_mapping(spec, key)
    if "dist" not in spec:
        raise ConfigError(f"missing required key 'dist' (one of: {', '.join(DISTRIBUTION_NAMES)})", key)
    name = spec["dist"]
    if not isinstance(name, str):
        raise ConfigError(f"expected a distribution name (one of: {', '.join(DISTRIBUTION_NAMES)}), "
                          f"got {describe(name)}", join(key, "dist"))
    if name not in FAMILIES:
        raise ConfigError(f"unknown distribution {describe(name)}{suggestion(name, DISTRIBUTION_NAMES)} "
                          f"(one of: {', '.join(DISTRIBUTION_NAMES)})", join(key, "dist"))
    family = FAMILIES[name]
    grouped = {p for group in family.exactly_one_of for p in group}
    required = [p.name for p in family.parameters if p.required and p.name not in grouped]
    check_keys(spec, key, ("dist", *(p.name for p in family.parameters)), required)
    for group in family.exactly_one_of:
        given = [p for p in group if p in spec]
        if len(given) != 1:
            raise ConfigError(f"give exactly one of {' or '.join(repr(p) for p in group)}", key)
    values = {p.name: _check_value(p, spec[p.name], join(key, p.name), base_dir)
              for p in family.parameters if p.name in spec}
    dist = family.from_config(values, key, base_dir)
    check_delay(dist, key)
    return dist


def distribution_table() -> str:
    """The Markdown table of every family and its parameters (as in the README)."""
    lines = ["| `dist:` | parameters | meaning |", "| --- | --- | --- |"]
    for name, family in FAMILIES.items():
        grouped = {p for group in family.exactly_one_of for p in group}
        parts = []
        for group in family.exactly_one_of:
            parts.append(" or ".join(f"`{p}`" for p in group))
        parts = [f"`{p.name}`" + ("" if p.required else " (optional)")
                 for p in family.parameters if p.name not in grouped] + parts
        lines.append(f"| `{name}` | {', '.join(parts)} | {family.description} |")
    return "\n".join(lines)
