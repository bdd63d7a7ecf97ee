"""Checking codes instead of trusting them: decode random partial gradients over straggler patterns.

:func:`check_code` takes one code, draws float64 partial gradients, and decodes the full gradient for
every straggler pattern within tolerance — exhaustively when there are at most ``max_patterns`` of them,
else a seeded sample of ``max_patterns`` — recording the worst relative gradient error, the worst
condition number and how many patterns were undecodable or decoded wrongly.

Patterns are the *maximal* admissible ones (exactly ``s`` stragglers for flat codes; exactly ``s_e``
straggling edges and exactly ``s_w[i]`` straggling workers in every other edge ``i`` for HGC): fewer
stragglers only add responders, which never turns a decodable set undecodable. Codes with shorter
messages (reductions) are checked the same way: every chunk of the decoded gradient must be exact.

:func:`verify_config` does this for every coded scheme of a config (every admissible value of an
``auto`` tolerance; for ``hgc_jncss`` the code of the JNCSS choice on its participating nodes) and
writes ``verify.csv`` (``hgc verify CONFIG``).
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import combinations
from math import comb, prod
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from hgc.codes import (DEFAULT_RTOL, FlatCode, GradientCode, HierarchicalCode, random_subsets,
                       straggler_patterns)
from hgc.errors import ConfigError, Interrupted
from hgc.interrupts import deferred_interrupts, pool_worker_init
from hgc.output import integer_columns, run_metadata, write_csv, write_json, write_yaml
from hgc.progress import ProgressFactory, progress_bar
from hgc.rng import Stream, stream

if TYPE_CHECKING:
    from hgc.config import ExperimentConfig

DEFAULT_PATTERNS = 100_000
GRADIENT_DIM = 8          # length of the random partial gradients used for checking
CHUNK = 8192              # patterns decoded per batch

VERIFY_COLUMNS = ["scheme", "label", "s", "s_e", "s_w", "reduction_e", "reduction_w", "reduction", "K", "load",
                  "construction", "patterns", "exhaustive",
                  "max_rel_error", "worst_cond", "undecodable", "failures", "note"]


@dataclass(frozen=True)
class CodeCheck:
    """Outcome of :func:`check_code`.

    patterns: straggler patterns decoded; exhaustive: whether that is all of them.
    max_rel_error: worst ``||ĝ - g|| / ||g||`` over decoded patterns (``nan`` if none decoded).
    worst_cond: worst condition number over decoded patterns (see :class:`hgc.codes.Decoding`).
    undecodable: patterns the decoder refused; wrong: decoded patterns with error above ``tol``.
    """

    patterns: int
    exhaustive: bool
    max_rel_error: float
    worst_cond: float
    undecodable: int
    wrong: int

    @property
    def failures(self) -> int:
        return self.undecodable + self.wrong


# ----------------------------------------------------------------------------------------------------
# Straggler patterns
# ----------------------------------------------------------------------------------------------------

def pattern_count(code: GradientCode) -> int:
    """Number of maximal admissible straggler patterns of ``code``.

    Flat: ``C(N, s)``. HGC: ``Σ_{|E| = s_e} Π_{i ∉ E} C(m_i, s_w[i])`` (elementary symmetric polynomial,
    computed exactly by dynamic programming).
    """
    if isinstance(code, FlatCode):
        return comb(code.n_workers, code.s)
    assert isinstance(code, HierarchicalCode), type(code)
    keep = code.n_edges - code.s_e
    e = [1] + [0] * keep                       # e[j] = sum over j-subsets of survivors of Π C(m_i, s_w[i])
    for m, s_w in zip(code.workers, code.worker_tolerances):
        c = comb(m, s_w)
        for j in range(keep, 0, -1):
            e[j] += e[j - 1] * c
    return e[keep]


def _hgc_exhaustive(code: HierarchicalCode) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Every maximal HGC pattern, in blocks ``(worker_masks, edge_masks)`` (one block per edge set)."""
    n, N = code.n_edges, code.n_workers
    offsets = np.concatenate([[0], np.cumsum(code.workers)])
    tables = [straggler_patterns(m, s_w, None, comb(m, s_w))[0]
              for m, s_w in zip(code.workers, code.worker_tolerances)]
    for down in combinations(range(n), code.s_e):
        alive = [i for i in range(n) if i not in down]
        radices = [tables[i].shape[0] for i in alive]
        total = prod(radices)
        for lo in range(0, total, CHUNK):
            idx = np.unravel_index(np.arange(lo, min(total, lo + CHUNK)), radices)
            wm = np.ones((idx[0].size if alive else 1, N), dtype=bool)
            for i, choice in zip(alive, idx):
                wm[:, offsets[i]:offsets[i + 1]] = tables[i][choice]
            em = np.ones((wm.shape[0], n), dtype=bool)
            em[:, list(down)] = False
            yield wm, em


