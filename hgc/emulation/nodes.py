"""The emulated nodes: Dask actors that live on the cluster's worker processes.

Each emulated worker is a :class:`WorkerNode` and each participating edge an :class:`EdgeNode`, created
once per scheme by a Dask task pinned to the process that hosts the node (the worker's training rows
are scattered to that process first and stay there). In an iteration the messages travel directly
between the processes, as in the real system — master → edge → worker and back — without passing
through the Dask scheduler:

* :meth:`EdgeNode.aggregate` (a decoding edge) sends the parameters to each of its workers, waits for
  the first ``wait_for`` messages, decodes them on its own process and, after its drawn delay, answers
  the master with its one vector;
* :meth:`WorkerNode.compute` computes the coded message (one chunk of the code's combination of its
  partial gradients, :func:`coded_message`) on the worker's own rows, then waits out the rest of its
  drawn delay, so that compute time + wait = the draw;
* :meth:`EdgeNode.forward` (a relaying edge): the master asks for the edge's ``k``-th forwarded
  message; the first such request starts the edge's workers, and each message, as it arrives, leaves
  over the edge's link ``per_vector`` seconds after the link is free (first come, first served) and
  reaches the master ``delay`` seconds later.

Every wait ends early when the master *releases* the iteration (:func:`release`, run on every process
through ``Client.run``): late calls are cancelled at once. Methods are coroutines on the process's event
loop, so one process can host several nodes without threads; a worker's computation runs in a thread
when its data is large enough to hold up the loop (:data:`INLINE_ELEMENTS`).

Times returned to the master are wall-clock (``time.time()``): on one machine all processes share that
clock, across machines it is only as good as their synchronisation.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hgc.codes import chunk_length
from hgc.emulation.plan import Decoder, combine
from hgc.training.models import LinearModel

RELEASE_MEMORY = 4096
"""Released tokens remembered per process (a call that arrives after its iteration was released returns at once)."""
INLINE_ELEMENTS = 1 << 18
"""A worker whose rows hold more values than this computes in a thread instead of on the event loop."""

_events: dict[str, asyncio.Event] = {}
_released: OrderedDict[str, None] = OrderedDict()
_relays: dict[str, dict[int, "_Relay"]] = {}


# ----------------------------------------------------------------------------------------------------
# Release of an iteration (all on the process's event loop)

def released(token: str) -> bool:
    return token in _released


def _event(token: str) -> asyncio.Event:
    if token not in _events:
        _events[token] = asyncio.Event()
    return _events[token]


async def pause(token: str, seconds: float) -> bool:
    """Sleep ``seconds`` (``inf`` = until released) unless iteration ``token`` is released first.

    Returns ``True`` if the full time elapsed, ``False`` if the iteration was released.
    """
    if released(token):
        return False
    if seconds <= 0:
        return True
    try:
        await asyncio.wait_for(_event(token).wait(), None if math.isinf(seconds) else seconds)
    except asyncio.TimeoutError:
        return True
    return False


async def release(token: str) -> None:
    """End every wait of iteration ``token`` on this process and forget its state (run by ``Client.run``)."""
    _released[token] = None
    while len(_released) > RELEASE_MEMORY:
        _released.popitem(last=False)
    event = _events.pop(token, None)
    if event is not None:
        event.set()
    for relay in _relays.pop(token, {}).values():
        relay.stop()


def terminate_process(delay: float = 0.01) -> int:
    """Kill this process with SIGKILL ``delay`` seconds from now (after answering); returns its pid."""
    pid = os.getpid()
    timer = threading.Timer(delay, os.kill, (pid, signal.SIGKILL))
    timer.daemon = True
    timer.start()
    return pid


def ignore_interrupts() -> int:
    """Ignore SIGINT in this process (run on its main thread by ``Client.run``): a Ctrl-C in the terminal
    reaches every process of a local cluster, and only the master should act on it (it writes what
    finished and closes the cluster, which ends these processes)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return os.getpid()


def warm_up() -> int:
    """Open this process's client to the scheduler (node handles bind to it) and return the pid."""
    from distributed import get_client

    get_client()
    return os.getpid()


def detach(actor: Any) -> Any:
    """Make calls on ``actor`` fail at once when its process is gone.

    A Dask actor handle that cannot reach its process waits for the actor's task to be recomputed
    before retrying, and an actor pinned to a dead process never is: the call would hang. Without the
    handle's reference to that task the call raises ``OSError`` instead, which is what a node that lost
    its peer should see.
    """
    if hasattr(actor, "_future"):
        actor._future = None
    return actor


# ----------------------------------------------------------------------------------------------------
# Messages

