"""JACK-native MIDI ports: one JACK client, frame-stamped input, frame-timed output.

The daemon's ports on JACK all belong to one client (:class:`JackMidiClient`, named
``musegan-live``) with one process callback, through the JACK-Client package: one libjack in
the process (python-rtmidi bundles a libjack of its own and is not loaded on this path).

Time: on JACK the daemon's clock *is* JACK's frame counter, in seconds
(:meth:`JackMidiClient.now_seconds`: frames / sample rate, not wrapping), so that what the
daemon hears, plans and sends lives on the timeline the DAW and the clock master use. A dummy
or overloaded driver's frames can run slower or faster than the wall clock (measured here:
0.86-1.02 x on a loaded 2-core VM); on the frame clock that changes nothing. So

- an input event at frame offset ``o`` of a cycle is stamped ``(cycle's first frame + o) /
  rate``: its frame, not the moment Python got to it; two clock ticks 1,000 frames apart are
  exactly 1,000 frames apart in their stamps, whatever the scheduler did;
- an output message due at ``t`` goes into a queue ordered by frame and is written in the cycle
  that holds frame ``t * rate``, at its offset (:meth:`JackOutputPort.send_at`). A message due
  already (or sent with ``send``) goes at offset 0 of the next cycle. The queue must be filled
  ahead of the cycle: :attr:`JackOutputPort.lead_seconds` says how early (the sender hands
  messages over that much before their due time). At most ``MAX_EVENTS_PER_CYCLE`` channel
  messages go out per port and cycle (system messages, the clock among them, are never held
  back: they have a queue of their own), and when a cycle's MIDI buffer is full the rest stays
  queued for the next cycle, in order: nothing is lost.

The process callback is Python (JACK-Client has no other way), so it does as little as
possible: read events, pop due messages. Cycles it missed are counted
(:attr:`JackMidiClient.missed_cycles`, from gaps in the cycles' first frames), as are the
server's xruns.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from musegan_live.config.options import CLIENT_NAME
from musegan_live.errors import PortError
from musegan_live.ports.base import InputPort, OutputPort, ReceivedMidi, match_port
from musegan_live.ports.jack_server import (
    jack_module,
    jack_server_name,
    jack_server_running,
    no_jack_server_message,
)

logger = logging.getLogger(__name__)

_FRAME_MASK = 0xFFFFFFFF  # jack_nframes_t wraps at 2**32 frames (24.8 h at 48 kHz)
_HALF_RANGE = 1 << 31


def _frames_after(later: int, earlier: int) -> int:
    """``later - earlier`` for JACK's wrapping 32-bit frame counts (signed, so a little
    before reads as negative, not as 24 hours after)."""
    return ((later - earlier + _HALF_RANGE) & _FRAME_MASK) - _HALF_RANGE
#: the sender hands a message over this long before its due time, on top of two periods
_LEAD_MARGIN_SECONDS = 0.002
#: at most this many events per output port and cycle: a Python callback writing a few hundred
#: events overruns a 64-frame period (and the reader at the other end may too), so a burst (a
#: panic ending every note) is spread over a few cycles instead, in order
MAX_EVENTS_PER_CYCLE = 16
#: status bytes from here up are system messages (Song Position, clock, Start, Stop, ...)
_FIRST_SYSTEM_STATUS = 0xF0
#: closing waits at most this long for queued messages (the final note-offs) to be written
_CLOSE_DRAIN_SECONDS = 0.25


def _pop_due(heap: list[tuple[int, int, bytes]], end_frame: int,
             budget: int) -> list[tuple[int, int, bytes]]:
    """Pop at most ``budget`` items due before ``end_frame``, earliest first."""
    due = []
    while heap and len(due) < budget and heap[0][0] < end_frame:
        due.append(heapq.heappop(heap))
    return due


class JackMidiClient:
    """The daemon's one JACK client; its ports come from :meth:`open_input` / :meth:`open_output`.

    ``on_shutdown(reason)`` is called (from a JACK thread) if the server goes away.
    """

    def __init__(
        self,
        client_name: str = CLIENT_NAME,
        *,
        on_shutdown: Callable[[str], None] | None = None,
    ) -> None:
        jack = jack_module()
        if not jack_server_running():
            raise PortError(no_jack_server_message())
        try:
            self._client = jack.Client(client_name, no_start_server=True,
                                       servername=jack_server_name())
        except jack.JackError as err:
            raise PortError(f"{no_jack_server_message()} ({err})") from err
        self._jack = jack
        self.name = self._client.name
        self.rate = int(self._client.samplerate)
        self.period_frames = int(self._client.blocksize)
        self._on_shutdown = on_shutdown
        self.server_gone = False
        self._inputs: tuple[JackInputPort, ...] = ()
        self._outputs: tuple[JackOutputPort, ...] = ()
        # the latest cycle's first frame as JACK gives it (wrapping) and counted on (not
        # wrapping); one tuple, replaced whole by the process callback, read by other threads
        first = self._client.frame_time
        self._cycle: tuple[int, int] = (first, first)
        self._latest_frame = first
        self._started = False
        self.cycles = 0
        self.missed_cycles = 0
        self.xruns = 0
        self._client.set_shutdown_callback(self._shutdown)
        self._client.set_xrun_callback(self._xrun)
        self._client.set_process_callback(self._process)
        self._closed = False
        try:
            self._client.activate()
        except jack.JackError as err:
            self._client.close()
            raise PortError(f"cannot activate JACK client {client_name!r}: {err}") from err
        logger.info("JACK client %r on server %r: %d Hz, %d frames per period", self.name,
                    jack_server_name(), self.rate, self.period_frames)

    # --- the process callback (JACK's realtime thread) ---------------------------------------
    def _process(self, frames: int) -> None:
        base = self._client.last_frame_time
        last, counted = self._cycle
        step = _frames_after(base, last)
        if self._started and step > frames:
            self.missed_cycles += step // frames - 1
        self._started = True
        first = counted + step
        self._cycle = (base, first)
        self.cycles += 1
        for port in self._inputs:
            port._read_cycle(first, self.rate)
        end = first + frames
        for port in self._outputs:
            port._write_cycle(first, end)

    def _xrun(self, _delay_usecs: float) -> None:
        self.xruns += 1

    def _shutdown(self, _status: object, reason: str) -> None:
        self.server_gone = True
        if self._on_shutdown is not None:
            self._on_shutdown(reason)

    # --- time ---------------------------------------------------------------------------------
    def now_seconds(self) -> float:
        """The frame clock: JACK's estimate of the current frame, not wrapping, / rate. The
        daemon's ``now`` on JACK (monotonic; it runs at the driver's pace)."""
        last, counted = self._cycle
        frame = counted + max(0, _frames_after(self._client.frame_time, last))
        self._latest_frame = frame = max(frame, self._latest_frame)  # never backwards
        return frame / self.rate

    def frame_for_seconds(self, seconds: float) -> int:
        """The (non-wrapping) frame at ``seconds`` on the frame clock."""
        return round(seconds * self.rate)

    @property
    def period_seconds(self) -> float:
        return self.period_frames / self.rate

    # --- ports --------------------------------------------------------------------------------
    def _foreign_ports(self, *, sources: bool) -> list[str]:
        """Full names of other clients' MIDI outputs (``sources``) or inputs; never this
        program's own."""
        own = (f"{self.name}:".casefold(), CLIENT_NAME.casefold())
        found = (self._client.get_ports(is_midi=True, is_output=True) if sources
                 else self._client.get_ports(is_midi=True, is_input=True))
        return [p.name for p in found if not p.name.casefold().startswith(own)]

    def _register(self, register: Any, short_name: str, kind: str) -> Any:
        try:
            return register(short_name)
        except self._jack.JackError as err:
            raise PortError(
                f"cannot create the JACK MIDI {kind} {self.name}:{short_name} ({err}); a port "
                "name must be unique and hold no ':'. Give each port its own name, or the name "
                "of an existing port to connect to (`musegan-live ports` lists them)"
            ) from err

    def _connect_or_virtual(
        self, query: str | None, own_name: str, *, is_input: bool
    ) -> tuple[Any, str]:
        """Register this client's port and connect it to the port ``query`` names; a query that
        matches nothing names the port itself, for other programs to connect to. Returns the
        JACK port and the name the daemon reports (the peer's, or the port's own)."""
        kind = "input" if is_input else "output"
        register = self._client.midi_inports.register if is_input \
            else self._client.midi_outports.register
        if query is None or not query.strip():
            port = self._register(register, own_name, kind)
            logger.info("MIDI %s: created port %r (JACK)", kind, port.name)
            return port, port.name
        candidates = self._foreign_ports(sources=is_input)
        index = match_port(query, candidates, kind)
        if index is None:
            port = self._register(register, query, kind)
            logger.info("MIDI %s: no port matches %r, created %r for other programs to connect "
                        "to (JACK)", kind, query, port.name)
            return port, port.name
        peer = candidates[index]
        port = self._register(register, own_name, kind)
        try:
            if is_input:
                self._client.connect(peer, port)
            else:
                self._client.connect(port, peer)
        except self._jack.JackError as err:
            port.unregister()
            raise PortError(f"cannot connect MIDI {kind} {port.name} to {peer!r}: {err}") from err
        logger.info("MIDI %s: connected to %r (JACK)", kind, peer)
        return port, peer

    def open_input(
        self, name: str | None, message_queue: queue.SimpleQueue[Any] | None = None,
        own_port_name: str = "in",
    ) -> JackInputPort:
        """An input from the port ``name`` names (None or no match: a port of that name)."""
        jack_port, shown = self._connect_or_virtual(name, own_port_name, is_input=True)
        port = JackInputPort(shown, self, jack_port, message_queue)
        self._inputs = (*self._inputs, port)
        return port

    def open_output(self, name: str | None, own_port_name: str = "out") -> JackOutputPort:
        """An output to the port ``name`` names (None or no match: a port of that name)."""
        jack_port, shown = self._connect_or_virtual(name, own_port_name, is_input=False)
        port = JackOutputPort(shown, self, jack_port)
        self._outputs = (*self._outputs, port)
        return port

    def _forget(self, port: Any) -> None:
        self._inputs = tuple(p for p in self._inputs if p is not port)
        self._outputs = tuple(p for p in self._outputs if p is not port)

    def stats(self) -> dict[str, int]:
        """Counters for the log: cycles run, cycles this client missed, server xruns, messages
        written after their frame had passed."""
        return {"cycles": self.cycles, "missed_cycles": self.missed_cycles, "xruns": self.xruns,
                "late_messages": sum(p.late_messages for p in self._outputs)}

    def close(self) -> None:
        """Close the ports (each lets its queue drain briefly), then leave the server
        (idempotent). After the server went away the client is left alone: libjack can crash
        closing it then."""
        if self._closed:
            return
        self._closed = True
        for port in (*self._outputs, *self._inputs):
            port.close()
        if self.server_gone:
            return
        try:
            self._client.deactivate()
        except Exception:  # the server may be half gone; closing anyway
            logger.debug("JACK client deactivate failed", exc_info=True)
        self._client.close()


