"""MIDI file -> song roll ``bool[n_steps, 84, 5]`` on the 4/4 step grid (``docs/DESIGN.md``,
"Representation").

The file itself is read by :mod:`musegan_live.files.midi_parse` (notes in ticks, tempo map, time
signatures); this module makes the musical decisions. How a file becomes a roll:

- Instruments are merged into the five LPD-5 tracks with
  :func:`~musegan_live.representation.lpd5_track_for_program` ('max' merge: the boolean roll is the
  union, the velocity of a cell is the largest of the notes covering it). Channel 10 (0-based 9) is
  the drum kit whatever its program; other channels use the program in effect at each note-on.
- Pitches outside 24..107 are dropped (counted in a debug log).
- Time goes through beats, never through a fixed tempo: without annotations a note's beat is
  ``tick / ticks_per_beat`` (tempo changes move seconds, not beats); with beat annotations
  (seconds) the note's seconds, from the file's own tempo map, are interpolated between the
  annotated beats. Beats become steps (12 per beat); onsets and offsets round to the nearest step,
  half up. A note that rounds to zero length keeps one step.
- Overlapping notes of one pitch in one track merge into one run of ``True``. Two back-to-back
  notes of the same pitch (one ends where the next starts) also become one run: a boolean roll
  cannot tell them apart, and neither can MuseGAN's representation.
- Drums keep only their onsets: every hit is ``DRUM_NOTE_STEPS`` steps long.
- Only 4/4 is accepted. Without annotations: no time signature means 4/4; any other signature
  anywhere raises ``MidiFileError(reason="not_4_4")``, unless ``assume_4_4`` says the music is
  in 4/4 whatever the events say. The first time signature sets the bar
  grid (tick 0 when there is none); step 0 is the downbeat of the first bar that holds a note,
  so leading empty bars are skipped whole and bar lines stay where the file puts them. With
  annotations, they alone decide: downbeats must be 4 beats apart, step 0 is the first annotated
  downbeat, and the file's time-signature events are ignored.
- Sustain-pedal messages are ignored (as in LPD and pretty_midi's piano rolls).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from musegan_live.errors import DataFileError, MidiFileError
from musegan_live.files.midi_parse import DEFAULT_TEMPO_US_PER_BEAT as DEFAULT_TEMPO_US_PER_BEAT
from musegan_live.files.midi_parse import ParsedMidi, parse_midi, tempo_bpm_at, ticks_to_seconds
from musegan_live.representation import (
    DRUM_CHANNEL,
    DRUM_NOTE_STEPS,
    DRUMS,
    HIGHEST_PITCH,
    LOWEST_PITCH,
    N_PITCHES,
    N_TRACKS,
    STEPS_PER_BAR,
    STEPS_PER_BEAT,
    TRACK_NAMES,
    lpd5_track_for_program,
)

logger = logging.getLogger(__name__)

#: Longest song accepted, in bars (about 1.5 hours at 90 bpm). A roll this long takes
#: ``2000 * 48 * 84 * 5 * 2`` bytes = 80 MB; notes beyond it almost always mean a corrupt file.
MAX_BARS = 2000


@dataclass(frozen=True)
class SongRoll:
    """A whole song on the step grid.

    ``roll`` is ``bool[n_steps, 84, 5]`` (steps x pitches 24..107 x LPD-5 tracks); step 0 is the
    first downbeat; 48 steps per bar and ``n_steps`` is a whole number of bars. ``velocity`` is
    ``uint8[n_steps, 84, 5]``: the velocity (1..127) of the note covering each on-cell, 0 where
    the roll is off. ``tempo_bpm`` is the tempo at the first downbeat (beats per minute), for
    writing the song back. ``source`` is the path as given.
    """

    roll: np.ndarray
    velocity: np.ndarray
    tempo_bpm: float
    source: str

    @property
    def n_bars(self) -> int:
        """Number of whole 4/4 bars (``n_steps // 48``)."""
        return int(self.roll.shape[0]) // STEPS_PER_BAR

    def describe_tracks(self) -> str:
        """The tracks with notes, for messages: ``"Piano, Bass"`` or ``"no usable tracks"``."""
        present = [TRACK_NAMES[t] for t in range(N_TRACKS) if self.roll[:, :, t].any()]
        return ", ".join(present) or "no usable tracks"


@dataclass(frozen=True)
class _Notes:
    """The notes that land in an LPD-5 track: parallel ``int64[n]`` arrays, times in ticks."""

    track: np.ndarray  # LPD-5 track index, 0..4
    pitch: np.ndarray  # MIDI pitch, 24..107
    start_ticks: np.ndarray
    end_ticks: np.ndarray
    velocity: np.ndarray  # 1..127


def read_midi(
    path: str | os.PathLike,
    *,
    beats_seconds: Sequence[float] | None = None,
    downbeats_seconds: Sequence[float] | None = None,
    assume_4_4: bool = False,
) -> SongRoll:
    """Read a MIDI file (type 0 or 1) into a :class:`SongRoll`.

    ``beats_seconds`` / ``downbeats_seconds``: optional beat annotations in seconds of the file's
    own timeline (as in POP909's ``beat_midi.txt``, see :func:`read_pop909_beats`); give both or
    neither. ``assume_4_4``: read the file as 4/4 whatever its time-signature events say (POP909's
    files mark 1/4 bars of music in 4/4); bars of four beats start at the first signature.
    Raises :class:`MidiFileError` with ``reason`` ``corrupt`` (unreadable), ``empty`` (no notes),
    ``not_4_4`` or ``no_usable_tracks`` (no note lands in any of the five tracks), and
    :class:`DataFileError` for malformed annotations.
    """
    if (beats_seconds is None) != (downbeats_seconds is None):
        raise ValueError("give both beats_seconds and downbeats_seconds, or neither")
    source = os.fspath(path)
    parsed = parse_midi(source)
    if parsed.n_notes == 0:
        raise MidiFileError(
            f"{source}: the file holds no notes; give a MIDI file with at least one note",
            reason="empty",
        )
    notes = _merge_lpd5(parsed, source)
    if beats_seconds is not None and downbeats_seconds is not None:
        start_steps, end_steps, tempo_bpm = _steps_by_annotations(
            parsed, notes, beats_seconds, downbeats_seconds, source
        )
    else:
        start_steps, end_steps, tempo_bpm = _steps_by_file_meter(parsed, notes, source,
                                                                 check_meter=not assume_4_4)
    if len(start_steps) == 0:
        raise _no_usable_tracks(source)
    is_drum = notes.track == DRUMS
    end_steps = np.where(
        is_drum, start_steps + DRUM_NOTE_STEPS, np.maximum(end_steps, start_steps + 1)
    )

    # Only annotations can put notes before step 0: drum hits there are dropped, held notes
    # keep the part after the first downbeat.
    keep = np.where(is_drum, start_steps >= 0, end_steps > 0)
    if not keep.all():
        logger.debug("%s: dropped %d notes before the first downbeat", source, int((~keep).sum()))
    if not keep.any():
        raise _no_usable_tracks(source)
    start_steps = np.maximum(start_steps[keep], 0)
    end_steps = end_steps[keep]
    n_bars = -(-int(end_steps.max()) // STEPS_PER_BAR)
    if n_bars > MAX_BARS:
        raise MidiFileError(
            f"{source}: notes reach bar {n_bars}, beyond the {MAX_BARS}-bar limit; the file is "
            "probably corrupt (a stray event far in the future); trim it in a MIDI editor",
            reason="corrupt",
        )
    roll, velocity = _fill(
        n_bars * STEPS_PER_BAR,
        notes.track[keep],
        notes.pitch[keep],
        start_steps,
        end_steps,
        notes.velocity[keep],
    )
    logger.debug(
        "%s: %d bars, %.2f bpm at the first downbeat, notes per track %s",
        source,
        n_bars,
        tempo_bpm,
        np.bincount(notes.track[keep], minlength=N_TRACKS).tolist(),
    )
    return SongRoll(roll=roll, velocity=velocity, tempo_bpm=float(tempo_bpm), source=source)


def read_pop909_beats(beat_midi_txt: str | os.PathLike) -> tuple[list[float], list[float]]:
    """Read POP909's ``beat_midi.txt``: ``(beats_seconds, downbeats_seconds)``.

    Each row is ``time_seconds col2 col3``; every row is a beat, and ``col3 == 1.0`` marks a
    downbeat (``col2`` marks every other beat and is not used).
    """
    source = os.fspath(beat_midi_txt)
    try:
        with open(source, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataFileError(
            f"{source}: cannot read beat annotations ({err}); give the path of a POP909 "
            "beat_midi.txt"
        ) from err
    beats: list[float] = []
    downbeats: list[float] = []
    for line_no, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        try:
            if len(fields) < 3:
                raise ValueError(f"{len(fields)} columns")
            seconds, _, downbeat_flag = (float(x) for x in fields[:3])
        except ValueError as err:
            raise DataFileError(
                f"{source}, line {line_no}: expected 'time_seconds col2 col3' numbers, got "
                f"{line.strip()!r} ({err})"
            ) from err
        beats.append(seconds)
        if downbeat_flag == 1.0:
            downbeats.append(seconds)
    if len(beats) < 2 or not downbeats:
        raise DataFileError(
            f"{source}: {len(beats)} beats and {len(downbeats)} downbeats; beat annotations need "
            "at least 2 beats and 1 downbeat (column 3 = 1.0)"
        )
    return beats, downbeats


# --- the LPD-5 merge ------------------------------------------------------------------------
def _merge_lpd5(parsed: ParsedMidi, source: str) -> _Notes:
    """The notes of the five LPD-5 tracks: each note goes to the track of its program (channel 10
    is the drum kit), and notes of dropped programs or outside pitch 24..107 are left out."""
    kept: list[tuple[int, int, int, int, int]] = []
    n_dropped_program = n_dropped_pitch = 0
    for channel, program, pitch, start, end, vel in zip(
        parsed.channel.tolist(),
        parsed.program.tolist(),
        parsed.pitch.tolist(),
        parsed.start_ticks.tolist(),
        parsed.end_ticks.tolist(),
        parsed.velocity.tolist(),
        strict=True,
    ):
        target = lpd5_track_for_program(program, is_drum=channel == DRUM_CHANNEL)
        if target is None:
            n_dropped_program += 1
        elif not LOWEST_PITCH <= pitch <= HIGHEST_PITCH:
            n_dropped_pitch += 1
        else:
            kept.append((target, pitch, start, end, vel))
    if n_dropped_program or n_dropped_pitch or parsed.n_unterminated:
        logger.debug(
            "%s: dropped %d notes of programs 96-103/112-127 and %d notes outside pitch %d..%d; "
            "%d notes had no note-off (ended at their track's end)",
            source,
            n_dropped_program,
            n_dropped_pitch,
            LOWEST_PITCH,
            HIGHEST_PITCH,
            parsed.n_unterminated,
        )
    columns = np.asarray(kept, dtype=np.int64).reshape(-1, 5).T
    return _Notes(
        track=columns[0],
        pitch=columns[1],
        start_ticks=columns[2],
        end_ticks=columns[3],
        velocity=columns[4],
    )


# --- time: meter and quantization -------------------------------------------------------------
def _check_time_signatures(parsed: ParsedMidi, source: str) -> None:
    """Raise ``MidiFileError(reason="not_4_4")`` for any time signature other than 4/4."""
    for tick, numerator, denominator in parsed.time_signatures:
        if (numerator, denominator) != (4, 4):
            raise MidiFileError(
                f"{source}: time signature {numerator}/{denominator} at beat "
                f"{tick / parsed.ticks_per_beat:g}; only 4/4 is supported. If the music really is "
                "in 4/4 (POP909's files mark 1/4 or 2/4), read it as 4/4 with --assume-4-4",
                reason="not_4_4",
            )


def _ticks_to_steps(ticks: np.ndarray, ticks_per_beat: int) -> np.ndarray:
    """Nearest step (half up) of each tick, exactly, in integers: ``tick * 12 / ticks_per_beat``."""
    return (ticks * (2 * STEPS_PER_BEAT) + ticks_per_beat) // (2 * ticks_per_beat)


def _first_downbeat_steps(parsed: ParsedMidi, first_onset_steps: int) -> int:
    """The downbeat (in steps from tick 0) that starts the bar holding the first onset.

    Bars start at the first time signature (tick 0 without one) and every 48 steps before and
    after it.
    """
    anchor_ticks = parsed.time_signatures[0][0] if parsed.time_signatures else 0
    anchor_steps = int(_ticks_to_steps(np.asarray(anchor_ticks), parsed.ticks_per_beat))
    return anchor_steps + (first_onset_steps - anchor_steps) // STEPS_PER_BAR * STEPS_PER_BAR


def _beat_grid(
    beats_seconds: Sequence[float], downbeats_seconds: Sequence[float], source: str
) -> tuple[np.ndarray, int]:
    """Validate annotations; return the beat times (seconds) and the first downbeat's index."""
    beats = np.asarray(beats_seconds, dtype=np.float64).reshape(-1)
    downbeats = np.asarray(downbeats_seconds, dtype=np.float64).reshape(-1)
    if len(beats) < 2 or not len(downbeats):
        raise DataFileError(
            f"{source}: beat annotations need at least 2 beats and 1 downbeat, got "
            f"{len(beats)} and {len(downbeats)}"
        )
    if not (np.isfinite(beats).all() and np.isfinite(downbeats).all()):
        raise DataFileError(f"{source}: beat annotations contain NaN or infinite times")
    if (np.diff(beats) <= 0).any():
        bad = int(np.argmax(np.diff(beats) <= 0))
        raise DataFileError(
            f"{source}: annotated beats must increase, but beat {bad + 1} ({beats[bad + 1]:.3f} s)"
            f" is not after beat {bad} ({beats[bad]:.3f} s)"
        )
    index = np.clip(np.searchsorted(beats, downbeats), 1, len(beats) - 1)
    index = np.where(downbeats - beats[index - 1] < beats[index] - downbeats, index - 1, index)
    local_beat_seconds = np.diff(beats)[np.minimum(index, len(beats) - 2)]
    off_beat = np.abs(beats[index] - downbeats) > 0.25 * local_beat_seconds
    if off_beat.any():
        raise DataFileError(
            f"{source}: annotated downbeat at {downbeats[np.argmax(off_beat)]:.3f} s is not one "
            "of the annotated beats; every downbeat must also be listed as a beat"
        )
    beats_per_bar = np.diff(index)
    if (beats_per_bar != 4).any():
        bad = int(np.argmax(beats_per_bar != 4))
        raise MidiFileError(
            f"{source}: the beat annotations put {beats_per_bar[bad]} beats in the bar at "
            f"{downbeats[bad]:.2f} s; only 4/4 (downbeats every 4 beats) is supported",
            reason="not_4_4",
        )
    return beats, int(index[0])


def _seconds_to_beats(seconds: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """Fractional beat index of each time, linear between annotated beats and extrapolated past
    the first and last beat with the nearest beat's length."""
    position = np.interp(seconds, beats, np.arange(len(beats), dtype=np.float64))
    before = seconds < beats[0]
    position[before] = (seconds[before] - beats[0]) / (beats[1] - beats[0])
    after = seconds > beats[-1]
    position[after] = len(beats) - 1 + (seconds[after] - beats[-1]) / (beats[-1] - beats[-2])
    return position


def _steps_by_file_meter(
    parsed: ParsedMidi, notes: _Notes, source: str, *, check_meter: bool = True
) -> tuple[np.ndarray, np.ndarray, float]:
    """Onset and offset steps from the file's ticks and meter; step 0 is the downbeat of the first
    bar holding a note. Also the tempo (bpm) at that downbeat."""
    if check_meter:
        _check_time_signatures(parsed, source)
    start_steps = _ticks_to_steps(notes.start_ticks, parsed.ticks_per_beat)
    end_steps = _ticks_to_steps(notes.end_ticks, parsed.ticks_per_beat)
    if not len(start_steps):
        return start_steps, end_steps, 0.0
    origin_steps = _first_downbeat_steps(parsed, int(start_steps.min()))
    origin_ticks = origin_steps * parsed.ticks_per_beat // STEPS_PER_BEAT
    tempo_bpm = tempo_bpm_at(parsed.tempo_changes, origin_ticks)
    return start_steps - origin_steps, end_steps - origin_steps, tempo_bpm


def _steps_by_annotations(
    parsed: ParsedMidi,
    notes: _Notes,
    beats_seconds: Sequence[float],
    downbeats_seconds: Sequence[float],
    source: str,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Onset and offset steps from seconds and the annotated beats; step 0 is the first
    annotated downbeat. Also the tempo (bpm) of the first annotated bar."""
    beats, first_downbeat_index = _beat_grid(beats_seconds, downbeats_seconds, source)
    steps = []
    for ticks in (notes.start_ticks, notes.end_ticks):
        seconds = ticks_to_seconds(ticks, parsed.tempo_changes, parsed.ticks_per_beat)
        beat = _seconds_to_beats(seconds, beats) - first_downbeat_index
        steps.append(np.floor(beat * STEPS_PER_BEAT + 0.5).astype(np.int64))
    first_bar = beats[min(first_downbeat_index, len(beats) - 2) :][:5]
    return steps[0], steps[1], 60.0 / float(np.mean(np.diff(first_bar)))


# --- building the roll ----------------------------------------------------------------------
def _fill(
    n_steps: int,
    track: np.ndarray,
    pitch: np.ndarray,
    start_steps: np.ndarray,
    end_steps: np.ndarray,
    velocity: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Union of the notes as ``bool[n_steps, 84, 5]`` and their max velocity as ``uint8``."""
    roll = np.zeros((n_steps, N_PITCHES, N_TRACKS), dtype=bool)
    vel = np.zeros((n_steps, N_PITCHES, N_TRACKS), dtype=np.uint8)
    for t, p, start, end, v in zip(
        track.tolist(),
        (pitch - LOWEST_PITCH).tolist(),
        start_steps.tolist(),
        end_steps.tolist(),
        velocity.tolist(),
        strict=True,
    ):
        roll[start:end, p, t] = True
        cells = vel[start:end, p, t]
        np.maximum(cells, v, out=cells)
    return roll, vel


def _no_usable_tracks(source: str) -> MidiFileError:
    return MidiFileError(
        f"{source}: no note lands in any of the five tracks (drums, piano, guitar, bass, "
        f"strings) within pitch {LOWEST_PITCH}..{HIGHEST_PITCH}; programs 96-103 and 112-127 "
        "are dropped; use a file with at least one such instrument",
        reason="no_usable_tracks",
    )