@dataclass(frozen=True)
class WorkerData:
    """What one worker holds for one scheme: the training rows of its partitions, their targets, per row
    the encoding coefficients ``(rows, L)`` of the row's partition (one per gradient chunk), and the model
    (for its residual)."""

    X: np.ndarray
    y: np.ndarray
    coefficients: np.ndarray
    model: LinearModel

    @property
    def nbytes(self) -> int:
        return int(self.X.nbytes + self.y.nbytes + self.coefficients.nbytes)


@dataclass(frozen=True)
class WorkerMessage:
    """A worker's coded message and its timing: compute seconds, wall-clock start and finish."""

    vector: np.ndarray
    compute: float
    started: float
    finished: float

    @property
    def timing(self) -> tuple[float, float, float]:
        return (self.started, self.finished, self.compute)


@dataclass(frozen=True)
class EdgeMessage:
    """A decoding edge's vector for the master (``None`` if it could not decode) and what it used.

    ``used`` are the local indices of the workers whose messages were combined and ``workers`` their
    ``(started, finished, compute)`` times; ``collected`` is the wall-clock time at which the edge had
    the last message it waited for, ``finished`` when it sent its vector.
    """

    vector: np.ndarray | None
    used: tuple[int, ...]
    workers: tuple[tuple[float, float, float], ...]
    collected: float
    finished: float


@dataclass(frozen=True)
class RelayMessage:
    """A worker message as forwarded by its edge: the vector, the local index and ``(started, finished,
    compute)`` times of its worker, when it reached the edge and when it reached the master."""

    vector: np.ndarray
    worker: int
    timing: tuple[float, float, float]
    arrived: float
    finished: float


def coded_message(data: WorkerData, W: np.ndarray) -> np.ndarray:
    """The worker's coded message ``Σ_{k,c} e[k, c] G_k^(c)`` over its partitions ``k`` and the code's ``L``
    chunks ``c`` (``G_k = X_k^T R_k`` flattened, zero-padded to ``L`` chunks of ``ceil(size/L)`` numbers):
    one matrix product over all its rows, ``(ceil(size/L),)``."""
    R = data.model.residual(data.X @ W, data.y)                       # (rows, outputs)
    coefficients = data.coefficients
    L = coefficients.shape[1]
    if L == 1:
        return (data.X.T @ (coefficients * R)).reshape(-1)
    rows, outputs = R.shape
    size = data.X.shape[1] * outputs
    weighted = (coefficients[:, :, None] * R[:, None, :]).reshape(rows, L * outputs)
    per_chunk = (data.X.T @ weighted).reshape(-1, L, outputs).transpose(1, 0, 2).reshape(L, size)
    c = chunk_length(size, L)                                         # H_c = Σ_k e[k, c] G_k, flattened
    padded = np.zeros((L, L * c))
    padded[:, :size] = per_chunk
    return padded.reshape(L, L, c)[np.arange(L), np.arange(L)].sum(axis=0)   # Σ_c chunk c of H_c


# ----------------------------------------------------------------------------------------------------
# Nodes

class WorkerNode:
    """An emulated worker holding its :class:`WorkerData`."""

    def __init__(self, data: WorkerData):
        self.data = data

    async def compute(self, W: np.ndarray, delay: float, token: str) -> WorkerMessage | None:
        """The coded message for parameters ``W``, returned ``delay`` seconds after the call arrived
        (``inf``: never, a silent failure); ``None`` if the iteration was released first."""
        started = time.time()
        clock = time.perf_counter()
        if self.data.X.size > INLINE_ELEMENTS:
            vector = await asyncio.to_thread(coded_message, self.data, W)
        else:
            vector = coded_message(self.data, W)
        compute = time.perf_counter() - clock
        if not await pause(token, delay - compute):
            return None
        return WorkerMessage(vector, compute, started, time.time())


