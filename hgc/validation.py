"""Small validators for values read from YAML, in the style of scikit-learn's parameter checks.

Every function takes the value and its dotted key path (``"timing.worker.compute.rate"``) and either
returns the value converted to the expected type or raises :class:`~hgc.errors.ConfigError` saying what
was expected and what was found. The file name is attached by the caller that knows it.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from typing import Any

from hgc.errors import ConfigError


def describe(value: Any) -> str:
    """A short, quoted description of a YAML value for error messages."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if value is None:
        return "nothing (null)"
    return repr(value)


def join(key: str, child: str | int) -> str:
    """Key path of ``child`` under ``key``: ``join("a", "b") == "a.b"``, ``join("a", 2) == "a[2]"``."""
    if isinstance(child, int):
        return f"{key}[{child}]"
    return f"{key}.{child}" if key else child


def suggestion(name: str, allowed: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest allowed name, or ``""`` when nothing is close."""
    close = difflib.get_close_matches(str(name), list(allowed), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def as_mapping(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"expected a mapping, got {describe(value)}", key)
    return value


def check_keys(mapping: Mapping[str, Any], key: str, allowed: Iterable[str],
               required: Iterable[str] = ()) -> None:
    """Reject unknown keys (suggesting the nearest allowed one) and missing required keys."""
    allowed = list(allowed)
    for name in mapping:
        if name not in allowed:
            raise ConfigError(
                f"unknown key '{name}'{suggestion(name, allowed)} (allowed: {', '.join(allowed)})",
                join(key, str(name)),
            )
    for name in required:
        if name not in mapping:
            raise ConfigError(f"missing required key '{name}'", key)


def as_int(value: Any, key: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (YAML ints, or floats with an integral value such as ``1e5``) within bounds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"expected an integer, got {describe(value)}", key)
    if isinstance(value, float):
        if not value.is_integer():
            raise ConfigError(f"expected an integer, got {value!r}", key)
        value = int(value)
    if minimum is not None and value < minimum:
        raise ConfigError(f"must be >= {minimum}, got {value}", key)
    if maximum is not None and value > maximum:
        raise ConfigError(f"must be <= {maximum}, got {value}", key)
    return int(value)


def as_float(value: Any, key: str, *, minimum: float | None = None, positive: bool = False,
             maximum: float | None = None) -> float:
    """A finite real number; ``positive`` requires ``> 0``, ``minimum``/``maximum`` are inclusive."""
    if isinstance(value, str):
        try:  # YAML 1.1 reads "1e-3" (no dot) as a string
            value = float(value)
        except ValueError:
            raise ConfigError(f"expected a number, got {describe(value)}", key) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"expected a number, got {describe(value)}", key)
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"must be finite, got {value}", key)
    if positive and value <= 0:
        raise ConfigError(f"must be > 0, got {value:g}", key)
    if minimum is not None and value < minimum:
        raise ConfigError(f"must be >= {minimum:g}, got {value:g}", key)
    if maximum is not None and value > maximum:
        raise ConfigError(f"must be <= {maximum:g}, got {value:g}", key)
    return value


def as_probability(value: Any, key: str) -> float:
    return as_float(value, key, minimum=0.0, maximum=1.0)


def as_list(value: Any, key: str, *, allow_scalar: bool = False) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    if allow_scalar and not isinstance(value, Mapping):
        return [value]
    raise ConfigError(f"expected a list, got {describe(value)}", key)
