"""What every coding scheme provides: the :class:`Scheme` protocol and the values it works with.

A *scheme kind* (``uncoded``, ``flat_gc``, ``hgc``, ``hgc_jncss``, ...) is one module of this package
holding one :class:`Scheme` subclass. Everything kind-specific lives there: the config keys and their
validation, the label, how ``auto`` values and node selections are resolved, the per-worker loads (from
:mod:`hgc.codes`), the code builder, and the **order-statistic plan** (:class:`Plan`) that says how the
iteration time arises from the node delays. The simulator, the analytic evaluator, the optimizer, ``hgc
verify``, ``hgc train`` and the tables consume strategies, their plans and this protocol only; they
never test a kind by name.

Values:

* :class:`SchemeSpec` — a scheme as written in the config (``auto`` allowed);
* :class:`Strategy` — a fully determined scheme on a set of participating nodes, with per-worker loads;
* :class:`Plan` — the timing rules of a strategy (each edge's wait rank or relaying, the master's rank,
  message lengths);
* :class:`Resolved` — a spec and the strategy that runs for it, with a note on how it was chosen.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Literal, Mapping, Sequence

import numpy as np

from hgc.errors import ConfigError
from hgc.topology import Topology
from hgc.validation import as_int, check_keys

if TYPE_CHECKING:
    from hgc.codes import GradientCode
    from hgc.schemes.context import OptimizeContext, ResolveContext

AUTO = "auto"
Tolerance = int | Literal["auto"]


# ----------------------------------------------------------------------------------------------------
# Values

@dataclass(frozen=True)
class SchemeSpec:
    """A scheme as written in the config: its ``kind`` and its parameters (values may be ``"auto"``)."""

    kind: str
    params: tuple[tuple[str, Any], ...] = ()

    def get(self, name: str, default: Any = None) -> Any:
        """The parameter ``name`` (``default`` when the scheme has no such parameter)."""
        return dict(self.params).get(name, default)

    @property
    def s(self) -> Any:
        return self.get("s")

    @property
    def s_e(self) -> Any:
        return self.get("s_e")

    @property
    def s_w(self) -> Any:
        return self.get("s_w")

    @property
    def scheme(self) -> "Scheme":
        from hgc.schemes.registry import get_scheme  # the registry imports this module

        return get_scheme(self.kind)

    @property
    def label(self) -> str:
        """Human-readable name, e.g. ``hgc(s_e=1,s_w=auto)``."""
        return self.scheme.label(self)

    @property
    def is_auto(self) -> bool:
        """Whether resolving this spec involves a search (``auto`` values or node selection)."""
        return self.scheme.is_auto(self)

    def to_config(self) -> str | dict[str, Any]:
        """The config form (a bare name when the scheme has no parameters)."""
        if not self.params:
            return self.kind
        return {"scheme": self.kind, **{k: list(v) if isinstance(v, tuple) else v for k, v in self.params}}


@dataclass(frozen=True)
class Plan:
    """How a strategy's iteration time arises from its nodes' delays (the timing rules of the model).

    Decoding edges (``edge_wait`` given) wait for the ``edge_wait[j]``-th fastest message of their
    participating workers and send one message; relaying edges (``edge_wait`` is ``None``) forward every
    worker message in arrival order over their link. The master waits for the ``master_wait``-th arrival
    (edge messages, or relayed worker messages). ``worker_message`` and ``edge_message`` are message
    lengths as fractions of a full gradient vector: a link's per-vector time is charged in proportion.
    """

    edge_wait: tuple[int, ...] | None
    master_wait: int
    worker_message: float = 1.0
    edge_message: float = 1.0

    @property
    def relay(self) -> bool:
        return self.edge_wait is None


@dataclass(frozen=True)
class Strategy:
    """A fully determined scheme on a set of participating nodes.

    ``edges`` are the participating edge indices; ``workers[j]`` the participating worker positions
    (0-based, inside edge ``edges[j]``; never empty). ``load`` is the largest per-worker fraction of the
    dataset and ``worker_loads`` the per-worker fractions (``None``: every worker carries ``load``).
    ``params`` are the scheme's concrete parameters (e.g. ``s_e``, ``s_w``). Build strategies with the
    scheme modules' factories; they compute loads from :mod:`hgc.codes`.
    """

    kind: str
    edges: tuple[int, ...]
    workers: tuple[tuple[int, ...], ...]
    load: float
    params: tuple[tuple[str, Any], ...] = ()
    worker_loads: tuple[tuple[float, ...], ...] | None = None

    def __post_init__(self) -> None:
        if len(self.edges) != len(self.workers) or not self.edges:
            raise ValueError(f"a strategy needs one worker list per participating edge, got {self.edges}, "
                             f"{self.workers}")
        if any(not ws for ws in self.workers):
            raise ValueError("participating edges need at least one participating worker")

    def get(self, name: str, default: Any = None) -> Any:
        return dict(self.params).get(name, default)

    @property
    def s(self) -> Any:
        return self.get("s")

    @property
    def s_e(self) -> Any:
        return self.get("s_e")

    @property
    def s_w(self) -> Any:
        return self.get("s_w")

    @property
    def worker_counts(self) -> tuple[int, ...]:
        return tuple(len(w) for w in self.workers)

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    @property
    def n_workers(self) -> int:
        return sum(self.worker_counts)

    @property
    def loads(self) -> np.ndarray:
        """Per participating worker (edge by edge), the fraction of the dataset it holds."""
        if self.worker_loads is None:
            return np.full(self.n_workers, self.load)
        return np.concatenate([np.asarray(w, dtype=float) for w in self.worker_loads])

    @property
    def scheme(self) -> "Scheme":
        from hgc.schemes.registry import get_scheme  # the registry imports this module

        return get_scheme(self.kind)

    @cached_property
    def plan(self) -> Plan:
        """The order-statistic plan of this strategy (see :class:`Plan`)."""
        return self.scheme.plan(self)

    def describe(self) -> str:
        """Which special case this is, in words (empty if none)."""
        return self.scheme.describe(self)

    def columns(self) -> dict[str, Any]:
        """The scheme's parameter columns for result tables (``None`` where not applicable)."""
        return self.scheme.columns(self)


