"""MIDI folders -> an LPD-5 sparse ``.npz`` of 4-bar phrases, in parallel, with a summary.

``python -m training.collect MIDI_DIR [MIDI_DIR ...] -o data/train.npz [--hop-bars 4] [--jobs N]
[--condition-track Piano] [--min-other-tracks K] [--config configs/collect.yaml] [--log FILE]``

Each file is read with :func:`musegan_live.midi_read.read_midi` in a worker process, cut into
phrases ``bool[4, 48, 84, 5]`` every ``hop_bars`` bars and filtered by a :class:`KeepRule`.
Workers send back only the flat indices of the true cells (:class:`ItemResult`), and the output
is ordered by source path whatever order the workers finish in, so ``--jobs`` never changes it.
Beside ``X.npz`` go ``X.manifest.csv`` (phrase index, source file, first bar) and ``X.log``
(every skipped file and why). Ctrl-C writes what was collected so far.

The corpus builders (``training.corpus``) reuse :class:`ItemResult`, :class:`PhraseSink` and
:func:`run_tasks` with their own per-item workers.
"""

from __future__ import annotations

import argparse
import csv
import functools
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import yaml
from tqdm import tqdm

from musegan_live.errors import ConfigError, DataFileError, MidiFileError, MuseganLiveError
from musegan_live.midi_read import read_midi
from musegan_live.representation import (
    N_BARS,
    N_TRACKS,
    PHRASE_SHAPE,
    TRACK_NAMES,
    SparseDataset,
    save_sparse_npz,
    steps_to_phrases,
    track_index,
)

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "collect.yaml"
#: Why a file gives no phrase, in the order the summary lists them.
REASONS = ("corrupt", "not_4_4", "too_short", "no_usable_tracks", "empty", "no_phrase_kept")
CELLS_PER_PHRASE = int(np.prod(PHRASE_SHAPE))  # 4 * 48 * 84 * 5 = 80640

T = TypeVar("T")


# --- configuration ----------------------------------------------------------------------------
@dataclass(frozen=True)
class KeepRule:
    """Which phrases are kept, judged on which tracks hold at least one note.

    With a condition track: that track is non-empty and at least ``min_other_tracks`` of the
    other four are. Without one (None): at least ``max(1, min_other_tracks)`` tracks are.
    """

    condition_track: int | None = 1
    min_other_tracks: int = 1

    def keep(self, track_nonempty: np.ndarray) -> np.ndarray:
        """``bool[N]`` from ``bool[N, 5]`` (phrase x track non-empty)."""
        counts = track_nonempty.sum(axis=1)
        if self.condition_track is None:
            return counts >= max(1, self.min_other_tracks)
        condition = track_nonempty[:, self.condition_track]
        return condition & (counts - condition >= self.min_other_tracks)

    def describe(self) -> str:
        if self.condition_track is None:
            return f">= {max(1, self.min_other_tracks)} non-empty track(s)"
        return (
            f"{TRACK_NAMES[self.condition_track]} non-empty and >= {self.min_other_tracks} "
            "other non-empty track(s)"
        )


@dataclass(frozen=True)
class CollectConfig:
    """``configs/collect.yaml``; see that file for what each key means."""

    hop_bars: int = N_BARS
    condition_track: str | None = "Piano"
    min_other_tracks: int = 1
    extensions: tuple[str, ...] = (".mid", ".midi")
    jobs: int | None = None

    def keep_rule(self) -> KeepRule:
        condition = None if self.condition_track is None else track_index(self.condition_track)
        return KeepRule(condition, self.min_other_tracks)


def load_collect_config(
    path: str | Path | None = DEFAULT_CONFIG, **overrides: object
) -> CollectConfig:
    """Read a collect config (None: defaults) and apply non-None ``overrides``; validate all.

    Unknown keys and bad values raise ConfigError naming the key and what is allowed.
    """
    raw: dict[str, object] = {}
    where = str(path) if path is not None else "defaults"
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except OSError as err:
            raise ConfigError(f"{path}: cannot read the collect config ({err})") from err
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({err})") from err
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of keys, got {type(loaded).__name__}")
        raw = dict(loaded or {})
    raw.update({key: value for key, value in overrides.items() if value is not None})
    allowed = set(CollectConfig.__dataclass_fields__)
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    hop = raw.get("hop_bars", N_BARS)
    if not isinstance(hop, int) or isinstance(hop, bool) or hop < 1:
        raise ConfigError(f"{where}: hop_bars must be a whole number >= 1, got {hop!r}")
    k = raw.get("min_other_tracks", 1)
    if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k <= N_TRACKS - 1:
        raise ConfigError(f"{where}: min_other_tracks must be 0..{N_TRACKS - 1}, got {k!r}")
    condition = raw.get("condition_track", "Piano")
    if condition is not None and str(condition).strip().lower() in ("none", ""):
        condition = None
    if condition is not None:
        try:
            condition = TRACK_NAMES[track_index(str(condition))]
        except ValueError as err:
            raise ConfigError(f"{where}: condition_track: {err}, or none") from err
    extensions = raw.get("extensions", [".mid", ".midi"])
    if (
        not isinstance(extensions, (list, tuple))
        or not extensions
        or not all(isinstance(e, str) and e.startswith(".") for e in extensions)
    ):
        raise ConfigError(f"{where}: extensions must be a list like ['.mid', '.midi']")
    jobs = raw.get("jobs")
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1):
        raise ConfigError(f"{where}: jobs must be a whole number >= 1 or null, got {jobs!r}")
    return CollectConfig(hop, condition, k, tuple(e.lower() for e in extensions), jobs)


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


