"""Emulation (``hgc emulate``): the coded protocol run for real on a Dask cluster, held against the simulator.

* :mod:`~hgc.emulation.plan` — what each node does for a strategy, read from its order-statistic plan and
  its code (:func:`protocol_plan`), and the delays it must take (:func:`scheduled_delays`);
* :mod:`~hgc.emulation.nodes` — the worker and edge actors that run on the cluster's processes;
* :mod:`~hgc.emulation.cluster` — the cluster, node placement, process kills and restoration;
* :mod:`~hgc.emulation.faults` — ``--kill`` specifications;
* :mod:`~hgc.emulation.protocol` — one scheme's data placement and one iteration from the master;
* :mod:`~hgc.emulation.runner` — :func:`emulate`: a whole config, with predictions, tables and the
  :class:`~hgc.emulation.runner.EmulationResult` that writes its files;
* :mod:`~hgc.emulation.calibration` — fitting platform ``overhead``/``per_vector`` from a run.

The figure (``emulate.png``) is drawn by ``hgc plot`` (:mod:`hgc.plotting.emulate`). Importing this
package does not import Dask; starting a cluster does.
"""

from hgc.emulation.faults import Kill, parse_kill, parse_kills
from hgc.emulation.plan import ProtocolPlan, ScheduledDelays, protocol_plan, scheduled_delays

__all__ = ["Kill", "ProtocolPlan", "ScheduledDelays", "parse_kill", "parse_kills", "protocol_plan",
           "scheduled_delays"]