def _hgc_sampled(code: HierarchicalCode, count: int, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``count`` random HGC patterns: uniform edge set, then a uniform straggler set in every edge."""
    n = code.n_edges
    tolerances = code.worker_tolerances
    offsets = np.concatenate([[0], np.cumsum(code.workers)])
    for lo in range(0, count, CHUNK):
        p = min(CHUNK, count - lo)
        em = np.ones((p, n), dtype=bool)
        em[np.arange(p)[:, None], random_subsets(rng, p, n, code.s_e)] = False
        wm = np.ones((p, code.n_workers), dtype=bool)
        for i, m in enumerate(code.workers):
            down = random_subsets(rng, p, m, tolerances[i]) + offsets[i]
            wm[np.arange(p)[:, None], down] = False
        yield wm, em


def _flat_patterns(code: FlatCode, limit: int, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, None]]:
    exhaustive = comb(code.n_workers, code.s) <= limit
    if exhaustive:
        masks, _ = straggler_patterns(code.n_workers, code.s, None, limit)
        for lo in range(0, masks.shape[0], CHUNK):
            yield masks[lo:lo + CHUNK], None
        return
    for lo in range(0, limit, CHUNK):
        masks, _ = straggler_patterns(code.n_workers, code.s, rng, min(CHUNK, limit - lo))
        yield masks, None


def _merged(blocks: Iterator[tuple[np.ndarray, np.ndarray]]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Concatenate small blocks into batches of about :data:`CHUNK` patterns."""
    buf_w, buf_e, size = [], [], 0
    for wm, em in blocks:
        buf_w.append(wm)
        buf_e.append(em)
        size += wm.shape[0]
        if size >= CHUNK:
            yield np.concatenate(buf_w), np.concatenate(buf_e)
            buf_w, buf_e, size = [], [], 0
    if buf_w:
        yield np.concatenate(buf_w), np.concatenate(buf_e)


def patterns(code: GradientCode, max_patterns: int, rng: np.random.Generator
             ) -> tuple[Iterator[tuple[np.ndarray, np.ndarray | None]], int, bool]:
    """``(batches, count, exhaustive)``: batches of ``(worker_masks, edge_masks)`` to decode."""
    total = pattern_count(code)
    exhaustive = total <= max_patterns
    count = total if exhaustive else max_patterns
    if isinstance(code, HierarchicalCode):
        blocks = _hgc_exhaustive(code) if exhaustive else _hgc_sampled(code, count, rng)
        return _merged(blocks), count, exhaustive
    assert isinstance(code, FlatCode), type(code)
    return _flat_patterns(code, max_patterns, rng), count, exhaustive


# ----------------------------------------------------------------------------------------------------
# Checking one code
# ----------------------------------------------------------------------------------------------------

def check_code(code: GradientCode, *, max_patterns: int = DEFAULT_PATTERNS, rng: np.random.Generator | None = None,
               tol: float = DEFAULT_RTOL, dim: int = GRADIENT_DIM, jobs: int = 1,
               on_batch: Callable[[int], object] | None = None) -> CodeCheck:
    """Decode random float64 partial gradients over the maximal straggler patterns of ``code``.

    A pattern *fails* when the decoder refuses it (undecodable) or returns a gradient whose relative
    error exceeds ``tol``. ``rng`` (default ``stream(0, Stream.VERIFY)``) draws the partial gradients
    and, when sampling, the patterns. The messages are the code's real (possibly chunked) messages and
    the gradient is reassembled from the decoded chunks (:meth:`GradientCode.combine`).

    ``jobs > 1`` decodes the batches of patterns in that many worker processes (when there are at least
    two batches). Every batch is decoded exactly as in this process and only maxima and counts are
    combined, so the result is the same, bit for bit, for any ``jobs``. BLAS runs single-threaded
    meanwhile (here and in the workers): the batched factorisations are small, and BLAS threads would
    only compete with the worker processes (on a 2-core machine they cost ~60 % more CPU time).
    """
    with threadpool_limits(limits=1, user_api="blas"):      # many small factorisations: threads only spin
        return _check_code(code, max_patterns, rng, tol, dim, jobs, on_batch)


def _check_code(code: GradientCode, max_patterns: int, rng: np.random.Generator | None, tol: float, dim: int,
                jobs: int, on_batch: Callable[[int], object] | None) -> CodeCheck:
    rng = rng if rng is not None else stream(0, Stream.VERIFY)
    G = rng.standard_normal((code.n_partitions, dim))
    messages = code.encode(G)
    g = G.sum(axis=0)
    g_norm = float(np.linalg.norm(g))
    batches, count, exhaustive = patterns(code, max_patterns, rng)
    job = _BatchCheck(code, messages, g, g_norm, tol, dim)
    outcomes: Iterable[tuple[int, int, int, float | None, float | None]]
    if jobs > 1 and count > CHUNK:
        blocks = list(batches)                          # drawn here, in order: the rng stream is unchanged
        pool = ProcessPoolExecutor(max_workers=min(jobs, len(blocks)), initializer=_start_batch_worker,
                                   initargs=(os.getpid(), job))
        try:
            outcomes = list(pool.map(_check_batch_in_worker, blocks))
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
    else:
        outcomes = (job(block) for block in batches)    # lazily: progress advances batch by batch
    max_err, worst_cond, undecodable, wrong, seen = 0.0, 1.0, 0, 0, 0
    any_decoded = False
    for size, refused, bad, err, cond in outcomes:
        seen += size
        undecodable += refused
        if on_batch is not None:
            on_batch(size)
        if err is None or cond is None:
            continue
        wrong += bad
        max_err = max(max_err, err)
        worst_cond = max(worst_cond, cond)
        any_decoded = True
    assert seen == count, (seen, count)
    return CodeCheck(count, exhaustive, max_err if any_decoded else float("nan"),
                     worst_cond if any_decoded else float("nan"), undecodable, wrong)


@dataclass(frozen=True)
class _BatchCheck:
    """Decodes one batch of patterns: ``(patterns, undecodable, wrong, max error, worst κ)`` (the last two
    ``None`` when nothing decoded)."""

    code: GradientCode
    messages: np.ndarray
    g: np.ndarray
    g_norm: float
    tol: float
    dim: int

    def __call__(self, block: tuple[np.ndarray, np.ndarray | None]) -> tuple[int, int, int, float | None,
                                                                               float | None]:
        wm, em = block
        result = self.code.decode_batch(wm, em)
        refused = int((~result.ok).sum())
        if not result.ok.any():
            return wm.shape[0], refused, 0, None, None
        w = result.weights[result.ok]
        err = np.linalg.norm(self.code.combine(w, self.messages, self.dim) - self.g, axis=1) / self.g_norm
        return (wm.shape[0], refused, int((err > self.tol).sum()), float(err.max()),
                float(result.cond[result.ok].max()))


_WORKER_CHECK: _BatchCheck | None = None


def _start_batch_worker(parent_pid: int, job: _BatchCheck) -> None:
    """Initializer of a verify worker process: the signal rules of :mod:`hgc.interrupts`, then the job."""
    global _WORKER_CHECK
    pool_worker_init(parent_pid)
    threadpool_limits(limits=1, user_api="blas")
    _WORKER_CHECK = job


def _check_batch_in_worker(block: tuple[np.ndarray, np.ndarray | None]) -> tuple[int, int, int, float | None,
                                                                                  float | None]:
    assert _WORKER_CHECK is not None
    return _WORKER_CHECK(block)


# ----------------------------------------------------------------------------------------------------
# Checking a config
# ----------------------------------------------------------------------------------------------------

def verify_config(config: ExperimentConfig, *, max_patterns: int = DEFAULT_PATTERNS, out_dir: Path | None = None,
                  tol: float = DEFAULT_RTOL, progress: ProgressFactory | None = None,
                  jobs: int = 1) -> pd.DataFrame:
    """Build and check every coded scheme of ``config`` (an :class:`hgc.config.ExperimentConfig`).

    Each scheme says which codes to check (:meth:`~hgc.schemes.Scheme.verify_strategies`: every admissible
    value of an ``auto`` parameter; the chosen nodes of a node selection). Codes use
    ``stream(seed, Stream.CODES)`` and ``data.partitions`` (smallest valid ``K`` if unset); checks use
    ``stream(seed, Stream.VERIFY)``, fresh for every row, so a row depends only on the seed and its own
    parameters. Returns the table (columns :data:`VERIFY_COLUMNS`) and writes it (:meth:`VerifyResult.write`) to
    ``out_dir`` if given. An explicit parameter that is inadmissible or a ``K`` that does not fit it raises
    :class:`~hgc.errors.ConfigError`; for ``auto`` values such codes are listed with a note instead.
    ``progress`` draws one bar over the straggler patterns of all codes; ``jobs`` is the number of worker
    processes per code (:func:`check_code`; the same table for any value).

    Ctrl-C / SIGTERM raises :class:`~hgc.errors.Interrupted` whose ``partial`` is the table of the codes
    checked completely so far (``None`` if none; also written to ``out_dir``, labelled interrupted in its
    ``metadata.json``); the code being checked is not in it.
    """
    rows: list[dict[str, Any]] = []
    cases = list(_cases(config, tol))
    total = sum(min(pattern_count(code), max_patterns) for _, code, _ in cases if code is not None)
    try:
        with progress_bar(progress, total, f"verify {len(cases)} codes", "pattern") as bar:
            for row, code, note in cases:
                if code is None:
                    rows.append({**row, "note": note})
                    continue
                bar.set_postfix_str(_label(row))
                check = check_code(code, max_patterns=max_patterns, rng=stream(config.seed, Stream.VERIFY), tol=tol,
                                   jobs=jobs, on_batch=bar.update)
                rows.append({**row, "K": code.n_partitions, "load": code.load, "construction": code.construction,
                             "patterns": check.patterns, "exhaustive": check.exhaustive,
                             "max_rel_error": check.max_rel_error, "worst_cond": check.worst_cond,
                             "undecodable": check.undecodable, "failures": check.failures, "note": note})
    except KeyboardInterrupt:  # keep the rows already checked, labelled partial, then stop
        partial = _table(rows) if rows else None
        if out_dir is not None and partial is not None:
            with deferred_interrupts():
                VerifyResult(partial, config, max_patterns, interrupted=True).write(Path(out_dir))
        raise Interrupted(f"interrupted after {len(rows)} checked codes", partial) from None
    table = _table(rows)
    if out_dir is not None:
        VerifyResult(table, config, max_patterns).write(Path(out_dir))
    return table


@dataclass
class VerifyResult:
    """What ``hgc verify`` computes: the table (``verify.csv``), the config, the pattern budget, and whether
    the run was interrupted (the table then holds the codes checked completely)."""

    table: pd.DataFrame
    config: ExperimentConfig
    max_patterns: int
    interrupted: bool = False

    @property
    def failures(self) -> int:
        """Admissible straggler patterns that were not decoded exactly, over all codes."""
        return int(self.table["failures"].fillna(0).sum())

    def write(self, out_dir: Path) -> list[Path]:
        """``verify.csv``, ``config.resolved.yaml`` and ``metadata.json`` (labelled partial if interrupted)."""
        out_dir = Path(out_dir)
        return [
            write_csv(self.table, out_dir / "verify.csv"),
            write_yaml(self.config.resolved(), out_dir / "config.resolved.yaml"),
            write_json(run_metadata("verify", seed=self.config.seed, max_patterns=self.max_patterns,
                                    codes=len(self.table), interrupted=self.interrupted,
                                    complete=not self.interrupted), out_dir / "metadata.json"),
        ]


LABEL_COLUMNS = ("s", "s_e", "s_w", "reduction_e", "reduction_w", "reduction")


def _label(row: Mapping[str, Any]) -> str:
    """``scheme(s_e=1,s_w=1,...)``: the tolerances, the reductions other than 1 and the scheme's other
    parameters as written (``allocation=speed``), so two codes of one config never share a label."""
    parameters = [f"{k}={_text(row[k])}" for k in LABEL_COLUMNS
                  if row.get(k) is not None and not (k.startswith("reduction") and row[k] == 1)]
    parameters += [f"{k}={v}" for k, v in row.get("extra", ())]
    return f"{row['scheme']}({','.join(parameters)})" if parameters else str(row["scheme"])


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(str(v) for v in value) + "]"
    return str(value)


def _cases(config: ExperimentConfig, tol: float) -> Iterator[tuple[dict[str, Any], GradientCode | None, str]]:
    """Every code to check, in config order: ``(row start, code or None when skipped, note)``."""
    from hgc.schemes import ResolveContext  # the schemes build on the codes this module checks

    context = ResolveContext(config.timing, config.seed)
    K = config.data.partitions
    for j, spec in enumerate(config.schemes):
        scheme = spec.scheme
        for strategy, note, columns in scheme.verify_strategies(spec, context):
            row: dict[str, Any] = {"scheme": spec.kind, **columns,
                                   "extra": tuple((k, v) for k, v in spec.params if k not in LABEL_COLUMNS)}
            try:
                if strategy is None:
                    raise ConfigError(note, f"schemes[{j}]")
                code = scheme.build_code(strategy, partitions=K, rng=stream(config.seed, Stream.CODES), rtol=tol)
            except ConfigError as err:
                if spec.is_auto:
                    yield row, None, f"skipped: {err.message}"
                    continue
                key = "data.partitions" if err.key == "data.partitions" else f"schemes[{j}]"
                raise ConfigError(err.message, key, config.source) from None
            yield row, code, note


def _table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    table = pd.DataFrame([{**row, "label": _label(row)} for row in rows], columns=VERIFY_COLUMNS)
    integer_columns(table, ("s", "s_e", "s_w", "reduction_e", "reduction_w", "reduction", "K", "patterns",
                            "undecodable", "failures"))
    table["exhaustive"] = table["exhaustive"].astype("boolean")
    table["note"] = table["note"].fillna("")
    return table


