"""When each generated track's step messages are due, and which steps a track sends now.

A step boundary is an even MIDI clock tick; the messages of step ``s`` are due at that tick's
time plus the track's latency offset. A track with a negative offset ("early") is decided and
sent one step ahead, due at the predicted time of its step plus the offset (at most one step
earlier). Due times of one track never go backwards, and nothing produced after a panic is due
before it (the panic would cut it). Seconds are on the daemon's clock.
"""

from __future__ import annotations


class DueTimes:
    """Per-track bookkeeping of the last due time and the last step sent, for ``n_tracks``."""

    def __init__(self, n_tracks: int) -> None:
        self._last_due_seconds = [float("-inf")] * n_tracks
        self._sent_through_step: list[int | None] = [None] * n_tracks

    def restart(self) -> None:
        """The clock (re)started: no step has been sent in this run."""
        self._sent_through_step = [None] * len(self._sent_through_step)

    def steps_to_send(self, track: int, step: int, early: bool) -> range:
        """The steps track number ``track`` sends at the boundary of ``step``: normally one (the
        next one for early tracks); right after a (re)start an early track also sends ``step``."""
        last = self._sent_through_step[track]
        first = step if last is None or not step <= last + 1 <= step + 1 else last + 1
        return range(first, step + (2 if early else 1))

    def due_seconds(
        self,
        track: int,
        target_step: int,
        step: int,
        tick_seconds: float,
        seconds_per_step: float,
        offset_seconds: float,
    ) -> float:
        """When the messages of ``target_step`` are due, the tick of ``step`` having come at
        ``tick_seconds``; records ``target_step`` as sent."""
        offset = max(offset_seconds, -seconds_per_step)
        predicted = tick_seconds + (target_step - step) * seconds_per_step
        due = max(predicted + offset, self._last_due_seconds[track])
        self._last_due_seconds[track] = due
        self._sent_through_step[track] = target_step
        return due

    def not_before(self, due_seconds: float) -> None:
        """Nothing produced from now on may be due before ``due_seconds`` (a panic's time)."""
        self._last_due_seconds = [max(last, due_seconds) for last in self._last_due_seconds]
