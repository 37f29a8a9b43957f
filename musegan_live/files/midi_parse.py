"""MIDI file -> notes in ticks, tempo map and time signatures, with no musical decisions.

The mido-level half of :mod:`musegan_live.files.midi_read`: it reads a type 0 or 1 file, pairs each
note-on with its note-off and reports what the file says, in the file's own units (ticks, and
microseconds per beat for tempo). Which instrument lands in which LPD-5 track, which meters are
accepted, where step 0 is and how ticks become steps are decided in
:mod:`musegan_live.files.midi_read`.

- Note-ons and note-offs pair per (track, channel, pitch), first in first out; a note-on with
  velocity 0 is a note-off. A note never switched off lasts to the end of its track.
- Each note carries the program in effect on its channel at its note-on. Across tracks, events at
  one tick are taken in track order, program changes before notes.
- Sustain pedal and all other controllers are ignored.
"""

from __future__ import annotations

import os
from collections import defaultdict, deque
from dataclasses import dataclass

import mido
import numpy as np

from musegan_live.errors import MidiFileError

#: MIDI's default tempo when a file sets none: 500000 microseconds per beat = 120 bpm.
DEFAULT_TEMPO_US_PER_BEAT = 500_000


@dataclass(frozen=True)
class ParsedMidi:
    """What a MIDI file holds, before quantization.

    ``tempo_changes`` are ``(tick, microseconds per beat)`` in time order; ``time_signatures`` are
    ``(tick, numerator, denominator)`` in file order. The note arrays are parallel ``int64[n]``,
    one entry per note the file switches on (velocity > 0), every channel and program:
    ``channel`` 0..15 (9 is the drum channel), ``program`` 0..127 (General MIDI, 0-based),
    ``pitch`` 0..127, ``start_ticks`` / ``end_ticks`` absolute ticks from the file's start,
    ``velocity`` 1..127. ``n_unterminated`` counts the notes that had no note-off.
    """

    ticks_per_beat: int
    tempo_changes: list[tuple[int, int]]
    time_signatures: list[tuple[int, int, int]]
    n_unterminated: int
    channel: np.ndarray
    program: np.ndarray
    pitch: np.ndarray
    start_ticks: np.ndarray
    end_ticks: np.ndarray
    velocity: np.ndarray

    @property
    def n_notes(self) -> int:
        """Number of notes in the file (every note-on with velocity > 0)."""
        return len(self.pitch)


def parse_midi(path: str | os.PathLike) -> ParsedMidi:
    """Read a MIDI file (type 0 or 1) with mido into a :class:`ParsedMidi` (times in ticks).

    Raises :class:`MidiFileError` with ``reason="corrupt"`` when the file is missing, unreadable,
    type 2, or timed in SMPTE frames instead of ticks per beat.
    """
    source = os.fspath(path)
    midi = _open(source)
    ticks_per_beat = int(midi.ticks_per_beat)

    events: list[tuple[int, int, int, int, mido.Message]] = []
    tempo_changes: list[tuple[int, int, int, int]] = []
    time_signatures: list[tuple[int, int, int]] = []
    track_end_ticks: list[int] = []
    for track_no, track in enumerate(midi.tracks):
        tick = 0
        for seq, msg in enumerate(track):
            tick += msg.time
            if msg.type in ("note_on", "note_off"):
                events.append((tick, 1, track_no, seq, msg))
            elif msg.type == "program_change":
                # Across tracks, a program change at the same tick as a note applies first.
                events.append((tick, 0, track_no, seq, msg))
            elif msg.type == "set_tempo":
                tempo_changes.append((tick, track_no, seq, msg.tempo))
            elif msg.type == "time_signature":
                time_signatures.append((tick, msg.numerator, msg.denominator))
        track_end_ticks.append(tick)
    events.sort(key=lambda e: e[:4])
    tempo_changes.sort()

    programs = [0] * 16
    open_notes: defaultdict[tuple[int, int, int], deque[tuple[int, int, int]]] = defaultdict(deque)
    notes: list[tuple[int, int, int, int, int, int]] = []  # channel, program, pitch, on, off, vel
    for tick, _, track_no, _, msg in events:
        if msg.type == "program_change":
            programs[msg.channel] = msg.program
            continue
        key = (track_no, msg.channel, msg.note)
        if msg.type == "note_on" and msg.velocity > 0:
            open_notes[key].append((tick, msg.velocity, programs[msg.channel]))
        elif open_notes[key]:  # note-off (or note-on velocity 0): ends the oldest open note
            start, vel, program = open_notes[key].popleft()
            notes.append((msg.channel, program, msg.note, start, tick, vel))
    n_unterminated = 0
    for (track_no, channel, pitch), queue in open_notes.items():
        for start, vel, program in queue:  # a note never switched off lasts to its track's end
            n_unterminated += 1
            notes.append((channel, program, pitch, start, track_end_ticks[track_no], vel))

    columns = np.asarray(notes, dtype=np.int64).reshape(-1, 6).T
    return ParsedMidi(
        ticks_per_beat=ticks_per_beat,
        tempo_changes=[(tick, tempo) for tick, _, _, tempo in tempo_changes],
        time_signatures=time_signatures,
        n_unterminated=n_unterminated,
        channel=columns[0],
        program=columns[1],
        pitch=columns[2],
        start_ticks=columns[3],
        end_ticks=columns[4],
        velocity=columns[5],
    )


