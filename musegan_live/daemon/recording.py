"""``--record session.mid``: what the player played in and what the daemon sent out, as MIDI.

The file is a format-0 Standard MIDI File at a fixed 120 BPM and 960 ticks per beat (one tick
is about 0.52 ms), so it plays back in real time. It is written incrementally: every
``flush()`` appends the new events plus an End of Track and patches the track length, so the
file on disk is a complete, readable MIDI file after each flush; a crash loses at most the
events since the last one. Channel messages only (clock and other realtime bytes are left out).
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

import mido

from musegan_live.errors import MuseganLiveError

logger = logging.getLogger(__name__)

TICKS_PER_BEAT = 960
TEMPO_US_PER_BEAT = 500_000  # 120 BPM
SECONDS_PER_TICK = TEMPO_US_PER_BEAT / 1e6 / TICKS_PER_BEAT
_END_OF_TRACK = b"\x00\xff\x2f\x00"


def _variable_length(value: int) -> bytes:
    """MIDI variable-length quantity (7 bits per byte, high bit = more follows)."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _meta(kind: int, data: bytes) -> bytes:
    return b"\x00\xff" + bytes([kind]) + _variable_length(len(data)) + data


class Recording:
    """Collects channel messages with their monotonic times and writes them to ``path``.

    ``record(message, time_seconds)`` may be called from any thread; ``flush()`` and
    ``close()`` from one (the daemon's main thread).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        title: str = "musegan-live session",
        start_seconds: float | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self._now = now
        self._start_seconds = now() if start_seconds is None else start_seconds
        self._lock = threading.Lock()
        self._pending = bytearray()
        self._last_tick = 0
        self.event_count = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w+b")
        except OSError as err:
            raise MuseganLiveError(
                f"cannot write the recording {self.path}: {err.strerror}; choose a writable "
                "path for --record"
            ) from err
        header = struct.pack(">4sIHHH", b"MThd", 6, 0, 1, TICKS_PER_BEAT)
        self._file.write(header + b"MTrk" + b"\x00\x00\x00\x00")
        self._track_start = self._file.tell()
        self._data_end = self._track_start
        self._pending += _meta(0x03, title.encode("utf-8", "replace"))
        self._pending += _meta(0x51, TEMPO_US_PER_BEAT.to_bytes(3, "big"))
        self._pending += _meta(0x58, bytes([4, 2, 24, 8]))  # 4/4
        self.flush()

    def record(self, message: mido.Message, time_seconds: float) -> None:
        """Add one message that happened at ``time_seconds`` (monotonic clock)."""
        if getattr(message, "is_meta", False) or message.is_realtime or message.type == "sysex":
            return
        data = bytes(message.bytes())
        if not data or data[0] >= 0xF0:
            return
        tick = max(0, round((time_seconds - self._start_seconds) / SECONDS_PER_TICK))
        with self._lock:
            # Messages from two threads may arrive a hair out of order: never go backwards.
            tick = max(tick, self._last_tick)
            self._pending += _variable_length(tick - self._last_tick) + data
            self._last_tick = tick
            self.event_count += 1

    def flush(self) -> None:
        """Write what was recorded so far; the file is a complete MIDI file afterwards."""
        with self._lock:
            chunk = bytes(self._pending)
            self._pending.clear()
        if self._file.closed:
            return
        self._file.seek(self._data_end)
        self._file.write(chunk)
        self._data_end = self._file.tell()
        self._file.write(_END_OF_TRACK)
        track_length = self._file.tell() - self._track_start
        self._file.seek(self._track_start - 4)
        self._file.write(struct.pack(">I", track_length))
        self._file.flush()

    def close(self) -> None:
        """Flush and close (idempotent)."""
        if self._file.closed:
            return
        self.flush()
        self._file.close()
        logger.info("recorded %d MIDI events to %s", self.event_count, self.path)
