"""Where shorter coded messages win and lose: the figure and table of ``configs/sweep-link-cost.yaml``.

Usage::

    hgc sweep configs/sweep-link-cost.yaml --out results/link-cost
    python benchmarks/link_cost_figure.py results/link-cost [--out docs/figures/link-cost.png]

Reads ``sweep.csv`` and prints, per link cost (seconds per full gradient vector on every link, and that
cost over a worker's uncoded compute time), the effective time of every scheme and the change of the
best reduced scheme against the best full-length one (HGC on all nodes or JNCSS with ``reduction_e =
reduction_w = 1``). Draws two panels: effective times, and every scheme's time relative to the best
full-length one (below 1: shorter messages win).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter  # noqa: E402
import pandas as pd  # noqa: E402

KEY = "timing.worker.per_vector"
UNCODED_COMPUTE = 2.4 / 24
"""A worker's mean uncoded compute time on the link-bound system (s): 2.4 s for the whole dataset / 24."""

NAMES = {
    "uncoded": "uncoded",
    "hgc(s_e=auto,s_w=auto)": "best HGC, full length",
    "hgc_jncss(reduction_e=1,reduction_w=1)": "JNCSS, full length",
    "hgc(s_e=auto,s_w=auto,reduction_e=2,reduction_w=2)": "HGC, fixed (ℓ_e, ℓ_w) = (2, 2)",
    "hgc(s_e=auto,s_w=auto,reduction_e=auto,reduction_w=auto)": "best HGC, reductions chosen",
    "hgc_jncss": "JNCSS, reductions chosen",
}
FULL = ["hgc(s_e=auto,s_w=auto)", "hgc_jncss(reduction_e=1,reduction_w=1)"]
REDUCED = ["hgc(s_e=auto,s_w=auto,reduction_e=auto,reduction_w=auto)", "hgc_jncss"]


def table(sweep: pd.DataFrame) -> pd.DataFrame:
    """Effective time (s) per link cost and scheme, with the best full-length and best reduced times."""
    wide = sweep.pivot_table(index=KEY, columns="spec_label", values="effective_time")
    wide["best_full"] = wide[FULL].min(axis=1)
    wide["best_reduced"] = wide[REDUCED].min(axis=1)
    wide["change"] = wide.best_reduced / wide.best_full - 1.0
    return wide


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/figures/link-cost.png"))
    args = parser.parse_args()
    wide = table(pd.read_csv(args.results / "sweep.csv"))
    shown = pd.DataFrame({"link/compute": wide.index / UNCODED_COMPUTE})
    for label, name in NAMES.items():
        shown[name] = wide[label].to_numpy()
    shown["reduced vs full"] = [f"{c:+.1%}" for c in wide.change]
    shown.index = wide.index
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(shown.round(3).to_string())

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    x = wide.index.to_numpy() / UNCODED_COMPUTE
    styles = ["k-o", "C0-s", "C4:v", "C1--^", "C2-D", "C3-*"]
    for (label, name), style in zip(NAMES.items(), styles):
        left.plot(x, wide[label], style, label=name)
        right.plot(x, wide[label] / wide.best_full, style, label=name)
    for ax in (left, right):
        ax.set_xscale("symlog", linthresh=0.1)
        ax.set_xlabel("link time per full vector / uncoded compute time")
        ax.grid(alpha=0.3)
    left.set_yscale("log")
    left.set_ylabel("effective iteration time (s)")
    right.axhline(1.0, color="grey", lw=0.8)
    right.set_ylabel("relative to the best full-length scheme")
    right.set_ylim(0.3, 3.2)
    right.set_yscale("log")
    left.yaxis.set_major_locator(FixedLocator([0.4, 0.6, 1, 2, 4, 6]))
    right.yaxis.set_major_locator(FixedLocator([0.4, 0.6, 0.8, 1, 1.5, 2, 3]))
    for ax in (left, right):
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_locator(NullLocator())
    right.legend(fontsize=8, loc="lower left")
    fig.suptitle("Shorter coded messages on the link-bound system (4 edges x 6 workers, both links)")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
