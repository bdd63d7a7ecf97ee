"""hgc: hierarchical gradient coding — codes, straggler simulation, analytic evaluation, JNCSS.

The command line (``hgc simulate|optimize|sweep|train|verify|plot``) is a thin layer over this package;
everything it does can be done from Python, e.g.::

    from hgc.config import load_config
    from hgc.experiment import simulate

    result = simulate(load_config("configs/quickstart.yaml"), trials=10_000)
    print(result.summary[["label", "effective_time", "speedup"]])
    result.write("results/quickstart")

The layers, bottom to top (``docs/architecture.md``): configs and model objects (:mod:`hgc.config`,
:mod:`hgc.distributions`, :mod:`hgc.topology`, :mod:`hgc.timing`), codes (:mod:`hgc.codes`), schemes
(:mod:`hgc.schemes`), the simulator (:mod:`hgc.simulation`) and the analytic evaluator
(:mod:`hgc.analytic`), searches (:mod:`hgc.optimizer`), workflows that return results which write
themselves (:mod:`hgc.experiment`, :mod:`hgc.optimize`, :mod:`hgc.verify`, :mod:`hgc.training`,
:mod:`hgc.sweep`), and the command line (:mod:`hgc.cli`).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
