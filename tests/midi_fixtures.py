"""Tiny MIDI files built by code for tests (never committed data).

Times are given in beats (quarter notes); :func:`write_fixture_midi` turns them into ticks.
Any test module may use these: ``from tests.midi_fixtures import Part, write_fixture_midi``.

Example::

    path = write_fixture_midi(
        tmp_path / "song.mid",
        [Part(program=33, notes=[(40, 0, 1), (43, 1, 2.5, 90)])],  # (pitch, start, end[, vel])
        tempo_changes=[(0, 120), (4, 60)],  # (beat, bpm)
        time_signatures=[(0, 4, 4)],  # (beat, numerator, denominator)
    )
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import mido
import numpy as np

#: (pitch, start_beats, end_beats) or (pitch, start_beats, end_beats, velocity)
NoteSpec = tuple


@dataclass(frozen=True)
class Part:
    """One instrument: a channel, an optional program change at beat 0, and notes."""

    notes: Sequence[NoteSpec] = ()
    program: int | None = 0  # None: no program change (the channel keeps program 0)
    channel: int = 0  # 0-based; 9 is the drum channel
    name: str | None = None
    #: extra messages as (beat, mido.Message) placed in this part's track (e.g. program changes)
    extra: Sequence[tuple[float, mido.Message]] = field(default=())


def write_fixture_midi(
    path: str | os.PathLike,
    parts: Sequence[Part],
    *,
    ticks_per_beat: int = 480,
    tempo_changes: Sequence[tuple[float, float]] = ((0, 120.0),),
    time_signatures: Sequence[tuple[float, int, int]] = (),
    file_type: int = 1,
    end_beats: float | None = None,
) -> Path:
    """Write a MIDI file and return its path.

    Type 1: a conductor track (tempo changes and time signatures) and one track per part.
    Type 0: everything in one track. Note-offs are real ``note_off`` messages; at equal ticks
    note-offs come first, except the note-off of a zero-length note, which follows its note-on.
    ``end_beats`` sets where every track ends (default: its last event).
    """

    def tick(beats: float) -> int:
        return int(round(beats * ticks_per_beat))

    conductor: list[tuple[int, int, mido.BaseMessage]] = []
    for beat, bpm in tempo_changes:
        conductor.append((tick(beat), 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))))
    for beat, numerator, denominator in time_signatures:
        conductor.append(
            (
                tick(beat),
                0,
                mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator),
            )
        )
    part_events: list[list[tuple[int, int, mido.BaseMessage]]] = []
    for part in parts:
        events: list[tuple[int, int, mido.BaseMessage]] = []
        if part.name is not None:
            events.append((0, -2, mido.MetaMessage("track_name", name=part.name)))
        if part.program is not None:
            events.append(
                (0, -1, mido.Message("program_change", channel=part.channel, program=part.program))
            )
        for beat, message in part.extra:
            events.append((tick(beat), -1, message))
        for spec in part.notes:
            pitch, start, end = spec[:3]
            velocity = spec[3] if len(spec) > 3 else 100
            on_tick, off_tick = tick(start), tick(end)
            events.append(
                (
                    on_tick,
                    1,
                    mido.Message("note_on", channel=part.channel, note=pitch, velocity=velocity),
                )
            )
            # order 0 puts a note-off before note-ons at its tick; 2 puts it after (zero length)
            events.append(
                (
                    off_tick,
                    2 if off_tick == on_tick else 0,
                    mido.Message("note_off", channel=part.channel, note=pitch, velocity=0),
                )
            )
        part_events.append(events)

    midi = mido.MidiFile(type=file_type, ticks_per_beat=ticks_per_beat)
    if file_type == 0:
        merged = conductor + [event for events in part_events for event in events]
        midi.tracks.append(_track(merged, end_beats and tick(end_beats)))
    elif file_type == 1:
        midi.tracks.append(_track(conductor, end_beats and tick(end_beats)))
        for events in part_events:
            midi.tracks.append(_track(events, end_beats and tick(end_beats)))
    else:
        raise ValueError("file_type must be 0 or 1")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.save(path)
    return path


def _track(events: list[tuple[int, int, mido.BaseMessage]], end_tick: int | None) -> mido.MidiTrack:
    track = mido.MidiTrack()
    now = 0
    for tick, _, message in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=max(0, (end_tick or now) - now)))
    return track


def write_corrupt_midi(path: str | os.PathLike) -> Path:
    """A file that starts like MIDI but whose header is garbage."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"MThd\x00\x00\x00\x06\xff\xff" + bytes(range(256)) * 3)
    return path


def write_zero_byte_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def rubato_beats_seconds(n_beats: int, *, seed: int = 0, start_seconds: float = 0.3) -> list[float]:
    """Beat times that wander between 0.35 s and 0.75 s apart (a player speeding and slowing)."""
    rng = np.random.default_rng(seed)
    intervals = rng.uniform(0.35, 0.75, size=n_beats - 1)
    return [start_seconds, *(start_seconds + np.cumsum(intervals)).tolist()]


def beats_to_seconds(beats: float, beats_seconds: Sequence[float]) -> float:
    """Seconds of a fractional annotated-beat position (linear between annotated beats)."""
    index = int(np.clip(np.floor(beats), 0, len(beats_seconds) - 2))
    fraction = beats - index
    return beats_seconds[index] + fraction * (beats_seconds[index + 1] - beats_seconds[index])


def rubato_part(part: Part, beats_seconds: Sequence[float]) -> Part:
    """``part`` with note times given in annotated beats moved to where they sound in a
    120-bpm file (2 file beats per second), i.e. following the rubato beat list."""

    def file_beats(annotated: float) -> float:
        return 2.0 * beats_to_seconds(annotated, beats_seconds)

    notes = [(spec[0], file_beats(spec[1]), file_beats(spec[2]), *spec[3:]) for spec in part.notes]
    return Part(notes=notes, program=part.program, channel=part.channel, name=part.name)
