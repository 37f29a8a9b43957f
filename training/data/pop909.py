"""POP909 songs -> full-band phrases: 4/4 segments, the real piano, one MMA render per style.

A POP909 song folder ``NNN/`` holds ``NNN.mid`` (tracks MELODY, BRIDGE, PIANO), ``beat_midi.txt``
and ``chord_midi.txt``. Bars whose annotation does not hold 4 beats split the song into 4/4
segments (:func:`four_four_segments`); the chord labels of every segment bar become an MMA chart
(:mod:`training.data.mma_chart`), rendered in each groove style (:mod:`training.data.mma`);
MMA's own piano is replaced by the song's PIANO track read on the same beat grid, and the kept
phrases are cut.
:func:`build_pop909_song` is the per-song worker of ``python -m training.corpus pop909``.

Times are in seconds (``_seconds``); rolls are ``bool[n_steps, 84]`` or ``bool[n_steps, 84, 5]``.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np

from musegan_live.errors import DataFileError, MidiFileError
from musegan_live.files.midi_read import read_midi, read_pop909_beats
from musegan_live.representation import (
    BEATS_PER_BAR,
    N_BARS,
    PHRASE_SHAPE,
    PIANO,
    STEPS_PER_BAR,
)
from training.collect import KeepRule, cut_phrases
from training.data import mma
from training.data.mma_chart import chart_text, chords_per_beat, read_chord_labels
from training.data.phrase_sink import ItemResult

#: A song is 4/4 when more than this share of its annotated bars hold 4 beats (most of them).
MIN_SHARE_4_4_BARS = 0.5


def pop909_song_dirs(root: Path) -> list[Path]:
    """Song folders ``NNN`` holding ``NNN.mid``, ``beat_midi.txt`` and ``chord_midi.txt``."""
    return sorted(
        d
        for d in root.iterdir()
        if d.is_dir()
        and all((d / f).is_file() for f in (f"{d.name}.mid", "beat_midi.txt", "chord_midi.txt"))
    )


@dataclass(frozen=True)
class Segment:
    """A run of ``n_bars`` annotated 4-beat bars starting at annotated bar ``first_bar``, whose
    downbeat is ``beats_seconds[first_beat]``."""

    first_bar: int
    first_beat: int
    n_bars: int


def four_four_segments(beats_seconds: list[float], downbeats_seconds: list[float]) -> list[Segment]:
    """Runs of at least 4 consecutive annotated bars that hold exactly 4 beats each.

    Bar ``k`` runs from downbeat ``k`` to downbeat ``k + 1``; the last bar counts if four more
    beats are annotated after the last downbeat. Raises MidiFileError(reason="not_4_4") when
    at most half of the bars hold 4 beats (a song in 3/4 or 6/8).
    """
    beats = np.asarray(beats_seconds, dtype=float)
    index = np.searchsorted(beats, np.asarray(downbeats_seconds, dtype=float) - 1e-6)
    gaps = np.diff(index).tolist()
    gaps.append(BEATS_PER_BAR if index[-1] + BEATS_PER_BAR < len(beats) else 0)
    good = np.asarray(gaps) == BEATS_PER_BAR
    if good.mean() <= MIN_SHARE_4_4_BARS:
        raise MidiFileError(
            f"only {good.sum()} of {len(good)} annotated bars hold 4 beats: not a 4/4 song",
            reason="not_4_4",
        )
    segments, start = [], None
    for bar, ok in enumerate([*good.tolist(), False]):
        if ok and start is None:
            start = bar
        elif not ok and start is not None:
            if bar - start >= N_BARS:
                segments.append(Segment(start, int(index[start]), bar - start))
            start = None
    return segments


def _segment_beats(beats: np.ndarray, segment: Segment) -> np.ndarray:
    """``float[n_bars, 5]`` seconds: each bar's four beat starts and its end."""
    span = beats[segment.first_beat : segment.first_beat + BEATS_PER_BAR * segment.n_bars + 1]
    ends = span[BEATS_PER_BAR::BEATS_PER_BAR]
    return np.concatenate([span[:-1].reshape(-1, BEATS_PER_BAR), ends[:, None]], axis=1)


def _fit_bars(roll: np.ndarray, n_bars: int) -> np.ndarray:
    """Cut or zero-pad a roll ``[n_steps, ...]`` to ``n_bars`` bars."""
    n_steps = n_bars * STEPS_PER_BAR
    if len(roll) >= n_steps:
        return roll[:n_steps]
    return np.concatenate([roll, np.zeros((n_steps - len(roll), *roll.shape[1:]), roll.dtype)])


def write_piano_only(src: Path, dst: Path, track_name: str = "PIANO") -> None:
    """Copy of a MIDI file keeping only the track named ``track_name`` and note-free tracks
    (tempo map, meter); POP909's MELODY and BRIDGE are also program 0 and must not join it."""
    try:
        midi = mido.MidiFile(src)
    except Exception as err:  # mido raises many kinds for a broken file
        raise MidiFileError(f"{src}: not a readable MIDI file ({err})", reason="corrupt") from err
    names = [t.name.strip() for t in midi.tracks]
    if track_name not in names:
        raise MidiFileError(
            f"{src}: no track named {track_name} (tracks: {', '.join(names)})",
            reason="no_usable_tracks",
        )
    out = mido.MidiFile(type=1, ticks_per_beat=midi.ticks_per_beat)
    out.tracks = [
        t
        for t in midi.tracks
        if t.name.strip() == track_name or not any(m.type == "note_on" for m in t)
    ]
    out.save(dst)