@dataclass(frozen=True)
class Resolved:
    """A scheme from the config and the concrete strategy that runs for it; ``note`` says how it was chosen."""

    spec: SchemeSpec
    strategy: Strategy
    note: str = ""

    @property
    def label(self) -> str:
        """The spec's label with every ``auto`` value resolved, e.g. ``hgc(s_e=auto→2,s_w=1)``."""
        return self.spec.scheme.resolved_label(self.spec, self.strategy)


@dataclass
class Candidate:
    """A row of the ``optimize.csv`` table contributed by a scheme (see :meth:`Scheme.optimize_rows`).

    ``evaluation`` is the analytic result (``None`` when the strategy has no analytic form and was chosen
    by simulation); ``role`` is ``"ground_truth"`` for exhaustive searches (optimality gaps are measured
    against them), ``"search"`` for heuristic searches (whose own gap is unknown without a ground truth),
    ``""`` otherwise. ``family`` pairs a search row with the ground truth it approximates (a search row's gap
    is measured against the exhaustive row of its own family only).
    """

    label: str
    strategy: Strategy
    method: str
    evaluation: Any
    seconds: float
    evaluations: int | None = None
    space: int | None = None
    note: str = ""
    role: str = ""
    family: str = ""


@dataclass(frozen=True)
class RowOutline:
    """A row :meth:`Scheme.optimize_rows` will contribute, known before any search runs (dry runs):
    ``label`` and ``method`` as in ``optimize.csv``, ``space`` the number of candidates an exhaustive
    search scores (its ``search_space`` column; ``None`` for other rows), ``note`` how it is found."""

    label: str
    method: str
    space: int | None = None
    note: str = ""


# ----------------------------------------------------------------------------------------------------
# The protocol

PARAMETER_COLUMNS = ("s_e", "s_w", "s", "reduction_e", "reduction_w", "reduction")
"""The scheme-parameter columns of result tables (blank where a scheme has no such parameter)."""
TOLERANCE_COLUMNS = PARAMETER_COLUMNS