def cut_phrases(
    roll: np.ndarray, hop_bars: int, rule: KeepRule, first_bar: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Kept phrases ``bool[n, 4, 48, 84, 5]`` of a roll ``bool[n_steps, 84, 5]`` and their first
    bars (``first_bar`` is added: the roll's bar 0 in the source's numbering)."""
    phrases = steps_to_phrases(roll, hop_bars)
    starts = first_bar + hop_bars * np.arange(len(phrases), dtype=np.int32)
    keep = rule.keep(phrases.any(axis=(1, 2, 3))) if len(phrases) else np.zeros(0, dtype=bool)
    return phrases[keep], starts[keep]


def read_file_result(path: str, hop_bars: int, rule: KeepRule) -> list[ItemResult]:
    """collect's worker: one MIDI file -> ``[ItemResult]``; never raises for a bad file."""
    started = time.perf_counter()
    try:
        song = read_midi(path)
        if song.n_bars < N_BARS:
            result = ItemResult(
                path, reason="too_short", message=f"{song.n_bars} bar(s) < {N_BARS}"
            )
        else:
            phrases, first_bars = cut_phrases(song.roll, hop_bars, rule)
            result = ItemResult.from_phrases(path, phrases, first_bars)
    except MidiFileError as err:
        result = ItemResult(
            path, reason=err.reason if err.reason in REASONS else "corrupt", message=str(err)
        )
    except Exception as err:  # a reader bug must not stop a 10k-file run; it is logged by name
        result = ItemResult(path, reason="corrupt", message=f"{type(err).__name__}: {err}")
    result.seconds = time.perf_counter() - started
    return [result]


# --- running workers --------------------------------------------------------------------------
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
    bar = tqdm(
        total=len(tasks),
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
    )
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


# --- collect ----------------------------------------------------------------------------------
def find_midi_files(
    paths: Iterable[str | Path], extensions: Sequence[str] = (".mid", ".midi")
) -> list[Path]:
    """Every file under ``paths`` (recursively; files given directly count too) whose suffix is
    one of ``extensions`` in any case, sorted and without duplicates."""
    wanted = {e.lower() for e in extensions}
    found: dict[str, Path] = {}
    for root in map(Path, paths):
        if root.is_file():
            candidates: Iterable[Path] = [root]
        elif root.is_dir():
            candidates = (Path(d) / name for d, _, names in os.walk(root) for name in names)
        else:
            raise DataFileError(f"{root}: no such file or folder; give folders of MIDI files")
        for path in candidates:
            if path.suffix.lower() in wanted:
                found.setdefault(os.path.realpath(path), path)
    return sorted(found.values(), key=str)


def collect(
    paths: Sequence[str | Path],
    output: str | Path,
    *,
    config: CollectConfig | None = None,
    jobs: int | None = None,
    log_path: str | Path | None = None,
    progress: bool = True,
) -> CollectSummary:
    """Collect the phrases of every MIDI file under ``paths`` into ``output`` (LPD-5 npz).

    ``jobs``: worker processes (default: the config's, else the CPU count). ``log_path``: where
    the skipped-file log goes (default ``X.log`` beside ``X.npz``).
    """
    config = config or CollectConfig()
    started = time.perf_counter()
    files = find_midi_files(paths, config.extensions)
    rule = config.keep_rule()
    jobs = jobs or config.jobs or os.cpu_count() or 1
    worker = functools.partial(read_file_result, hop_bars=config.hop_bars, rule=rule)
    sink = PhraseSink()
    interrupted = run_tasks(worker, [str(f) for f in files], sink, jobs=jobs, progress=progress)
    paths_written = sink.write(output)
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        os.replace(paths_written[2], log_path)
        paths_written = (paths_written[0], paths_written[1], Path(log_path))
    summary = sink.summary(
        paths_written,
        items_found=len(files),
        hop_bars=config.hop_bars,
        rule=rule.describe(),
        interrupted=interrupted,
        elapsed_seconds=time.perf_counter() - started,
    )
    for r in sink.results():
        if r.reason is not None:
            logger.debug("skipped %s: %s (%s)", r.source, r.reason, r.message)
    return summary


def main(argv: list[str] | None = None) -> int:
    """The ``python -m training.collect`` command line."""
    parser = argparse.ArgumentParser(
        prog="python -m training.collect", description="MIDI folders -> LPD-5 phrase npz"
    )
    parser.add_argument("paths", nargs="+", help="folders (searched recursively) or MIDI files")
    parser.add_argument("-o", "--output", required=True, help="output .npz (LPD-5 sparse)")
    parser.add_argument("--hop-bars", type=int, help="bars between phrase starts (default 4)")
    parser.add_argument("--jobs", type=int, help="worker processes (default: CPU count)")
    parser.add_argument("--condition-track", help="track a kept phrase must have, or 'none'")
    parser.add_argument("--min-other-tracks", type=int, help="other non-empty tracks needed")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="collect config YAML")
    parser.add_argument("--log", help="skipped-file log (default: beside the output)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_collect_config(
            args.config,
            hop_bars=args.hop_bars,
            condition_track=args.condition_track,
            min_other_tracks=args.min_other_tracks,
        )
        summary = collect(
            args.paths,
            args.output,
            config=config,
            jobs=args.jobs,
            log_path=args.log,
            progress=not args.quiet,
        )
    except MuseganLiveError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    print(summary.format())
    return 130 if summary.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
