"""Where sweep points run: in this process, in a local process pool, or on a Dask cluster.

All three executors share one small interface — :meth:`Executor.run` maps a picklable top-level function
over tasks and yields ``(task, result, error)`` *as each finishes* (completion order; callers that need a
fixed order sort by the task, as :mod:`hgc.sweep` does). ``error`` is the exception raised by the
executor machinery (a crashed worker process, a lost Dask worker); a function that reports its own
failures in its result never sets it.

* ``serial``: plain loop, no parallelism (the reference; easiest to debug).
* ``process``: :class:`concurrent.futures.ProcessPoolExecutor` with ``jobs`` worker processes.
* ``dask``: a :class:`distributed.Client` connected to the scheduler at ``scheduler`` (``tcp://host:8786``),
  or, without an address, to a :class:`distributed.LocalCluster` of ``jobs`` single-threaded worker
  processes started for the run (loopback only; its status page on a random loopback port) and closed
  afterwards.

Workers we start never outlive us: pool workers die with their parent (even when it is SIGKILLed; see
:func:`hgc.interrupts.pool_worker_init`) and Dask's local workers watch their parent themselves. When
the caller stops early (Ctrl-C, SIGTERM, an error) the executor is closed with ``abort=True``: running
tasks are killed rather than waited for, and none of their results is reported.

Memory: Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which makes glibc return
every freed array to the system at once, so each Monte Carlo chunk's arrays page-fault in again (about
140 000 minor faults and 1.7x the CPU time per 100 000-trial point). The local cluster's workers are
started with :data:`DASK_WORKER_ENV` instead — through Dask's ``pre-spawn-environ`` setting, because glibc
reads these variables when the worker process starts (Dask's ``env=`` applies them too late). A value the
user exported in the environment wins. See ``docs/cluster.md`` for workers you start yourself.
"""

from __future__ import annotations

import logging
import os
import re
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterator, Sequence

from hgc.errors import ConfigError, printable
from hgc.interrupts import pool_worker_init

EXECUTORS = ("serial", "process", "dask")

DASK_WORKER_ENV = {"MALLOC_TRIM_THRESHOLD_": str(2**30), "MALLOC_MMAP_THRESHOLD_": str(2**25)}
"""glibc settings of the local Dask workers: arrays up to 32 MiB (glibc's largest mmap threshold) come
from the heap, and up to 1 GiB of freed heap is kept for reuse instead of being returned after every chunk."""

Completed = tuple[Any, Any, BaseException | None]


