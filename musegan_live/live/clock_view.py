"""``ClockView``: the clock as the session last heard it (the last tick and the tempo).

The session's transport decides *what* the position is; this view answers *where in time* it is:
the step a player's message at some time falls on, the step boundary not reached yet, the length
of a step. Units: positions in MIDI clock ticks (2 per step), times in seconds on the monotonic
clock.
"""

from __future__ import annotations

from musegan_live.representation import (
    TICKS_PER_BEAT,
    TICKS_PER_STEP,
    bpm_for_seconds_per_tick,
)


class ClockView:
    """The last tick heard (``last_tick`` position, ``last_tick_seconds`` time; ``last_tick`` is
    None until the first run) and the tempo (``seconds_per_tick``)."""

    def __init__(self, seconds_per_tick: float) -> None:
        self.seconds_per_tick = seconds_per_tick
        self.last_tick: int | None = None
        self.last_tick_seconds = 0.0

    @property
    def seconds_per_step(self) -> float:
        return self.seconds_per_tick * TICKS_PER_STEP

    @property
    def bpm(self) -> float:
        return bpm_for_seconds_per_tick(self.seconds_per_tick)

    def hear_tempo(self, seconds_per_tick: float) -> None:
        """Take a clock event's tempo estimate (ignored when it has none, i.e. <= 0)."""
        if seconds_per_tick > 0:
            self.seconds_per_tick = seconds_per_tick

    def heard_tick(self, position_ticks: int, time_seconds: float) -> None:
        """A tick at ``position_ticks`` arrived at ``time_seconds``."""
        self.last_tick = position_ticks
        self.last_tick_seconds = time_seconds

    def expect_tick(self, position_ticks: int, time_seconds: float) -> None:
        """The next tick should carry ``position_ticks`` and arrive one tick after
        ``time_seconds - seconds_per_tick``: pretend the tick before it came then."""
        self.heard_tick(position_ticks - 1, time_seconds - self.seconds_per_tick)

    def step_position_at(self, time_seconds: float) -> float | None:
        """Where ``time_seconds`` falls, in steps (fractional), from the last tick and the tempo;
        at most a step past the last tick, at most a beat before it. None before any tick."""
        if self.last_tick is None:
            return None
        elapsed_ticks = (time_seconds - self.last_tick_seconds) / self.seconds_per_tick
        elapsed_ticks = min(max(elapsed_ticks, -TICKS_PER_BEAT), TICKS_PER_STEP)
        return (self.last_tick + elapsed_ticks) / TICKS_PER_STEP

    def next_step(self) -> int | None:
        """The first step boundary after the last tick (None before any tick)."""
        return None if self.last_tick is None else self.last_tick // TICKS_PER_STEP + 1
