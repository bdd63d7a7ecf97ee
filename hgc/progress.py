"""Progress reporting for long operations, without tying the library to a terminal.

Library functions that run for long take an optional ``progress`` :class:`ProgressFactory`: called with a
total (or ``None`` when unknown), a short description and a unit, it returns a :class:`ProgressBar` that
the function advances and closes. The command line passes a factory that draws tqdm bars on stderr;
library callers get :data:`NO_PROGRESS`, which does nothing.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, Protocol


class ProgressBar(Protocol):
    """What a long operation advances (tqdm's bars have this interface)."""

    def update(self, n: float = 1) -> object: ...

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> object: ...

    def close(self) -> object: ...


class ProgressFactory(Protocol):
    def __call__(self, total: float | None, description: str, unit: str) -> ProgressBar: ...


class _Silent:
    """A progress bar that shows nothing."""

    def update(self, n: float = 1) -> None:
        return None

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        return None

    def close(self) -> None:
        return None


def no_progress(total: float | None, description: str, unit: str) -> ProgressBar:
    """The factory of silent bars (the library default)."""
    return _Silent()


NO_PROGRESS: ProgressFactory = no_progress


@contextmanager
def progress_bar(factory: ProgressFactory | None, total: float | None, description: str,
                 unit: str = "it") -> Iterator[ProgressBar]:
    """A bar from ``factory`` (silent when ``None``) that is closed however the block ends."""
    bar = (factory or NO_PROGRESS)(total, description, unit)
    try:
        yield bar
    finally:
        bar.close()


def chunk_progress(factory: ProgressFactory | None, description: str, trials: int
                   ) -> "Callable[[Iterable[int]], Iterable[int]] | None":
    """An adapter for the Monte Carlo loop: wraps its iterable of chunk sizes so that a bar from
    ``factory`` advances by the trials of each chunk (``None`` without a factory)."""
    if factory is None:
        return None

    def wrap(chunks: Iterable[int]) -> Iterator[int]:
        with progress_bar(factory, trials, description, "trial") as bar:
            for size in chunks:
                yield size
                bar.update(size)

    return wrap
