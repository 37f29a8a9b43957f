"""The player's notes -> the condition track on the step grid (12 steps per beat).

:class:`Player` is pure bookkeeping: the session converts each message's arrival time into a
fractional step position (``step_position``: 10.0 is the boundary of step 10, 10.5 half-way
through it) and tells the player where the clock is. Rules:

- a note-on with velocity 0 is a note-off; a note-on for a pitch still sounding ends it first;
- the sustain pedal (CC64 >= 64) holds released notes until the pedal goes up;
- only ``channel`` is heard (``None`` = any channel);
- an onset is quantized to the nearest step boundary, so a note played slightly before a step
  belongs to that step; an end likewise; every note lasts at least one step;
- when the player plays the drum track, notes are hits ``DRUM_NOTE_STEPS`` long (as in LPD-5);
- pitches outside 24..107 count for dynamics but not for the roll.

The roll is kept per bar, indexed by absolute step, together with which steps have been *heard*
(the clock passed them since the take began): the engine's ``known_mask``.
"""

from __future__ import annotations

import math
from collections import deque

import mido
import numpy as np

from musegan_live.representation import (
    ALL_NOTES_OFF_CC,
    ALL_SOUND_OFF_CC,
    DRUM_NOTE_STEPS,
    LOWEST_PITCH,
    N_PITCHES,
    STEPS_PER_BAR,
    SUSTAIN_CC,
)

ALL_NOTES_OFF_CCS = (ALL_SOUND_OFF_CC, ALL_NOTES_OFF_CC)
#: How many recent note-ons make up the player's dynamics.
DYNAMICS_NOTES = 8


def quantize_step(step_position: float) -> int:
    """Nearest step boundary of a fractional step position (halves round up)."""
    return math.floor(step_position + 0.5)