class JackInputPort(InputPort):
    """An input of :class:`JackMidiClient`: events become ``ReceivedMidi`` stamped with their
    frame's time."""

    def __init__(self, name: str, owner: JackMidiClient, jack_port: Any,
                 message_queue: queue.SimpleQueue[Any] | None = None) -> None:
        super().__init__(name, message_queue)
        self._owner = owner
        self._jack_port = jack_port

    def _read_cycle(self, first_frame: int, rate: int) -> None:  # the process callback
        for offset, data in self._jack_port.incoming_midi_events():
            self.queue.put(ReceivedMidi((first_frame + offset) / rate, bytes(data), self.name))

    def _close(self) -> None:
        self._owner._forget(self)


class JackOutputPort(OutputPort):
    """An output of :class:`JackMidiClient`, written at frame offsets from a queue by frame."""

    def __init__(self, name: str, owner: JackMidiClient, jack_port: Any) -> None:
        super().__init__(name)
        self._owner = owner
        self._jack_port = jack_port
        self._queue: list[tuple[int, int, bytes]] = []  # heap: frame, arrival order, bytes
        self._system: list[tuple[int, int, bytes]] = []  # the same for clock, Start, Stop, ...
        self._queue_lock = threading.Lock()
        self._order = itertools.count()
        self.late_messages = 0  # written after their frame had passed

    @property
    def lead_seconds(self) -> float:  # type: ignore[override]
        """Hand a message over this long before it is due: two periods and a margin."""
        return 2 * self._owner.period_seconds + _LEAD_MARGIN_SECONDS

    def _send(self, data: list[int]) -> None:
        self._push(0, data)  # frame 0: before everything queued, offset 0 of the next cycle

    def _send_at(self, data: list[int], due_seconds: float) -> None:
        self._push(self._owner.frame_for_seconds(due_seconds), data)

    def _push(self, frame: int, data: list[int]) -> None:
        with self._queue_lock:
            self._enqueue((frame, next(self._order), bytes(data)))

    def _enqueue(self, item: tuple[int, int, bytes]) -> None:  # under the queue lock
        # system messages (clock, Song Position, Start, Stop) have a queue of their own, in
        # their order and outside the per-cycle budget: a burst of notes never holds a tick back
        heapq.heappush(self._system if item[2][0] >= _FIRST_SYSTEM_STATUS else self._queue, item)

    def _discard(self) -> list[bytes]:
        # what ``send`` queued (frame 0) has left as far as the caller knows, and the clock
        # (system messages) is never taken back: both stay (the ticks handed over and the Stop
        # after them, sent just before the exit's discard, must still reach the DAW)
        with self._queue_lock:
            dropped = sorted(item for item in self._queue if item[0])
            self._queue = [item for item in self._queue if not item[0]]
            heapq.heapify(self._queue)
        return [data for _, _, data in dropped]

    def queued(self) -> int:
        """Messages handed over and not yet written."""
        return len(self._queue) + len(self._system)

    def _write_cycle(self, base_frame: int, end_frame: int) -> None:  # the process callback
        port = self._jack_port
        port.clear_buffer()
        if not self._queue and not self._system:
            return
        with self._queue_lock:
            due = _pop_due(self._system, end_frame, len(self._system))
            due += _pop_due(self._queue, end_frame, MAX_EVENTS_PER_CYCLE)
            # JACK takes a cycle's events in time order: each at its offset, the late at 0
            due.sort(key=lambda item: (max(0, item[0] - base_frame), item[1]))
            for index, (frame, _order, data) in enumerate(due):
                try:
                    port.write_midi_event(max(0, frame - base_frame), data)
                except self._owner._jack.JackError:  # the buffer is full: the rest goes next
                    for item in due[index:]:         # cycle, in order
                        self._enqueue(item)
                    break
                if 0 < frame < base_frame:  # frame 0 means "as soon as possible", not late
                    self.late_messages += 1

    def _close(self) -> None:
        # the last messages (note-offs of a panic) leave before the port goes
        deadline = time.monotonic() + _CLOSE_DRAIN_SECONDS
        while self.queued() and not self._owner.server_gone and time.monotonic() < deadline:
            time.sleep(self._owner.period_seconds)
        self._owner._forget(self)


def list_jack_ports() -> tuple[list[str], list[str]]:
    """(sources for --in, destinations for --out): MIDI ports of other JACK clients."""
    client = JackMidiClient(f"{CLIENT_NAME}-list")
    try:
        return client._foreign_ports(sources=True), client._foreign_ports(sources=False)
    finally:
        client.close()


def open_jack_ports(
    input_name: str | None,
    output_names: Sequence[str | None],
    message_queue: queue.SimpleQueue[Any],
    on_shutdown: Callable[[str], None] | None = None,
) -> tuple[JackMidiClient, JackInputPort, list[JackOutputPort]]:
    """The daemon's client with one input and one output per name (ports out, out2, ...)."""
    client = JackMidiClient(on_shutdown=on_shutdown)
    try:
        outputs = [client.open_output(name, "out" if i == 0 else f"out{i + 1}")
                   for i, name in enumerate(output_names)]
        port = client.open_input(input_name, message_queue)
    except BaseException:
        client.close()
        raise
    return client, port, outputs
