"""The parallel-collection machinery shared by ``training.collect`` and ``training.corpus``.

A per-item worker (one MIDI file, one POP909 song, ...) returns a list of :class:`ItemResult`:
that item's kept phrases as flat indices of their true cells, or why it gave none.
:func:`run_tasks` runs the workers in ``jobs`` processes with a tqdm bar and feeds every result
into a :class:`PhraseSink`, which writes them ordered by (source, variant) whatever order the
workers finish in: ``X.npz`` (LPD-5 sparse), ``X.manifest.csv`` (phrase index, source, first
bar, optional style) and ``X.log`` (every skipped item and why). :class:`CollectSummary` is what
a run did, as the CLIs print it. Ctrl-C stops a run early and keeps what was finished.
"""

from __future__ import annotations

import csv
import logging
import multiprocessing
import signal
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from musegan_live.representation import (
    N_TRACKS,
    PHRASE_SHAPE,
    TRACK_NAMES,
    SparseDataset,
    save_sparse_npz,
)

logger = logging.getLogger(__name__)

#: Why a file gives no phrase, in the order the summary lists them.
REASONS = ("corrupt", "not_4_4", "too_short", "no_usable_tracks", "empty", "no_phrase_kept")
CELLS_PER_PHRASE = int(np.prod(PHRASE_SHAPE))  # 4 * 48 * 84 * 5 = 80640

T = TypeVar("T")


# --- what a worker sends back -----------------------------------------------------------------
@dataclass
class ItemResult:
    """One source item's phrases in compact sparse form, or why it gave none.

    ``cells`` are flat indices into ``bool[n_phrases, 4, 48, 84, 5]`` (uint32 unless a file is
    enormous); ``first_bars`` the first bar of each phrase in the source; ``track_phrases``
    ``int[5]`` how many of the phrases have each track non-empty; ``seconds`` the work time.
    """

    source: str
    variant: str = ""
    reason: str | None = None
    message: str = ""
    first_bars: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    cells: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint32))
    track_phrases: np.ndarray = field(default_factory=lambda: np.zeros(N_TRACKS, dtype=np.int64))
    seconds: float = 0.0

    @property
    def n_phrases(self) -> int:
        return len(self.first_bars)

    @classmethod
    def from_phrases(
        cls, source: str, phrases: np.ndarray, first_bars: np.ndarray, variant: str = ""
    ) -> ItemResult:
        """Pack dense kept phrases ``bool[n, 4, 48, 84, 5]``; no phrase -> ``no_phrase_kept``."""
        if len(phrases) == 0:
            return cls(source, variant, "no_phrase_kept", "no phrase passed the keep rule")
        flat = np.flatnonzero(phrases.reshape(-1))
        dtype = np.uint32 if phrases.size < 2**32 else np.uint64
        nonempty = phrases.any(axis=(1, 2, 3))
        return cls(
            source,
            variant,
            first_bars=np.asarray(first_bars, dtype=np.int32),
            cells=flat.astype(dtype),
            track_phrases=nonempty.sum(axis=0).astype(np.int64),
        )


