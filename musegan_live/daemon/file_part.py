"""``musegan-live play FILE.mid``: a MIDI file's part played into the live path as a player would.

:class:`FilePart` holds the condition track of the file as note events per step and, told where
the clock is, gives the messages a player would have played there: the daemon feeds them to the
session at each step boundary, before the step is planned, exactly where a keyboard's notes
would arrive. It follows any clock (the internal one at the file's tempo, or a DAW's, jumps and
loops included): a jump or a stop ends the notes it holds, and it picks up at the next onset.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import mido

from musegan_live.errors import MidiFileError
from musegan_live.files.midi_read import read_midi
from musegan_live.representation import (
    DRUMS,
    STEPS_PER_BAR,
    TICKS_PER_STEP,
    TRACK_NAMES,
    roll_note_events,
)


@dataclass
class FilePart:
    """One track (``track``, a representation index) of a file as note events
    (``roll_note_events``): ``ons`` and ``offs`` by step, ``n_steps`` long (whole bars), at
    ``tempo_bpm``; ``channel`` the messages' 0-based channel."""

    ons: dict[int, list[tuple[int, int]]]
    offs: dict[int, list[int]]
    n_steps: int
    tempo_bpm: float
    name: str
    track: int
    channel: int = 0
    _sounding: set[int] = field(default_factory=set)
    _next_step: int | None = None  # the step expected next; another one is a jump

    @classmethod
    def from_file(cls, path: str | os.PathLike, track: int, channel: int = 0,
                  *, assume_4_4: bool = False) -> FilePart:
        """The part of ``track`` (a representation index) in the MIDI file at ``path``
        (``assume_4_4``: read as 4/4 whatever its time signatures say)."""
        song = read_midi(path, assume_4_4=assume_4_4)
        roll = song.roll[:, :, track]
        if not roll.any():
            raise MidiFileError(
                f"{path}: no {TRACK_NAMES[track]} notes to play (the file has "
                f"{song.describe_tracks()}); give a file with a "
                f"{TRACK_NAMES[track]} part, or choose the track with --track",
                reason="no_usable_tracks",
            )
        ons, offs = roll_note_events(roll, song.velocity[:, :, track], drums=track == DRUMS)
        return cls(ons, offs, roll.shape[0], song.tempo_bpm, os.fspath(path), track, channel)

    @property
    def n_bars(self) -> int:
        return self.n_steps // STEPS_PER_BAR

    def finished(self, position_ticks: int) -> bool:
        """Whether the clock at ``position_ticks`` is past the part's last bar."""
        return position_ticks >= self.n_steps * TICKS_PER_STEP

    def at_tick(self, position_ticks: int) -> list[mido.Message]:
        """What the player plays when the clock reaches ``position_ticks`` (a tick): note-offs
        then note-ons of that step (on step boundaries; nothing between them). A step other than
        the one after the last first ends every held note (a jump); from the middle of a note
        it waits for the next onset."""
        if position_ticks % TICKS_PER_STEP:
            return []
        step = position_ticks // TICKS_PER_STEP
        out = [] if step == self._next_step else self.release()
        self._next_step = step + 1
        for pitch in self.offs.get(step, ()):
            if pitch in self._sounding:
                self._sounding.discard(pitch)
                out.append(mido.Message("note_off", channel=self.channel, note=pitch))
        for pitch, velocity in self.ons.get(step, ()):
            self._sounding.add(pitch)
            out.append(mido.Message("note_on", channel=self.channel, note=pitch,
                                    velocity=velocity))
        return out

    def release(self) -> list[mido.Message]:
        """Note-offs of every note the part holds (a stop or a jump)."""
        out = [mido.Message("note_off", channel=self.channel, note=p)
               for p in sorted(self._sounding)]
        self._sounding.clear()
        self._next_step = None
        return out

    def describe(self) -> str:
        """For the log, e.g. ``"song.mid: 412 Piano notes, 32 bars at 96.0 BPM"``."""
        onsets = sum(len(v) for v in self.ons.values())
        return (f"{self.name}: {onsets} {TRACK_NAMES[self.track]} notes, {self.n_bars} bars at "
                f"{self.tempo_bpm:.1f} BPM")
