"""MIDI clock: the ClockEvent contract and the external clock follower (position in ticks).

The ClockEvent contract below is shared by the clock (producer) and the session (consumer).
Units: positions in MIDI clock ticks, times in seconds on the daemon's clock. This module
follows an external clock (``MidiClockFollower``; its tempo estimate is ``tempo.py``'s);
``internal.py`` makes one.
Time is always injected (``now_seconds``), so everything here is testable without sleeping.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import mido

from musegan_live.clock.tempo import TempoEstimator
from musegan_live.errors import ClockError
from musegan_live.representation import TICKS_PER_SPP_UNIT

logger = logging.getLogger(__name__)

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


# MIDI realtime / system common status bytes the follower understands.
CLOCK = 0xF8
START = 0xFA
CONTINUE = 0xFB
STOP = 0xFC
SONG_POSITION = 0xF2


#: A gap of this many estimated tick intervals (up to the max) means ticks were lost (a JACK
#: client that misses its cycles, e.g. waiting for Python's GIL, loses every event in them).
MISSED_TICKS_MIN_RATIO = 1.5
MISSED_TICKS_MAX_RATIO = 8.5
#: Ticks held while telling lost ticks from a slower tempo (a run of long gaps = slower).
MAX_HELD_TICKS = 6
#: A tick this soon (in estimated intervals) after the previous one came in a burst: an xrun or
#: a busy machine delayed ticks and delivered them together.
BURST_MAX_RATIO = 0.5
#: With frame stamps, a tick less than this many intervals after the counted one is that tick
#: again (JACK delivered a late cycle's events twice; measured: a few in a thousand under xruns).
FRAME_REPEAT_MAX_RATIO = 0.5


def _status_and_data(message: Sequence[int] | mido.Message) -> tuple[int, Sequence[int]]:
    if isinstance(message, mido.Message):
        data = message.bytes()
    else:
        data = message
    if not data:
        return 0, ()
    return int(data[0]), data


class MidiClockFollower:
    """Follows an external MIDI clock: position by counting ticks, tempo by estimation.

    ``feed(message, now_seconds)`` takes one raw MIDI message (bytes or a ``mido.Message``) and
    its arrival time on the monotonic clock and returns the ``ClockEvent`` it caused (zero or
    two, as a list). Non-clock messages return ``[]``. Position rules (``docs/DESIGN.md``,
    "Timing"):

    - Start resets the position: the next tick is tick 0 (the downbeat of bar 1).
    - Stop freezes the position; Continue resumes from it; ticks while stopped do not move it
      but still feed the tempo estimate (many masters send clock while stopped).
    - Song Position Pointer sets the next tick to ``6 * spp``.
    - Lost ticks (a JACK xrun drops events) are counted anyway. A tick 1.5 to 8.5 intervals
      after the previous one is held until one comes at the usual interval again; then the
      time since the last counted tick says how many ticks there should have been, and the
      missing ones are counted, stamped with the times they should have had. A run of more
      than six long gaps is a slower tempo: those ticks are counted as they came. The
      position stays right; the price is a tick or two of delay after such a gap.
    - Ticks delayed on the way arrive in a burst (less than half an interval apart): they are
      counted at once, as they come, without guessing; the first tick at the usual interval
      after the burst says, from the time since the last tick before it, whether ticks were
      also lost, and those are counted then. (Limits: a clock jittered by more than 25 % of
      an interval, two ticks lost in a row from a jittered clock, or two xruns back to back
      that each delay a tick by about an interval, can be miscounted.)
    - ``frame_stamps=True`` (JACK input: each tick stamped with its frame, not its arrival):
      ticks cannot be delayed on the way, only lost or repeated, so none of the above guessing
      applies. A tick ``k`` intervals (rounded) after the last counted one counts as ``k``
      ticks (``k - 1`` were lost), however long the gap (up to the loss timeout); one less
      than half an interval after it is a repeat and is dropped. (Limit: a tempo that halves
      at once is read as every other tick lost.)
    - ``check_lost(now_seconds)`` reports "lost" when no tick arrived for
      ``lost_timeout_seconds`` while running; the follower then behaves as stopped. If ticks
      come back without a Stop/Start/Continue (the master kept running through a glitch), it
      reports "continue" at the counted position and plays on. Before the first Start or
      Continue, and after a Stop, ticks never move the position (masters that send clock
      while stopped are common).
    """

    def __init__(
        self,
        *,
        lost_timeout_seconds: float = 0.25,
        initial_bpm: float = 120.0,
        window_intervals: int = 24,
        frame_stamps: bool = False,
    ) -> None:
        if lost_timeout_seconds <= 0:
            raise ClockError(
                f"clock-loss timeout must be > 0 seconds (got {lost_timeout_seconds})"
            )
        self.lost_timeout_seconds = lost_timeout_seconds
        self.tempo = TempoEstimator(initial_bpm, window_intervals=window_intervals)
        #: ticks inferred from the timing because they never arrived (see ``_tick``)
        self.missed_ticks = 0
        #: ticks dropped as repeats of the one before (``frame_stamps`` only)
        self.repeated_ticks = 0
        #: input stamped with JACK frames: count by the frame gaps alone (see the class doc)
        self.frame_stamps = frame_stamps
        self._running = False
        self._lost = False  # stopped by a loss, not by Stop: ticks resume playing
        self._next_tick = 0
        self._last_tick_seconds: float | None = None  # time of the last counted tick
        self._last_arrival_seconds: float | None = None  # arrival of the last tick byte
        self._held: list[float] = []  # arrivals of ticks held after long gaps
        #: (time, position) of the last tick counted before a burst, while one is going on
        self._burst_anchor: tuple[float, int] | None = None
        self._running_since_seconds = 0.0

    @property
    def running(self) -> bool:
        """True between Start/Continue and Stop (or loss)."""
        return self._running

    @property
    def position_ticks(self) -> int:
        """Position the next tick will have."""
        return self._next_tick

    @property
    def last_tick_seconds(self) -> float | None:
        """Arrival time of the latest tick (running or not), None before the first."""
        return self._last_arrival_seconds

    def _event(self, kind: ClockEventKind, position_ticks: int, now: float) -> ClockEvent:
        return ClockEvent(kind, position_ticks, now, self.tempo.seconds_per_tick)

    def feed(self, message: Sequence[int] | mido.Message, now_seconds: float) -> list[ClockEvent]:
        """Process one incoming message that arrived at ``now_seconds``."""
        status, data = _status_and_data(message)
        if status == CLOCK:
            self._last_arrival_seconds = now_seconds
            return self._tick(now_seconds)
        if status not in (START, CONTINUE, STOP, SONG_POSITION):
            return []
        events = self._release_held()
        self._burst_anchor = None
        if status in (START, CONTINUE, STOP):
            self._lost = False
        if status == START:
            self._running = True
            self._running_since_seconds = now_seconds
            self._next_tick = 0
            events.append(self._event("start", 0, now_seconds))
        elif status == CONTINUE and not self._running:
            self._running = True
            self._running_since_seconds = now_seconds
            events.append(self._event("continue", self._next_tick, now_seconds))
        elif status == STOP and self._running:
            self._running = False
            events.append(self._event("stop", self._next_tick, now_seconds))
        elif status == SONG_POSITION and len(data) >= 3:
            spp = (int(data[1]) & 0x7F) | ((int(data[2]) & 0x7F) << 7)
            self._next_tick = spp * TICKS_PER_SPP_UNIT
            events.append(self._event("jump", self._next_tick, now_seconds))
        return events

    # --- ticks ------------------------------------------------------------------------------
    def _tick(self, now_seconds: float) -> list[ClockEvent]:
        events: list[ClockEvent] = []
        if not self._running:
            self._last_tick_seconds = now_seconds
            self.tempo.add_tick(now_seconds)
            if not self._lost:
                return events
            # Ticks again after a loss without Stop: the master kept running (a glitch, a
            # cable): join in from the counted position.
            self._lost = False
            self._running = True
            self._running_since_seconds = now_seconds
            events.append(self._event("continue", self._next_tick, now_seconds))
            events.append(self._count(now_seconds))
            return events
        if self.frame_stamps:
            return self._tick_by_frames(now_seconds)
        spt = self.tempo.seconds_per_tick
        if self._held:
            ratio = (now_seconds - self._held[-1]) / spt
            if ratio < BURST_MAX_RATIO:
                # Right behind the held tick: a burst of delayed ticks, not lost ones.
                return self._start_burst() + [self._count(now_seconds)]
            if ratio < MISSED_TICKS_MIN_RATIO:
                # The usual interval again: the time from the last counted tick to this one
                # says how many ticks there should have been; more than arrived means lost ones
                # (the same number of ticks merely delayed on the way fills nothing).
                return self._resolve_held(now_seconds) + [self._count(now_seconds)]
            self._held.append(now_seconds)
            if len(self._held) > MAX_HELD_TICKS:
                # Long gap after long gap: the tempo slowed down. Count what was held as is.
                logger.debug("gaps of %.2f ticks and more at tick %d: slower tempo",
                             ratio, self._next_tick)
                events += [self._count(t) for t in self._held[:-1]]
                del self._held[:-1]
            return events
        last = self._last_tick_seconds
        if self._burst_anchor is not None and last is not None:
            ratio = (now_seconds - last) / spt
            if ratio < BURST_MAX_RATIO:
                return [self._count(now_seconds)]  # the burst goes on
            if ratio < MISSED_TICKS_MIN_RATIO:
                return self._end_burst(now_seconds) + [self._count(now_seconds)]
            # A long gap right after a burst (late again, or a pause): it says nothing
            # reliable about the burst; judge this tick on its own.
            self._burst_anchor = None
        if last is not None and last >= self._running_since_seconds:
            ratio = (now_seconds - last) / spt
            if ratio >= MISSED_TICKS_MAX_RATIO:
                logger.debug("gap of %.2f ticks at tick %d: a pause, not counted", ratio,
                             self._next_tick)
            elif ratio >= MISSED_TICKS_MIN_RATIO:
                # Lost ticks or a much slower tempo? The next ticks tell: hold this one.
                self._held.append(now_seconds)
                return events
        events.append(self._count(now_seconds))
        return events

    def _tick_by_frames(self, now_seconds: float) -> list[ClockEvent]:
        """A running tick stamped with its frame: the gap since the last counted tick says how
        many ticks it stands for (see the class doc)."""
        last = self._last_tick_seconds
        if last is None or last < self._running_since_seconds:
            return [self._count(now_seconds)]
        ratio = (now_seconds - last) / self.tempo.seconds_per_tick
        if ratio < FRAME_REPEAT_MAX_RATIO:
            self.repeated_ticks += 1
            logger.debug("tick %.2f intervals after tick %d dropped as its repeat", ratio,
                         self._next_tick - 1)
            return []
        # (no "pause" here: while running, a frame gap shorter than the loss timeout is lost
        # ticks; a longer silence is a clock loss, reported by check_lost)
        lost = round(ratio) - 1
        if lost:
            logger.debug("%d tick(s) lost before tick %d (a gap of %.2f intervals)", lost,
                         self._next_tick, ratio)
        return self._fill_in(lost, now_seconds) + [self._count(now_seconds)]

    def _resolve_held(self, now_seconds: float) -> list[ClockEvent]:
        """Count the held ticks, with the ticks lost before them filled in (see ``_tick``)."""
        assert self._last_tick_seconds is not None
        spt = self.tempo.seconds_per_tick
        held, self._held = self._held, []
        # Each long gap alone says how many ticks it lost (robust to a clock's jitter, which
        # moves single ticks by a fraction of an interval) ...
        times = [self._last_tick_seconds, *held[:-1]]
        per_gap = [max(0, round((b - a) / spt) - 1) for a, b in zip(times, held, strict=True)]
        remaining = sum(per_gap)
        if remaining:
            logger.debug("%d tick(s) lost before tick %d", remaining, self._next_tick)
        events = []
        for arrived, missing in zip(held, per_gap, strict=True):
            missing = min(missing, remaining)
            remaining -= missing
            events += self._fill_in(missing, arrived)
            events.append(self._count(arrived))
        return events

    def _start_burst(self) -> list[ClockEvent]:
        """Count the held ticks as they are and remember where the burst began."""
        assert self._last_tick_seconds is not None
        self._burst_anchor = (self._last_tick_seconds, self._next_tick - 1)
        return self._release_held()

    def _end_burst(self, now_seconds: float) -> list[ClockEvent]:
        """A tick at ``now_seconds`` ended a burst: count the ticks it lost, if any.

        The ticks that should have come strictly between the anchor (the last tick before the
        burst) and now, by the time between them, against those that did come.
        """
        assert self._burst_anchor is not None
        anchor_seconds, anchor_position = self._burst_anchor
        self._burst_anchor = None
        span = (now_seconds - anchor_seconds) / self.tempo.seconds_per_tick
        missing = max(0, round(span) - 1 - (self._next_tick - 1 - anchor_position))
        if missing:
            logger.debug("%d tick(s) lost in a burst before tick %d", missing, self._next_tick)
        return self._fill_in(missing, now_seconds)

    def _count(self, time_seconds: float) -> ClockEvent:
        """One tick at ``time_seconds``: feed the tempo estimate, advance the position."""
        self._last_tick_seconds = time_seconds
        self.tempo.add_tick(time_seconds)
        position = self._next_tick
        self._next_tick += 1
        return self._event("tick", position, time_seconds)

    def _fill_in(self, missing: int, arrived_seconds: float) -> list[ClockEvent]:
        """The ``missing`` ticks between the last counted tick and one that arrived at
        ``arrived_seconds``, stamped with the times they should have had."""
        last = self._last_tick_seconds
        assert last is not None
        step = (arrived_seconds - last) / (missing + 1)
        self.missed_ticks += missing
        return [self._count(last + k * step) for k in range(1, missing + 1)]

    def _release_held(self) -> list[ClockEvent]:
        """Count held ticks as they are (no next tick came to say ticks were lost)."""
        held, self._held = self._held, []
        return [self._count(arrived) for arrived in held]

    def check_lost(self, now_seconds: float) -> list[ClockEvent]:
        """Report clock loss: ``[lost event]`` when running and silent too long, else ``[]``."""
        if not self._running:
            return []
        if now_seconds - self._silent_since_seconds() < self.lost_timeout_seconds:
            return []
        events = self._release_held()
        self._burst_anchor = None
        self._running = False
        self._lost = True
        self.tempo.reset_history()
        events.append(self._event("lost", self._next_tick, now_seconds))
        return events

    def next_loss_check_seconds(self) -> float | None:
        """When ``check_lost`` could next report a loss (None while stopped)."""
        if not self._running:
            return None
        return self._silent_since_seconds() + self.lost_timeout_seconds

    def _silent_since_seconds(self) -> float:
        last = self._last_arrival_seconds
        if last is None:
            return self._running_since_seconds
        return max(last, self._running_since_seconds)