# --- running workers --------------------------------------------------------------------------
class _NoBar:
    """Stands in for tqdm where it is not installed (collecting needs no 'train' extra)."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **_values: object) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, desc: str, unit: str, shown: bool) -> Any:
    """A tqdm bar on stderr, or no bar when ``shown`` is False or tqdm is not installed."""
    try:
        from tqdm import tqdm
    except ImportError:
        if shown:
            logger.info("no progress bar: tqdm is not installed (pip install tqdm)")
        return _NoBar()
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=not shown,
                dynamic_ncols=True)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent alone handles Ctrl-C


def run_tasks(
    worker: Callable[[T], list[ItemResult]],
    tasks: Sequence[T],
    sink: PhraseSink,
    *,
    jobs: int = 1,
    progress: bool = True,
    desc: str = "collect",
    unit: str = "file",
) -> bool:
    """Feed every task's results into ``sink``, ``jobs`` processes at a time, with a tqdm bar.

    Returns True if Ctrl-C stopped it early (what was finished is in ``sink``).
    """
    bar = _progress_bar(len(tasks), desc, unit, progress)
    pool = None
    finished = False
    try:
        if jobs <= 1 or len(tasks) <= 1:
            results: Iterable[list[ItemResult]] = map(worker, tasks)
        else:
            pool = multiprocessing.Pool(min(jobs, len(tasks)), initializer=_ignore_sigint)
            results = pool.imap_unordered(worker, tasks)
        for item_results in results:
            for result in item_results:
                sink.add(result)
            bar.update()
            bar.set_postfix(phrases=sink.n_phrases, refresh=False)
        finished = True
    except KeyboardInterrupt:
        return True
    finally:
        if pool is not None:
            # an interrupt or a worker's error (say, mma missing) stops the queued tasks too
            if finished:
                pool.close()
            else:
                pool.terminate()
            pool.join()
        bar.close()
    return False


# --- gathering and writing --------------------------------------------------------------------
@dataclass
class CollectSummary:
    """What a collect (or corpus) run did; ``format()`` is the text the CLIs print."""

    output: Path
    manifest: Path
    log: Path
    items_found: int
    items_done: int
    items_kept: int
    skipped: dict[str, int]
    n_phrases: int
    track_phrases: dict[str, int]
    hop_bars: int
    rule: str
    interrupted: bool = False
    item_seconds: list[float] = field(default_factory=list)
    elapsed_seconds: float = 0.0

    def track_share(self) -> dict[str, float]:
        """Share (0..1) of phrases in which each track is non-empty."""
        return {
            k: v / self.n_phrases if self.n_phrases else 0.0 for k, v in self.track_phrases.items()
        }

    def format(self, unit: str = "files") -> str:
        lines = []
        if self.interrupted:
            lines.append(
                f"INTERRUPTED: wrote what was collected from {self.items_done} of "
                f"{self.items_found} {unit}"
            )
        lines.append(
            f"{unit} found {self.items_found}, done {self.items_done}, "
            f"kept {self.items_kept}, skipped {self.items_done - self.items_kept} "
            f"in {self.elapsed_seconds:.1f} s"
        )
        lines.append("skipped by reason: " + ", ".join(f"{k} {v}" for k, v in self.skipped.items()))
        lines.append(f"phrases {self.n_phrases} (hop {self.hop_bars} bars; keep: {self.rule})")
        lines.append(
            "tracks non-empty: "
            + ", ".join(f"{k} {100 * v:.1f}%" for k, v in self.track_share().items())
        )
        lines.append(f"wrote {self.output}, {self.manifest}, skipped-file log {self.log}")
        return "\n".join(lines)


def output_paths(output: str | Path) -> tuple[Path, Path, Path]:
    """``(npz, manifest csv, log)`` for an output path: ``X.npz``, ``X.manifest.csv``, ``X.log``."""
    output = Path(output)
    if output.suffix.lower() != ".npz":
        output = output.with_name(output.name + ".npz")
    stem = output.with_suffix("")
    return output, stem.with_name(stem.name + ".manifest.csv"), stem.with_name(stem.name + ".log")


class PhraseSink:
    """Gathers :class:`ItemResult` in any order; writes them ordered by (source, variant)."""

    def __init__(self) -> None:
        self._results: dict[tuple[str, str], ItemResult] = {}
        self.n_phrases = 0

    def add(self, result: ItemResult) -> None:
        key = (result.source, result.variant)
        if key in self._results:
            raise ValueError(f"{key} was gathered twice")
        self._results[key] = result
        self.n_phrases += result.n_phrases

    def results(self) -> list[ItemResult]:
        return [self._results[key] for key in sorted(self._results)]

    def write(self, output: str | Path, *, style_column: bool = False) -> tuple[Path, Path, Path]:
        """Write the npz, the manifest and the skip log; return their paths."""
        npz_path, manifest_path, log_path = output_paths(output)
        results = self.results()
        total_cells = sum(len(r.cells) for r in results)
        nonzero = tuple(np.empty(total_cells, dtype=np.int64) for _ in range(len(PHRASE_SHAPE) + 1))
        offset_phrases = offset_cells = 0
        npz_path.parent.mkdir(parents=True, exist_ok=True)
        with open(manifest_path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["phrase_index", "source", "first_bar"] + (["style"] * style_column))
            for r in results:
                n = len(r.cells)
                local, within = np.divmod(r.cells.astype(np.int64), CELLS_PER_PHRASE)
                nonzero[0][offset_cells : offset_cells + n] = local + offset_phrases
                for axis, coords in enumerate(np.unravel_index(within, PHRASE_SHAPE), 1):
                    nonzero[axis][offset_cells : offset_cells + n] = coords
                for i, bar in enumerate(r.first_bars.tolist()):
                    row = [offset_phrases + i, r.source, bar] + ([r.variant] * style_column)
                    writer.writerow(row)
                offset_phrases += r.n_phrases
                offset_cells += n
        save_sparse_npz(npz_path, SparseDataset((offset_phrases, *PHRASE_SHAPE), nonzero))
        with open(log_path, "w") as f:
            for r in results:
                if r.reason is not None:
                    name = f"{r.source} [{r.variant}]" if r.variant else r.source
                    f.write(f"{r.reason}\t{name}\t{r.message}\n")
        return npz_path, manifest_path, log_path

    def summary(
        self,
        paths: tuple[Path, Path, Path],
        *,
        items_found: int,
        hop_bars: int,
        rule: str,
        interrupted: bool,
        elapsed_seconds: float,
    ) -> CollectSummary:
        results = self.results()
        skipped = dict.fromkeys(REASONS, 0)
        source_kept: dict[str, bool] = {}
        for r in results:
            source_kept[r.source] = source_kept.get(r.source, False) or r.reason is None
            if r.reason is not None:
                skipped[r.reason] = skipped.get(r.reason, 0) + 1
        tracks = np.sum([r.track_phrases for r in results], axis=0) if results else np.zeros(5)
        return CollectSummary(
            output=paths[0],
            manifest=paths[1],
            log=paths[2],
            items_found=items_found,
            items_done=len(source_kept),
            items_kept=sum(source_kept.values()),
            skipped=skipped,
            n_phrases=sum(r.n_phrases for r in results),
            track_phrases={name: int(c) for name, c in zip(TRACK_NAMES, tracks, strict=True)},
            hop_bars=hop_bars,
            rule=rule,
            interrupted=interrupted,
            item_seconds=[r.seconds for r in results],
            elapsed_seconds=elapsed_seconds,
        )