@dataclass(frozen=True)
class Pop909Options:
    """How songs become phrases: MMA's random ``seed``, phrase hop, keep rule, MMA config."""

    seed: int
    hop_bars: int
    rule: KeepRule
    mma_config: mma.MmaConfig


@dataclass
class _Song:
    """A POP909 song ready to render: its 4/4 segments, the chart (chords per beat of every
    segment bar, segments back to back), its tempo and the real piano of each segment."""

    source: str
    segments: list[Segment]
    chart_bars: list[list[str | None]]
    tempo_bpm: float
    pianos: list[np.ndarray]  # bool[segment bars * 48, 84] per segment


def build_pop909_song(song_dir: str, styles: list[str], options: Pop909Options) -> list[ItemResult]:
    """One POP909 song rendered in each of ``styles``: an :class:`ItemResult` per style (or one
    for a song-level failure). The worker of ``corpus pop909``: a bad song gives a reason and
    never raises; a missing ``mma`` or an unknown groove does raise ConfigError."""
    started = time.perf_counter()
    folder = Path(song_dir)
    source = str(folder / f"{folder.name}.mid")
    try:
        with tempfile.TemporaryDirectory(prefix="pop909-") as tmp:
            song = _prepare_song(folder, Path(tmp))
            results = [_render_style(song, style, options, Path(tmp)) for style in styles]
    except (MidiFileError, DataFileError, ValueError) as err:
        reason = err.reason if isinstance(err, MidiFileError) else "corrupt"
        results = [ItemResult(source, reason=reason, message=str(err))]
    for r in results:
        r.seconds = (time.perf_counter() - started) / len(results)
    return results


def _prepare_song(folder: Path, tmp: Path) -> _Song:
    midi_path = folder / f"{folder.name}.mid"
    beats_list, downbeats_list = read_pop909_beats(folder / "beat_midi.txt")
    segments = four_four_segments(beats_list, downbeats_list)
    if not segments:
        raise MidiFileError(f"no run of {N_BARS} 4-beat bars", reason="too_short")
    spans = read_chord_labels(folder / "chord_midi.txt")
    beats = np.asarray(beats_list)
    grids = [_segment_beats(beats, s) for s in segments]
    piano_path = tmp / "piano.mid"
    write_piano_only(midi_path, piano_path)
    pianos = []
    for segment, grid in zip(segments, grids, strict=True):
        segment_beats = np.concatenate([grid[:, :-1].reshape(-1), grid[-1:, -1]])
        try:
            roll = read_midi(
                piano_path,
                beats_seconds=segment_beats.tolist(),
                downbeats_seconds=segment_beats[::BEATS_PER_BAR].tolist(),
            ).roll[:, :, PIANO]
        except MidiFileError as err:
            if err.reason not in ("empty", "no_usable_tracks"):
                raise
            roll = np.zeros((0, PHRASE_SHAPE[2]), dtype=bool)  # no piano in this segment
        pianos.append(_fit_bars(roll, segment.n_bars))
    return _Song(
        source=str(midi_path),
        segments=segments,
        chart_bars=[bar for grid in grids for bar in chords_per_beat(spans, grid)],
        tempo_bpm=60.0 / float(np.median(np.diff(beats))),
        pianos=pianos,
    )


def _render_style(song: _Song, style: str, options: Pop909Options, tmp: Path) -> ItemResult:
    """Render the chart in one style, put the real piano in, cut the kept phrases."""
    render_path = tmp / f"band-{style}.mid"
    text = chart_text(song.chart_bars, groove=style, tempo_bpm=song.tempo_bpm, seed=options.seed)
    try:
        first_chart_bar = mma.render_chart(text, render_path, options.mma_config)
        band = read_midi(render_path).roll
    except (DataFileError, MidiFileError) as err:
        return ItemResult(song.source, style, reason="render_failed", message=str(err))
    # chart bar c is the band roll's bar c - first_chart_bar (read_midi skips empty lead bars)
    lead = np.zeros((first_chart_bar * STEPS_PER_BAR, *band.shape[1:]), dtype=bool)
    band = _fit_bars(np.concatenate([lead, band]), len(song.chart_bars))
    kept, first_bars = [], []
    start_steps = 0
    for segment, piano in zip(song.segments, song.pianos, strict=True):
        roll = band[start_steps : start_steps + len(piano)].copy()
        roll[:, :, PIANO] = piano
        phrases, starts = cut_phrases(roll, options.hop_bars, options.rule, segment.first_bar)
        kept.append(phrases)
        first_bars.append(starts)
        start_steps += len(piano)
    phrases = np.concatenate(kept)
    return ItemResult.from_phrases(song.source, phrases, np.concatenate(first_bars), style)
