"""Song roll -> MIDI file (type 1): programs, drums on channel 10, tempo, velocities.

The inverse of :mod:`musegan_live.files.midi_read` for pitched tracks: a run of consecutive ``True``
steps of one pitch is one note, so MIDI -> roll -> MIDI -> roll gives back the same roll.
Drums are read as hits ``DRUM_NOTE_STEPS`` long that merge when they touch, so a drum run is
written back as one hit every ``DRUM_NOTE_STEPS`` steps (the last one ends with the run).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import mido
import numpy as np

from musegan_live.atomic_files import atomic_write
from musegan_live.errors import DataFileError, MidiFileError
from musegan_live.representation import (
    DRUM_CHANNEL,
    DRUMS,
    LOWEST_PITCH,
    N_PITCHES,
    N_TRACKS,
    STEPS_PER_BEAT,
    TRACK_NAMES,
    TRACK_PROGRAMS,
    check_roll,
    check_track_slices,
    roll_notes,
)

#: Velocity of a note whose per-cell velocity is 0 (a cell with no recorded velocity).
DEFAULT_VELOCITY = 100


def check_note_roll(roll: np.ndarray, tracks: Sequence[int]) -> tuple[np.ndarray, list[int]]:
    """Validate a roll ``[n_steps, 84, len(tracks)]`` (bool, or integers where nonzero = on).

    Returns the roll as ``bool`` and ``tracks`` as a list of distinct representation indices.
    Float rolls (model probabilities) are refused: threshold them first.
    """
    arr = check_roll(roll, "roll", ("n_steps", N_PITCHES, "tracks"))
    track_list = list(check_track_slices(tracks, arr.shape[2], distinct=True))
    if arr.dtype != np.bool_:
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(
                f"roll must be boolean (or 0/1 integers), got {arr.dtype}; threshold "
                "probabilities first (e.g. roll >= 0.5)"
            )
        arr = arr != 0
    return arr, track_list


def cell_velocities(roll: np.ndarray, velocity: int | Sequence[int] | np.ndarray) -> np.ndarray:
    """Expand ``velocity`` to ``uint8[n_steps, 84, n_tracks]`` (the shape of ``roll``).

    ``velocity`` is one int (1..127), one int per last-axis slice of ``roll``, or a per-cell
    array of ``roll``'s shape. Per-cell zeros on on-cells become ``DEFAULT_VELOCITY``; values
    above 127 are clipped.
    """
    n_tracks = roll.shape[2]
    if isinstance(velocity, np.ndarray) and velocity.ndim == 3:
        if velocity.shape != roll.shape:
            raise ValueError(
                f"per-cell velocity has shape {velocity.shape}, expected the roll's {roll.shape}"
            )
        cells = np.clip(velocity, 0, 127).astype(np.uint8)
        return np.where(roll & (cells == 0), np.uint8(DEFAULT_VELOCITY), cells)
    per_track = np.asarray(velocity).reshape(-1)
    if per_track.size == 1:
        per_track = np.repeat(per_track, n_tracks)
    if per_track.size != n_tracks or not np.issubdtype(per_track.dtype, np.integer):
        raise ValueError(
            f"velocity must be one int, {n_tracks} ints (one per track) or a per-cell array "
            f"shaped like the roll; got {velocity!r}"
        )
    if ((per_track < 1) | (per_track > 127)).any():
        raise ValueError(f"velocities must be 1..127, got {per_track.tolist()}")
    return np.broadcast_to(per_track.astype(np.uint8), roll.shape)


def roll_to_midi(
    roll: np.ndarray,
    *,
    tracks: Sequence[int] = range(N_TRACKS),
    tempo_bpm: float = 120.0,
    velocity: int | Sequence[int] | np.ndarray = 100,
    programs: Sequence[int] | None = None,
    ticks_per_beat: int = 480,
) -> mido.MidiFile:
    """Turn a roll ``bool[n_steps, 84, len(tracks)]`` into a type-1 :class:`mido.MidiFile`.

    ``tracks[k]`` is the representation track (0 Drums .. 4 Strings) of slice ``roll[..., k]``;
    ``velocity`` is one int, one int per slice, or ``uint8`` per cell (a note takes the cell at its
    onset); ``programs`` is one GM program per slice (default ``TRACK_PROGRAMS``).
    ``ticks_per_beat`` must be a multiple of 12 so that steps fall on whole ticks.

    The file has a conductor track (tempo, 4/4 time signature) and one track per non-empty slice,
    named after its representation track, with a program change; pitched track ``t`` plays on
    channel ``t - 1`` (0-based), drums on channel 9. Every track ends at the roll's end.
    """
    arr, track_list = check_note_roll(roll, tracks)
    if ticks_per_beat <= 0 or ticks_per_beat % STEPS_PER_BEAT:
        raise ValueError(
            f"ticks_per_beat must be a positive multiple of {STEPS_PER_BEAT}, got {ticks_per_beat}"
        )
    tempo_ok = math.isfinite(tempo_bpm) and tempo_bpm > 0
    if not (tempo_ok and 0 < mido.bpm2tempo(tempo_bpm) <= 0xFFFFFF):
        raise ValueError(f"tempo_bpm must be between 3.6 and 60000000, got {tempo_bpm}")
    if programs is None:
        program_list = [TRACK_PROGRAMS[t] for t in track_list]
    else:
        program_list = [int(p) for p in programs]
        if len(program_list) != len(track_list) or not all(0 <= p <= 127 for p in program_list):
            raise ValueError(
                f"programs must be {len(track_list)} GM programs 0..127 (one per track), "
                f"got {list(programs)}"
            )
    velocities = cell_velocities(arr, velocity)
    ticks_per_step = ticks_per_beat // STEPS_PER_BEAT
    end_ticks = arr.shape[0] * ticks_per_step

    midi = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    conductor = mido.MidiTrack(
        [
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_bpm), time=0),
            mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0),
            mido.MetaMessage("end_of_track", time=end_ticks),
        ]
    )
    midi.tracks.append(conductor)
    for k, track in enumerate(track_list):
        if not arr[:, :, k].any():
            continue
        channel = DRUM_CHANNEL if track == DRUMS else track - 1
        starts, ends, pitches = roll_notes(arr[:, :, k], drums=track == DRUMS)
        note_velocities = velocities[starts, pitches, k]
        midi.tracks.append(
            _track(
                TRACK_NAMES[track],
                channel,
                program_list[k],
                starts * ticks_per_step,
                ends * ticks_per_step,
                pitches + LOWEST_PITCH,
                note_velocities,
                end_ticks,
            )
        )
    return midi


def write_midi(path: str | os.PathLike, roll: np.ndarray, **kwargs: object) -> None:
    """Write :func:`roll_to_midi` ``(roll, **kwargs)`` to ``path`` atomically.

    Parent folders are created; the file is written under a temporary name in the same folder
    and renamed, so a reader never sees half a file.
    """
    midi = roll_to_midi(roll, **kwargs)  # type: ignore[arg-type]
    try:
        atomic_write(path, lambda f: midi.save(file=f))
    except DataFileError as err:
        raise MidiFileError(str(err), reason="unwritable") from err


def _track(
    name: str,
    channel: int,
    program: int,
    start_ticks: np.ndarray,
    end_ticks: np.ndarray,
    pitches: np.ndarray,
    velocities: np.ndarray,
    track_end_ticks: int,
) -> mido.MidiTrack:
    """One instrument track; at equal ticks note-offs come before note-ons."""
    n = len(start_ticks)
    ticks = np.concatenate((end_ticks, start_ticks))
    is_on = np.concatenate((np.zeros(n, dtype=np.int8), np.ones(n, dtype=np.int8)))
    notes = np.concatenate((pitches, pitches))
    vels = np.concatenate((np.zeros(n, dtype=np.int64), velocities.astype(np.int64)))
    order = np.lexsort((notes, is_on, ticks))
    track = mido.MidiTrack(
        [
            mido.MetaMessage("track_name", name=name, time=0),
            mido.Message("program_change", channel=channel, program=program, time=0),
        ]
    )
    now = 0
    for i in order.tolist():
        tick = int(ticks[i])
        kind = "note_on" if is_on[i] else "note_off"
        track.append(
            mido.Message(
                kind, channel=channel, note=int(notes[i]), velocity=int(vels[i]), time=tick - now
            )
        )
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=track_end_ticks - now))
    return track
