"""One scheme on the cluster: its nodes placed on their processes, and one coded iteration at a time.

:class:`SchemeSession` scatters each participating worker's rows to the process hosting it and creates
the scheme's :class:`~hgc.emulation.nodes.WorkerNode` and :class:`~hgc.emulation.nodes.EdgeNode` actors
there, once per scheme (again only for the nodes of a lost process). :meth:`SchemeSession.iterate`
runs one iteration from the master (this process):

1. call every participating edge with the current parameters and the drawn delays of the edge and of
   its workers (decoding edges: once; relaying edges: once per message they will forward); the edges
   call their workers;
2. take the edges' answers as they arrive until the scheme can decode (the first ``master_wait`` usable
   ones), every call has ended without enough of them (``lost``: processes died), or the deadline
   passes (``timeout``: silent failures);
3. decode, stop the clock; release the iteration on every process, which ends every wait still running.
"""

from __future__ import annotations

import asyncio
import math
import queue
import time
import uuid
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from hgc.emulation import nodes as node_tasks
from hgc.emulation.cluster import EmulationCluster, Node
from hgc.emulation.nodes import EdgeMessage, EdgeNode, RelayMessage, WorkerData, WorkerNode
from hgc.emulation.plan import ProtocolPlan, combine
from hgc.training.models import LinearModel

STATUS_OK = "ok"
STATUS_LOST = "lost"          # every awaited call ended (processes died) without enough messages
STATUS_TIMEOUT = "timeout"    # the deadline passed (silent failures)
STATUS_REFUSED = "refused"    # the decoder refused the arrived set (never for a correct code)


@dataclass
class IterationOutcome:
    """What the master saw in one iteration.

    ``time``: seconds from the master's first call to the decoded gradient (or to giving up).
    ``gradient``: the decoded sum of partial gradients, flat (the code's ``L`` chunks end to end, padding
    included), ``None`` unless ``status == "ok"``.
    ``workers_used`` ``(plan rows,)`` / ``edges_used`` ``(plan edges,)``: whose messages the master's
    result combines. ``dispatch``: mean seconds from the start until the used workers began computing
    (master → edge → worker); ``collect``: mean seconds from a used worker's message leaving it until the
    edge that used it had it; ``deliver``: seconds from the last used answer leaving its edge until the
    master had decoded. ``compute``: mean compute seconds of the used workers; ``overruns``: how many of
    them computed longer than their drawn delay. NaN where nothing was used.
    """

    time: float
    status: str
    gradient: np.ndarray | None
    workers_used: np.ndarray
    edges_used: np.ndarray
    dispatch: float = math.nan
    collect: float = math.nan
    deliver: float = math.nan
    compute: float = math.nan
    overruns: int = 0


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else math.nan


class _Inbox:
    """Answers of actor calls as they arrive: the client's event loop awaits them and hands each
    ``(label, answer)`` to the master's thread (``answer`` is ``None`` when the call failed)."""

    def __init__(self, loop: Any, calls: dict[Any, Any]):
        self._loop = loop
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._tasks: list[Any] = []
        loop.add_callback(self._start, calls)

    async def _start(self, calls: dict[Any, Any]) -> None:
        self._tasks = [asyncio.ensure_future(self._wait(label, call)) for label, call in calls.items()]

    async def _wait(self, label: Any, call: Any) -> None:
        try:
            answer = await call
        except Exception:  # noqa: BLE001 - the edge's process is gone or it failed: no answer
            answer = None
        self._queue.put((label, answer))

    def get(self, timeout: float) -> tuple[Any, Any]:
        """The next answer; :class:`queue.Empty` after ``timeout`` seconds without one."""
        return self._queue.get(timeout=max(timeout, 0.0))

    def close(self) -> None:
        async def cancel() -> None:
            for task in self._tasks:
                task.cancel()

        self._loop.add_callback(cancel)


