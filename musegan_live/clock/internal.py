"""The internal clock: MIDI clock ticks of its own when no external clock is present.

Tick ``n`` after a start at ``t0`` is due at ``t0 + n * seconds_per_tick`` exactly (absolute
deadlines on one monotonic clock, never relative sleeps, so lateness never accumulates).
``InternalClock`` works on injected time; ``InternalClockThread`` runs it in real time and can
send MIDI clock / Start / Stop for a DAW to follow. Events are ``clock.ClockEvent``s, the same
the external ``MidiClockFollower`` produces.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import mido

from musegan_live.clock.follower import ClockEvent, ClockEventKind
from musegan_live.clock.tempo import TickTempo, seconds_per_tick_for_bpm
from musegan_live.representation import TICKS_PER_SPP_UNIT


class InternalClock(TickTempo):
    """A clock of its own for when no external MIDI clock is present.

    Tick ``n`` after a start at ``t0`` is due at ``t0 + n * seconds_per_tick`` exactly: deadlines
    are absolute, so lateness of one wake-up never shifts the following ticks. A tempo change
    re-anchors at the next due tick. Time is injected: ``start(now_seconds)`` and
    ``due_events(now_seconds)``; ``InternalClockThread`` drives it in real time.
    """

    def __init__(self, bpm: float = 120.0) -> None:
        self._seconds_per_tick = seconds_per_tick_for_bpm(bpm)
        self._anchor_seconds = 0.0
        self._anchor_tick = 0  # position of the tick due at the anchor time
        self._ticks_since_anchor = 0
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    @property
    def position_ticks(self) -> int:
        """Position of the next tick."""
        return self._anchor_tick + self._ticks_since_anchor

    def next_deadline_seconds(self) -> float | None:
        """When the next tick is due (None while stopped)."""
        if not self._running:
            return None
        return self._anchor_seconds + self._ticks_since_anchor * self._seconds_per_tick

    def start(self, now_seconds: float, position_ticks: int = 0) -> ClockEvent:
        """Start (position 0) or continue (any other position); first tick due at ``now``."""
        self._anchor_seconds = now_seconds
        self._anchor_tick = position_ticks
        self._ticks_since_anchor = 0
        self._running = True
        kind: ClockEventKind = "start" if position_ticks == 0 else "continue"
        return ClockEvent(kind, position_ticks, now_seconds, self._seconds_per_tick)

    def stop(self, now_seconds: float) -> ClockEvent:
        """Stop; the position is kept for a later ``start(now, position_ticks)``."""
        self._running = False
        return ClockEvent("stop", self.position_ticks, now_seconds, self._seconds_per_tick)

    def set_bpm(self, bpm: float) -> None:
        """Change tempo from the next due tick on (that tick keeps its deadline)."""
        new_seconds_per_tick = seconds_per_tick_for_bpm(bpm)
        if self._running:
            self._anchor_seconds = self.next_deadline_seconds() or self._anchor_seconds
            self._anchor_tick = self.position_ticks
            self._ticks_since_anchor = 0
        self._seconds_per_tick = new_seconds_per_tick

    def due_events(self, now_seconds: float) -> list[ClockEvent]:
        """Tick events for every tick due at or before ``now_seconds``, each stamped with its
        deadline (not with ``now``), in order. Late ticks are all returned: the position
        never skips."""
        events: list[ClockEvent] = []
        if not self._running:
            return events
        while True:
            deadline = self._anchor_seconds + self._ticks_since_anchor * self._seconds_per_tick
            if deadline > now_seconds:
                return events
            position = self._anchor_tick + self._ticks_since_anchor
            self._ticks_since_anchor += 1
            events.append(ClockEvent("tick", position, deadline, self._seconds_per_tick))


def clock_event_to_midi(event: ClockEvent) -> list[mido.Message]:
    """The MIDI a clock master sends for ``event`` (so a DAW can follow the internal clock).

    A continue from a non-zero position is preceded by its Song Position Pointer (positions
    that are not on a 16th are sent rounded down to the 16th).
    """
    if event.kind == "tick":
        return [mido.Message("clock")]
    if event.kind == "start":
        return [mido.Message("start")]
    if event.kind in ("stop", "lost"):
        return [mido.Message("stop")]
    if event.kind == "continue":
        spp = min(event.position_ticks // TICKS_PER_SPP_UNIT, 0x3FFF)
        return [mido.Message("songpos", pos=spp), mido.Message("continue")]
    if event.kind == "jump":
        spp = min(event.position_ticks // TICKS_PER_SPP_UNIT, 0x3FFF)
        return [mido.Message("songpos", pos=spp)]
    return []


class InternalClockThread:
    """Runs an ``InternalClock`` in real time on ``now`` (default ``time.monotonic()``).

    Each event goes to ``sink`` (called from this thread; it must be quick, e.g. a queue put)
    and, when ``midi_sink`` is given, as MIDI clock / Start / Stop to ``midi_sink(message,
    due_seconds)``. Ticks and Start are handed over ``lead_seconds`` before their deadlines,
    stamped with (and due at) the deadlines: the clock knows its future, so a port that places
    messages in time (JACK, at their frame; its ``lead_seconds`` say how early it needs them)
    sends the clock *and* the notes of each step exactly on the deadline, instead of a period
    or two after the thread woke. Stop goes at once (``due_seconds`` 0), or right after the
    last tick handed over when that is still to come (so up to the lead late), never before
    it. ``stop()`` ends the thread and emits the stop.
    """

    def __init__(
        self,
        clock: InternalClock,
        sink: Callable[[ClockEvent], None],
        *,
        midi_sink: Callable[[mido.Message, float], None] | None = None,
        lead_seconds: float = 0.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self._sink = sink
        self._midi_sink = midi_sink
        self._lead_seconds = max(0.0, lead_seconds)
        self._handed_seconds = float("-inf")  # the deadline of the last event handed over
        self._now = now
        self._wake = threading.Event()
        self._halt = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _emit(self, event: ClockEvent) -> None:
        self._sink(event)
        if event.kind == "stop":
            # after the ticks handed over already (a DAW would hear them while stopped)
            due_seconds = self._handed_seconds if self._handed_seconds > event.time_seconds \
                else 0.0
        else:
            due_seconds = self._handed_seconds = event.time_seconds
        if self._midi_sink is not None:
            for message in clock_event_to_midi(event):
                self._midi_sink(message, due_seconds)

    def start(self, position_ticks: int = 0, at_seconds: float | None = None) -> None:
        """Start the clock (its first tick due at ``at_seconds``, default now: a time just
        past is caught up at once; with a lead, no earlier than the lead from now) and the
        thread that drives it."""
        with self._lock:
            if self._thread is not None:
                return
            self._halt = False
            now_seconds = self._now()
            start_seconds = now_seconds if at_seconds is None else at_seconds
            if self._lead_seconds > 0:  # Start and tick 0 too leave on time, the grid regular
                start_seconds = max(start_seconds, now_seconds + self._lead_seconds)
            self._emit(self.clock.start(start_seconds, position_ticks))
            self._thread = threading.Thread(
                target=self._run, name="musegan-internal-clock", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and emit a stop event (no-op when not running)."""
        with self._lock:
            thread = self._thread
            if thread is None:
                return
            self._halt = True
            self._wake.set()
        thread.join()
        with self._lock:
            self._thread = None
            self._wake.clear()
            self._emit(self.clock.stop(self._now()))

    @property
    def running(self) -> bool:
        return self._thread is not None

    def set_bpm(self, bpm: float) -> None:
        """Change the tempo from the next due tick on (thread-safe)."""
        with self._lock:
            self.clock.set_bpm(bpm)
        self._wake.set()

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._halt:
                    return
                for event in self.clock.due_events(self._now() + self._lead_seconds):
                    self._emit(event)
                deadline = self.clock.next_deadline_seconds()
            if deadline is None:
                return
            delay = deadline - self._lead_seconds - self._now()
            if delay > 0:
                self._wake.wait(delay)
                with self._lock:
                    if not self._halt:
                        self._wake.clear()
