"""Tempo as seconds per MIDI clock tick: the BPM arithmetic, and the estimate from tick times.

Shared by the external clock follower (``follower.py``, which estimates the tempo it hears)
and the internal clock (``internal.py``, which keeps the tempo it is given).
"""

from __future__ import annotations

import statistics
from collections import deque

from musegan_live.errors import ClockError
from musegan_live.representation import (
    MAX_BPM,
    MIN_BPM,
    bpm_for_seconds_per_tick,
    seconds_per_tick_at,
)

_MIN_SECONDS_PER_TICK = seconds_per_tick_at(MAX_BPM)
_MAX_SECONDS_PER_TICK = seconds_per_tick_at(MIN_BPM)


def seconds_per_tick_for_bpm(bpm: float) -> float:
    """Seconds between two MIDI clock ticks at ``bpm`` quarter notes per minute (24 PPQN)."""
    if not MIN_BPM <= bpm <= MAX_BPM:
        raise ClockError(f"tempo {bpm:g} BPM is out of range; use {MIN_BPM:g}..{MAX_BPM:g} BPM")
    return seconds_per_tick_at(bpm)


class TickTempo:
    """A tempo kept as seconds per MIDI clock tick (``_seconds_per_tick``, set by the subclass),
    read as ``seconds_per_tick`` or as ``bpm`` (quarter notes per minute)."""

    _seconds_per_tick: float

    @property
    def seconds_per_tick(self) -> float:
        """The tick interval in seconds."""
        return self._seconds_per_tick

    @property
    def bpm(self) -> float:
        """The tempo in quarter notes per minute."""
        return bpm_for_seconds_per_tick(self._seconds_per_tick)



class TempoEstimator(TickTempo):
    """Tempo from tick arrival times, robust to jitter and quick to follow a tempo change.

    The estimate is the average interval over the last ``window_intervals`` intervals (the
    span from first to last tick over their number, which cancels per-tick timestamp jitter and
    averages interval jitter), taken as the median over the first three and last three ticks as
    end points so that one late tick at either end does not pull it. When the median of the
    last ``change_ticks`` intervals disagrees with the estimate by more than ``change_ratio``,
    the history is re-seeded from the newest ticks, so a tempo jump is followed within a beat
    instead of being averaged away (a median of 12 intervals under 20 % jitter stays well
    inside 18 %, so jitter does not re-seed; smaller tempo changes are followed by the sliding
    window). A gap longer than ``gap_ratio`` estimated intervals (the clock paused) restarts
    the history without counting the gap.
    """

    def __init__(
        self,
        initial_bpm: float = 120.0,
        *,
        window_intervals: int = 24,
        change_ticks: int = 12,
        change_ratio: float = 0.18,
        gap_ratio: float = 9.0,
    ) -> None:
        if window_intervals < 4:
            raise ClockError(f"window_intervals must be >= 4 (got {window_intervals})")
        if change_ticks < 2 or change_ticks > window_intervals:
            raise ClockError(
                f"change_ticks must be in 2..window_intervals ({window_intervals}); "
                f"got {change_ticks}"
            )
        self._seconds_per_tick = seconds_per_tick_for_bpm(initial_bpm)
        self._times: deque[float] = deque(maxlen=window_intervals + 1)
        self._change_ticks = change_ticks
        self._change_ratio = change_ratio
        self._gap_ratio = gap_ratio

    def reset_history(self) -> None:
        """Forget tick times (the next tick starts a new history); keep the estimate."""
        self._times.clear()

    def add_tick(self, time_seconds: float) -> float:
        """Record one tick arrival; return the updated seconds-per-tick estimate."""
        times = self._times
        if times:
            interval = time_seconds - times[-1]
            if interval <= 0.0:
                return self._seconds_per_tick  # duplicate timestamp: no information
            if interval > self._gap_ratio * self._seconds_per_tick:
                times.clear()  # the clock paused; the gap is not a tick interval
        times.append(time_seconds)
        n_intervals = len(times) - 1
        if n_intervals < 1:
            return self._seconds_per_tick
        k = self._change_ticks
        if n_intervals >= k + 4:
            recent = statistics.median(times[-1 - i] - times[-2 - i] for i in range(k))
            if abs(recent - self._seconds_per_tick) > self._change_ratio * self._seconds_per_tick:
                # Tempo changed: keep only the ticks that belong to the new tempo (about half
                # of the recent span, where the change was first visible).
                keep = k // 2 + 1
                for _ in range(len(times) - keep):
                    times.popleft()
                n_intervals = len(times) - 1
        # The average interval over (nearly) the whole window, from a few choices of first and
        # last tick: the median of those ignores one late tick at either end.
        ends = min(2, n_intervals // 4)
        spans = [
            (times[-1 - b] - times[a]) / (n_intervals - a - b)
            for a in range(ends + 1)
            for b in range(ends + 1)
        ]
        estimate = statistics.median(spans)
        self._seconds_per_tick = min(max(estimate, _MIN_SECONDS_PER_TICK), _MAX_SECONDS_PER_TICK)
        return self._seconds_per_tick
