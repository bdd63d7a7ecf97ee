"""Reading config and sweep files: YAML that cannot hang, exhaust memory or hide mistakes.

:func:`load_yaml` is PyYAML's safe loader (no Python objects) with these additions:

* **Aliases are bounded.** ``&anchor`` / ``*alias`` are allowed (reusing a distribution is handy), but the
  document *as expanded* may hold at most :data:`MAX_NODES` values; a "billion laughs" file of nested
  aliases is refused after visiting each distinct node once. An alias to its own ancestor (a recursive
  structure) is refused.
* **Nesting is capped** at :data:`MAX_DEPTH` levels (checked while composing, so no ``RecursionError``).
* **Duplicate keys are errors**, named by their key path (plain PyYAML keeps the last one silently).
  Keys brought in by a ``<<`` merge may be overridden, as YAML intends.
* **Files are capped** at :data:`MAX_BYTES` and must be UTF-8 text.
* **``1e5`` is a number.** YAML 1.1 needs a dot in a float (``1.0e5``) and would read ``1e5`` as the
  string ``"1e5"``; here any decimal with an exponent is a float (as in YAML 1.2), so ``trials: 1e5``
  means 100000.

Every problem is a :class:`~hgc.errors.ConfigError` naming the file (and the key path or line).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from hgc.errors import ConfigError, printable
from hgc.validation import join

MAX_BYTES = 4 * 2**20
"""Largest config or sweep file read (bytes)."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and lists."""
MAX_NODES = 50_000
"""Most values (scalars, lists, mappings) a document may hold, as written and once its aliases are
expanded (PyYAML composes about 20 000 values a second: the cap also bounds the reading time)."""
MAX_SCALAR_CHARS = 100_000
"""Longest single value (characters); integers have far fewer digits (see ``INT_DIGITS``)."""
INT_DIGITS = 1000
"""Integers with more digits than this are refused before Python converts them (it caps at 4300)."""

_MERGE = "tag:yaml.org,2002:merge"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_EXPONENT_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


class _Loader(yaml.SafeLoader):
    """The safe loader with a nesting cap while composing and 1e5-style floats."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        self._nodes += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise _Refused(f"line {mark.line + 1}: nested more than {MAX_DEPTH} levels deep")
            if self._nodes > MAX_NODES:
                mark = self.peek_event().start_mark
                raise _Refused(f"line {mark.line + 1}: more than {MAX_NODES} values; config files are "
                               "limited to that many")
            node: Node | None = super().compose_node(parent, index)
            return node
        finally:
            self._depth -= 1


_Loader.add_implicit_resolver(_FLOAT, _EXPONENT_FLOAT, list("-+0123456789"))


class _Refused(Exception):
    """A structural limit was hit while composing (turned into a ConfigError by :func:`load_yaml`)."""


def load_yaml(path: str | Path) -> Any:
    """The data in the YAML file at ``path``, checked as the module docstring says."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("file not found" if not path.exists() else "not a file", source=path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ConfigError(f"the file has {size} bytes; config files are limited to {MAX_BYTES} bytes",
                              source=path)
        if size == 0:  # (also kernel files such as /proc/kmsg, whose reads can block forever)
            return None
        data = path.read_bytes()[:MAX_BYTES + 1]
    except OSError as err:
        raise ConfigError(f"cannot read the file: {err.strerror or err}", source=path) from None
    if len(data) > MAX_BYTES:
        raise ConfigError(f"config files are limited to {MAX_BYTES} bytes", source=path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"not a text (UTF-8) file (byte {err.start} is not UTF-8)", source=path) from None
    try:
        return parse_yaml(text)
    except ConfigError as err:
        raise err.with_source(path) from None


