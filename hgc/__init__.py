"""hgc: hierarchical gradient coding — codes, straggler simulation, analytic evaluation, JNCSS.

The command line (``hgc simulate|optimize|sweep|train|verify|plot``) is a thin layer over this package;
everything it does can be done from Python, e.g.::

    from hgc.config import load_config
    from hgc.simulation import simulate
    summary = simulate(load_config("configs/quickstart.yaml"), trials=10_000)
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
