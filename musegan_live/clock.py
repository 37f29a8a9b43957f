"""MIDI clock: position in ticks (24 per beat), tempo estimate, external follower, internal clock.

Seed file: the ClockEvent contract below is shared by the clock (producer) and the session
(consumer). Units: positions in MIDI clock ticks, times in seconds on one monotonic clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ClockEventKind = Literal["tick", "start", "stop", "continue", "jump", "lost"]


@dataclass(frozen=True)
class ClockEvent:
    """Something the clock did, in the order it happened.

    kind:
      - "tick": a clock tick arrived; ``position_ticks`` is its index in the song: 0 for the
        first tick after Start (the downbeat of bar 1), ``6 * spp`` for the first tick after a
        Song Position Pointer ``spp`` followed by Continue. Step boundaries are even ticks
        (1 step = 2 ticks), bar boundaries multiples of 96.
      - "start": transport started at position 0 (sent before the first tick).
      - "continue": transport resumed at ``position_ticks``.
      - "stop": transport stopped at ``position_ticks``.
      - "jump": Song Position Pointer moved the position to ``position_ticks`` while stopped or
        running (a DAW loop).
      - "lost": no tick for the configured timeout while running; treated like stop.
    ``seconds_per_tick`` is the current tempo estimate (60 / (bpm * 24)); ``time_seconds`` is
    when the event happened on the monotonic clock.
    """

    kind: ClockEventKind
    position_ticks: int
    time_seconds: float
    seconds_per_tick: float
