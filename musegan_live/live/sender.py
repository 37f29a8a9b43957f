"""Sending scheduled MIDI at absolute deadlines: never early, never as a late burst.

``OutputSender.schedule(outgoing)`` takes :class:`~musegan_live.live.outgoing.Outgoing` messages
(a ``port_index`` and a ``due_seconds`` on the daemon's clock). One thread sleeps on a condition
variable until the earliest hand-over time (a heap keyed by that time, then arrival order, so
messages due together keep their order) and hands the message to its port's ``send_at``. The
hand-over time is the due time less the port's ``lead_seconds``: a JACK port places the message
at its own frame and needs it before that frame's cycle; a port without timing (0 lead) sends it
at once. A message whose hand-over time has come when it is scheduled, with nothing earlier
pending, is handed over by the caller's thread, saving a thread wake-up on the common path (step
events due "now"). Nobody sleeps inside a port.

Lateness: a note-on more than its own ``late_limit_seconds`` behind its deadline is dropped and
counted (a late note would sound out of time and, with others, as a burst; the session sets the
limit where it makes the message, :func:`~musegan_live.live.outgoing.late_note_on_limit_seconds`
of the tempo then, and ``math.inf`` for the player's own notes through thru: late is better than
lost); note-offs, controllers and everything else are always sent, late or not, so no note is
left hanging.

The sender knows which notes it has really sent and not yet ended: :meth:`discard_pending`
(before a panic) drops what is still queued, here and in the ports (what a port had queued and
not written counts as never sent), and ends each note that did sound with its own note-off at
once, so a note-off that was still waiting (a track sent early or late by its latency offset)
is not lost with the queue. CC123 alone is not enough: some synths ignore it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import mido

from musegan_live.errors import MuseganLiveError
from musegan_live.live.outgoing import Outgoing
from musegan_live.ports.base import OutputPort

logger = logging.getLogger(__name__)


SentCallback = Callable[[int, mido.Message, float], None]
#: A heap entry: hand-over seconds, arrival order (messages due together keep their order), message.
_Pending = tuple[float, int, Outgoing]


def _is_note_on(message: mido.Message) -> bool:
    return message.type == "note_on" and message.velocity > 0


def _is_note_off(message: mido.Message) -> bool:
    return message.type == "note_off" or (message.type == "note_on" and message.velocity == 0)


class OutputSender:
    """Sends ``Outgoing`` messages to ``ports[port_index]`` at their due time.

    ``on_sent(port_index, message, sent_seconds)`` (optional) is called after each send, e.g. to
    record the session; it runs under the sender's lock and must be quick.
    """

    def __init__(
        self,
        ports: Sequence[OutputPort],
        *,
        on_sent: SentCallback | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ports = list(ports)
        self._on_sent = on_sent
        self._now = now
        self._heap: list[_Pending] = []
        self._sounding: set[tuple[int, int, int]] = set()  # (port, channel, note) sent, not ended
        self._accepting = True  # False after discard_pending: the daemon is ending
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.sent_count = 0
        self.late_dropped = 0
        self.worst_lateness_seconds = 0.0
        self.send_errors = 0

    # --- public -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="musegan-sender", daemon=True)
            self._thread.start()

    def schedule(self, outgoing: Iterable[Outgoing]) -> None:
        """Queue messages; those due now (and not behind earlier ones) go out immediately.
        After :meth:`discard_pending` nothing more is taken (a timing thread that is still
        running cannot start a note after the final panic)."""
        with self._cond:
            if not self._accepting:
                return
            wake = False
            for item in outgoing:
                if not 0 <= item.port_index < len(self._ports):
                    raise MuseganLiveError(
                        f"message for output port {item.port_index}, but only "
                        f"{len(self._ports)} output port(s) are open"
                    )
                handover = item.due_seconds - self._ports[item.port_index].lead_seconds
                key = (handover, next(self._seq), item)
                nothing_earlier = not self._heap or self._heap[0][0] > handover
                if nothing_earlier and handover <= self._now():
                    self._deliver(key)
                    continue
                heapq.heappush(self._heap, key)
                wake = wake or self._heap[0] is key
            if wake:
                self._cond.notify()

    def send_now(self, port_index: int, message: mido.Message) -> None:
        """Send at once, ahead of anything pending (thru, panic)."""
        with self._cond:
            self._deliver((self._now(), next(self._seq), Outgoing(port_index, message)),
                          drop_late=False, now=True)

    def discard_pending(self) -> int:
        """Forget everything not yet sent, here and queued in the ports, and take nothing more
        (before the exit panic); then end every note that sounded and has not ended with its own
        note-off, now. Returns how many were pending."""
        with self._cond:
            self._accepting = False
            count = len(self._heap)
            self._heap.clear()
            for port_index, port in enumerate(self._ports):
                unsent = port.discard_queued()
                count += len(unsent)
                for data in reversed(unsent):  # undo them, latest first: they never left
                    self._forget_sent(port_index, mido.Message.from_bytes(data))
            for port_index, channel, pitch in sorted(self._sounding):
                off = mido.Message("note_off", channel=channel, note=pitch, velocity=0)
                self._deliver((self._now(), next(self._seq), Outgoing(port_index, off)),
                              drop_late=False, now=True)
            return count

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def stop(self, *, flush: bool = False) -> None:
        """End the thread; ``flush`` sends what is pending first (ignoring due times)."""
        with self._cond:
            if flush:
                while self._heap:
                    self._deliver(heapq.heappop(self._heap), drop_late=False)
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    # --- internals --------------------------------------------------------------------------
    def _deliver(self, key: _Pending, *, drop_late: bool = True, now: bool = False) -> None:
        """Hand one message to its port: ``send_at`` its due time, or ``send`` (``now``)."""
        item = key[2]
        port_index, message, due = item.port_index, item.message, item.due_seconds
        port = self._ports[port_index]
        now_seconds = self._now()
        lateness = now_seconds - due if due > 0 else 0.0  # due 0: "as soon as possible"
        if lateness > self.worst_lateness_seconds:
            self.worst_lateness_seconds = lateness
        if drop_late and lateness > item.late_limit_seconds and _is_note_on(message):
            self.late_dropped += 1
            logger.debug("dropped %s: %.1f ms late", message, lateness * 1000.0)
            return
        try:
            if now or due <= 0:
                port.send(message)
            else:
                port.send_at(message, due)
        except Exception as err:  # a failing port must not end the sender (nor the notes-off)
            self.send_errors += 1
            if self.send_errors <= 3:
                logger.error("cannot send %s: %s", message, err)
            return
        self.sent_count += 1
        if _is_note_on(message):
            self._sounding.add((port_index, message.channel, message.note))
        elif _is_note_off(message):
            self._sounding.discard((port_index, message.channel, message.note))
        if self._on_sent is not None:
            # a timed port places it at its due time; others send it now (at or after due)
            self._on_sent(port_index, message, now_seconds if now else max(due, now_seconds))

    def _forget_sent(self, port_index: int, message: mido.Message) -> None:
        """Undo what handing ``message`` over did to the notes sounding (it never left)."""
        key = (port_index, getattr(message, "channel", -1), getattr(message, "note", -1))
        if _is_note_on(message):
            self._sounding.discard(key)
        elif _is_note_off(message):
            self._sounding.add(key)

    def _run(self) -> None:
        with self._cond:
            while not self._stopping:
                if not self._heap:
                    self._cond.wait()
                    continue
                delay = self._heap[0][0] - self._now()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                while self._heap and self._heap[0][0] <= self._now():
                    self._deliver(heapq.heappop(self._heap))


def describe_sender(sender: OutputSender) -> dict[str, Any]:
    """Counters for logs and benchmarks."""
    return {
        "sent": sender.sent_count,
        "late_dropped": sender.late_dropped,
        "worst_lateness_ms": round(sender.worst_lateness_seconds * 1000.0, 3),
        "send_errors": sender.send_errors,
    }