def parse_yaml(text: str) -> Any:
    """The data in the YAML document ``text`` (see :func:`load_yaml`; errors carry no file name)."""
    loader = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _check(node)
        return loader.construct_document(node)
    except ConfigError:
        raise
    except _Refused as err:
        raise ConfigError(str(err)) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"malformed YAML: {where}{problem}") from None
    except (ValueError, TypeError, OverflowError) as err:  # a scalar its constructor cannot convert
        raise ConfigError(f"malformed YAML: {printable(str(err), 200)}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _key_text(node: Node) -> str:
    return printable(str(node.value), 60) if isinstance(node, ScalarNode) else f"(key at line {_line(node)})"


def _check(root: Node) -> None:
    """Expanded size and depth, recursion, duplicate keys and oversized scalars of the node graph under
    ``root``.

    Each distinct node is visited once (aliases share nodes), so this is linear in the file size however
    the aliases multiply; ``known`` memoises each node's expanded size and height.
    """
    known: dict[int, tuple[int, int]] = {}
    active: set[int] = set()

    def visit(node: Node, path: str, depth: int) -> tuple[int, int]:
        memo = known.get(id(node))
        if memo is None:
            if id(node) in active:
                raise ConfigError(f"line {_line(node)}: an alias refers to a structure that contains it "
                                  "(a recursive structure)", path)
            active.add(id(node))
            memo = known[id(node)] = _expand(node, path, depth, visit)
            active.discard(id(node))
        if depth + memo[1] > MAX_DEPTH:
            raise ConfigError(f"line {_line(node)}: nested more than {MAX_DEPTH} levels deep once aliases "
                              "are expanded", path)
        return memo

    visit(root, "", 0)


def _expand(node: Node, path: str, depth: int, visit: Any) -> tuple[int, int]:
    """``(expanded size, height)`` of ``node``, visiting its children with ``visit``."""
    total, height = 1, 1
    if isinstance(node, ScalarNode):
        _check_scalar(node, path)
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            size, h = visit(item, join(path, i), depth + 1)
            total, height = total + size, max(height, h + 1)
            _check_total(total, path)
    elif isinstance(node, MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                size, h = visit(value_node, path, depth)
                total, height = total + size, max(height, h)
                continue
            name = _key_text(key_node)
            identity = _key_identity(key_node)
            if identity is not None:
                if identity in seen:
                    raise ConfigError(f"duplicate key '{name}' (lines {seen[identity]} and {_line(key_node)}); "
                                      "each key may appear once", join(path, name))
                seen[identity] = _line(key_node)
            key_size, key_h = visit(key_node, path, depth + 1)
            size, h = visit(value_node, join(path, name), depth + 1)
            total, height = total + key_size + size, max(height, key_h + 1, h + 1)
            _check_total(total, path)
    return total, height


def _check_total(total: int, path: str) -> None:
    if total > MAX_NODES:
        raise ConfigError(f"expands to more than {MAX_NODES} values (aliases repeating aliases?); "
                          "write the structure out or make it smaller", path)


def _check_scalar(node: ScalarNode, path: str) -> None:
    value = node.value
    if len(value) > MAX_SCALAR_CHARS:
        raise ConfigError(f"line {_line(node)}: a value of {len(value)} characters (limit {MAX_SCALAR_CHARS})",
                          path)
    if node.tag == _INT and len(value) > INT_DIGITS:
        raise ConfigError(f"line {_line(node)}: an integer of {len(value)} digits is out of range", path)


def _key_identity(node: Node) -> tuple[str, str] | None:
    """What makes two keys the same: resolved tag and text for scalars (e.g. ``a`` and ``"a"``);
    ``None`` for complex keys (the constructor refuses them)."""
    if not isinstance(node, ScalarNode):
        return None
    tag = node.tag
    value = node.value
    if tag == _INT:
        try:
            return ("number", str(int(value.replace("_", ""), 0)))
        except ValueError:
            return (tag, value)
    if tag == _FLOAT:
        try:
            return ("number", repr(float(value.replace("_", ""))))
        except ValueError:
            return (tag, value)
    return (tag, value)
