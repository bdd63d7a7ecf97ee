"""Interruption: one rule for every command, and worker processes that never outlive their parent.

**The rule.** Ctrl-C (SIGINT) or SIGTERM stops a command promptly; it writes what is *complete*, labelled
as partial (``"interrupted": true`` in ``metadata.json``; a Monte Carlo table counts only the finished
trials), or nothing, and exits with status 130. A unit of work that did not finish — a sweep point, a
pilot run choosing ``s``, an optimizer's Monte Carlo check, a trained scheme, a verified code — is never
saved or reported as finished; a rerun (a resumed sweep) computes it again.

Mechanics:

* :func:`sigterm_as_interrupt` makes SIGTERM raise :class:`KeyboardInterrupt` in the main thread for the
  duration of a command, so both signals take the same path.
* :func:`deferred_interrupts` holds a signal back while a few statements update results that must stay
  consistent (e.g. adding one chunk's statistics to every scheme), then delivers it.
* :func:`pool_worker_init` prepares a local worker process: it ignores SIGINT (the parent decides, and
  terminates its workers), takes SIGTERM's default action, and dies when its parent dies — through the
  kernel's parent-death signal on Linux, and a watchdog thread everywhere.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from typing import Any, Iterator

WATCHDOG_SECONDS = 1.0
"""How often a worker's watchdog checks that its parent is alive."""


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises :class:`KeyboardInterrupt` (as Ctrl-C does) inside the block; main thread only."""
    if not _in_main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back until the block ends, then deliver them to the handlers in force.

    Outside the main thread (where Python never delivers signals) this does nothing.
    """
    if not _in_main_thread():
        yield
        return
    received: list[int] = []

    def hold(signum: int, frame: Any) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in dict.fromkeys(received):
            signal.raise_signal(signum)


def _parent_alive(parent_pid: int) -> bool:
    if os.getppid() == 1:  # re-parented to init: the parent is gone
        return False
    try:
        os.kill(parent_pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _watch(parent_pid: int) -> None:
    while _parent_alive(parent_pid):
        time.sleep(WATCHDOG_SECONDS)
    os._exit(1)


def die_with_parent(parent_pid: int) -> None:
    """End this process when ``parent_pid`` ends (SIGKILL included)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes  # noqa: PLC0415

            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watchdog below still works
    if not _parent_alive(parent_pid):
        os._exit(1)
    threading.Thread(target=_watch, args=(parent_pid,), name="hgc-parent-watchdog", daemon=True).start()


def pool_worker_init(parent_pid: int) -> None:
    """Initializer of local pool workers (see the module docstring)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent(parent_pid)
