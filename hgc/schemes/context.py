"""What a scheme needs from the run when it resolves ``auto`` values or contributes optimizer rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hgc.progress import ProgressFactory
from hgc.timing import TimingModel

if TYPE_CHECKING:
    from hgc.analytic import Evaluator


@dataclass
class ResolveContext:
    """The system a scheme is resolved on: its timing model and the run's seed (pilots draw from
    ``Stream.PILOT`` of it). One analytic evaluator is shared by every scheme of a run (it caches
    per-distribution facts); ``progress`` draws bars for long searches and pilots."""

    model: TimingModel
    seed: int
    progress: ProgressFactory | None = field(default=None, repr=False)
    _evaluator: "Evaluator | None" = field(default=None, repr=False)

    @property
    def evaluator(self) -> "Evaluator":
        if self._evaluator is None:
            from hgc.analytic import Evaluator  # the evaluator depends on the schemes, not the reverse

            self._evaluator = Evaluator(self.model)
        return self._evaluator


@dataclass
class OptimizeContext(ResolveContext):
    """A :class:`ResolveContext` for ``hgc optimize``: ``method`` is the requested search mode
    (``greedy`` or ``exhaustive``); ``options`` carries scheme-specific settings."""

    method: str = "greedy"
    options: dict[str, Any] = field(default_factory=dict)
