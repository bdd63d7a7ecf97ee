"""Process kills requested with ``--kill``: ``EDGE.WORKER@ITERATION`` (a worker) or ``EDGE@ITERATION`` (an edge).

Indices are 0-based like every index in a config (``1.2`` is worker 2 of edge 1); iterations count from 1.
A kill terminates the *process* hosting that node (SIGKILL) at the start of that iteration of every
scheme, before the master sends the parameters, so every node that process hosts is lost for the whole
iteration (see :mod:`hgc.emulation.cluster`); the process is restored before the next iteration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from hgc.emulation.cluster import Node
from hgc.errors import ConfigError
from hgc.topology import Topology

_SPEC = re.compile(r"^\s*(\d+)(?:\.(\d+))?\s*@\s*(\d+)\s*$")


@dataclass(frozen=True, order=True)
class Kill:
    """Kill the process of ``node`` in iteration ``iteration`` (1-based)."""

    iteration: int
    node: Node

    @property
    def text(self) -> str:
        return f"{self.node.label.lstrip('e')}@{self.iteration}"


def parse_kill(text: str, topology: Topology, iterations: int) -> Kill:
    """One ``--kill`` value; a malformed or out-of-range one is a :class:`ConfigError` on ``--kill``."""
    match = _SPEC.match(text)
    if match is None:
        raise ConfigError(f"expected EDGE.WORKER@ITERATION (e.g. 1.2@3) or EDGE@ITERATION, got {text!r}", "kill")
    edge, worker, iteration = int(match[1]), None if match[2] is None else int(match[2]), int(match[3])
    if edge >= topology.n_edges:
        raise ConfigError(f"{text!r}: edge {edge} out of range (there are {topology.n_edges} edges, numbered from 0)",
                          "kill")
    if worker is not None and worker >= topology.workers[edge]:
        raise ConfigError(f"{text!r}: worker {worker} out of range (edge {edge} has {topology.workers[edge]} "
                          "workers, numbered from 0)", "kill")
    if not 1 <= iteration <= iterations:
        raise ConfigError(f"{text!r}: iteration {iteration} out of range (the run has iterations 1..{iterations})",
                          "kill")
    return Kill(iteration, Node(edge, worker))


def parse_kills(texts: Iterable[str], topology: Topology, iterations: int) -> tuple[Kill, ...]:
    """Every ``--kill`` value, sorted by iteration."""
    return tuple(sorted(parse_kill(t, topology, iterations) for t in texts))