def worker_data(plan: ProtocolPlan, X: np.ndarray, y: np.ndarray, partition_sizes: np.ndarray,
                model: LinearModel) -> list[WorkerData]:
    """What every worker row of ``plan`` holds: the rows of its partitions (``partition_sizes`` rows each, in
    order, contiguous in ``X``) and, per row, the encoding coefficients of its partition for every chunk."""
    starts = np.concatenate([[0], np.cumsum(partition_sizes)]).astype(np.intp)
    out = []
    for row in range(plan.n_workers):
        held = np.flatnonzero(plan.membership[row])
        rows = (np.concatenate([np.arange(starts[k], starts[k + 1]) for k in held]) if held.size
                else np.zeros(0, dtype=np.intp))
        coefficients = np.repeat(plan.encoding[row, held, :], partition_sizes[held], axis=0)   # (rows, L)
        out.append(WorkerData(np.ascontiguousarray(X[rows]), y[rows], coefficients, model))
    return out


class SchemeSession:
    """One scheme's plan with its nodes placed on the cluster (see the module docstring)."""

    def __init__(self, cluster: EmulationCluster, plan: ProtocolPlan, X: np.ndarray, y: np.ndarray,
                 partition_sizes: np.ndarray, model: LinearModel):
        self.cluster = cluster
        self.plan = plan
        self._data = worker_data(plan, X, y, partition_sizes, model)
        self.worker_nodes = [Node(e, p) for e, p in plan.worker_nodes()]
        self.edge_nodes = [Node(role.edge) for role in plan.edges]
        self._keep: dict[Node, list[Any]] = {}      # futures that keep each node's data and actor alive
        self.workers: list[Any] = [None] * plan.n_workers
        self.edges: list[Any] = [None] * len(plan.edges)
        self.place()

    @property
    def data_bytes(self) -> int:
        """Bytes of training data placed on the worker processes (all workers)."""
        return sum(d.nbytes for d in self._data)

    def place(self, nodes: set[Node] | None = None) -> None:
        """Create the nodes (only ``nodes`` if given) on the processes hosting them and connect every edge
        to its workers' nodes."""
        client, cluster = self.cluster.client, self.cluster
        submit: dict[str, Any] = dict(allow_other_workers=False, pure=False, actor=True)
        created: dict[tuple[str, int], Any] = {}
        for row, node in enumerate(self.worker_nodes):
            if nodes is None or node in nodes:
                address = cluster.address_of(node)
                data = client.scatter(self._data[row], workers=[address], hash=False)
                created[("w", row)] = client.submit(WorkerNode, data, workers=[address], **submit)
                self._keep[node] = [data, created[("w", row)]]
        for j, (role, node) in enumerate(zip(self.plan.edges, self.edge_nodes)):
            if nodes is None or node in nodes:
                created[("e", j)] = client.submit(EdgeNode, role.edge, role.decoder,
                                                  workers=[cluster.address_of(node)], **submit)
                self._keep[node] = [created[("e", j)]]
        with client.as_current():
            handles = dict(zip(created, client.gather(list(created.values()))))
        for (kind, i), handle in handles.items():
            (self.workers if kind == "w" else self.edges)[i] = node_tasks.detach(handle)
        rebind = [j for j, role in enumerate(self.plan.edges)
                  if ("e", j) in created or any(("w", r) in created for r in role.rows)]
        calls = [self.edges[j].bind([self.workers[r] for r in self.plan.edges[j].rows]) for j in rebind]
        for call in calls:
            call.result()

    def close(self) -> None:
        """Delete the nodes and their data from the cluster."""
        futures = [f for kept in self._keep.values() for f in kept]
        self._keep.clear()
        self.workers = [None] * len(self.workers)
        self.edges = [None] * len(self.edges)
        if futures and self.cluster.client is not None:
            self.cluster.client.cancel(futures, force=True)

    # ------------------------------------------------------------------------------------------
    def iterate(self, W: np.ndarray, worker_delay: np.ndarray, edge_delay: np.ndarray, per_vector: np.ndarray,
                deadline: float, down: frozenset[Node] = frozenset()) -> IterationOutcome:
        """One iteration with parameters ``W`` and the given delays (seconds, see
        :class:`~hgc.emulation.plan.ScheduledDelays`); gives up ``deadline`` seconds after the start.

        ``down`` are nodes whose processes are known to be dead (killed and seen gone by the scheduler):
        they are not contacted, as peers with a failure detector would not (Dask keeps retrying a
        connection to a dead address for its whole connect timeout).
        """
        plan, cluster = self.plan, self.cluster
        token = uuid.uuid4().hex
        start_wall, start = time.time(), time.perf_counter()
        calls: dict[Any, Any] = {}
        unreachable = 0
        for j, role in enumerate(plan.edges):
            delays = [math.nan if self.worker_nodes[r] in down else float(worker_delay[r]) for r in role.rows]
            if self.edge_nodes[j] in down:
                unreachable += len(role.rows) if role.relay else 1
                continue
            if role.relay:
                for k in range(len(role.rows)):
                    calls[(j, k)] = self.edges[j].forward(W, delays, float(per_vector[j]), float(edge_delay[j]),
                                                          token, k)
            else:
                calls[j] = self.edges[j].aggregate(W, delays, role.wait_for, float(edge_delay[j]), token)
        inbox = _Inbox(cluster.client.loop, calls)

        arrivals: list[tuple[int, Any]] = []
        ended, status = unreachable, STATUS_OK
        try:
            while len(arrivals) < plan.master_wait:
                remaining = deadline - (time.perf_counter() - start)
                if remaining <= 0:
                    status = STATUS_TIMEOUT
                    break
                if len(arrivals) + len(calls) + unreachable - ended < plan.master_wait:
                    status = STATUS_LOST
                    break
                try:
                    label, answer = inbox.get(remaining)
                except queue.Empty:
                    continue
                ended += 1
                if answer is None or answer.vector is None:
                    continue
                if isinstance(answer, RelayMessage):
                    arrivals.append((plan.edges[label[0]].rows[answer.worker], answer))
                else:
                    arrivals.append((label, answer))
            gradient = None
            if status == STATUS_OK:
                chosen = arrivals[:plan.master_wait]
                mask = np.zeros(plan.master_decoder.size, dtype=bool)
                mask[[i for i, _ in chosen]] = True
                weights = plan.master_decoder.weights(mask)
                if weights is None:
                    status = STATUS_REFUSED
                else:
                    used = [i for i, _ in chosen]
                    gradient = combine(weights[:, used], np.stack([answer.vector for _, answer in chosen]))
            elapsed = time.perf_counter() - start
            decoded_wall = time.time()
        finally:
            cluster.release(token)
            inbox.close()
        outcome = IterationOutcome(elapsed, status, gradient, np.zeros(plan.n_workers, bool),
                                   np.zeros(len(plan.edges), bool))
        if status == STATUS_OK:
            self._account(outcome, arrivals[:plan.master_wait], worker_delay, start_wall, decoded_wall)
        return outcome

    def _account(self, outcome: IterationOutcome, chosen: list[tuple[int, Any]], worker_delay: np.ndarray,
                 start_wall: float, decoded_wall: float) -> None:
        """Fill in who was used and where the time went (see :class:`IterationOutcome`)."""
        plan = self.plan
        used_workers: list[tuple[int, tuple[float, float, float]]] = []
        collect: list[float] = []
        sent: list[float] = []
        for i, message in chosen:
            if isinstance(message, EdgeMessage):
                role = plan.edges[i]
                outcome.edges_used[i] = True
                used_workers += list(zip([role.rows[j] for j in message.used], message.workers))
                collect.append(message.collected - max(w[1] for w in message.workers))
            elif isinstance(message, RelayMessage):
                used_workers.append((i, message.timing))
                outcome.edges_used[next(j for j, role in enumerate(plan.edges) if i in role.rows)] = True
                collect.append(message.arrived - message.timing[1])
            sent.append(message.finished)
        for row, _ in used_workers:
            outcome.workers_used[row] = True
        outcome.dispatch = _mean([w[0] - start_wall for _, w in used_workers])
        outcome.collect = _mean(collect)
        outcome.deliver = decoded_wall - max(sent) if sent else math.nan
        outcome.compute = _mean([w[2] for _, w in used_workers])
        outcome.overruns = sum(1 for row, w in used_workers if w[2] > worker_delay[row])
