"""MIDI port base classes (mido's pattern), message checks, name matching.

``OutputPort.send`` validates the message and calls the backend's ``_send(data)`` under the
port's lock; an ``InputPort``'s backend callback only timestamps the bytes with
``time.monotonic()`` (or the time of its JACK frame) and puts a ``ReceivedMidi`` on a
``queue.SimpleQueue`` (``docs/DESIGN.md``, "Timing": callbacks do no work). The real backends:
``musegan_live.ports.jack_ports`` (JACK, frame-timed) and ``musegan_live.ports.rtmidi_ports``
(ALSA); ``musegan_live.ports.backends`` picks one. In-memory ones for tests in
``tests/musegan_live/port_fakes.py``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from typing import Any, NamedTuple, TypeVar

import mido

from musegan_live.errors import PortError


class ReceivedMidi(NamedTuple):
    """One incoming MIDI message as the input callback saw it.

    ``time_seconds`` is ``time.monotonic()`` at arrival; ``data`` the raw bytes (status first);
    ``port_name`` the input port it came from.
    """

    time_seconds: float
    data: Sequence[int]
    port_name: str


# --- message validation -----------------------------------------------------------------------
# Data byte counts by status high nibble (channel messages) or status byte (system messages).
_CHANNEL_DATA_BYTES = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}
_SYSTEM_DATA_BYTES = {0xF2: 2, 0xF3: 1, 0xF6: 0, 0xF8: 0, 0xFA: 0, 0xFB: 0, 0xFC: 0, 0xFF: 0}


def message_bytes(message: mido.Message) -> list[int]:
    """The bytes of a channel or realtime message, checked; PortError says what is wrong.

    Accepted: note on/off, aftertouch, control change, program change, pitch wheel (channels
    0..15), song position/select, tune request, clock, start, continue, stop, reset. Refused:
    meta messages and sysex (a live output has no use for them), bytes outside 0..127.
    """
    if not isinstance(message, mido.Message):
        raise PortError(
            f"cannot send {message!r}: only mido.Message channel or realtime messages can go to "
            "a MIDI port (meta messages belong in MIDI files)"
        )
    data = message.bytes()
    status = data[0] if data else -1
    if 0x80 <= status < 0xF0:
        expected = _CHANNEL_DATA_BYTES[status & 0xF0]
    elif status in _SYSTEM_DATA_BYTES:
        expected = _SYSTEM_DATA_BYTES[status]
    else:
        raise PortError(f"cannot send {message}: message type {message.type!r} is not supported")
    if len(data) != 1 + expected or any(not 0 <= b <= 0x7F for b in data[1:]):
        raise PortError(f"cannot send {message}: data bytes must be 0..127, got {data[1:]}")
    return data


# --- base classes -----------------------------------------------------------------------------
_PortT = TypeVar("_PortT", bound="_Port")


class _Port:
    """What every port has: a name, a lock, an idempotent close, a context manager."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close the port (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._close()

    def _close(self) -> None:
        """Release backend resources (called once, under the lock)."""

    def __enter__(self: _PortT) -> _PortT:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class OutputPort(_Port):
    """A MIDI destination. ``send`` / ``send_at`` validate and lock; subclasses implement
    ``_send`` (and, when they can place a message in time, ``_send_at`` and ``_discard``)."""

    #: a caller should hand messages to ``send_at`` this long before they are due (0: at due)
    lead_seconds: float = 0.0

    def send(self, message: mido.Message) -> None:
        """Send one message now (thread-safe). PortError when it is invalid or the port closed."""
        data = message_bytes(message)
        with self._lock:
            self._check_open()
            self._send(data)

    def send_at(self, message: mido.Message, due_seconds: float) -> None:
        """Send one message so that it leaves at ``due_seconds`` on the port's clock (the daemon's:
        JACK's frame clock for a JACK port); a backend without its own timing sends it now.
        Call it ``lead_seconds`` ahead."""
        data = message_bytes(message)
        with self._lock:
            self._check_open()
            self._send_at(data, due_seconds)

    def discard_queued(self) -> list[list[int]]:
        """Drop the channel messages ``send_at`` queued that have not left yet; returns them, in
        order. What ``send`` sent (it left, as far as the caller knows) and system messages
        (the clock a DAW follows) are never dropped."""
        with self._lock:
            return [list(data) for data in self._discard()]

    def _check_open(self) -> None:
        if self._closed:
            raise PortError(f"cannot send to MIDI output {self.name!r}: the port is closed")

    def _send(self, data: list[int]) -> None:
        raise NotImplementedError

    def _send_at(self, data: list[int], due_seconds: float) -> None:
        self._send(data)

    def _discard(self) -> list[Any]:
        return []


class InputPort(_Port):
    """A MIDI source. Each arriving message becomes a ``ReceivedMidi`` on ``self.queue``.

    Several ports may share one queue (pass it in) so that one thread consumes all input.
    """

    def __init__(self, name: str, message_queue: queue.SimpleQueue[Any] | None = None) -> None:
        super().__init__(name)
        self.queue: queue.SimpleQueue[Any] = (
            message_queue if message_queue is not None else queue.SimpleQueue()
        )

    def _enqueue(self, data: Sequence[int]) -> None:
        """Backend callback body: timestamp and enqueue, nothing else."""
        self.queue.put(ReceivedMidi(time.monotonic(), data, self.name))

    def receive(self, timeout_seconds: float | None = None) -> ReceivedMidi | None:
        """Next message from this port's queue, or None after ``timeout_seconds``."""
        try:
            return self.queue.get(timeout=timeout_seconds)
        except queue.Empty:
            return None


def match_port(query: str, names: Sequence[str], direction: str) -> int | None:
    """Index of the one port in ``names`` that ``query`` names, None if none.

    Case-insensitive; an exact name wins, else a unique substring. Several substring matches
    raise PortError listing them.
    """
    wanted = query.casefold()
    exact = [i for i, name in enumerate(names) if name.casefold() == wanted]
    if len(exact) == 1:
        return exact[0]
    hits = [i for i, name in enumerate(names) if wanted in name.casefold()]
    if not hits:
        return None
    if len(hits) > 1:
        listed = "; ".join(repr(names[i]) for i in hits)
        raise PortError(
            f"MIDI {direction} name {query!r} is ambiguous: it matches {listed}. "
            "Give more of the name."
        )
    return hits[0]
