"""MIDI folders -> an LPD-5 sparse ``.npz`` of 4-bar phrases, in parallel, with a summary.

``python -m training.collect MIDI_DIR [MIDI_DIR ...] -o data/train.npz [--hop-bars 4] [--jobs N]
[--condition-track Piano] [--min-other-tracks K] [--config configs/collect.yaml] [--log FILE]``

Each file is read with :func:`musegan_live.files.midi_read.read_midi` in a worker process, cut into
phrases ``bool[4, 48, 84, 5]`` every ``hop_bars`` bars and filtered by a :class:`KeepRule`.
Workers send back only the flat indices of the true cells (:class:`ItemResult`), and the output
is ordered by source path whatever order the workers finish in, so ``--jobs`` never changes it.
Beside ``X.npz`` go ``X.manifest.csv`` (phrase index, source file, first bar) and ``X.log``
(every skipped file and why). Ctrl-C writes what was collected so far.

The parallel machinery (:class:`ItemResult`, :class:`PhraseSink`, :func:`run_tasks`) lives in
``training.data.phrase_sink``, shared with the corpus builders (``training.corpus``).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from musegan_live.errors import ConfigError, DataFileError, MidiFileError, MuseganLiveError
from musegan_live.files.midi_read import read_midi
from musegan_live.representation import (
    N_BARS,
    N_TRACKS,
    TRACK_NAMES,
    steps_to_phrases,
    track_index,
)
from training.data.phrase_sink import REASONS, CollectSummary, ItemResult, PhraseSink, run_tasks

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "collect.yaml"


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


# --- the per-file worker --------------------------------------------------------------------------
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
