"""One look for every figure: colour-blind-safe colours, a distinct (colour, marker, line style) per
scheme, integer ticks for integer keys, axis labels with units, and saving.

Colours are the Okabe–Ito palette (distinguishable under the common colour-vision deficiencies); the
uncoded baseline is always black. Series ``j`` (in the order the schemes first appear) gets colour
``j mod 7``, marker ``j mod 10`` and line style ``j mod 4``, so up to 28 schemes differ in colour *and*
line style and up to 70 in colour and marker: curves that coincide stay distinguishable, and the
figures still read in grey scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

DPI = 130
BASELINE = "uncoded"
BASELINE_COLOUR = "#000000"
# Okabe & Ito (2008), without black (kept for the baseline) and with yellow last (weak on white)
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
MARKERS = ("s", "^", "D", "v", "P", "X", "<", ">", "h", "o")  # "o" is the baseline's
LINESTYLES: tuple[Any, ...] = ("-", "--", "-.", ":")
NEUTRAL = "#BBBBBB"
_SECONDS_SUFFIXES = ("mean", "value", "shift", "low", "high", "scale", "per_vector")


@dataclass(frozen=True)
class SeriesStyle:
    """How one scheme is drawn: colour, marker and line style."""

    colour: str
    marker: str
    linestyle: Any

    def line(self, **extra: Any) -> dict[str, Any]:
        """Keyword arguments for ``Axes.plot``/``errorbar``: hollow markers, so coinciding ones all show."""
        return {"color": self.colour, "marker": self.marker, "linestyle": self.linestyle,
                "markerfacecolor": "none", "markeredgecolor": self.colour, "markeredgewidth": 1.3, **extra}


class Styles:
    """A :class:`SeriesStyle` per scheme label, fixed by the order in which labels are first seen (pass
    the labels of the main table first so that every figure of a directory agrees)."""

    def __init__(self, labels: Iterable[str] = ()):
        self._styles: dict[str, SeriesStyle] = {}
        self._next = 0
        for label in labels:
            self[label]

    def __getitem__(self, label: str) -> SeriesStyle:
        style = self._styles.get(label)
        if style is None:
            if label == BASELINE:
                style = SeriesStyle(BASELINE_COLOUR, "o", "-")
            else:
                j = self._next
                self._next += 1
                style = SeriesStyle(PALETTE[j % len(PALETTE)], MARKERS[j % len(MARKERS)],
                                    LINESTYLES[j % len(LINESTYLES)])
            self._styles[label] = style
        return style


def integer_valued(values: Sequence[float] | np.ndarray) -> bool:
    """Whether every finite value is a whole number (and there is at least one)."""
    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array)]
    return bool(array.size) and bool(np.all(array == np.round(array)))


def integer_ticks(ax: Axes, values: Sequence[float] | np.ndarray, axis: str = "x") -> None:
    """Ticks only at whole numbers on ``axis``: exactly at ``values`` when there are at most 12 of them,
    else at integer multiples chosen by matplotlib."""
    distinct = np.unique(np.asarray(values, dtype=float)[np.isfinite(np.asarray(values, dtype=float))])
    target = ax.xaxis if axis == "x" else ax.yaxis
    if 0 < distinct.size <= 12:
        (ax.set_xticks if axis == "x" else ax.set_yticks)(distinct, [f"{int(v)}" for v in distinct])
    else:
        target.set_major_locator(MaxNLocator(integer=True))


def param_label(key: str) -> str:
    """Axis label for a swept dotted key, with units where the key implies them."""
    last = key.rsplit(".", 1)[-1]
    if key == "topology.edges":
        return "number of edge nodes n"
    if key == "topology.workers":
        return "workers per edge m"
    if key == "trials":
        return "Monte Carlo trials"
    if last == "p" or key.startswith("timing.failures"):
        return f"{key} (probability)"
    if last == "rate":
        return f"{key} (1/s)"
    if last in _SECONDS_SUFFIXES:
        return f"{key} (s)"
    return key


def percent(fraction: float) -> str:
    """A failure rate as a short percentage: ``18.2 %``, ``0.05 %``, ``<0.01 %``."""
    value = 100.0 * fraction
    if value >= 10:
        return f"{value:.1f} %"
    if value >= 0.01:
        return f"{value:.2g} %"
    return "<0.01 %" if value > 0 else "0 %"


def coincident(series: dict[str, tuple[np.ndarray, np.ndarray]], rtol: float = 1e-9) -> dict[str, str]:
    """For each series whose ``(x, y)`` points equal those of an earlier one, the earlier one's name."""
    out: dict[str, str] = {}
    names = list(series)
    for j, name in enumerate(names):
        x, y = series[name]
        for earlier in names[:j]:
            x0, y0 = series[earlier]
            if (x.shape == x0.shape and y.shape == y0.shape and np.array_equal(x, x0)
                    and np.allclose(y, y0, rtol=rtol, atol=0.0, equal_nan=True)):
                out[name] = out.get(earlier, earlier)
                break
    return out


def new_figure(width: float, height: float) -> Figure:
    """A figure on the Agg canvas (no pyplot, no global state)."""
    return Figure(figsize=(width, height), layout="constrained")


def save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    return path
