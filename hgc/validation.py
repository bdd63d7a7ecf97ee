"""Small validators for values read from YAML, in the style of scikit-learn's parameter checks.

Every function takes the value and its dotted key path (``"timing.worker.compute.rate"``) and either
returns the value converted to the expected type or raises :class:`~hgc.errors.ConfigError` saying what
was expected and what was found. The file name is attached by the caller that knows it.
"""

from __future__ import annotations

import difflib
import math
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from hgc.errors import ConfigError, printable

INT_LIMIT = 2**63 - 1
"""Largest magnitude of any integer in a config (int64: seeds, counts and sizes all fit)."""
SMALLEST_NORMAL = sys.float_info.min
"""Non-zero numbers closer to 0 than this (subnormal doubles, ~2.2e-308) are refused: 1/x overflows."""
DESCRIBE_LIMIT = 60
"""Longest quoted value (characters) an error message repeats back."""
NAME_LIMIT = 100
"""Longest experiment / sweep name (characters): it becomes a directory name."""


def describe(value: Any) -> str:
    """A short, quoted, single-line description of a YAML value for error messages."""
    if isinstance(value, str):
        return printable(repr(value), DESCRIBE_LIMIT)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if value is None:
        return "nothing (null)"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT_LIMIT:
        return f"an integer of {len(str(abs(value)))} digits"
    if isinstance(value, (bool, int, float)):
        return repr(value)
    return f"a value of type {type(value).__name__} ({printable(repr(value), DESCRIBE_LIMIT)})"


def join(key: str, child: str | int) -> str:
    """Key path of ``child`` under ``key``: ``join("a", "b") == "a.b"``, ``join("a", 2) == "a[2]"``."""
    if isinstance(child, int):
        return f"{key}[{child}]"
    return f"{key}.{child}" if key else child


def suggestion(name: str, allowed: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest allowed name, or ``""`` when nothing is close."""
    if not isinstance(name, str) or len(name) > 200:
        return ""
    close = difflib.get_close_matches(name, list(allowed), n=1, cutoff=0.6)
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
        if not isinstance(name, str) or name not in allowed:
            shown = printable(str(name), DESCRIBE_LIMIT)
            raise ConfigError(
                f"unknown key '{shown}'{suggestion(name, allowed)} (allowed: {', '.join(allowed)})",
                join(key, shown),
            )
    for name in required:
        if name not in mapping:
            raise ConfigError(f"missing required key '{name}'", key)


def as_int(value: Any, key: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (YAML ints, or floats with an integral value such as ``1e5``) within bounds; never
    larger in magnitude than :data:`INT_LIMIT`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"expected an integer, got {describe(value)}", key)
    written = value
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise ConfigError(f"expected an integer, got {value!r}", key)
        value = int(value)
    if minimum is not None and value < minimum:
        raise ConfigError(f"must be >= {minimum}, got {describe(written)}", key)
    upper = INT_LIMIT if maximum is None else min(maximum, INT_LIMIT)
    if value > upper or value < -INT_LIMIT:
        raise ConfigError(f"must be <= {upper}, got {describe(written)}", key)
    return int(value)


def as_float(value: Any, key: str, *, minimum: float | None = None, positive: bool = False,
             maximum: float | None = None) -> float:
    """A finite real number; ``positive`` requires ``> 0``, ``minimum``/``maximum`` are inclusive.

    Numbers whose magnitude a double cannot hold (over ~1.8e308) or only holds as a subnormal (non-zero
    below ~2.2e-308) are refused: they would turn into inf or NaN in the first division.
    """
    if isinstance(value, str):
        try:  # a number quoted in YAML, or read by another YAML loader
            if len(value) > 100:
                raise ValueError(value)
            value = float(value)
        except ValueError:
            raise ConfigError(f"expected a number, got {describe(value)}", key) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"expected a number, got {describe(value)}", key)
    try:
        value = float(value)
    except OverflowError:
        raise ConfigError(f"must be finite (at most {sys.float_info.max:.3g} in magnitude), "
                          f"got {describe(value)}", key) from None
    if not math.isfinite(value):
        raise ConfigError(f"must be finite, got {value}", key)
    if value != 0.0 and abs(value) < SMALLEST_NORMAL:
        raise ConfigError(f"must be 0 or at least {SMALLEST_NORMAL:.3g} in magnitude (the smallest normal "
                          f"double), got {value!r}", key)
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


def as_name(value: Any, key: str) -> str:
    """A name that becomes a directory name: a non-empty string of at most :data:`NAME_LIMIT` printable
    characters, without ``/`` or ``\\``, not ``.`` or ``..``."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"expected a file-name-safe string, got {describe(value)}", key)
    if len(value) > NAME_LIMIT:
        raise ConfigError(f"must be at most {NAME_LIMIT} characters, got {len(value)}", key)
    if len(value.encode("utf-8", "surrogatepass")) > 2 * NAME_LIMIT:
        raise ConfigError(f"must be at most {2 * NAME_LIMIT} bytes in UTF-8", key)
    if not value.isprintable() or any(c in value for c in "/\\") or value in (".", ".."):
        raise ConfigError("expected a file-name-safe string (printable characters, no '/' or '\\', "
                          f"not '.' or '..'), got {describe(value)}", key)
    return value