async def _first(pending: set[asyncio.Future], token: str) -> tuple[set[asyncio.Future], set[asyncio.Future]]:
    """Wait until one of ``pending`` ends or the iteration is released (then nothing is done)."""
    released_wait = asyncio.ensure_future(_event(token).wait())
    try:
        done, _ = await asyncio.wait(pending | {released_wait}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        released_wait.cancel()
    if released_wait in done or released(token):
        return set(), pending
    return done, pending - done


@dataclass
class _Relay:
    """One iteration's forwarding state on a relaying edge: the link's next free time and the
    messages in the order they reach the master."""

    per_vector: float
    delay: float
    link_free: float = -math.inf
    slots: list[asyncio.Future] = field(default_factory=list)
    tasks: list[asyncio.Future] = field(default_factory=list)

    def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for slot in self.slots:
            if not slot.done():
                slot.set_result(None)


class EdgeNode:
    """An emulated edge: the handles of its workers' nodes and, for a decoding edge, its decoder."""

    def __init__(self, edge: int, decoder: Decoder | None):
        self.edge = edge
        self.decoder = decoder
        self.workers: list[Any] = []

    async def bind(self, workers: list[Any]) -> int:
        """Set (or, after a worker's process was replaced, reset) the worker nodes, in plan order."""
        self.workers = [detach(w) for w in workers]
        return len(self.workers)

    async def aggregate(self, W: np.ndarray, worker_delays: list[float], wait_for: int, delay: float,
                        token: str) -> EdgeMessage | None:
        """Run the workers, decode the first ``wait_for`` messages and answer ``delay`` seconds later
        (``inf``: never). ``None`` if released first; no vector if too few workers can still answer."""
        if math.isinf(delay):
            await pause(token, math.inf)
            return None
        calls: dict[asyncio.Future, int] = {asyncio.ensure_future(self._call(j, W, d, token)): j
                                            for j, d in enumerate(worker_delays)}
        pending: set[asyncio.Future] = set(calls)
        arrived: list[tuple[int, WorkerMessage]] = []
        try:
            while len(arrived) < wait_for:
                if released(token):
                    return None
                if len(arrived) + len(pending) < wait_for:
                    return EdgeMessage(None, (), (), time.time(), time.time())
                done, pending = await _first(pending, token)
                for task in sorted(done, key=calls.__getitem__):
                    message = task.result()
                    if message is not None:
                        arrived.append((calls[task], message))
        finally:
            for task in pending:
                task.cancel()
        collected = time.time()
        clock = time.perf_counter()
        chosen = arrived[:wait_for]
        mask = np.zeros(len(self.workers), dtype=bool)
        mask[[j for j, _ in chosen]] = True
        weights = self.decoder.weights(mask) if self.decoder is not None else None
        used = [j for j, _ in chosen]
        vector = None if weights is None else combine(weights[:, used], np.stack([m.vector for _, m in chosen]))
        await pause(token, delay - (time.perf_counter() - clock))
        return EdgeMessage(vector, tuple(j for j, _ in chosen), tuple(m.timing for _, m in chosen), collected,
                           time.time())

    async def _call(self, j: int, W: np.ndarray, delay: float, token: str) -> WorkerMessage | None:
        """Worker ``j``'s message, or ``None`` if it cannot answer (its process is gone; a NaN delay says
        the master knows it is gone, and it is not contacted)."""
        if math.isnan(delay):
            return None
        try:
            return await self.workers[j].compute(W, delay, token)
        except Exception:  # noqa: BLE001 - any failure to answer is a lost worker
            return None

    async def forward(self, W: np.ndarray, worker_delays: list[float], per_vector: float, delay: float, token: str,
                      slot: int) -> RelayMessage | None:
        """The ``slot``-th message (0-based) this edge forwards to the master in iteration ``token``; the
        first request of an iteration starts the edge's workers. ``None`` if released first or if fewer
        messages arrive (their workers' processes are gone)."""
        if released(token):
            return None
        relays = _relays.setdefault(token, {})
        if self.edge not in relays:
            relay = relays[self.edge] = _Relay(per_vector, delay)
            loop = asyncio.get_running_loop()
            relay.slots = [loop.create_future() for _ in worker_delays]
            relay.tasks = [asyncio.ensure_future(self._relay_one(relay, j, W, d, token))
                           for j, d in enumerate(worker_delays)]
            asyncio.ensure_future(self._close_when_done(relay))
        return await relays[self.edge].slots[slot]

    async def _relay_one(self, relay: _Relay, j: int, W: np.ndarray, delay: float, token: str) -> None:
        message = await self._call(j, W, delay, token)
        if message is None:
            return
        arrived_wall, arrived = time.time(), time.perf_counter()
        departure = max(arrived, relay.link_free) + relay.per_vector
        relay.link_free = departure
        if not await pause(token, departure + relay.delay - time.perf_counter()):
            return
        forwarded = RelayMessage(message.vector, j, message.timing, arrived_wall, time.time())
        slot = next((s for s in relay.slots if not s.done()), None)
        if slot is not None:
            slot.set_result(forwarded)

    async def _close_when_done(self, relay: _Relay) -> None:
        """Once every worker's message was forwarded or lost, answer the remaining requests with ``None``."""
        await asyncio.gather(*relay.tasks, return_exceptions=True)
        relay.stop()