def default_jobs() -> int:
    """Worker count used when ``--jobs`` is not given: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class Executor:
    """Runs ``fn(task)`` for every task; use as a context manager so resources are released."""

    name = "executor"

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(abort=exc_type is not None)

    def close(self, abort: bool = False) -> None:
        """Release workers / connections (idempotent); ``abort`` kills running tasks instead of waiting."""

    def describe(self) -> dict[str, Any]:
        """Facts for run metadata (kind, workers, scheduler address)."""
        return {"executor": self.name}

    def run(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Completed]:
        raise NotImplementedError


class SerialExecutor(Executor):
    """Runs tasks one after the other in this process."""

    name = "serial"

    def run(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Completed]:
        for task in tasks:
            try:
                result = fn(task)
            except Exception as err:  # noqa: BLE001 - reported like a worker crash
                yield task, None, err
            else:
                yield task, result, None

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "jobs": 1}


class ProcessExecutor(Executor):
    """A pool of ``jobs`` local worker processes (:class:`concurrent.futures.ProcessPoolExecutor`)."""

    name = "process"

    def __init__(self, jobs: int):
        self.jobs = jobs
        self._pool: ProcessPoolExecutor | None = ProcessPoolExecutor(
            max_workers=jobs, initializer=pool_worker_init, initargs=(os.getpid(),))

    def run(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Completed]:
        assert self._pool is not None, "executor is closed"
        futures: dict[Future, Any] = {self._pool.submit(fn, task): task for task in tasks}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    error = future.exception()
                    yield futures[future], (None if error else future.result()), error
        finally:
            for future in pending:
                future.cancel()

    def close(self, abort: bool = False) -> None:
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        if not abort:
            pool.shutdown(wait=True, cancel_futures=True)
            return
        workers = list((getattr(pool, "_processes", None) or {}).values())
        for process in workers:
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        for process in workers:
            process.join(timeout=5)

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "jobs": self.jobs}


class DaskExecutor(Executor):
    """Tasks as Dask futures: on the cluster whose scheduler is at ``scheduler``, or on a local cluster of
    ``jobs`` single-threaded worker processes when no address is given.

    Worker machines must have the same hgc version installed and see any trace files the configs name.
    """

    name = "dask"

    def __init__(self, jobs: int, scheduler: str | None = None, timeout: float = 30.0):
        import dask  # noqa: PLC0415 - heavy, only when asked for
        from distributed import Client, LocalCluster  # noqa: PLC0415

        self.jobs = jobs
        self.scheduler = scheduler
        self._cluster: Any = None
        self._client: Any = None
        try:
            if scheduler:
                self._client = Client(scheduler, timeout=timeout, set_as_default=False)
            else:
                environ = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in DASK_WORKER_ENV.items()}
                with dask.config.set(environ):
                    self._cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                                 host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                                 silence_logs=logging.ERROR)
                self._client = Client(self._cluster, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as err:
            if self._cluster is not None:
                self._cluster.close()
            raise ConfigError(f"cannot connect to the Dask scheduler at {scheduler!r}: {err}",
                              "scheduler") from None

    def run(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Completed]:
        from distributed import as_completed  # noqa: PLC0415

        futures = self._client.map(fn, list(tasks), pure=False)
        by_key = {future.key: task for future, task in zip(futures, tasks)}
        try:
            for future in as_completed(futures, loop=self._client.loop):
                task = by_key[future.key]
                try:
                    yield task, future.result(), None
                except Exception as err:  # noqa: BLE001 - a lost worker or an unpicklable result
                    yield task, None, err
        finally:
            self._client.cancel([f for f in futures if not f.done()])

    def close(self, abort: bool = False) -> None:
        if getattr(self, "_client", None) is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def describe(self) -> dict[str, Any]:
        workers = len(self._client.scheduler_info().get("workers", {})) if self._client else None
        return {"executor": self.name, "scheduler": self.scheduler or "local cluster",
                "dask_workers": workers, "jobs": self.jobs if not self.scheduler else None}


_SCHEDULER_ADDRESS = re.compile(r"(tcp|tls|ws|wss)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.\-]*)(?::(\d{1,5}))?")


def check_scheduler_address(address: str) -> str:
    """``address`` if it has the form ``tcp://HOST[:PORT]`` (or ``tls``/``ws``/``wss``), else a
    :class:`ConfigError` on ``--scheduler`` (Dask itself would hang for a minute on some malformed ones)."""
    match = _SCHEDULER_ADDRESS.fullmatch(address)
    if match is None or (match.group(3) is not None and not 0 < int(match.group(3)) < 65536):
        raise ConfigError(f"expected a scheduler address such as tcp://10.0.0.5:8786, got {printable(repr(address), 80)}",
                          "scheduler")
    return address


def make_executor(kind: str, jobs: int | None = None, scheduler: str | None = None) -> Executor:
    """The executor named ``kind`` (one of :data:`EXECUTORS`); bad arguments raise :class:`ConfigError`."""
    if kind not in EXECUTORS:
        raise ConfigError(f"unknown executor {kind!r} (allowed: {', '.join(EXECUTORS)})", "executor")
    if jobs is not None and jobs < 1:
        raise ConfigError(f"must be >= 1, got {jobs}", "jobs")
    if scheduler and kind != "dask":
        raise ConfigError("only applies with --executor dask", "scheduler")
    if scheduler:
        check_scheduler_address(scheduler)
    if kind == "serial":
        return SerialExecutor()
    if kind == "process":
        return ProcessExecutor(jobs or default_jobs())
    return DaskExecutor(jobs or default_jobs(), scheduler)
