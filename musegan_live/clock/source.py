"""Which clock drives the session: the external MIDI clock, the internal one, or auto.

``ClockSource`` is owned by the daemon's timing thread. It turns what arrives on the input
(raw clock bytes) and what the internal clock thread enqueues into ``ClockEvent``s, checks for
clock loss, and manages the hand-over:

- ``external``: only MIDI clock from the input counts;
- ``internal``: the internal clock runs from ``start()`` at ``clock.bpm``; input clock is ignored;
- ``auto``: wait ``auto_wait_seconds`` for an external clock, run the internal one if none
  came, and hand over to the external clock for good as soon as one shows up (Start, Continue
  or ticks): the internal clock is stopped (a "stop" event ends its notes) and the external
  one followed from then on, so pressing Stop in the DAW never lets the internal clock restart.

Sync start (``clock.sync_start``, as on arranger keyboards): where the internal clock would
start, it is *armed* instead (``name`` "sync") and starts on the player's first note
(:meth:`ClockSource.start_on_note`: that note is beat 1, or comes ``clock.count_in_beats``
beats before it); :meth:`ClockSource.stop_internal` stops it and arms it again.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import mido

from musegan_live.clock.follower import (
    CLOCK,
    CONTINUE,
    SONG_POSITION,
    START,
    STOP,
    ClockEvent,
    MidiClockFollower,
)
from musegan_live.clock.internal import InternalClock, InternalClockThread
from musegan_live.config.live import ClockConfig

logger = logging.getLogger(__name__)

AUTO_CLOCK_WAIT_SECONDS = 1.0
_CLOCK_BYTES = frozenset({CLOCK, START, CONTINUE, STOP, SONG_POSITION})
_TAKES_OVER = frozenset({CLOCK, START, CONTINUE})  # external bytes that end the internal clock


@dataclass(frozen=True)
class InternalTick:
    """An internal clock event on the timing queue; ``generation`` tells stale ones apart."""

    generation: int
    event: ClockEvent


class ClockSource:
    """Clock events for the session from the configured source (see the module docstring).

    ``events_queue``: the timing thread's queue (the internal clock thread puts
    ``InternalTick``s on it). ``midi_sink(message, due_seconds)``: where the internal clock's
    MIDI clock goes when ``config.send_clock`` (None: not sent; ``due_seconds`` 0: at once).
    """

    def __init__(
        self,
        config: ClockConfig,
        events_queue: queue.SimpleQueue[Any],
        *,
        midi_sink: Callable[[mido.Message, float], None] | None = None,
        auto_wait_seconds: float | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._queue = events_queue
        self._midi_sink = midi_sink if config.send_clock else None
        #: the internal clock hands its ticks (to the session and ``midi_sink``) this long
        #: before they are due: the output ports' ``lead_seconds``, set once they are open
        self.lead_seconds = 0.0
        self._auto_wait = (
            AUTO_CLOCK_WAIT_SECONDS if auto_wait_seconds is None else auto_wait_seconds
        )
        self._now = now
        self.follower = MidiClockFollower(
            lost_timeout_seconds=config.loss_timeout_seconds, initial_bpm=config.bpm
        )
        self._internal: InternalClockThread | None = None
        self._generation = 0
        self._external_seen = False
        self._auto_deadline: float | None = None
        #: sync start applies: the internal clock waits for the player's first note
        self.sync_start = config.sync_start and config.source != "external"
        self._start_deadline: float | None = None  # a count-in under way: start then
        #: what drives the session now: "external", "internal", "sync" (armed, waiting for the
        #: player) or "waiting" (auto, for an external clock)
        self.name = "waiting"

    def start(self) -> None:
        """Start (or, with sync start, arm) the internal clock (``internal``), or the wait for
        an external one (``auto``)."""
        if self.config.source == "internal":
            self._arm_or_start(self._now())
        elif self.config.source == "auto":
            self._auto_deadline = self._now() + self._auto_wait

    def stop(self) -> None:
        """Stop the internal clock, if it runs (its remaining events are ignored)."""
        self._start_deadline = None
        if self._internal is not None:
            self._generation += 1
            self._internal.stop()
            self._internal = None

    @property
    def armed(self) -> bool:
        """Sync start is waiting for the player's first note (no count-in under way)."""
        return self.name == "sync" and self._start_deadline is None

    @property
    def running_internal(self) -> bool:
        """The internal clock drives the session now."""
        return self.name == "internal" and self._internal is not None

    def start_on_note(self, note_seconds: float) -> float:
        """The player's first note came at ``note_seconds``: start the internal clock there
        (its first tick is due at once), or after the count-in. Returns when bar 1 begins."""
        beat_seconds = self.config.count_in_beats * 60.0 / self.config.bpm
        if beat_seconds <= 0:
            self._start_internal(note_seconds)
        else:
            self._start_deadline = note_seconds + beat_seconds
            logger.info("count-in: %d beats, bar 1 in %.2f s", self.config.count_in_beats,
                        beat_seconds)
        return note_seconds + beat_seconds

    def start_now(self, now_seconds: float) -> None:
        """Start the internal clock at once (the start/stop button while it is stopped)."""
        if self.config.source != "external" and not self._external_seen:
            self._start_deadline = None
            self._start_internal(now_seconds)

    def stop_internal(self, now_seconds: float) -> list[ClockEvent]:
        """Stop the internal clock (the start/stop button): the stop event for the session;
        with sync start it is armed again. ``[]`` when it was not running."""
        events = []
        if self._internal is not None:
            clock = self._internal.clock
            events.append(ClockEvent("stop", clock.position_ticks, now_seconds,
                                     clock.seconds_per_tick))
        self.stop()
        if not self._external_seen:
            self._arm_or_start(now_seconds)
        return events

    def feed_midi(self, data: Sequence[int], time_seconds: float) -> list[ClockEvent]:
        """Clock events for one realtime/system message from the input (others: ``[]``)."""
        status = data[0] if data else 0
        if status not in _CLOCK_BYTES or self.config.source == "internal":
            return []
        events: list[ClockEvent] = []
        if status in _TAKES_OVER and not self._external_seen:
            events += self._take_external(time_seconds)
        return events + self.follower.feed(data, time_seconds)

    def internal_event(self, item: InternalTick) -> list[ClockEvent]:
        """The event of an ``InternalTick`` from the queue, unless it is stale."""
        if item.generation == self._generation and self.name == "internal":
            return [item.event]
        return []

    def poll(self, now_seconds: float) -> list[ClockEvent]:
        """Time-driven events: clock loss; starts the internal clock when ``auto`` waited."""
        events = self.follower.check_lost(now_seconds)
        if self._auto_deadline is not None and now_seconds >= self._auto_deadline:
            self._auto_deadline = None
            if not self._external_seen:
                logger.info("no external MIDI clock within %.1f s: internal clock at %g BPM",
                            self._auto_wait, self.config.bpm)
                self._arm_or_start(now_seconds)
        if self._start_deadline is not None and now_seconds >= self._start_deadline:
            start_seconds, self._start_deadline = self._start_deadline, None
            self._start_internal(start_seconds)
        return events

    def next_wakeup_seconds(self) -> float | None:
        """When ``poll`` next has something to do (None: only when input arrives)."""
        deadlines = [self.follower.next_loss_check_seconds(), self._auto_deadline,
                     self._start_deadline]
        pending = [d for d in deadlines if d is not None]
        return min(pending) if pending else None

    def _take_external(self, now_seconds: float) -> list[ClockEvent]:
        self._external_seen = True
        self._auto_deadline = None
        was_internal = self.name != "waiting"
        events = self.stop_internal(now_seconds)
        if was_internal:
            logger.info("external MIDI clock detected: following it from now on")
        self.name = "external"
        return events

    def _arm_or_start(self, now_seconds: float) -> None:
        if self.sync_start:
            self.name = "sync"
            logger.info("sync start: the band starts on your first note")
        else:
            self._start_internal(now_seconds)

    def _start_internal(self, at_seconds: float) -> None:
        self._generation += 1
        generation = self._generation
        self.name = "internal"
        self._internal = InternalClockThread(
            InternalClock(self.config.bpm),
            lambda event: self._queue.put(InternalTick(generation, event)),
            midi_sink=self._midi_sink,
            lead_seconds=self.lead_seconds,
            now=self._now,
        )
        self._internal.start(at_seconds=at_seconds)
