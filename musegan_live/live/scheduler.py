"""One step of the plan -> the MIDI messages of that step, through the note ledger.

Pitched tracks: a note-on where a pitch starts sounding, a note-off where it stops; a note that a
new plan drops therefore ends cleanly at the step the change takes effect. Drums: hits only, each
ended after ``DRUM_NOTE_STEPS`` steps (a 16th note), and a run of on-steps longer than that is
re-struck every ``DRUM_NOTE_STEPS`` steps, the way LPD-5 stores drums (the rule of
``representation.roll_notes``, taken one step at a time by ``representation.drum_hits``).
Note-offs come before note-ons within a step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import mido
import numpy as np

from musegan_live.config.live import LiveConfig
from musegan_live.live.ledger import NoteLedger
from musegan_live.live.outgoing import Outgoing
from musegan_live.representation import (
    DRUM_NOTE_STEPS,
    DRUMS,
    LOWEST_PITCH,
    N_PITCHES,
    drum_hits,
)

#: Velocity used for 'follow' before the player has played a note.
FOLLOW_DEFAULT_VELOCITY = 100


class StepOutput(NamedTuple):
    """One track's step: messages to send, roll rows (pitch - 24) started and ended, and how
    many note-ons were dropped for lateness."""

    messages: list[Outgoing]
    started: list[int]
    ended: list[int]
    dropped: int


@dataclass(frozen=True)
class TrackSlot:
    """How one generated track is sent. ``column``: its index on the plan's track axis;
    ``channel`` 0-based; ``velocity`` fixed 1..127 or None to follow the player;
    ``offset_seconds`` added to its send times (negative: sent one step early)."""

    track: int
    column: int
    port_index: int
    channel: int
    program: int | None
    velocity: int | None
    offset_seconds: float

    @property
    def drums(self) -> bool:
        return self.track == DRUMS

    @property
    def early(self) -> bool:
        """Decided and sent one step ahead (negative latency offset)."""
        return self.offset_seconds < 0


def track_slots(config: LiveConfig, output_tracks: list[int] | tuple[int, ...]) -> list[TrackSlot]:
    """Slots for the model's output tracks (in the model's column order) from ``config``."""
    slots = []
    for column, track in enumerate(output_tracks):
        settings = config.tracks[track]
        slots.append(
            TrackSlot(
                track=track,
                column=column,
                port_index=config.port_index_of(track),
                channel=settings.channel_index,
                program=settings.program,
                velocity=None if settings.follows_player else int(settings.velocity),
                offset_seconds=settings.latency_ms / 1000.0,
            )
        )
    return slots


class Scheduler:
    """Turns decided steps into messages; remembers what each track is sounding."""

    def __init__(self, slots: list[TrackSlot], ledger: NoteLedger) -> None:
        if [slot.column for slot in slots] != list(range(len(slots))):
            raise ValueError("slots must be given in column order 0..n-1")
        self.slots = slots
        self.ledger = ledger
        for slot in slots:
            ledger.use_channel(slot.port_index, slot.channel)
        n = len(slots)
        self._sounding = np.zeros((n, N_PITCHES), dtype=bool)  # pitched: notes on now
        # pitched: notes the plan holds whose note-on was dropped as late; they stay silent
        # until the plan ends them (a late start is never played a step later instead)
        self._silent = np.zeros((n, N_PITCHES), dtype=bool)
        self._last_row = np.zeros((n, N_PITCHES), dtype=bool)  # the row sent at _last_step
        self._last_step = np.full(n, -(10**9), dtype=np.int64)
        self._steps_into_run = np.zeros((n, N_PITCHES), dtype=np.int64)  # drums, see drum_hits
        self._drum_off = np.full((n, N_PITCHES), -1, dtype=np.int64)  # drums: end step, -1 none

    def program_changes(self) -> list[Outgoing]:
        """A program change per track that has a program."""
        return [
            Outgoing(
                slot.port_index,
                mido.Message("program_change", channel=slot.channel, program=slot.program),
            )
            for slot in self.slots
            if slot.program is not None
        ]

    def reset(self) -> None:
        """Forget what is sounding (after the ledger ended every note)."""
        self._sounding[:] = False
        self._silent[:] = False
        self._last_row[:] = False
        self._last_step[:] = -(10**9)
        self._drum_off[:] = -1

    def step_messages(
        self,
        slot: TrackSlot,
        step: int,
        notes: np.ndarray,
        velocity: int,
        *,
        allow_note_ons: bool = True,
    ) -> StepOutput:
        """Messages for ``slot`` at ``step`` given its notes ``bool[84]`` there.

        With ``allow_note_ons`` False (the step is too late to play) only note-offs are sent and
        the note-ons that were due are counted in ``dropped``; a dropped pitched note stays
        dropped for as long as the plan holds it.
        """
        i = slot.column
        notes = np.asarray(notes, dtype=bool)
        if slot.drums:
            ends, starts = self._drum_changes(i, step, notes, allow_note_ons)
        else:
            ends = np.flatnonzero(self._sounding[i] & ~notes)
            self._silent[i] &= notes  # a silently held note is over where the plan ends it
            starts = np.flatnonzero(notes & ~self._sounding[i] & ~self._silent[i])
        out: list[Outgoing] = []
        port, channel = slot.port_index, slot.channel
        for row in ends:
            out += self.ledger.note_off(port, channel, LOWEST_PITCH + int(row))
        dropped = 0
        if not allow_note_ons:
            if not slot.drums:
                self._silent[i, starts] = True
            dropped, starts = len(starts), starts[:0]
        for row in starts:
            out += self.ledger.note_on(port, channel, LOWEST_PITCH + int(row), velocity)
        if slot.drums:
            self._drum_off[i, ends] = -1
            self._drum_off[i, starts] = step + DRUM_NOTE_STEPS
        else:
            self._sounding[i, ends] = False
            self._sounding[i, starts] = True
        self._last_row[i] = notes
        self._last_step[i] = step
        return StepOutput(out, [int(r) for r in starts], [int(r) for r in ends], dropped)

    def _drum_changes(
        self, i: int, step: int, notes: np.ndarray, allow_note_ons: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        previous = self._last_row[i] if self._last_step[i] == step - 1 else np.zeros_like(notes)
        hits, self._steps_into_run[i] = drum_hits(notes, previous, self._steps_into_run[i])
        due_off = (self._drum_off[i] >= 0) & (self._drum_off[i] <= step)
        if allow_note_ons:
            due_off &= ~hits  # a re-struck note is ended by the ledger just before its note-on
        return np.flatnonzero(due_off), np.flatnonzero(hits)