def tempo_us_at(tempo_changes: list[tuple[int, int]], tick: int) -> int:
    """Microseconds per beat in effect at ``tick`` (120 bpm before the first change).

    ``tempo_changes`` are ``(tick, microseconds per beat)`` in time order.
    """
    tempo_us = DEFAULT_TEMPO_US_PER_BEAT
    for change_tick, change_tempo_us in tempo_changes:
        if change_tick > tick:
            break
        tempo_us = change_tempo_us
    return tempo_us


def tempo_bpm_at(tempo_changes: list[tuple[int, int]], tick: int) -> float:
    """Tempo in beats per minute in effect at ``tick`` (see :func:`tempo_us_at`)."""
    return float(mido.tempo2bpm(tempo_us_at(tempo_changes, tick)))


def ticks_to_seconds(
    ticks: np.ndarray, tempo_changes: list[tuple[int, int]], ticks_per_beat: int
) -> np.ndarray:
    """Seconds from the file's start of each tick, through the file's tempo map.

    ``ticks`` is any array of absolute ticks; the result is ``float64`` of the same shape. The
    tempo is 120 bpm until the first change; ``tempo_changes`` are ``(tick, microseconds per
    beat)`` in time order.
    """
    change_ticks = np.asarray([0] + [t for t, _ in tempo_changes], dtype=np.float64)
    tempos_us = np.asarray(
        [DEFAULT_TEMPO_US_PER_BEAT] + [tempo for _, tempo in tempo_changes], dtype=np.float64
    )
    seconds_per_tick = tempos_us / 1e6 / ticks_per_beat
    seconds_at_change = np.concatenate(
        ([0.0], np.cumsum(np.diff(change_ticks) * seconds_per_tick[:-1]))
    )
    index = np.searchsorted(change_ticks, ticks, side="right") - 1
    return seconds_at_change[index] + (ticks - change_ticks[index]) * seconds_per_tick[index]


def _open(source: str) -> mido.MidiFile:
    """The file opened by mido, or :class:`MidiFileError` saying why it cannot be read."""
    try:
        midi = mido.MidiFile(source)
    except FileNotFoundError as err:
        raise MidiFileError(f"{source}: no such file; check the path", reason="corrupt") from err
    except IsADirectoryError as err:
        raise MidiFileError(
            f"{source}: is a directory; give a .mid file", reason="corrupt"
        ) from err
    except Exception as err:  # mido raises many types (OSError, EOFError, ValueError, ...)
        raise MidiFileError(
            f"{source}: not a readable MIDI file ({type(err).__name__}: {err}); re-export it "
            "from a MIDI editor or skip it",
            reason="corrupt",
        ) from err
    if midi.type == 2:
        raise MidiFileError(
            f"{source}: type-2 MIDI (independent sequences) is not supported; convert it to "
            "type 0 or 1",
            reason="corrupt",
        )
    ticks_per_beat = int(midi.ticks_per_beat)
    if not 0 < ticks_per_beat < 0x8000:
        raise MidiFileError(
            f"{source}: time division {ticks_per_beat} is not ticks per beat (SMPTE timing is "
            "not supported); re-export the file with a PPQ time base",
            reason="corrupt",
        )
    return midi
