"""The Dask cluster that hosts the emulated nodes, and which process hosts which node.

Every emulated worker and edge is a :class:`Node` placed on one Dask worker *process* (identified by
its Dask worker name, which a nanny keeps when it restarts a killed process). :func:`assign` spreads
the nodes over the processes round-robin — workers edge by edge, then the edges — so that with one
process per node every node is alone, and with fewer processes an edge rarely shares a process with
its own workers. Nodes are actors whose methods are coroutines on their process's event loop, so a
process hosts any number of them with one Dask thread.

:class:`EmulationCluster` starts a :class:`distributed.LocalCluster` on 127.0.0.1 (worker processes
under nannies, so a killed process is restarted; the processes exit with their parent even when it is
killed, see ``docs/emulate.md``) or connects to an existing scheduler, places the nodes, kills
processes on request and finds them again (or a replacement) afterwards.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Sequence

from hgc.emulation import nodes as node_tasks
from hgc.errors import ConfigError
from hgc.topology import Topology

MALLOC_ENVIRON = {"MALLOC_TRIM_THRESHOLD_": 64 * 2**20, "MALLOC_MMAP_THRESHOLD_": 32 * 2**20}
"""glibc malloc settings for the worker processes (set before they start).

Dask's default ``MALLOC_TRIM_THRESHOLD_=65536`` returns freed memory to the OS at once and, because
setting it fixes glibc's otherwise adaptive mmap threshold at 128 KiB, every array above that size is
a fresh ``mmap``: each iteration's temporaries page-fault again (over 1000 minor faults per gradient of
a 20 000 × 200 softmax problem, ``benchmarks/emulate_malloc.py``). Keeping up to 64 MiB and serving
blocks up to 32 MiB from the heap removes those faults (0 per gradient) at the price of holding that
much freed memory per process."""

DASK_CONFIG = {
    "distributed.worker.profile.enabled": False,          # no 10 ms stack sampling in every process
    "distributed.worker.daemon": True,
    "distributed.scheduler.work-stealing": False,         # tasks are pinned; nothing to steal
    # a local cluster otherwise closes for good the nanny of a process that is not back 15 s after it
    # died, which happens when the same node is killed again while it restarts
    "distributed.deploy.lost-worker-timeout": "1 day",
}
"""Dask settings of a local cluster, in force while it runs (nannies read them again when they restart
a killed process)."""
RESTART_TIMEOUT = 60.0
"""Seconds to wait for a killed process to come back (nanny restart) before using a replacement."""
CONNECT_TIMEOUT = 30.0
KILL_TIMEOUT = 10.0
"""Seconds to wait for the scheduler to notice a killed process."""


@dataclass(frozen=True)
class Node:
    """An emulated node: worker ``worker`` (0-based position) of edge ``edge``, or the edge itself.

    Nodes sort workers first (edge by edge), then edges, the order of :func:`topology_nodes`.
    """

    edge: int
    worker: int | None = None

    def _key(self) -> tuple[int, int, int]:
        return (1, self.edge, 0) if self.worker is None else (0, self.edge, self.worker)

    def __lt__(self, other: "Node") -> bool:
        return self._key() < other._key()

    @property
    def label(self) -> str:
        """``"1.2"`` for worker 2 of edge 1, ``"e1"`` for edge 1 (the notation of ``--kill``)."""
        return f"e{self.edge}" if self.worker is None else f"{self.edge}.{self.worker}"


def topology_nodes(topology: Topology) -> list[Node]:
    """Every worker (edge by edge), then every edge."""
    workers = [Node(e, p) for e, m in enumerate(topology.workers) for p in range(m)]
    return workers + [Node(e) for e in range(topology.n_edges)]


def assign(topology: Topology, hosts: Sequence[str]) -> dict[Node, str]:
    """Node → host (Dask worker name), round-robin over ``hosts`` in the order of :func:`topology_nodes`."""
    if not hosts:
        raise ValueError("no hosts to place nodes on")
    return {node: hosts[k % len(hosts)] for k, node in enumerate(topology_nodes(topology))}


def default_processes(topology: Topology, *, one_per_node: bool = False) -> int:
    """Processes of the local cluster when ``--jobs`` is not given.

    ``one_per_node`` (used when processes are to be killed, so that a kill loses exactly the node it
    names): one process per worker and per edge, plus a spare that takes over a killed process's node at
    once (see :meth:`EmulationCluster.restore`). Otherwise as many as this machine has CPUs (at least
    2, at most one per node): every further process competes for the same CPUs and adds its share of
    scheduling delay to every message (see ``docs/emulate.md`` for measurements).
    """
    nodes = topology.n_workers + topology.n_edges
    if one_per_node:
        return nodes + 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(nodes, max(2, cpus)))


class EmulationCluster:
    """The cluster of one emulation run; use as a context manager (closes a local cluster it started).

    Parameters
    ----------
    topology: the system whose nodes are placed.
    scheduler: address of an existing Dask scheduler (``tcp://host:8786``), or ``None`` for a local cluster.
    processes: worker processes of the local cluster (default :func:`default_processes`); not allowed with
        ``scheduler``.
    one_per_node: the default number of processes is one per node (for runs that kill processes).
    """

    def __init__(self, topology: Topology, *, scheduler: str | None = None, processes: int | None = None,
                 one_per_node: bool = False, timeout: float = CONNECT_TIMEOUT):
        import dask
        from distributed import Client, LocalCluster

        self.topology = topology
        self.scheduler = scheduler
        self._cluster: Any = None
        self._processes = 0             # processes of the local cluster (0 for an existing cluster)
        self._config: Any = None        # DASK_CONFIG while the local cluster runs
        self.client: Any = None
        if scheduler and processes is not None:
            raise ConfigError("only applies to the local cluster; an existing cluster's processes are used as they are",
                              "jobs")
        if processes is not None and processes < 1:
            raise ConfigError(f"must be >= 1, got {processes}", "jobs")
        if scheduler:
            check_address(scheduler)
        try:
            if scheduler:
                self.client = Client(scheduler, timeout=timeout, set_as_default=False, direct_to_workers=True)
            else:
                processes = self._processes = processes or default_processes(topology, one_per_node=one_per_node)
                environ = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in MALLOC_ENVIRON.items()}
                self._config = dask.config.set({**DASK_CONFIG, **environ})
                self._cluster = LocalCluster(n_workers=processes, threads_per_worker=1, processes=True,
                                             host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                             silence_logs=logging.CRITICAL)
                self.client = Client(self._cluster, set_as_default=False, direct_to_workers=True)
                self.client.wait_for_workers(processes, timeout=timeout * 4)
        except (OSError, TimeoutError, ValueError) as err:
            self.close()
            raise ConfigError(f"cannot connect to the Dask scheduler at {scheduler!r}: {err}"
                              if scheduler else f"cannot start a local Dask cluster: {err}",
                              "scheduler" if scheduler else "jobs") from None
        self.refresh()
        if not self.hosts:
            self.close()
            raise ConfigError(f"the Dask cluster at {scheduler!r} has no workers", "scheduler")
        self.placement = assign(topology, sorted(self.hosts, key=_natural))
        self.warm_up(list(self.hosts))

    # -- hosts ----------------------------------------------------------------------------------
    def workers(self) -> dict[str, str]:
        """Dask worker name → address, read on the scheduler.

        (``Client.scheduler_info`` returns a cache that the client's own periodic refresh can overwrite
        with a truncated worker list; the function is local so that it travels by value and the
        scheduler needs no hgc.)
        """
        def names(dask_scheduler: Any) -> dict[str, str]:
            return {str(ws.name): address for address, ws in dask_scheduler.workers.items()}

        return dict(self.client.run_on_scheduler(names))

    def refresh(self) -> None:
        """Re-read the cluster's processes: host name → address."""
        self.hosts: dict[str, str] = self.workers()

    def address(self, host: str) -> str:
        return self.hosts[host]

    def address_of(self, node: Node) -> str:
        return self.hosts[self.placement[node]]

    def nodes_on(self, host: str) -> list[Node]:
        return sorted(node for node, h in self.placement.items() if h == host)

    def warm_up(self, hosts: Sequence[str]) -> None:
        """Open each host's own client connection (nodes use it to reach each other) before any
        measured iteration."""
        futures = [self.client.submit(node_tasks.warm_up, workers=[self.hosts[h]], allow_other_workers=False,
                                      pure=False) for h in hosts]
        self.client.gather(futures)
        if self._cluster is not None:  # our own processes share the terminal: Ctrl-C is for the master only
            self.client.run(node_tasks.ignore_interrupts, workers=[self.hosts[h] for h in hosts])

    # -- faults ---------------------------------------------------------------------------------
    def kill(self, host: str, timeout: float = KILL_TIMEOUT) -> int | None:
        """SIGKILL the process of ``host`` and wait (up to ``timeout`` seconds) until the scheduler has seen
        it go; its pid, or ``None`` if it was already gone."""
        address = self.hosts.get(host)
        if address is None:
            return None
        try:
            pid: int | None = int(self.client.run(node_tasks.terminate_process, workers=[address])[address])
        except Exception:  # noqa: BLE001 - the process is already gone
            pid = None
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            if address not in self.workers().values():
                break
            time.sleep(0.05)
        return pid

    def restore(self, host: str, timeout: float = RESTART_TIMEOUT) -> tuple[str, float]:
        """Give the nodes of the killed ``host`` a live process again; returns that process and the seconds
        it took.

        A *spare* (a live process hosting no node) takes them at once; otherwise wait for ``host`` to come
        back (a nanny restarts a killed process under the same name) and, after ``timeout`` seconds, move
        them to the live process with the fewest nodes. The restarted process becomes a spare.
        """
        started = time.perf_counter()
        old = self.hosts.get(host)
        lost = self.nodes_on(host)
        while True:
            self.refresh()
            occupied = set(self.placement.values()) - {host}
            spares = sorted((h for h in self.hosts if h not in occupied and self.hosts[h] != old), key=_natural)
            if spares:
                target = host if host in spares else spares[0]
                break
            if time.perf_counter() - started > timeout:
                live = [h for h in self.hosts if self.hosts[h] != old]
                if not live:
                    raise RuntimeError(f"Dask worker {host!r} did not come back and no other worker is left")
                load = {h: len(self.nodes_on(h)) for h in live}
                target = min(live, key=lambda h: (load[h], _natural(h)))
                break
            time.sleep(0.1)
        for node in lost:
            self.placement[node] = target
        self.warm_up([target])
        return target, time.perf_counter() - started

    def reassign(self, timeout: float = RESTART_TIMEOUT) -> None:
        """Place the nodes afresh over the live processes (at the start of a scheme, after kills moved some).

        A local cluster first waits (up to ``timeout`` seconds) for every killed process to be back, so that
        every scheme starts from the same placement.
        """
        started = time.perf_counter()
        self.refresh()
        while self._processes and len(self.hosts) < self._processes and time.perf_counter() - started < timeout:
            time.sleep(0.1)
            self.refresh()
        self.placement = assign(self.topology, sorted(self.hosts, key=_natural))

    def release(self, token: str) -> None:
        """End every wait of iteration ``token`` on every process (fire and forget)."""
        try:
            self.client.run(node_tasks.release, token, wait=False)
        except Exception:  # noqa: BLE001 - a process died meanwhile; its waits died with it
            pass

    # -- lifecycle ----------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """Facts for the run metadata."""
        return {
            "scheduler": self.scheduler or "local cluster on 127.0.0.1",
            "processes": len(self.hosts),
            "placement": {node.label: host for node, host in sorted(self.placement.items())},
        }

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.close()
            finally:
                self.client = None
        if self._cluster is not None:
            try:
                self._cluster.close()
            finally:
                self._cluster = None
        if self._config is not None:
            self._config.__exit__(None, None, None)
            self._config = None

    def __enter__(self) -> "EmulationCluster":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_address(address: str) -> None:
    """A :class:`ConfigError` on ``scheduler`` unless ``address`` is a well-formed Dask address (checked
    before connecting: a client that fails on a malformed address hangs on its way out); the rule of
    :func:`hgc.executors.check_scheduler_address`."""
    from hgc.executors import check_scheduler_address  # noqa: PLC0415 - keeps this module import-light

    check_scheduler_address(address)


def _natural(name: str) -> tuple[int, float, str]:
    """Sort key: numeric names in numeric order, then the others."""
    try:
        return (0, float(name), "")
    except ValueError:
        return (1, math.inf, name)
