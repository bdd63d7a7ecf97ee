"""The registry of scheme kinds: the one place that lists them.

Adding a scheme kind is one module under :mod:`hgc.schemes` with a :class:`~hgc.schemes.base.Scheme`
subclass, and one line in :func:`_load` below.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from hgc.errors import ConfigError
from hgc.schemes.base import Scheme, SchemeSpec
from hgc.topology import Topology
from hgc.validation import as_list, as_mapping, describe, join, suggestion


@cache
def _load() -> dict[str, Scheme]:
    from hgc.schemes import flat_gc, hetero, hgc, jncss, uncoded  # the scheme modules import this one's base

    schemes: list[Scheme] = [
        uncoded.Uncoded(),
        flat_gc.FlatGC(),
        hgc.HGC(),
        jncss.JNCSS(),
        hetero.HeterogeneityAware(),
    ]
    return {scheme.name: scheme for scheme in schemes}


BASELINE = "uncoded"
"""The scheme every speed-up is measured against (always simulated)."""


def register(scheme: Scheme) -> None:
    """Add a scheme kind from outside the package (a plug-in); it then parses, simulates, verifies and
    trains like the built-in ones. Kinds inside the package are listed in :func:`_load` instead."""
    schemes = _load()
    if scheme.name in schemes and schemes[scheme.name] is not scheme:
        raise ValueError(f"a scheme kind named {scheme.name!r} is already registered")
    schemes[scheme.name] = scheme


def unregister(name: str) -> None:
    """Remove a plug-in kind added by :func:`register`."""
    _load().pop(name, None)


def scheme_names() -> tuple[str, ...]:
    """Every registered kind, in registry order."""
    return tuple(_load())


def all_schemes() -> list[Scheme]:
    return list(_load().values())


def get_scheme(kind: str) -> Scheme:
    """The scheme of ``kind`` (a ``KeyError`` naming the known kinds if there is none)."""
    schemes = _load()
    if kind not in schemes:
        raise KeyError(f"unknown scheme kind {kind!r} (known: {', '.join(schemes)})")
    return schemes[kind]


def baseline_spec() -> SchemeSpec:
    return SchemeSpec(BASELINE)


def parse_scheme(raw: Any, key: str, topology: Topology) -> SchemeSpec:
    """One entry of ``schemes:``: a bare name or ``{scheme: name, <parameters>}``."""
    bare_name = isinstance(raw, str)
    raw = as_mapping({"scheme": raw} if bare_name else raw, key)
    kind = raw.get("scheme")
    names = scheme_names()
    if not isinstance(kind, str) or kind not in names:
        where = join(key, "scheme") if "scheme" in raw and not bare_name else key
        hint = suggestion(kind, names) if isinstance(kind, str) else ""
        raise ConfigError(f"unknown scheme {describe(kind)}{hint} (one of: {', '.join(names)})", where)
    return get_scheme(kind).parse(raw, key, topology)


def parse_schemes(raw: Any, key: str, topology: Topology) -> tuple[SchemeSpec, ...]:
    """The ``schemes:`` list."""
    items = as_list(raw, key)
    if not items:
        raise ConfigError("expected at least one scheme", key)
    return tuple(parse_scheme(item, join(key, i), topology) for i, item in enumerate(items))


def default_schemes() -> tuple[SchemeSpec, ...]:
    """The schemes compared when a config lists none."""
    return (SchemeSpec("uncoded"), SchemeSpec("flat_gc", (("s", "auto"),)),
            SchemeSpec("hgc", (("s_e", "auto"), ("s_w", "auto"))))