class Scheme(ABC):
    """One scheme kind. Subclasses set :attr:`name` and :attr:`keys` and implement the abstract methods;
    the defaults suit schemes without tolerances."""

    name: ClassVar[str]
    keys: ClassVar[tuple[str, ...]] = ()
    """Config keys of the scheme besides ``scheme``."""
    summary: ClassVar[str] = ""
    """One line for documentation and ``--help``."""
    implied: ClassVar[Mapping[str, Any]] = {}
    """Values a strategy leaves out of its parameters (e.g. a reduction of 1), for resolved labels."""

    # -- config ------------------------------------------------------------------------------------
    def parse(self, raw: Mapping[str, Any], key: str, topology: Topology) -> SchemeSpec:
        """Validate one ``schemes:`` entry (``raw`` includes ``scheme``); errors name ``key``."""
        check_keys(raw, key, ("scheme", *self.keys))
        return SchemeSpec(self.name)

    def label(self, spec: SchemeSpec) -> str:
        """``kind(key=value,...)``, or the bare kind without parameters."""
        if not spec.params:
            return self.name
        return f"{self.name}(" + ",".join(f"{k}={_text(v)}" for k, v in spec.params) + ")"

    def resolved_label(self, spec: SchemeSpec, strategy: Strategy) -> str:
        """The label of ``spec`` with each ``auto`` parameter shown with the value ``strategy`` has
        (``hgc(s_e=auto→2,s_w=1)``)."""
        if not spec.params:
            return self.name
        chosen = {**self.implied, **dict(strategy.params)}
        parts = [f"{k}=auto→{_text(chosen[k])}" if v == AUTO and k in chosen else f"{k}={_text(v)}"
                 for k, v in spec.params]
        return f"{self.name}(" + ",".join(parts) + ")"

    def is_auto(self, spec: SchemeSpec) -> bool:
        return any(v == AUTO for _, v in spec.params)

    def resolution(self, spec: SchemeSpec) -> str:
        """What :meth:`resolve` chooses for ``spec`` at run time and how, in words (``""`` when ``spec``
        is fully determined and resolving it costs nothing); dry runs print it."""
        autos = [k for k, v in spec.params if v == AUTO]
        return f"{', '.join(autos)} chosen at run time by a search" if autos else ""

    # -- strategies ----------------------------------------------------------------------------------
    @abstractmethod
    def resolve(self, spec: SchemeSpec, context: "ResolveContext") -> Resolved:
        """The strategy that runs for ``spec`` (``auto`` values chosen here)."""

    @abstractmethod
    def plan(self, strategy: Strategy) -> Plan:
        """The order-statistic plan of one of this scheme's strategies."""

    def columns(self, strategy: Strategy) -> dict[str, Any]:
        """Values of the tolerance columns of result tables (``None`` = not applicable)."""
        return {name: None for name in TOLERANCE_COLUMNS}

    def describe(self, strategy: Strategy) -> str:
        """Which named special case the strategy is (empty if none)."""
        return ""

    def wait_for_all(self, strategy: Strategy) -> Strategy:
        """The same nodes and loads with every tolerance 0: the master waits for every node (used to
        charge a timeout for iterations that cannot be decoded)."""
        return strategy

    # -- codes ---------------------------------------------------------------------------------------
    @abstractmethod
    def build_code(self, strategy: Strategy, *, partitions: int | None = None,
                   rng: np.random.Generator | None = None, rtol: float | None = None) -> "GradientCode":
        """The real code of ``strategy`` on its participating nodes (``partitions`` = K, default the
        smallest valid)."""

    def smallest_partitions(self, strategy: Strategy) -> int:
        """The smallest valid number of partitions K for ``strategy``'s code."""
        return self.build_code(strategy).n_partitions

    def verify_strategies(self, spec: SchemeSpec, context: "ResolveContext") -> list[tuple[Strategy | None, str, dict[str, Any]]]:
        """The codes ``hgc verify`` checks for ``spec``: ``(strategy, note, columns)`` per code, every
        admissible value for ``auto`` parameters; ``strategy`` is ``None`` (with the reason in ``note``)
        for a value that cannot be built."""
        resolved = self.resolve(spec, context)
        return [(resolved.strategy, resolved.note, resolved.strategy.columns())]

    def verify_work(self, spec: SchemeSpec, topology: Topology) -> Iterator[tuple[int, int | None, int]]:
        """Sizes of the codes ``hgc verify`` checks for ``spec``, from the sizes alone (no search, no
        coefficients): ``(workers, partitions K or None if inadmissible, maximal straggler patterns)``
        per code, lazily (a caller may stop early). Used to refuse absurd runs before they start; node
        selections report their worst case."""
        return iter(())

    # -- the optimize table --------------------------------------------------------------------------
    def validate_optimize(self, context: "OptimizeContext") -> None:
        """Refuse, before anything runs, an ``hgc optimize`` request this scheme cannot serve."""

    def optimize_rows(self, context: "OptimizeContext") -> list[Candidate]:
        """Rows this scheme contributes to ``optimize.csv`` (its best strategies for the system)."""
        return []

    def optimize_outline(self, context: "OptimizeContext") -> list[RowOutline]:
        """The rows :meth:`optimize_rows` would contribute, decided without running a search (the same
        rules, e.g. whether an exhaustive row is added, and its search space): what ``hgc optimize
        --dry-run`` prints. A scheme with optimize rows overrides both."""
        return []


def _text(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(str(v) for v in value) + "]"
    return str(value)


def parse_tolerance(value: Any, key: str, upper: int, why: str) -> Tolerance:
    """A tolerance in ``0 .. upper-1`` or ``"auto"``; ``why`` explains the upper limit."""
    if value == AUTO:
        return "auto"
    tolerance = as_int(value, key, minimum=0)
    if tolerance >= upper:
        raise ConfigError(f"must be < {upper} ({why}), got {tolerance}", key)
    return tolerance


def all_nodes(topology: Topology) -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]:
    """``(edges, workers)`` selecting every node of ``topology``."""
    return tuple(range(topology.n_edges)), tuple(tuple(range(m)) for m in topology.workers)


def select_nodes(topology: Topology, edges: Sequence[int] | None,
                 workers: Sequence[Sequence[int]] | None) -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]:
    """The given participating nodes as tuples (all nodes when not given), edges without workers dropped."""
    if edges is None or workers is None:
        return all_nodes(topology)
    pairs = [(int(e), tuple(int(p) for p in ws)) for e, ws in zip(edges, workers) if len(ws)]
    return tuple(e for e, _ in pairs), tuple(ws for _, ws in pairs)