class Player:
    """The condition track as the player plays it.

    ``channel``: 0-based MIDI channel to listen to, None = any. ``drums``: the player plays the
    drum track. ``keep_bars``: how many bars behind the clock to keep (None = the whole song,
    for recording and offline jobs).
    """

    def __init__(
        self, *, channel: int | None = None, drums: bool = False, keep_bars: int | None = None
    ) -> None:
        self.channel = channel
        self.drums = drums
        self.keep_bars = keep_bars
        self._notes: dict[int, np.ndarray] = {}  # bar -> bool[48, 84]
        self._velocity: dict[int, np.ndarray] = {}  # bar -> uint8[48, 84]
        self._heard: dict[int, np.ndarray] = {}  # bar -> bool[48]
        self._heard_through = 0  # steps < this have been heard (in this pass)
        self._running = False
        # MIDI pitch -> (onset step or None while the transport is stopped, velocity)
        self._keys: dict[int, tuple[int | None, int]] = {}
        self._sustained: dict[int, tuple[int | None, int]] = {}
        self._pedal_down = False
        self._recent_velocities: deque[int] = deque(maxlen=DYNAMICS_NOTES)
        self._changes_heard = 0  # changes to the part whose step the clock has passed
        self._changes_ahead: list[int] = []  # steps of changes the clock has not passed yet

    # --- messages -------------------------------------------------------------------------
    def handle(self, message: mido.Message, step_position: float | None) -> bool:
        """Take one message; ``step_position`` is None while the transport is stopped.

        Returns True when the message was the player's (right channel, a note or a control
        this class understands).
        """
        if not hasattr(message, "channel") or (
            self.channel is not None and message.channel != self.channel
        ):
            return False
        at = None if step_position is None or not self._running else quantize_step(step_position)
        if message.type == "note_on" and message.velocity > 0:
            self._note_on(message.note, message.velocity, at)
        elif message.type in ("note_on", "note_off"):
            self._note_off(message.note, at)
        elif message.type == "control_change" and message.control == SUSTAIN_CC:
            self._pedal(message.value >= 64, at)
        elif message.type == "control_change" and message.control in ALL_NOTES_OFF_CCS:
            for pitch in list(self._keys) + list(self._sustained):
                self._end(pitch, at)
            self._keys.clear()
            self._sustained.clear()
        else:
            return False
        if at is None:
            self._changes_heard += 1
        else:
            self._changes_ahead.append(at)
        return True

    def heard_changes(self, now_step: int) -> int:
        """How many changes to the part (notes, pedal) fall on steps before ``now_step``: when
        this number moves, what a plan made now would hear has changed (the engine re-plans)."""
        if self._changes_ahead:
            passed = [s for s in self._changes_ahead if s < now_step]
            if passed:
                self._changes_heard += len(passed)
                self._changes_ahead = [s for s in self._changes_ahead if s >= now_step]
        return self._changes_heard

    def _note_on(self, pitch: int, velocity: int, at: int | None) -> None:
        self._recent_velocities.append(velocity)
        if pitch in self._keys or pitch in self._sustained:
            self._end(pitch, at)
            self._keys.pop(pitch, None)
            self._sustained.pop(pitch, None)
        self._keys[pitch] = (at, velocity)

    def _note_off(self, pitch: int, at: int | None) -> None:
        if pitch not in self._keys:
            return
        if self._pedal_down:
            self._sustained[pitch] = self._keys.pop(pitch)
        else:
            self._end(pitch, at)
            del self._keys[pitch]

    def _pedal(self, down: bool, at: int | None) -> None:
        self._pedal_down = down
        if not down:
            for pitch in list(self._sustained):
                if pitch not in self._keys:
                    self._end(pitch, at)
            self._sustained.clear()

    def _end(self, pitch: int, at: int | None) -> None:
        """Write the sounding note ``pitch`` into the roll, ending at step ``at``."""
        onset, velocity = self._keys.get(pitch) or self._sustained[pitch]
        if onset is None or at is None:
            return
        self._write(pitch, onset, at, velocity)

    def _write(self, pitch: int, onset: int, end: int, velocity: int) -> None:
        row = pitch - LOWEST_PITCH
        if not 0 <= row < N_PITCHES:
            return
        end = onset + DRUM_NOTE_STEPS if self.drums else max(end, onset + 1)
        first = max(onset, 0)
        if self.keep_bars is not None:  # bars that would be forgotten at once are not written
            first = max(
                first, (self._heard_through // STEPS_PER_BAR - self.keep_bars) * STEPS_PER_BAR
            )
        for bar in range(first // STEPS_PER_BAR, -(-end // STEPS_PER_BAR)):
            lo = max(first, bar * STEPS_PER_BAR) - bar * STEPS_PER_BAR
            hi = min(end, (bar + 1) * STEPS_PER_BAR) - bar * STEPS_PER_BAR
            self._bar(bar)[lo:hi, row] = True
            self._velocity[bar][lo:hi, row] = velocity

    def _bar(self, bar: int) -> np.ndarray:
        if bar not in self._notes:
            self._notes[bar] = np.zeros((STEPS_PER_BAR, N_PITCHES), dtype=bool)
            self._velocity[bar] = np.zeros((STEPS_PER_BAR, N_PITCHES), dtype=np.uint8)
        return self._notes[bar]

    # --- transport ------------------------------------------------------------------------
    def start(self, step: int = 0) -> None:
        """A new take from ``step``: forget the roll; keys held now start at ``step``."""
        self._notes.clear()
        self._velocity.clear()
        self._heard.clear()
        self._reonset(step)

    def stop(self, step: int) -> None:
        """The transport stopped at ``step``: notes still held are written up to there."""
        if self._running:
            for pitch in list(self._keys) + list(self._sustained):
                self._end(pitch, step)
        for held in (self._keys, self._sustained):
            for pitch, (_, velocity) in held.items():
                held[pitch] = (None, velocity)
        self._running = False

    def rewind(self, step: int, from_step: int | None = None) -> None:
        """The position moved to ``step`` (a jump or a continue elsewhere).

        Held notes are written up to ``from_step`` (where the clock was) and restart at
        ``step``; what was recorded at and after ``step`` is forgotten, as the player is about to
        play it again.
        """
        if self._running and from_step is not None:
            for pitch in list(self._keys) + list(self._sustained):
                self._end(pitch, from_step)
        first_bar, offset = divmod(step, STEPS_PER_BAR)
        for bar in [b for b in self._notes if b > first_bar]:
            del self._notes[bar], self._velocity[bar]
        for bar in [b for b in self._heard if b > first_bar]:
            del self._heard[bar]
        if first_bar in self._notes:
            self._notes[first_bar][offset:] = False
            self._velocity[first_bar][offset:] = 0
        if first_bar in self._heard:
            self._heard[first_bar][offset:] = False
        self._reonset(step)

    def _reonset(self, step: int) -> None:
        for held in (self._keys, self._sustained):
            for pitch, (_, velocity) in held.items():
                held[pitch] = (step, velocity)
        self._heard_through = step
        self._running = True

    def advance(self, step: int) -> None:
        """The clock reached the boundary of ``step``: every step before it has been heard."""
        if not self._running or step <= self._heard_through:
            return
        for s in range(max(self._heard_through, 0, step - 2 * STEPS_PER_BAR), step):
            bar, offset = divmod(s, STEPS_PER_BAR)
            if bar not in self._heard:
                self._heard[bar] = np.zeros(STEPS_PER_BAR, dtype=bool)
            self._heard[bar][offset] = True
        self._heard_through = step
        if self.keep_bars is not None:
            oldest = step // STEPS_PER_BAR - self.keep_bars
            for store in (self._notes, self._velocity, self._heard):
                for bar in [b for b in store if b < oldest]:
                    del store[bar]

    # --- reading --------------------------------------------------------------------------
    def window(self, first_step: int, n_steps: int, now_step: int) -> tuple[np.ndarray, np.ndarray]:
        """The condition roll ``bool[n_steps, 84]`` from ``first_step`` and its known mask
        ``bool[n_steps]`` (steps heard before ``now_step``; steps before the song are unknown).

        Notes still held count as sounding up to ``now_step``.
        """
        roll = np.zeros((n_steps, N_PITCHES), dtype=bool)
        known = np.zeros(n_steps, dtype=bool)
        for bar in range(first_step // STEPS_PER_BAR, -(-(first_step + n_steps) // STEPS_PER_BAR)):
            lo = max(bar * STEPS_PER_BAR, first_step)
            hi = min((bar + 1) * STEPS_PER_BAR, first_step + n_steps)
            src = slice(lo - bar * STEPS_PER_BAR, hi - bar * STEPS_PER_BAR)
            dst = slice(lo - first_step, hi - first_step)
            if bar in self._notes:
                roll[dst] = self._notes[bar][src]
            if bar in self._heard:
                known[dst] = self._heard[bar][src]
        if self._running:
            for pitch, (onset, _) in list(self._keys.items()) + list(self._sustained.items()):
                row = pitch - LOWEST_PITCH
                if onset is None or not 0 <= row < N_PITCHES:
                    continue
                end = min(onset + DRUM_NOTE_STEPS, now_step) if self.drums else now_step
                lo, hi = max(onset, first_step), min(end, first_step + n_steps)
                if lo < hi:
                    roll[lo - first_step : hi - first_step, row] = True
        steps = np.arange(first_step, first_step + n_steps)
        known &= (steps < now_step) & (steps >= 0)
        return roll, known

    def recent_velocity(self) -> int | None:
        """Mean velocity (1..127) of the last ``DYNAMICS_NOTES`` note-ons; None before any."""
        if not self._recent_velocities:
            return None
        return max(1, min(127, round(sum(self._recent_velocities) / len(self._recent_velocities))))

    def song_roll(self) -> tuple[np.ndarray, np.ndarray]:
        """The recorded take: ``bool[n_steps, 84]`` and ``uint8[n_steps, 84]`` velocities from
        step 0 to the end of the last bar with notes (held notes not included)."""
        n_bars = max((b + 1 for b in self._notes if b >= 0), default=0)
        roll = np.zeros((n_bars * STEPS_PER_BAR, N_PITCHES), dtype=bool)
        velocity = np.zeros(roll.shape, dtype=np.uint8)
        for bar, notes in self._notes.items():
            if 0 <= bar < n_bars:
                roll[bar * STEPS_PER_BAR : (bar + 1) * STEPS_PER_BAR] = notes
                velocity[bar * STEPS_PER_BAR : (bar + 1) * STEPS_PER_BAR] = self._velocity[bar]
        return roll, velocity

    @property
    def sounding(self) -> frozenset[int]:
        """MIDI pitches the player holds now (by key or by pedal)."""
        return frozenset(self._keys) | frozenset(self._sustained)
